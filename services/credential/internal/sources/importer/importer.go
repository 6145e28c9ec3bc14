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
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/provcred/credential/internal/audit"
	"github.com/provcred/credential/internal/config"
	"github.com/provcred/credential/internal/events"
	"github.com/provcred/credential/internal/sources"
	"github.com/provcred/credential/internal/sources/leie"
	"github.com/provcred/credential/internal/sources/licenses"
	"github.com/provcred/credential/internal/sources/nppes"
	"github.com/provcred/credential/internal/sources/sam"
	"github.com/provcred/platform/domain"
	"github.com/provcred/platform/metrics"
	"github.com/provcred/platform/text"
)

// Errors an Import returns besides *sources.LineError (the file was
// rejected), *ShrinkError and *KindError.
var (
	ErrUnknownSource = errors.New("unknown source")
	// ErrBusy: another import of the same source is loading; imports of one
	// source are serialized by a PostgreSQL advisory lock, so this holds across replicas.
	ErrBusy = errors.New("another import of this source is in progress")
	// ErrNoBase: a delta (supplement, increment) was sent for a source with no
	// active version to apply it to.
	ErrNoBase = errors.New("the source has no active version to apply the file to; import the full list first")
)

// ShrinkError refuses a full list with far fewer rows than the active
// version (almost always an operator's mistake: a supplement, a weekly file
// or a cut-off export sent as the full list). Request.AllowShrink overrides it.
type ShrinkError struct {
	Rows, ActiveRows int64
	// MinRatio is the share of the active version's rows a new version must keep.
	MinRatio float64
}

func (e *ShrinkError) Error() string {
	return fmt.Sprintf("the file has %d rows, the active version %d: fewer than %.0f%% of them; "+
		"if the list really shrank, send it again with allow_shrink=true", e.Rows, e.ActiveRows, e.MinRatio*100)
}

// KindError refuses a file whose published name says one kind and whose
// request says another (a YYMMREIN.csv sent as the full list, UPDATED.csv
// as a supplement).
type KindError struct {
	Name, Named, Requested string
}

func (e *KindError) Error() string {
	return fmt.Sprintf("the file name %q is a %s file, but the upload says kind=%s; rename the file or send the kind it is",
		text.Clip(e.Name, 40), e.Named, e.Requested)
}

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
	// became active, full or delta (main wires it to the engine's re-screen:
	// continuous monitoring). It runs after the commit, so its error does not
	// undo the import; it is logged and reported in the record's hook_error.
	OnExclusionsImported func(ctx context.Context, source string, importID int64) error
	// OnActivate, when set, runs in the transaction that activates an LEIE
	// or SAM version, full or delta, before it commits (main wires it to
	// monitor.Enqueue: the re-screen job exists exactly when the version
	// does). Its error fails the import.
	OnActivate func(ctx context.Context, tx pgx.Tx, source string, importID int64) error
	// LicenseStatuses classifies a license roster's status words; the words
	// it does not know are reported on the import record (zero value: the
	// default table).
	LicenseStatuses licenses.StatusTable
	// MaintenanceWorkMem is used to build the version's indexes (New sets 256MB).
	MaintenanceWorkMem string
	// ShrinkRatio: a full list with fewer rows than this share of the active
	// version's is refused (ShrinkError) unless the request allows it.
	// 0 disables the guard. New sets IMPORT_SHRINK_MIN_RATIO's default; main
	// sets the configured value.
	ShrinkRatio float64

	imports *prometheus.CounterVec // credential_source_imports_total{source,outcome}
	rows    *prometheus.GaugeVec   // credential_source_rows{source}
}

// Outcomes of credential_source_imports_total.
var outcomes = []string{"activated", "rejected", "shrink_refused", "busy", "error"}

// WithMetrics registers and records credential_source_imports_total{source,
// outcome: activated|rejected|shrink_refused|busy|error} and
// credential_source_rows{source} (rows of the active version), so a failing
// monthly import can alert, and
// credential_source_last_import_timestamp_seconds{source} (see freshness).
func (im *Importer) WithMetrics(reg *metrics.Registry) *Importer {
	im.imports = reg.CounterVec("credential_source_imports_total", "Source file imports by outcome.", "source", "outcome")
	im.rows = reg.GaugeVec("credential_source_rows", "Rows in the active version of a source (set on activation).", "source")
	reg.Registerer.MustRegister(newFreshness(im.DB))
	for _, s := range sources.Names {
		for _, o := range outcomes {
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
	return &Importer{DB: db, Log: log, Formats: Formats(), MaintenanceWorkMem: "256MB",
		ShrinkRatio: config.Defaults().ImportShrinkMinRatio}
}

// Request is one file to import.
type Request struct {
	Source   string
	FileName string
	// FileDate is the publisher's date of the file; when nil it is taken from
	// FileName (see FileDateFromName) or left unknown.
	FileDate *time.Time
	// Kind is sources.KindFull or the source's delta kind; "" reads it from
	// FileName (a name that says neither is a full list).
	Kind string
	// AllowShrink lets a full list with far fewer rows than the active
	// version replace it.
	AllowShrink bool
	Actor       string
	RequestID   string
	Body        io.Reader
}

// Changes is what a delta did to the version it was applied to.
type Changes struct {
	// Added rows were not in the previous version.
	Added int64 `json:"added"`
	// Removed rows were reinstated (kept in source_delta_changes).
	Removed int64 `json:"removed"`
	// Replaced rows were superseded by a row with the same key.
	Replaced int64 `json:"replaced"`
	// Unmatched removals found no row to remove.
	Unmatched int64 `json:"unmatched"`
}

// Record is one import attempt (a source_imports row).
type Record struct {
	ID       int64  `json:"id"`
	Source   string `json:"source"`
	Status   string `json:"status"`
	Kind     string `json:"kind"`
	Version  *int   `json:"version,omitempty"`
	FileName string `json:"file_name"`
	SHA256   string `json:"sha256"`
	Bytes    int64  `json:"bytes"`
	// Encoding is the file's text encoding: utf-8, or windows-1252 when it
	// was transcoded.
	Encoding string     `json:"encoding"`
	FileDate *time.Time `json:"file_date,omitempty"`
	// Rows of the version (for a delta: the previous version's, changed).
	Rows int64 `json:"rows"`
	// FileRows is how many rows the file held.
	FileRows    int64      `json:"file_rows"`
	Changes     *Changes   `json:"changes,omitempty"`
	Error       string     `json:"error,omitempty"`
	ErrorLine   *int64     `json:"error_line,omitempty"`
	Actor       string     `json:"actor"`
	LoadMS      *int64     `json:"load_ms,omitempty"`
	IndexMS     *int64     `json:"index_ms,omitempty"`
	SwapMS      *int64     `json:"swap_ms,omitempty"`
	StartedAt   time.Time  `json:"started_at"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
	ActivatedAt *time.Time `json:"activated_at,omitempty"`
	// Replaced is the import this one superseded (for a delta: the version it
	// was applied to).
	Replaced *int64 `json:"replaced,omitempty"`
	// HookError is the re-screen hook's error, if it failed.
	HookError string `json:"hook_error,omitempty"`
	// UnknownStatuses are a license roster's status words the status table
	// does not know (each such license needs review when checked).
	UnknownStatuses []licenses.UnknownStatus `json:"unknown_statuses,omitempty"`
	// Rescreen is the re-screen job of an LEIE or SAM version: its progress and result.
	Rescreen *Rescreen `json:"rescreen,omitempty"`
}

// Rescreen is the progress and result of a version's re-screen job
// (monitor.RescreenArgs), kept on the import record.
type Rescreen struct {
	// Status is queued, running, done or failed (after its last attempt).
	Status        string     `json:"status"`
	JobID         *int64     `json:"job_id,omitempty"`
	Attempts      *int       `json:"attempts,omitempty"`
	Providers     *int64     `json:"providers,omitempty"`
	Screened      *int64     `json:"screened,omitempty"`
	Flagged       *int64     `json:"flagged,omitempty"`
	ReviewsOpened *int64     `json:"reviews_opened,omitempty"`
	Reinstated    *int64     `json:"reinstated,omitempty"`
	Error         *string    `json:"error,omitempty"`
	FinishedAt    *time.Time `json:"finished_at,omitempty"`
}

const recordCols = `id, source, status, kind, version, file_name, sha256, bytes, encoding, file_date, row_count, file_rows,
	rows_added, rows_removed, rows_replaced, rows_unmatched, error, error_line,
	actor, load_ms, index_ms, swap_ms, started_at, finished_at, activated_at, unknown_statuses,
	rescreen_status, rescreen_job_id, rescreen_attempts, rescreen_total, rescreen_screened, rescreen_flagged,
	rescreen_reviews_opened, rescreen_reinstated, rescreen_error, rescreen_finished_at`

func scanRecord(row pgx.Row) (*Record, error) {
	r := &Record{}
	rs := &Rescreen{}
	var rsStatus *string
	var added, removed, replaced, unmatched *int64
	err := row.Scan(&r.ID, &r.Source, &r.Status, &r.Kind, &r.Version, &r.FileName, &r.SHA256, &r.Bytes, &r.Encoding,
		&r.FileDate, &r.Rows, &r.FileRows, &added, &removed, &replaced, &unmatched, &r.Error, &r.ErrorLine, &r.Actor,
		&r.LoadMS, &r.IndexMS, &r.SwapMS, &r.StartedAt, &r.FinishedAt, &r.ActivatedAt, &r.UnknownStatuses,
		&rsStatus, &rs.JobID, &rs.Attempts, &rs.Providers, &rs.Screened, &rs.Flagged, &rs.ReviewsOpened, &rs.Reinstated,
		&rs.Error, &rs.FinishedAt)
	if rsStatus != nil {
		rs.Status, r.Rescreen = *rsStatus, rs
	}
	if added != nil && removed != nil && replaced != nil && unmatched != nil {
		r.Changes = &Changes{Added: *added, Removed: *removed, Replaced: *replaced, Unmatched: *unmatched}
	}
	return r, err
}

// ResolveKind is the kind a file is imported as: the request's, else the
// one its name says, else full. A request kind the source does not take is
// an error the caller reports as a bad parameter; a name saying another kind
// than the request is a *KindError.
func ResolveKind(f sources.Format, requested, name string) (string, error) {
	if requested != "" && !slices.Contains(sources.KindsOf(f), requested) {
		return "", fmt.Errorf("kind %q is not one of %s for %s", text.Clip(requested, 40),
			strings.Join(sources.KindsOf(f), ", "), f.Source())
	}
	named := ""
	if d, ok := f.(sources.Delta); ok {
		named = d.KindOf(name)
	}
	switch {
	case requested != "" && named != "" && named != requested:
		return "", &KindError{Name: name, Named: named, Requested: requested}
	case requested != "":
		return requested, nil
	case named != "":
		return named, nil
	}
	return sources.KindFull, nil
}

// lockSQL takes the per-source import lock. The same key, taken per
// transaction or per session, serializes every import of one source on every
// replica.
const lockSQL = `SELECT pg_try_advisory_lock(hashtext('source_import'), hashtext($1))`

// Import loads req.Body as the new version of req.Source (a full list), or
// applies it to the active version (a delta). It returns the attempt's
// record and, on failure, an error: ErrUnknownSource, ErrBusy, ErrNoBase, a
// *KindError, a *ShrinkError, a *sources.LineError when the file was
// rejected, or a database error. Every attempt that gets as far as the
// source's lock is recorded.
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
	kind, kindErr := ResolveKind(f, req.Kind, req.FileName)
	var ke *KindError
	if kindErr != nil && !errors.As(kindErr, &ke) {
		return nil, kindErr // a bad parameter, not an attempt
	}
	if kind == "" {
		kind = req.Kind // recorded as requested
	}

	id, st, err := im.attempt(ctx, f, req, kind, kindErr, fileDate, actor)
	if id == 0 {
		return nil, err
	}
	log := im.Log.With("source", req.Source, "import_id", id, "kind", kind)
	if err != nil {
		var le *sources.LineError
		var se *ShrinkError
		switch {
		case errors.Is(err, ErrBusy):
			log.WarnContext(ctx, "import refused: another import of the source is loading")
			im.count(req.Source, "busy")
		case errors.As(err, &le):
			// Only the line: the reason may quote a value from the file.
			log.WarnContext(ctx, "import rejected", "line", le.Line, "rows_read", st.rows)
			im.count(req.Source, "rejected")
		case errors.As(err, &se):
			log.WarnContext(ctx, "import refused: the list shrank", "rows", se.Rows, "active_rows", se.ActiveRows)
			im.count(req.Source, "shrink_refused")
		case errors.As(err, &ke), errors.Is(err, ErrNoBase):
			log.WarnContext(ctx, "import refused", "reason", err.Error())
			im.count(req.Source, "rejected")
		default:
			log.ErrorContext(ctx, "import failed", "err", err.Error(), "rows_read", st.rows)
			im.count(req.Source, "error")
		}
		return im.getOr(ctx, id, req.Source, err), err
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
	log.InfoContext(ctx, "import activated", "rows", rec.Rows, "file_rows", rec.FileRows, "bytes", rec.Bytes,
		"encoding", rec.Encoding, "load_ms", st.loadMS, "index_ms", st.indexMS, "swap_ms", st.swapMS, "replaced", st.replaced)

	if sources.IsExclusion(req.Source) && im.OnExclusionsImported != nil {
		if err := im.OnExclusionsImported(ctx, req.Source, id); err != nil {
			rec.HookError = err.Error()
			log.ErrorContext(ctx, "re-screen after exclusion import failed", "err", err.Error())
		}
	}
	return rec, nil
}

// attempt records the import attempt and loads the file under the source's
// lock. The lock is held by this session from before the attempt is
// recorded until its outcome is (a 'loading' record without its lock is an
// import a crash interrupted: Reconcile), and released before the caller's
// re-screen. id is 0 when nothing was recorded.
func (im *Importer) attempt(ctx context.Context, f sources.Format, req Request, kind string, kindErr error,
	fileDate *time.Time, actor string) (id int64, st stats, err error) {
	conn, err := im.DB.Acquire(ctx)
	if err != nil {
		return 0, st, fmt.Errorf("acquire connection: %w", err)
	}
	defer conn.Release()
	var got bool
	if err := conn.QueryRow(ctx, lockSQL, req.Source).Scan(&got); err != nil {
		return 0, st, fmt.Errorf("advisory lock: %w", err)
	}
	if got {
		defer im.unlock(ctx, conn, req.Source)
	}
	status, msg := "loading", ""
	if !got {
		status, msg = "failed", ErrBusy.Error()
	}
	err = conn.QueryRow(ctx, `INSERT INTO source_imports (source, file_name, file_date, actor, request_id, kind, status, error, finished_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, CASE WHEN $7 = 'failed' THEN clock_timestamp() END) RETURNING id`,
		req.Source, req.FileName, fileDate, actor, req.RequestID, kind, status, msg).Scan(&id)
	if err != nil {
		return 0, st, fmt.Errorf("record import attempt: %w", err)
	}
	if !got {
		return id, st, ErrBusy
	}
	im.Log.InfoContext(ctx, "import started", "source", req.Source, "import_id", id, "kind", kind)
	if kindErr != nil {
		err = kindErr
	} else {
		st, err = im.load(ctx, conn, f, id, req, kind, actor)
	}
	if err != nil {
		im.markFailed(ctx, id, st, err)
	}
	return id, st, err
}

// getOr reads the attempt's record, or makes one when the database cannot say.
func (im *Importer) getOr(ctx context.Context, id int64, source string, cause error) *Record {
	rec, err := im.Get(context.WithoutCancel(ctx), id)
	if err != nil {
		return &Record{ID: id, Source: source, Status: "failed", Error: cause.Error()}
	}
	return rec
}

// unlock releases the source's lock. A connection whose unlock failed is
// closed rather than returned to the pool still holding the lock.
func (im *Importer) unlock(ctx context.Context, conn *pgxpool.Conn, source string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock(hashtext('source_import'), hashtext($1))`, source); err != nil {
		im.Log.Error("release import lock; closing the connection", "source", source, "err", err.Error())
		_ = conn.Conn().Close(ctx)
	}
}

// Reconcile marks failed, with error "interrupted", every import left
// 'loading' by a process that died: one whose source's lock nobody holds
// (a live import holds it from its record's creation to its outcome). It
// runs at start-up; it returns how many it marked.
func (im *Importer) Reconcile(ctx context.Context) (int64, error) {
	rows, err := im.DB.Query(ctx, `SELECT DISTINCT source FROM source_imports WHERE status = 'loading'`)
	if err != nil {
		return 0, fmt.Errorf("find interrupted imports: %w", err)
	}
	srcs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("find interrupted imports: %w", err)
	}
	var total int64
	for _, source := range srcs {
		err := pgx.BeginFunc(ctx, im.DB, func(tx pgx.Tx) error {
			var got bool
			if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock(hashtext('source_import'), hashtext($1))`,
				source).Scan(&got); err != nil || !got {
				return err // held: an import of the source is running
			}
			tag, err := tx.Exec(ctx, `UPDATE source_imports SET status = 'failed', error = 'interrupted',
				finished_at = clock_timestamp() WHERE source = $1 AND status = 'loading'`, source)
			if n := tag.RowsAffected(); err == nil && n > 0 {
				total += n
				im.Log.WarnContext(ctx, "imports interrupted by a restart marked failed", "source", source, "imports", n)
			}
			return err
		})
		if err != nil {
			return total, fmt.Errorf("reconcile %s imports: %w", source, err)
		}
	}
	return total, nil
}

// stats are what a load learned, also on failure.
type stats struct {
	rows, fileRows, bytes   int64
	sha, encoding           string
	loadMS, indexMS, swapMS int64
	replaced                *int64
	changes                 *Changes
	unknownStatuses         []licenses.UnknownStatus
}

func (im *Importer) load(ctx context.Context, conn *pgxpool.Conn, f sources.Format, id int64, req Request, kind, actor string) (stats, error) {
	st := stats{encoding: sources.EncodingUTF8}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return st, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit

	// The data is only visible once the swap commits, and a crash before that
	// loses nothing the previous version does not still hold: no need to wait
	// for the WAL flush.
	if _, err := tx.Exec(ctx, `SELECT set_config('synchronous_commit', 'off', true),
		set_config('maintenance_work_mem', $1, true)`, im.MaintenanceWorkMem); err != nil {
		return st, fmt.Errorf("session settings: %w", err)
	}
	// The source's lock (held by this session) keeps the active version
	// from changing under the load.
	var active *int64
	var activeRows int64
	err = tx.QueryRow(ctx, `SELECT id, row_count FROM source_imports WHERE source = $1 AND status = 'active' FOR UPDATE`,
		req.Source).Scan(&active, &activeRows)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return st, fmt.Errorf("find active version: %w", err)
	}
	delta := kind != sources.KindFull
	if delta && active == nil {
		return st, ErrNoBase
	}

	parent := f.Table()
	table := fmt.Sprintf("%s_%d", parent, id)
	ident := pgx.Identifier{table}.Sanitize()
	// The CHECK lets ATTACH PARTITION skip its validation scan.
	if _, err := tx.Exec(ctx, fmt.Sprintf(`CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
		ALTER TABLE %s ALTER COLUMN import_id SET DEFAULT %d, ALTER COLUMN file_import_id SET DEFAULT %d,
			ADD CONSTRAINT %s CHECK (import_id = %d)`,
		ident, pgx.Identifier{parent}.Sanitize(), ident, id, id, pgx.Identifier{table + "_version"}.Sanitize(), id)); err != nil {
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
	st.rows, st.fileRows, st.bytes, st.encoding = src.Rows(), src.Rows(), body.n, src.Encoding()
	if src.Err() != nil {
		return st, src.Err()
	}
	if err != nil {
		return st, fmt.Errorf("copy rows: %w", err)
	}
	// A full list without rows would silently clear the source; a delta
	// without rows is a month without changes.
	if n == 0 && !delta {
		return st, &sources.LineError{Line: src.Line() + 1, Reason: "the file has a header but no rows"}
	}
	// Drain anything after the last record (csv stops at EOF anyway), so the
	// digest covers the whole upload.
	if _, err := io.Copy(io.Discard, body); err != nil {
		return st, &sources.LineError{Line: src.Line() + 1, Reason: "reading the file: " + err.Error()}
	}
	st.rows, st.fileRows, st.bytes, st.sha = n, n, body.n, hex.EncodeToString(body.h.Sum(nil))
	if d, ok := f.(sources.Delta); ok {
		if q := d.Contradiction(kind, req.FileName); q != "" {
			var line int64
			var reason string
			err := tx.QueryRow(ctx, fmt.Sprintf(q, ident)).Scan(&line, &reason)
			if err == nil {
				return st, &sources.LineError{Line: line, Reason: reason}
			}
			if !errors.Is(err, pgx.ErrNoRows) {
				return st, fmt.Errorf("check the file's kind: %w", err)
			}
		}
	}
	if !delta && active != nil && !req.AllowShrink && im.ShrinkRatio > 0 && float64(n) < im.ShrinkRatio*float64(activeRows) {
		return st, &ShrinkError{Rows: n, ActiveRows: activeRows, MinRatio: im.ShrinkRatio}
	}
	if delta {
		ch, rows, err := applyDelta(ctx, tx, f, ident, id, *active)
		if err != nil {
			return st, err
		}
		st.changes, st.rows = ch, rows
	}
	st.loadMS = time.Since(t0).Milliseconds()
	if req.Source == sources.Licenses {
		if st.unknownStatuses, err = licenses.UnknownStatuses(ctx, tx, ident, im.LicenseStatuses); err != nil {
			return st, err
		}
	}

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
	if _, err := tx.Exec(ctx, fmt.Sprintf(`ALTER TABLE %s ATTACH PARTITION %s FOR VALUES IN (%d)`,
		pgx.Identifier{parent}.Sanitize(), ident, id)); err != nil {
		return st, fmt.Errorf("attach version: %w", err)
	}
	var before any
	if active != nil {
		st.replaced = active
		before = map[string]any{"import_id": *active}
		if _, err := tx.Exec(ctx, `UPDATE source_imports SET status = 'superseded' WHERE id = $1`, *active); err != nil {
			return st, fmt.Errorf("supersede %d: %w", *active, err)
		}
		// The old rows go; the old import record stays.
		if _, err := tx.Exec(ctx, "DROP TABLE IF EXISTS "+pgx.Identifier{fmt.Sprintf("%s_%d", parent, *active)}.Sanitize()); err != nil {
			return st, fmt.Errorf("drop version %d: %w", *active, err)
		}
	}
	st.swapMS = time.Since(t2).Milliseconds()
	var version int
	var unknownStatuses any // SQL NULL when every status was known
	if len(st.unknownStatuses) > 0 {
		unknownStatuses = st.unknownStatuses
	}
	ch := st.changes
	if ch == nil {
		ch = &Changes{}
	}
	// clock_timestamp, not now(): now() is the transaction's start, minutes
	// before the swap for a large file.
	err = tx.QueryRow(ctx, `UPDATE source_imports SET status = 'active', activated_at = clock_timestamp(), finished_at = clock_timestamp(),
			version = (SELECT coalesce(max(version), 0) + 1 FROM source_imports WHERE source = $2),
			row_count = $3, bytes = $4, sha256 = $5, load_ms = $6, index_ms = $7, swap_ms = $8, file_rows = $9,
			encoding = $10, rows_added = CASE WHEN $11 THEN $12::bigint END, rows_removed = CASE WHEN $11 THEN $13::bigint END,
			rows_replaced = CASE WHEN $11 THEN $14::bigint END, rows_unmatched = CASE WHEN $11 THEN $15::bigint END,
			unknown_statuses = $16
		WHERE id = $1 RETURNING version`, id, req.Source, st.rows, st.bytes, st.sha, st.loadMS, st.indexMS, st.swapMS,
		st.fileRows, st.encoding, delta, ch.Added, ch.Removed, ch.Replaced, ch.Unmatched, unknownStatuses).Scan(&version)
	if err != nil {
		return st, fmt.Errorf("activate: %w", err)
	}
	after := map[string]any{"import_id": id, "source": req.Source, "version": version, "rows": st.rows,
		"sha256": st.sha, "file_name": req.FileName, "kind": kind, "file_rows": st.fileRows, "encoding": st.encoding}
	if delta {
		after["changes"] = ch
	}
	if len(st.unknownStatuses) > 0 {
		after["unknown_statuses"] = st.unknownStatuses
	}
	err = audit.Write(ctx, tx, audit.Entry{
		Actor: actor, Event: "import.activated", Entity: "import", EntityID: strconv.FormatInt(id, 10),
		Before: before, RequestID: req.RequestID, After: after,
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
	if sources.IsExclusion(req.Source) && im.OnActivate != nil {
		if err := im.OnActivate(ctx, tx, req.Source, id); err != nil {
			return st, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return st, fmt.Errorf("commit: %w", err)
	}
	return st, nil
}

// applyDelta turns the loaded delta rows in table ident into the new
// version: the active version's rows whose key no delta row has are copied
// in (keeping the import and line of the file that holds them), the
// active rows a delta row replaces or removes are recorded in
// source_delta_changes with the delta row that did it, and the removing
// rows (reinstatements) leave the version. It returns the changes and the
// version's row count.
func applyDelta(ctx context.Context, tx pgx.Tx, f sources.Format, ident string, id, base int64) (*Changes, int64, error) {
	d := f.(sources.Delta)
	parent := pgx.Identifier{f.Table()}.Sanitize()
	keyD, keyO, removal := d.Key("d"), d.Key("o"), d.Removal("d")
	// Rows of the base version (partition pruning on import_id).
	old := fmt.Sprintf("(SELECT * FROM %s WHERE import_id = %d)", parent, base)
	ch := &Changes{}
	err := tx.QueryRow(ctx, fmt.Sprintf(`WITH hit AS (
			SELECT d.line, d.digest, d.record, d.npi, (%[3]s) AS removes,
				coalesce(o.file_import_id, o.import_id) AS old_import_id, o.line AS old_line, o.digest AS old_digest, o.record AS old_record
			FROM %[1]s d LEFT JOIN %[2]s o ON %[4]s = %[5]s),
		logged AS (
			INSERT INTO source_delta_changes (import_id, source, change, line, digest, record, npi,
				old_import_id, old_line, old_digest, old_record)
			SELECT %[6]d, %[7]s, CASE WHEN old_line IS NULL THEN 'unmatched' WHEN removes THEN 'removed' ELSE 'replaced' END,
				line, digest, record, npi, old_import_id, old_line, old_digest, old_record
			FROM hit WHERE old_line IS NOT NULL OR removes
			RETURNING change)
		SELECT (SELECT count(*) FROM hit WHERE old_line IS NULL AND NOT removes),
			count(*) FILTER (WHERE change = 'removed'), count(*) FILTER (WHERE change = 'replaced'),
			count(*) FILTER (WHERE change = 'unmatched')
		FROM logged`, ident, old, removal, keyD, keyO, id, quoteLiteral(f.Source()))).
		Scan(&ch.Added, &ch.Removed, &ch.Replaced, &ch.Unmatched)
	if err != nil {
		return nil, 0, fmt.Errorf("record the delta's changes: %w", err)
	}
	// One statement: its NOT EXISTS sees the delta rows only, not the rows
	// it is copying in.
	if _, err := tx.Exec(ctx, fmt.Sprintf(`INSERT INTO %[1]s (%[2]s, file_import_id)
		SELECT %[6]s, coalesce(o.file_import_id, o.import_id) FROM %[3]s o
		WHERE NOT EXISTS (SELECT 1 FROM %[1]s d WHERE %[4]s = %[5]s)`,
		ident, strings.Join(quoteIdents(f.Columns()), ", "), old, keyD, keyO, prefixed("o", f.Columns()))); err != nil {
		return nil, 0, fmt.Errorf("carry the active version's rows over: %w", err)
	}
	// Only the delta's own rows: a carried-over row may have a REINDATE too.
	if _, err := tx.Exec(ctx, fmt.Sprintf(`DELETE FROM %s d WHERE d.file_import_id = %d AND %s`, ident, id, removal)); err != nil {
		return nil, 0, fmt.Errorf("drop the removing rows: %w", err)
	}
	var rows int64
	if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+ident).Scan(&rows); err != nil {
		return nil, 0, fmt.Errorf("count the version's rows: %w", err)
	}
	return ch, rows, nil
}

func quoteIdents(cols []string) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = pgx.Identifier{c}.Sanitize()
	}
	return out
}

func prefixed(alias string, cols []string) string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = alias + "." + pgx.Identifier{c}.Sanitize()
	}
	return strings.Join(out, ", ")
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

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
	var se *ShrinkError
	var ke *KindError
	if le == nil && !errors.As(cause, &se) && !errors.As(cause, &ke) && !errors.Is(cause, ErrNoBase) {
		msg = "internal error while loading" // database details stay in the log
	}
	_, err := im.DB.Exec(ctx, `UPDATE source_imports SET status = 'failed', error = $2, error_line = $3,
		row_count = $4, file_rows = $4, bytes = $5, encoding = $6, finished_at = clock_timestamp() WHERE id = $1`,
		id, msg, line, st.rows, st.bytes, st.encoding)
	if err != nil {
		im.Log.Error("record failed import", "import_id", id, "err", err.Error())
	}
}

// Get returns one import record, or a domain.NotFound error.
func (im *Importer) Get(ctx context.Context, id int64) (*Record, error) {
	rec, err := scanRecord(im.DB.QueryRow(ctx, `SELECT `+recordCols+` FROM source_imports WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, domain.NotFound("no such import")
	}
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
	reMonth  = regexp.MustCompile(`(?i)(?:^|[^0-9])([0-9]{2})([0-9]{2})(?:EXCL|REIN)\.csv$`)
)

// FileDateFromName reads the publisher's date from a file name: the last
// YYYYMMDD or YYYY-MM-DD in it (NPPES: npidata_pfile_20050523-20241013.csv →
// 2024-10-13), SAM's _YYDDD (day of year) before the extension
// (SAM_Exclusions_Public_Extract_V2_24100.CSV → 2024-04-09), or the first
// day of the month an LEIE supplement covers (1701REIN.csv → 2017-01-01).
// nil if none.
func FileDateFromName(name string) *time.Time {
	if m := reMonth.FindStringSubmatch(name); m != nil {
		yy, _ := strconv.Atoi(m[1])
		mo, _ := strconv.Atoi(m[2])
		if mo >= 1 && mo <= 12 {
			t := time.Date(2000+yy, time.Month(mo), 1, 0, 0, 0, 0, time.UTC)
			return &t
		}
	}
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
