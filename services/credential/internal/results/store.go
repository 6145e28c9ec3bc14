package results

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/provcred/credential/internal/audit"
	"github.com/provcred/credential/internal/events"
	"github.com/provcred/platform/database"
	"github.com/provcred/platform/domain"
)

// ErrBatchResultExists is returned by Save when the batch already holds a
// final (not incomplete) run for the provider: the partial unique index
// credential_runs_batch_final_idx refused the second one.
var ErrBatchResultExists error = &domain.ConflictError{Code: "batch_result_exists",
	Detail: "the batch already has a final result for this provider"}

// Store reads and writes runs.
type Store struct {
	pool  *pgxpool.Pool
	hooks []SaveHook
}

// SaveHook writes what follows from a run (e.g. the review items its
// possible matches open) in the run's own transaction, after the run, when
// the run is the provider's latest. An error rolls the run back.
type SaveHook func(ctx context.Context, tx pgx.Tx, run *Run) error

// OnSave adds a hook to every Save. Call it while wiring, before any Save.
func (s *Store) OnSave(h SaveHook) { s.hooks = append(s.hooks, h) }

// NewStore returns a Store on pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Save stores run and its checks, and in the same transaction sets the
// provider's decision, last_verified_at (not for an incomplete run: nothing
// was verified) and approved_at (when approved), appends the
// credential.completed audit entry, and writes the events: one
// verification.completed, and provider.decision_changed when the run sets
// the provider's decision to a different one. Runs of one provider are serialized by an
// advisory lock so exactly one is marked latest: the one that finished last.
//
// The transaction is two pipelined batches (lock and read; then every
// write), so a run costs four round trips whatever the number of checks.
func (s *Store) Save(ctx context.Context, run *Run) error {
	// Details and evidence quote remote answers (the NPI Registry, state
	// license endpoints): outside input that may hold NUL, which PostgreSQL
	// refuses in text and, as \u0000, in jsonb. The run is stored, and
	// answered, without it; evidence digests keep covering the raw answers.
	for i := range run.Checks {
		run.Checks[i].Detail = strings.ReplaceAll(run.Checks[i].Detail, "\x00", "")
	}
	for i := range run.Reasons {
		run.Reasons[i].Detail = strings.ReplaceAll(run.Reasons[i].Detail, "\x00", "")
	}
	reasons, err := json.Marshal(run.Reasons)
	if err != nil {
		return fmt.Errorf("encode reasons: %w", err)
	}
	evidence := make([][]byte, len(run.Checks))
	for i, c := range run.Checks {
		if evidence[i], err = json.Marshal(c.Evidence); err != nil {
			return fmt.Errorf("encode evidence of %s: %w", c.Check, err)
		}
		evidence[i] = bytes.ReplaceAll(evidence[i], []byte(`\u0000`), []byte(`\ufffd`))
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var newest *time.Time
		var before *domain.Decision
		var exists bool
		read := &pgx.Batch{}
		read.Queue(`SELECT pg_advisory_xact_lock(hashtextextended('credential_runs:' || $1, 0))`, run.ProviderID)
		read.Queue(`SELECT (SELECT finished_at FROM credential_runs WHERE provider_id = $1 AND latest),
			(SELECT decision FROM providers WHERE id = $1), EXISTS (SELECT 1 FROM providers WHERE id = $1)`,
			run.ProviderID).QueryRow(func(row pgx.Row) error {
			return row.Scan(&newest, &before, &exists)
		})
		if err := tx.SendBatch(ctx, read).Close(); err != nil {
			return fmt.Errorf("lock provider runs: %w", err)
		}
		latest := newest == nil || !newest.After(run.FinishedAt)

		w := &pgx.Batch{}
		if latest && newest != nil {
			w.Queue(`UPDATE credential_runs SET latest = false WHERE provider_id = $1 AND latest`, run.ProviderID)
		}
		var batch any
		if run.BatchID != nil {
			batch = *run.BatchID
		}
		w.Queue(`INSERT INTO credential_runs (id, provider_id, npi, batch_id, decision, reasons, actor,
			request_id, latest, started_at, finished_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			run.ID, run.ProviderID, run.NPI, batch, run.Decision, reasons, run.Actor, run.RequestID, latest,
			run.StartedAt, run.FinishedAt)
		if len(run.Checks) > 0 {
			var sb strings.Builder
			sb.WriteString(`INSERT INTO credential_checks (run_id, "check", outcome, detail, evidence, duration_ms) VALUES `)
			args := []any{run.ID}
			for i, c := range run.Checks {
				if i > 0 {
					sb.WriteString(", ")
				}
				n := len(args)
				fmt.Fprintf(&sb, "($1, $%d, $%d, $%d, $%d, $%d)", n+1, n+2, n+3, n+4, n+5)
				args = append(args, c.Check, c.Outcome, c.Detail, evidence[i], c.DurationMS)
			}
			w.Queue(sb.String(), args...)
		}
		if latest {
			w.Queue(`UPDATE providers p SET decision = $2,
					last_verified_at = CASE WHEN $2 = 'incomplete' THEN p.last_verified_at ELSE $3 END,
					approved_at = CASE WHEN $2 = 'approved' THEN $3 ELSE p.approved_at END
				WHERE p.id = $1`, run.ProviderID, run.Decision, run.FinishedAt) // no row: the provider was deleted meanwhile
		}
		if err := audit.Write(ctx, queued{w}, audit.Entry{
			Actor: run.Actor, RequestID: run.RequestID, Event: "credential.completed", ProviderID: run.ProviderID,
			Entity: "credential_run", EntityID: run.ID,
			Before: map[string]any{"decision": before},
			After:  map[string]any{"decision": run.Decision, "run_id": run.ID, "batch_id": run.BatchID, "reasons": run.Reasons, "latest": latest},
		}); err != nil {
			return err
		}
		if err := writeEvents(ctx, queued{w}, run, before, latest && exists); err != nil {
			return err
		}
		if err := tx.SendBatch(ctx, w).Close(); err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) && pe.Code == "23505" && pe.ConstraintName == "credential_runs_batch_final_idx" {
				return ErrBatchResultExists
			}
			return fmt.Errorf("store run: %w", err)
		}
		if latest {
			for _, h := range s.hooks {
				if err := h(ctx, tx, run); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// writeEvents queues the run's events (docs/api.md, "Event types"):
// verification.completed always, provider.decision_changed when the run
// sets the provider's decision (sets: it is the latest run of a provider
// that still exists) to another one.
func writeEvents(ctx context.Context, db database.Execer, run *Run, before *domain.Decision, sets bool) error {
	checks := make(map[string]domain.Outcome, len(run.Checks))
	for _, c := range run.Checks {
		checks[c.Check] = c.Outcome
	}
	if err := events.Write(ctx, db, events.Event{Type: events.VerificationCompleted, ProviderID: run.ProviderID,
		Link: "/results/run/" + run.ID, Data: map[string]any{"run_id": run.ID, "decision": run.Decision,
			"previous_decision": before, "batch_id": run.BatchID, "checks": checks}}); err != nil {
		return err
	}
	if !sets || (before != nil && *before == run.Decision) {
		return nil
	}
	return events.Write(ctx, db, events.Event{Type: events.ProviderDecisionChanged, ProviderID: run.ProviderID,
		Link: "/results/" + run.ProviderID, Data: map[string]any{"run_id": run.ID, "previous_decision": before,
			"decision": run.Decision}})
}

// queued is a database.Execer that queues the statement into a batch, so the
// audit entry travels with the change it describes (same transaction, same
// round trip); its errors surface when the batch is closed.
type queued struct{ b *pgx.Batch }

func (q queued) Exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	q.b.Queue(sql, args...)
	return pgconn.CommandTag{}, nil
}

const selectRun = `SELECT r.id::text, r.provider_id, r.npi, r.batch_id::text, r.decision, r.reasons, r.actor,
	r.request_id, r.started_at, r.finished_at,
	COALESCE((SELECT json_agg(json_build_object('check', c."check", 'outcome', c.outcome, 'detail', c.detail,
		'evidence', c.evidence, 'duration_ms', c.duration_ms)
		ORDER BY array_position(ARRAY['npi_format','nppes','leie','sam','license'], c."check"))
		FROM credential_checks c WHERE c.run_id = r.id), '[]')
	FROM credential_runs r`

func scanRun(row pgx.Row) (*Run, error) {
	var r Run
	var reasons, checks []byte
	if err := row.Scan(&r.ID, &r.ProviderID, &r.NPI, &r.BatchID, &r.Decision, &reasons, &r.Actor, &r.RequestID,
		&r.StartedAt, &r.FinishedAt, &checks); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(reasons, &r.Reasons); err != nil {
		return nil, fmt.Errorf("decode reasons of run %s: %w", r.ID, err)
	}
	if err := json.Unmarshal(checks, &r.Checks); err != nil {
		return nil, fmt.Errorf("decode checks of run %s: %w", r.ID, err)
	}
	return &r, nil
}

func (s *Store) queryRuns(ctx context.Context, sql string, args ...any) ([]*Run, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("query runs: %w", err)
	}
	defer rows.Close()
	var out []*Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query runs: %w", err)
	}
	return out, nil
}

func (s *Store) one(ctx context.Context, sql string, args ...any) (*Run, error) {
	r, err := scanRun(s.pool.QueryRow(ctx, sql, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get run: %w", err)
	}
	return r, nil
}

// Get returns the run, or a domain.NotFound error.
func (s *Store) Get(ctx context.Context, runID string) (*Run, error) {
	r, err := s.one(ctx, selectRun+` WHERE r.id = $1::uuid`, runID)
	if err == nil && r == nil {
		return nil, domain.NotFound("run " + runID + " does not exist")
	}
	return r, err
}

// Latest returns the provider's latest run, or nil.
func (s *Store) Latest(ctx context.Context, providerID string) (*Run, error) {
	return s.one(ctx, selectRun+` WHERE r.provider_id = $1 AND r.latest`, providerID)
}

// BatchFinal returns the batch's final (not incomplete) run for the provider, or nil.
func (s *Store) BatchFinal(ctx context.Context, batchID, providerID string) (*Run, error) {
	return s.one(ctx, selectRun+` WHERE r.batch_id = $1::uuid AND r.provider_id = $2 AND r.decision <> 'incomplete'`,
		batchID, providerID)
}

// Cursor is the keyset position in a newest-first list of runs.
type Cursor struct {
	FinishedAt time.Time `json:"f"`
	ID         string    `json:"i"`
}

// History returns up to limit+1 runs of the provider, newest first, after the cursor.
func (s *Store) History(ctx context.Context, providerID string, after *Cursor, limit int) ([]*Run, error) {
	if after == nil {
		return s.queryRuns(ctx, selectRun+` WHERE r.provider_id = $1 ORDER BY r.finished_at DESC, r.id DESC LIMIT $2`,
			providerID, limit+1)
	}
	return s.queryRuns(ctx, selectRun+` WHERE r.provider_id = $1 AND (r.finished_at, r.id) < ($2, $3::uuid)
		ORDER BY r.finished_at DESC, r.id DESC LIMIT $4`, providerID, after.FinishedAt, after.ID, limit+1)
}

// Filter narrows List.
type Filter struct {
	Decision   domain.Decision
	ProviderID string
	// Since keeps runs finished at or after it.
	Since *time.Time
}

// List returns up to limit+1 latest runs (one per provider), newest first.
func (s *Store) List(ctx context.Context, f Filter, after *Cursor, limit int) ([]*Run, error) {
	var args []any
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	where := []string{"r.latest"}
	if f.Decision != "" {
		where = append(where, "r.decision = "+arg(f.Decision))
	}
	if f.ProviderID != "" {
		where = append(where, "r.provider_id = "+arg(f.ProviderID))
	}
	if f.Since != nil {
		where = append(where, "r.finished_at >= "+arg(*f.Since))
	}
	if after != nil {
		where = append(where, "(r.finished_at, r.id) < ("+arg(after.FinishedAt)+", "+arg(after.ID)+"::uuid)")
	}
	sql := selectRun + " WHERE " + strings.Join(where, " AND ") + " ORDER BY r.finished_at DESC, r.id DESC LIMIT " + arg(limit+1)
	return s.queryRuns(ctx, sql, args...)
}

// ProviderExists reports whether the provider record exists.
func (s *Store) ProviderExists(ctx context.Context, providerID string) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM providers WHERE id = $1)`, providerID).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("provider exists: %w", err)
	}
	return ok, nil
}
