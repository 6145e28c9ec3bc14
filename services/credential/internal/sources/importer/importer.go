// Package importer loads a source file (LEIE, SAM, NPPES bulk, license
// roster) as one atomic, versioned swap, streaming it in constant memory:
// an encoding/csv reader (ReuseRecord) feeds rows, parsed lazily, to pgx
// CopyFrom into a fresh version table; indexes are built after the load; then,
// in the same transaction, the table is attached as a partition of the
// source's parent table, the previous version's partition is dropped and its
// import record marked superseded. Anything failing on the way rolls the
// whole transaction back, so the previous version stays active, and the
// attempt's source_imports record says which line failed and why.
package importer

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/provcred/credential/internal/audit"
	"github.com/provcred/credential/internal/events"
	"github.com/provcred/credential/internal/sources"
	"github.com/provcred/credential/internal/sources/leie"
	"github.com/provcred/credential/internal/sources/licenses"
	"github.com/provcred/credential/internal/sources/nppes"
	"github.com/provcred/credential/internal/sources/sam"
	"github.com/provcred/platform/metrics"
)

// Errors an Import returns besides *sources.LineError (the file was rejected).
var (
	ErrUnknownSource = errors.New("unknown source")
	// ErrBusy: another import of the same source is loading; imports of one
	// source are serialized by a PostgreSQL advisory lock, so this holds across replicas.
	ErrBusy = errors.New("another import of this source is in progress")
)

// Formats returns the file format of every source.
func Formats() map[string]sources.Format {
	return map[string]sources.Format{
		sources.LEIE:     leie.Format{},
		sources.SAM:      sam.Format{},
		sources.NPPES:    nppes.BulkFormat{},
		sources.Licenses: licenses.Format{},
	}
}

// Importer loads source files into the database.
type Importer struct {
	DB      *pgxpool.Pool
	Log     *slog.Logger
	Formats map[string]sources.Format
	// OnExclusionsImported, when set, is called after an LEIE or SAM version
	// became active (main wires it to the engine's re-screen: continuous
	// monitoring). It runs after the commit, so its error does not undo the
	// import; it is logged and reported in the record's hook_error.
	OnExclusionsImported func(ctx context.Context, source string, importID int64) error
	// MaintenanceWorkMem is used to build the version's indexes (default 256MB).
	MaintenanceWorkMem string

	imports *prometheus.CounterVec // credential_source_imports_total{source,outcome}
	rows    *prometheus.GaugeVec   // credential_source_rows{source}
}

// WithMetrics registers and records credential_source_imports_total{source,
// outcome: activated|rejected|busy|error} and credential_source_rows{source}
// (rows of the active version), so a failing monthly import can alert, and
// credential_source_last_import_timestamp_seconds{source} (see freshness).
func (im *Importer) WithMetrics(reg *metrics.Registry) *Importer {
	im.imports = reg.CounterVec("credential_source_imports_total", "Source file imports by outcome.", "source", "outcome")
	im.rows = reg.GaugeVec("credential_source_rows", "Rows in the active version of a source (set on activation).", "source")
	reg.Registerer.MustRegister(newFreshness(im.DB))
	for _, s := range sources.Names {
		for _, o := range []string{"activated", "rejected", "busy", "error"} {
			im.imports.WithLabelValues(s, o)
		}
	}
	return im
}

func (im *Importer) count(source, outcome string) {
	if im.imports != nil {
		im.imports.WithLabelValues(source, outcome).Inc()
	}
}

// New returns an importer for every source.
func New(db *pgxpool.Pool, log *slog.Logger) *Importer {
	if log == nil {
		log = slog.Default()
	}
	return &Importer{DB: db, Log: log, Formats: Formats(), MaintenanceWorkMem: "256MB"}
}

// Request is one file to import.
type Request struct {
	Source   string
	FileName string
	// FileDate is the publisher's date of the file; when nil it is taken from
	// FileName (see FileDateFromName) or left unknown.
	FileDate  *time.Time
	Actor     string
	RequestID string
	Body      io.Reader
}

// Record is one import attempt (a source_imports row).
type Record struct {
	ID          int64      `json:"id"`
	Source      string     `json:"source"`
	Status      string     `json:"status"`
	Version     *int       `json:"version,omitempty"`
	FileName    string     `json:"file_name"`
	SHA256      string     `json:"sha256"`
	Bytes       int64      `json:"bytes"`
	FileDate    *time.Time `json:"file_date,omitempty"`
	Rows        int64      `json:"rows"`
	Error       string     `json:"error,omitempty"`
	ErrorLine   *int64     `json:"error_line,omitempty"`
	Actor       string     `json:"actor"`
	LoadMS      *int64     `json:"load_ms,omitempty"`
	IndexMS     *int64     `json:"index_ms,omitempty"`
	SwapMS      *int64     `json:"swap_ms,omitempty"`
	StartedAt   time.Time  `json:"started_at"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
	ActivatedAt *time.Time `json:"activated_at,omitempty"`
	// Replaced is the import this one superseded.
	Replaced *int64 `json:"replaced,omitempty"`
	// HookError is the re-screen hook's error, if it failed.
	HookError string `json:"hook_error,omitempty"`
}

const recordCols = `id, source, status, version, file_name, sha256, bytes, file_date, row_count, error, error_line,
	actor, load_ms, index_ms, swap_ms, started_at, finished_at, activated_at`

func scanRecord(row pgx.Row) (*Record, error) {
	r := &Record{}
	err := row.Scan(&r.ID, &r.Source, &r.Status, &r.Version, &r.FileName, &r.SHA256, &r.Bytes, &r.FileDate,
		&r.Rows, &r.Error, &r.ErrorLine, &r.Actor, &r.LoadMS, &r.IndexMS, &r.SwapMS, &r.StartedAt, &r.FinishedAt,
		&r.ActivatedAt)
	return r, err
}

// Import loads req.Body as the new version of req.Source. It returns the
// attempt's record and, on failure, an error: ErrUnknownSource, ErrBusy, a
// *sources.LineError when the file was rejected, or a database error.
func (im *Importer) Import(ctx context.Context, req Request) (*Record, error) {
	f, ok := im.Formats[req.Source]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownSource, req.Source)
	}
	if req.Body == nil {
		req.Body = strings.NewReader("")
	}
	fileDate := req.FileDate
	if fileDate == nil {
		fileDate = FileDateFromName(req.FileName)
	}
	actor := req.Actor
	if actor == "" {
		actor = "system"
	}
	var id int64
	err := im.DB.QueryRow(ctx, `INSERT INTO source_imports (source, file_name, file_date, actor, request_id)
		VALUES ($1, $2, $3, $4, $5) RETURNING id`, req.Source, req.FileName, fileDate, actor, req.RequestID).Scan(&id)
	if err != nil {
		return nil, fmt.Errorf("record import attempt: %w", err)
	}
	log := im.Log.With("source", req.Source, "import_id", id)
	log.InfoContext(ctx, "import started")

	st, err := im.load(ctx, f, id, req, actor)
	if err != nil {
		im.markFailed(ctx, id, st, err)
		rec, gerr := im.Get(context.WithoutCancel(ctx), id)
		if gerr != nil {
			rec = &Record{ID: id, Source: req.Source, Status: "failed", Error: err.Error()}
		}
		var le *sources.LineError
		switch {
		case errors.As(err, &le):
			// Only the line: the reason may quote a value from the file.
			log.WarnContext(ctx, "import rejected", "line", le.Line, "rows_read", st.rows)
			im.count(req.Source, "rejected")
		case errors.Is(err, ErrBusy):
			log.WarnContext(ctx, "import refused: another import of the source is loading")
			im.count(req.Source, "busy")
		default:
			log.ErrorContext(ctx, "import failed", "err", err.Error(), "rows_read", st.rows)
			im.count(req.Source, "error")
		}
		return rec, err
	}
	rec, err := im.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	rec.Replaced = st.replaced
	im.count(req.Source, "activated")
	if im.rows != nil {
		im.rows.WithLabelValues(req.Source).Set(float64(rec.Rows))
	}
	log.InfoContext(ctx, "import activated", "rows", rec.Rows, "bytes", rec.Bytes, "load_ms", st.loadMS, "index_ms", st.indexMS,
		"swap_ms", st.swapMS, "replaced", st.replaced)

	if sources.IsExclusion(req.Source) && im.OnExclusionsImported != nil {
		if err := im.OnExclusionsImported(ctx, req.Source, id); err != nil {
			rec.HookError = err.Error()
			log.ErrorContext(ctx, "re-screen after exclusion import failed", "err", err.Error())
		}
	}
	return rec, nil
}

// stats are what a load learned, also on failure.
type stats struct {
	rows, bytes             int64
	sha                     string
	loadMS, indexMS, swapMS int64
	replaced                *int64
}

func (im *Importer) load(ctx context.Context, f sources.Format, id int64, req Request, actor string) (stats, error) {
	var st stats
	conn, err := im.DB.Acquire(ctx)
	if err != nil {
		return st, fmt.Errorf("acquire connection: %w", err)
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return st, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit

	var got bool
	if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock(hashtext('source_import'), hashtext($1))`,
		req.Source).Scan(&got); err != nil {
		return st, fmt.Errorf("advisory lock: %w", err)
	}
	if !got {
		return st, ErrBusy
	}
	// The data is only visible once the swap commits, and a crash before that
	// loses nothing the previous version does not still hold: no need to wait
	// for the WAL flush.
	mwm := im.MaintenanceWorkMem
	if mwm == "" {
		mwm = "256MB"
	}
	if _, err := tx.Exec(ctx, `SELECT set_config('synchronous_commit', 'off', true),
		set_config('maintenance_work_mem', $1, true)`, mwm); err != nil {
		return st, fmt.Errorf("session settings: %w", err)
	}

	parent := f.Table()
	table := fmt.Sprintf("%s_%d", parent, id)
	ident := pgx.Identifier{table}.Sanitize()
	// The CHECK lets ATTACH PARTITION skip its validation scan.
	if _, err := tx.Exec(ctx, fmt.Sprintf(`CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
		ALTER TABLE %s ALTER COLUMN import_id SET DEFAULT %d, ADD CONSTRAINT %s CHECK (import_id = %d)`,
		ident, pgx.Identifier{parent}.Sanitize(), ident, id, pgx.Identifier{table + "_version"}.Sanitize(), id)); err != nil {
		return st, fmt.Errorf("create version table: %w", err)
	}

	// Load.
	t0 := time.Now()
	body := &countingReader{r: req.Body, h: sha256.New()}
	src, err := sources.NewPipeline(f, bufio.NewReaderSize(body, 1<<20))
	if err != nil {
		st.bytes = body.n
		return st, err
	}
	n, err := tx.CopyFrom(ctx, pgx.Identifier{table}, f.Columns(), src)
	src.Close() // the parser goroutine is done with body after this
	st.rows, st.bytes = src.Rows(), body.n
	if src.Err() != nil {
		return st, src.Err()
	}
	if err != nil {
		return st, fmt.Errorf("copy rows: %w", err)
	}
	if n == 0 {
		return st, &sources.LineError{Line: src.Line() + 1, Reason: "the file has a header but no rows"}
	}
	// Drain anything after the last record (csv stops at EOF anyway), so the
	// digest covers the whole upload.
	if _, err := io.Copy(io.Discard, body); err != nil {
		return st, &sources.LineError{Line: src.Line() + 1, Reason: "reading the file: " + err.Error()}
	}
	st.rows, st.bytes, st.sha = n, body.n, hex.EncodeToString(body.h.Sum(nil))
	st.loadMS = time.Since(t0).Milliseconds()

	// Indexes, built once over the loaded rows rather than row by row.
	t1 := time.Now()
	for _, ix := range f.Indexes() {
		if err := im.createIndex(ctx, tx, ident, table, ix); err != nil {
			return st, err
		}
	}
	// Statistics for the planner on the lookup columns only: analyzing the
	// raw-row jsonb would cost more than the rest of the phase.
	if _, err := tx.Exec(ctx, "ANALYZE "+ident+" ("+strings.Join(f.Analyze(), ", ")+")"); err != nil {
		return st, fmt.Errorf("analyze: %w", err)
	}
	st.indexMS = time.Since(t1).Milliseconds()

	// Swap.
	t2 := time.Now()
	var old *int64
	err = tx.QueryRow(ctx, `SELECT id FROM source_imports WHERE source = $1 AND status = 'active' FOR UPDATE`,
		req.Source).Scan(&old)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return st, fmt.Errorf("find active version: %w", err)
	}
	if _, err := tx.Exec(ctx, fmt.Sprintf(`ALTER TABLE %s ATTACH PARTITION %s FOR VALUES IN (%d)`,
		pgx.Identifier{parent}.Sanitize(), ident, id)); err != nil {
		return st, fmt.Errorf("attach version: %w", err)
	}
	var before any
	if old != nil {
		st.replaced = old
		before = map[string]any{"import_id": *old}
		if _, err := tx.Exec(ctx, `UPDATE source_imports SET status = 'superseded' WHERE id = $1`, *old); err != nil {
			return st, fmt.Errorf("supersede %d: %w", *old, err)
		}
		// The old rows go; the old import record stays.
		if _, err := tx.Exec(ctx, "DROP TABLE IF EXISTS "+pgx.Identifier{fmt.Sprintf("%s_%d", parent, *old)}.Sanitize()); err != nil {
			return st, fmt.Errorf("drop version %d: %w", *old, err)
		}
	}
	st.swapMS = time.Since(t2).Milliseconds()
	var version int
	err = tx.QueryRow(ctx, `UPDATE source_imports SET status = 'active', activated_at = now(), finished_at = now(),
			version = (SELECT coalesce(max(version), 0) + 1 FROM source_imports WHERE source = $2),
			row_count = $3, bytes = $4, sha256 = $5, load_ms = $6, index_ms = $7, swap_ms = $8
		WHERE id = $1 RETURNING version`, id, req.Source, st.rows, st.bytes, st.sha, st.loadMS, st.indexMS, st.swapMS).Scan(&version)
	if err != nil {
		return st, fmt.Errorf("activate: %w", err)
	}
	err = audit.Write(ctx, tx, audit.Entry{
		Actor: actor, Event: "import.activated", Entity: "import", EntityID: strconv.FormatInt(id, 10),
		Before: before, RequestID: req.RequestID,
		After: map[string]any{"import_id": id, "source": req.Source, "version": version, "rows": st.rows,
			"sha256": st.sha, "file_name": req.FileName},
	})
	if err != nil {
		return st, err
	}
	// Announced in the activation's transaction: subscribers hear of
	// exactly the versions that became active.
	eventData := map[string]any{"import_id": id, "source": req.Source, "version": version, "rows": st.rows,
		"sha256": st.sha, "replaced_import_id": st.replaced}
	fileDate := req.FileDate
	if fileDate == nil {
		fileDate = FileDateFromName(req.FileName)
	}
	if fileDate != nil {
		eventData["file_date"] = fileDate.UTC().Format(time.DateOnly)
	}
	if err := events.Write(ctx, tx, events.Event{Type: events.ImportActivated,
		Link: "/admin/imports/" + strconv.FormatInt(id, 10), Data: eventData}); err != nil {
		return st, err
	}
	if err := tx.Commit(ctx); err != nil {
		return st, fmt.Errorf("commit: %w", err)
	}
	return st, nil
}

// createIndex builds one index; a unique violation (an NPI listed twice) is
// reported at the line of the second listing.
func (im *Importer) createIndex(ctx context.Context, tx pgx.Tx, ident, table, stmt string) error {
	sp, err := tx.Begin(ctx) // a savepoint, so a violation can be explained from the loaded rows
	if err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	_, err = sp.Exec(ctx, fmt.Sprintf(stmt, ident))
	if err == nil {
		return sp.Commit(ctx)
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "23505" {
		return fmt.Errorf("build index on %s: %w", table, err)
	}
	if rerr := sp.Rollback(ctx); rerr != nil {
		return fmt.Errorf("build index on %s: %w", table, err)
	}
	var npi string
	var first, second int64
	qerr := tx.QueryRow(ctx, fmt.Sprintf(`SELECT npi, lines[1], lines[2] FROM (
			SELECT npi, array_agg(line ORDER BY line) AS lines FROM %s GROUP BY npi HAVING count(*) > 1) d
		ORDER BY lines[2] LIMIT 1`, ident)).Scan(&npi, &first, &second)
	if qerr != nil {
		return &sources.LineError{Line: 0, Reason: "duplicate key: " + pe.Detail}
	}
	return &sources.LineError{Line: second, Reason: fmt.Sprintf("NPI %s is already listed on line %d", npi, first)}
}

func (im *Importer) markFailed(ctx context.Context, id int64, st stats, cause error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var line *int64
	var le *sources.LineError
	if errors.As(cause, &le) && le.Line > 0 {
		line = &le.Line
	}
	msg := cause.Error()
	if le == nil && !errors.Is(cause, ErrBusy) {
		msg = "internal error while loading" // database details stay in the log
	}
	_, err := im.DB.Exec(ctx, `UPDATE source_imports SET status = 'failed', error = $2, error_line = $3,
		row_count = $4, bytes = $5, finished_at = now() WHERE id = $1`, id, msg, line, st.rows, st.bytes)
	if err != nil {
		im.Log.Error("record failed import", "import_id", id, "err", err.Error())
	}
}

// Get returns one import record.
func (im *Importer) Get(ctx context.Context, id int64) (*Record, error) {
	rec, err := scanRecord(im.DB.QueryRow(ctx, `SELECT `+recordCols+` FROM source_imports WHERE id = $1`, id))
	if err != nil {
		return nil, fmt.Errorf("import %d: %w", id, err)
	}
	return rec, nil
}

// List returns import records, newest first, of source ("" for all), with
// id < before (0 for no bound).
func (im *Importer) List(ctx context.Context, source string, before int64, limit int) ([]*Record, error) {
	if before <= 0 {
		before = 1<<63 - 1
	}
	rows, err := im.DB.Query(ctx, `SELECT `+recordCols+` FROM source_imports
		WHERE ($1 = '' OR source = $1) AND id < $2 ORDER BY id DESC LIMIT $3`, source, before, limit)
	if err != nil {
		return nil, fmt.Errorf("list imports: %w", err)
	}
	defer rows.Close()
	var out []*Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, fmt.Errorf("list imports: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// countingReader counts and hashes what the CSV reader consumes.
type countingReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.n += int64(n)
		c.h.Write(p[:n])
	}
	return n, err
}

var (
	reDashed = regexp.MustCompile(`((?:19|20)[0-9]{2})-?([01][0-9])-?([0-3][0-9])`)
	reJulian = regexp.MustCompile(`_([0-9]{2})([0-9]{3})\.[A-Za-z]+$`)
)

// FileDateFromName reads the publisher's date from a file name: the last
// YYYYMMDD or YYYY-MM-DD in it (NPPES: npidata_pfile_20050523-20241013.csv →
// 2024-10-13), or SAM's _YYDDD (day of year) before the extension
// (SAM_Exclusions_Public_Extract_V2_24100.CSV → 2024-04-09). nil if none.
func FileDateFromName(name string) *time.Time {
	if ms := reDashed.FindAllStringSubmatchIndex(name, -1); len(ms) > 0 {
		for i := len(ms) - 1; i >= 0; i-- {
			m := ms[i]
			if (m[0] > 0 && isDigit(name[m[0]-1])) || (m[1] < len(name) && isDigit(name[m[1]])) {
				continue // part of a longer number
			}
			y, _ := strconv.Atoi(name[m[2]:m[3]])
			mo, _ := strconv.Atoi(name[m[4]:m[5]])
			d, _ := strconv.Atoi(name[m[6]:m[7]])
			t := time.Date(y, time.Month(mo), d, 0, 0, 0, 0, time.UTC)
			if mo >= 1 && mo <= 12 && t.Day() == d {
				return &t
			}
		}
	}
	if m := reJulian.FindStringSubmatch(name); m != nil {
		yy, _ := strconv.Atoi(m[1])
		doy, _ := strconv.Atoi(m[2])
		if doy >= 1 && doy <= 366 {
			t := time.Date(2000+yy, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, doy-1)
			if t.Year() == 2000+yy {
				return &t
			}
		}
	}
	return nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
