package monitor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/provcred/credential/internal/names"
	"github.com/provcred/credential/internal/results"
	"github.com/provcred/credential/internal/reviews"
	"github.com/provcred/credential/internal/sources"
	"github.com/provcred/credential/internal/sources/exclusions"
	"github.com/provcred/platform/domain"
)

// QueueName is the River queue of re-screens (one at a time per replica).
const QueueName = "monitor"

// PageSize is how many providers one step of the name re-screen reads (one
// transaction each: its review items and the progress on the import record).
const PageSize = 2000

// RescreenArgs is the re-screen job of one activated LEIE or SAM version.
type RescreenArgs struct {
	Source   string `json:"source"`
	ImportID int64  `json:"import_id"`
}

// Kind implements river.JobArgs.
func (RescreenArgs) Kind() string { return "exclusion_rescreen" }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (RescreenArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueName, MaxAttempts: 10}
}

type rescreenWorker struct {
	river.WorkerDefaults[RescreenArgs]
	m *Monitor
}

// Timeout: a re-screen reads every provider; it is not a batch item. River
// rescues an attempt whose process died only after this has passed.
func (w *rescreenWorker) Timeout(*river.Job[RescreenArgs]) time.Duration {
	return w.m.JobTimeout
}

func (w *rescreenWorker) Work(ctx context.Context, job *river.Job[RescreenArgs]) error {
	err := w.m.Run(ctx, job.Args.Source, job.Args.ImportID, job.Attempt)
	if err != nil && job.Attempt >= job.MaxAttempts {
		w.m.finish(context.WithoutCancel(ctx), job.Args.ImportID, "failed", err)
	}
	return err
}

// Register adds the re-screen worker (before the River client is built).
func (m *Monitor) Register(workers *river.Workers) { river.AddWorker(workers, &rescreenWorker{m: m}) }

// Queues is the monitor queue: one re-screen at a time per replica.
func (m *Monitor) Queues() map[string]river.QueueConfig {
	return map[string]river.QueueConfig{QueueName: {MaxWorkers: 1}}
}

// Attach gives the monitor the River client it inserts jobs with.
func (m *Monitor) Attach(c *river.Client[pgx.Tx]) { m.client = c }

// Enqueue inserts the re-screen of importID in tx, the transaction that
// activates it (the importer's OnActivate): the job exists exactly when the
// version does, survives the request and the process, and is retried.
func (m *Monitor) Enqueue(ctx context.Context, tx pgx.Tx, source string, importID int64) error {
	if m.client == nil {
		return errors.New("monitor: Attach a River client before imports")
	}
	res, err := m.client.InsertTx(ctx, tx, RescreenArgs{Source: source, ImportID: importID}, nil)
	if err != nil {
		return fmt.Errorf("queue the re-screen: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE source_imports SET rescreen_status = 'queued', rescreen_job_id = $2 WHERE id = $1`,
		importID, res.Job.ID); err != nil {
		return fmt.Errorf("record the re-screen job: %w", err)
	}
	return nil
}

// Run re-screens every provider against version importID of source: by NPI
// (Rescreen: flags), by name and date of birth (possible matches: review
// items, Raise), and for reinstatements (an excluded provider whose row left
// the list: noted in the audit log). Every step is idempotent, so a retried
// or rescued job redoes what a killed one did without doubling anything;
// progress and counts are on the import record. A superseded version is
// skipped: the newer one's job covers it.
func (m *Monitor) Run(ctx context.Context, source string, importID int64, attempt int) error {
	if !sources.IsExclusion(source) {
		return fmt.Errorf("rescreen: %q is not an exclusion list", source)
	}
	var status string
	err := m.db.QueryRow(ctx, `UPDATE source_imports SET rescreen_status = 'running', rescreen_attempts = $2,
			rescreen_screened = 0, rescreen_error = NULL
		WHERE id = $1 RETURNING status`, importID, attempt).Scan(&status)
	if err != nil {
		return fmt.Errorf("start the re-screen of %d: %w", importID, err)
	}
	if status != "active" {
		m.finish(ctx, importID, "done", nil)
		return nil
	}
	// Re-screens of one list never interleave (a retried job and a newer
	// version's, on two replicas): the session lock dies with its process.
	conn, err := m.db.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("rescreen connection: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(hashtext('exclusion_rescreen'), hashtext($1))`, source); err != nil {
		return fmt.Errorf("rescreen lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(hashtext('exclusion_rescreen'), hashtext($1))`, source) //nolint:errcheck // dies with the session anyway

	flagged, err := m.Rescreen(ctx, source, importID)
	if err != nil {
		return err
	}
	if _, err := m.db.Exec(ctx, `UPDATE source_imports SET rescreen_flagged = coalesce(rescreen_flagged, 0) + $2 WHERE id = $1`,
		importID, flagged); err != nil {
		return fmt.Errorf("record the flags: %w", err)
	}
	opened, err := m.possibleMatches(ctx, source, importID)
	if err != nil {
		return err
	}
	reinstated, err := m.reinstated(ctx, source, importID)
	if err != nil {
		return err
	}
	m.finish(ctx, importID, "done", nil)
	m.log.InfoContext(ctx, "exclusion re-screen job done", "source", source, "import_id", importID,
		"newly_flagged", flagged, "reviews_opened", opened, "reinstated", reinstated, "attempt", attempt)
	return nil
}

func (m *Monitor) finish(ctx context.Context, importID int64, status string, cause error) {
	var msg any
	if cause != nil {
		msg = cause.Error()
	}
	if _, err := m.db.Exec(ctx, `UPDATE source_imports SET rescreen_status = $2, rescreen_error = $3,
			rescreen_finished_at = clock_timestamp() WHERE id = $1`, importID, status, msg); err != nil {
		m.log.ErrorContext(ctx, "record the re-screen's end", "import_id", importID, "err", err.Error())
	}
}

// matchSQL finds, for a page of providers (arrays of id, npi, last and first
// names as names.Part forms, date of birth), the version's rows in force that
// are possible matches by the checks' rule (checks/exclusion.go): same
// normalized last and first name, not the provider's NPI, and dates of birth
// not both known and different; minus the records a reviewer resolved for
// the provider.
var matchSQL = `SELECT p.id, p.npi, e.line, e.dob IS NOT NULL AND p.dob IS NOT NULL, e.npi IS NOT NULL, e.record, e.digest,
	e.file_import_id
FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::date[]) AS p (id, npi, last_norm, first_norm, dob)
JOIN active_exclusions e ON e.source = $1 AND e.import_id = $2 AND e.last_norm = p.last_norm AND e.first_norm = p.first_norm
WHERE p.last_norm <> '' AND p.first_norm <> '' AND e.npi IS DISTINCT FROM p.npi
  AND (e.dob IS NULL OR p.dob IS NULL OR e.dob = p.dob)
  AND ` + exclusions.InForce("e", "(now() AT TIME ZONE 'UTC')::date") + `
  AND NOT EXISTS (SELECT 1 FROM review_items r WHERE r.provider_id = p.id AND r."check" = $1 AND r.digest = e.digest
                  AND r.status IN ('cleared', 'confirmed'))
ORDER BY p.id, e.line`

// possibleMatches pages through the providers and opens a review item for
// every possible match by name (and date of birth) the version holds.
func (m *Monitor) possibleMatches(ctx context.Context, source string, importID int64) (opened int, err error) {
	var total int64
	if err := m.db.QueryRow(ctx, `SELECT count(*) FROM providers`).Scan(&total); err != nil {
		return 0, fmt.Errorf("count providers: %w", err)
	}
	if _, err := m.db.Exec(ctx, `UPDATE source_imports SET rescreen_total = $2 WHERE id = $1`, importID, total); err != nil {
		return 0, fmt.Errorf("record the re-screen's size: %w", err)
	}
	after, screened := "", int64(0)
	for {
		rows, err := m.db.Query(ctx, `SELECT id, npi, last_name, first_name, date_of_birth FROM providers WHERE id > $1 ORDER BY id LIMIT $2`,
			after, PageSize)
		if err != nil {
			return opened, fmt.Errorf("read providers: %w", err)
		}
		var ids, npis, lasts, firsts []string
		var dobs []*time.Time
		for rows.Next() {
			var id, npi, last, first string
			var dob *time.Time
			if err := rows.Scan(&id, &npi, &last, &first, &dob); err != nil {
				rows.Close()
				return opened, fmt.Errorf("scan provider: %w", err)
			}
			ids, npis, lasts, firsts, dobs = append(ids, id), append(npis, npi), append(lasts, names.Part(last)),
				append(firsts, names.Part(first)), append(dobs, dob)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return opened, fmt.Errorf("read providers: %w", err)
		}
		if len(ids) == 0 {
			return opened, nil
		}
		screened += int64(len(ids))
		n, err := m.raisePage(ctx, source, importID, ids, npis, lasts, firsts, dobs, screened)
		opened += n
		if err != nil {
			return opened, err
		}
		after = ids[len(ids)-1]
	}
}

// raisePage opens the page's items and records the progress in one
// transaction, so a count is never lost nor doubled by a retry.
func (m *Monitor) raisePage(ctx context.Context, source string, importID int64, ids, npis, lasts, firsts []string,
	dobs []*time.Time, screened int64) (int, error) {
	opened := 0
	err := pgx.BeginFunc(ctx, m.db, func(tx pgx.Tx) error {
		opened = 0
		type hit struct {
			id, npi, digest  string
			line, fileImport int64
			withDOB, other   bool
			record           []byte
		}
		rows, err := tx.Query(ctx, matchSQL, source, importID, ids, npis, lasts, firsts, dobs)
		if err != nil {
			return fmt.Errorf("match names: %w", err)
		}
		hits, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (hit, error) {
			var h hit
			err := r.Scan(&h.id, &h.npi, &h.line, &h.withDOB, &h.other, &h.record, &h.digest, &h.fileImport)
			return h, err
		})
		if err != nil {
			return fmt.Errorf("match names: %w", err)
		}
		for _, h := range hits {
			match, reason := "name", fmt.Sprintf("line %d matches last name and first name but not the NPI%s, with no date of birth to compare: possible match, review", h.line, otherNPI(h.other))
			if h.withDOB {
				match, reason = "name+dob", fmt.Sprintf("line %d matches last name, first name and date of birth but not the NPI%s: possible match, review", h.line, otherNPI(h.other))
			}
			_, ok, err := reviews.Raise(ctx, tx, reviews.Raised{ProviderID: h.id, NPI: h.npi, Check: source, Match: match,
				Reason: label(source) + ": " + reason, RaisedBy: fmt.Sprintf("rescreen:%d", importID),
				Candidate: reviews.Candidate{Source: source, ImportID: h.fileImport, Line: h.line, Digest: h.digest, Record: h.record},
				Evidence: results.Item{Key: match, Outcome: domain.Review, Detail: reason, Line: h.line,
					MatchedRecord: h.record, Digest: h.digest, SourceVersion: &results.SourceVersion{ImportID: h.fileImport}}})
			if err != nil {
				return err
			}
			if ok {
				opened++
			}
		}
		_, err = tx.Exec(ctx, `UPDATE source_imports SET rescreen_screened = $2,
			rescreen_reviews_opened = coalesce(rescreen_reviews_opened, 0) + $3 WHERE id = $1`, importID, screened, opened)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("rescreen page: %w", err)
	}
	return opened, nil
}

func otherNPI(other bool) string {
	if other {
		return " (the row lists a different NPI)"
	}
	return ""
}

func label(source string) string {
	if source == sources.SAM {
		return "SAM.gov exclusions"
	}
	return "OIG LEIE"
}

// reinstatedSQL notes the providers an earlier version excluded (flagged by
// a re-screen from this list, or whose latest run failed this list's check)
// when this version no longer holds an excluding row for them (none in force
// with their NPI, nor the very row that excluded them): the row left the
// list, a reinstatement. Each exclusion (a flag's audit entry, a run) is
// noted once: audited as provider.exclusion_reinstated with the version,
// and a flag from this list is lowered so a later listing flags anew.
var reinstatedSQL = `WITH cand AS (
	SELECT p.id, p.npi, p.decision, p.exclusion_flagged_at, 'flag:' || a.id AS ref, a.after->>'digest' AS digest
	FROM providers p
	JOIN LATERAL (SELECT x.id, x.after FROM audit_log x WHERE x.provider_id = p.id AND x.event = 'provider.exclusion_flagged'
	              ORDER BY x.id DESC LIMIT 1) a ON true
	WHERE p.exclusion_flagged_at IS NOT NULL AND a.after->>'source' = $1
	UNION ALL
	SELECT p.id, p.npi, p.decision, p.exclusion_flagged_at, 'run:' || r.id, c.evidence->>'digest'
	FROM credential_runs r
	JOIN credential_checks c ON c.run_id = r.id AND c."check" = $1 AND c.outcome = 'fail'
	JOIN providers p ON p.id = r.provider_id
	WHERE r.latest
), gone AS (
	SELECT c.id, min(c.decision) AS decision, min(c.exclusion_flagged_at) AS flagged_at,
		array_agg(c.ref ORDER BY c.ref) AS refs, array_agg(c.digest ORDER BY c.ref) AS digests,
		bool_or(c.ref LIKE 'flag:%') AS by_flag
	FROM cand c
	WHERE NOT EXISTS (SELECT 1 FROM active_exclusions e WHERE e.source = $1 AND e.import_id = $2
	                  AND (e.npi = c.npi OR e.digest = c.digest) AND ` + exclusions.InForce("e", "(now() AT TIME ZONE 'UTC')::date") + `)
	  AND NOT EXISTS (SELECT 1 FROM audit_log x WHERE x.provider_id = c.id AND x.event = 'provider.exclusion_reinstated'
	                  AND x.after->'refs' ? c.ref)
	GROUP BY c.id
), lowered AS (
	UPDATE providers p SET exclusion_flagged_at = NULL FROM gone g WHERE p.id = g.id AND g.by_flag RETURNING p.id
), audited AS (
	INSERT INTO audit_log (actor, event, provider_id, entity, entity_id, before, after, request_id)
	SELECT 'system', 'provider.exclusion_reinstated', g.id, 'provider', g.id,
		jsonb_build_object('exclusion_flagged_at', g.flagged_at, 'decision', g.decision, 'digests', to_jsonb(g.digests)),
		jsonb_build_object('source', $1::text, 'import_id', $2::bigint, 'refs', to_jsonb(g.refs),
			'exclusion_flagged_at', CASE WHEN g.by_flag THEN NULL ELSE g.flagged_at END),
		''
	FROM gone g
	RETURNING 1
)
SELECT count(*) FROM audited`

// reinstated notes the reinstatements of version importID (reinstatedSQL).
func (m *Monitor) reinstated(ctx context.Context, source string, importID int64) (int64, error) {
	var n int64
	err := pgx.BeginFunc(ctx, m.db, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, reinstatedSQL, source, importID).Scan(&n); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE source_imports SET rescreen_reinstated = coalesce(rescreen_reinstated, 0) + $2 WHERE id = $1`,
			importID, n)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("note reinstatements: %w", err)
	}
	return n, nil
}
