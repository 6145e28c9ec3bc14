package batch

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/riverqueue/river"

	"github.com/provcred/credential/internal/audit"
	"github.com/provcred/platform/apierr"
	"github.com/provcred/platform/domain"
)

// Submission is a parsed POST /batch-credential.
type Submission struct {
	// IDs are the distinct provider ids, in first-seen order.
	IDs []string
	// Duplicates is how many repeated ids were dropped.
	Duplicates int
	// Source is "ids" (JSON body) or "roster" (CSV body).
	Source string
	// Hash identifies the request content for Idempotency-Key checks.
	Hash           string
	IdempotencyKey string
	Actor          string
	RequestID      string
}

// Submitted says what Submit did.
type Submitted struct {
	BatchID string `json:"batch_id"`
	// Replayed: an earlier submission with the same Idempotency-Key.
	Replayed   bool     `json:"replayed"`
	Total      int      `json:"total"`
	Queued     int      `json:"queued"`
	Duplicates int      `json:"duplicates_removed"`
	UnknownIDs []string `json:"unknown_ids"`
}

// maxUnknownListed bounds unknown_ids in an answer (the count is exact).
const maxUnknownListed = 1000

// insertChunk is how many ids are stored per step (one provider lookup,
// one InsertManyTx, one COPY of items) of the submission transaction.
const insertChunk = 1000

// ErrIdempotencyConflict: the key was used with a different request.
var ErrIdempotencyConflict = domain.Conflict("idempotency_key_reused",
	"this Idempotency-Key was already used with a different request body")

// Submit records the batch, its items and one River job per known provider
// in ONE transaction: either all of it exists or none. Unknown ids become
// items in state unknown_provider with no job.
func (s *Service) Submit(ctx context.Context, sub Submission) (*Submitted, error) {
	if len(sub.IDs) == 0 {
		return nil, apierr.Invalid("provider_ids", "must list at least one provider id")
	}
	if len(sub.IDs) > s.o.MaxProviders {
		return nil, tooLarge(len(sub.IDs), s.o.MaxProviders)
	}
	if sub.IdempotencyKey != "" {
		if out, err := s.replay(ctx, sub); out != nil || err != nil {
			return out, err
		}
	}
	out, err := s.insert(ctx, sub)
	var pgErr *pgconn.PgError
	if sub.IdempotencyKey != "" && errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "batches_idempotency_idx" {
		// A concurrent retry with the same key won the race: answer with its batch.
		if out, err := s.replay(ctx, sub); out != nil || err != nil {
			return out, err
		}
	}
	return out, err
}

func tooLarge(n, limit int) error {
	return apierr.Newf(413, "batch_too_large",
		"a batch holds at most %d providers (BATCH_MAX_PROVIDERS); this one has %d: split it", limit, n)
}

// replay returns the batch an earlier request with the same key made, or
// nil when there is none.
func (s *Service) replay(ctx context.Context, sub Submission) (*Submitted, error) {
	var id, hash string
	var total, dups int
	err := s.pool.QueryRow(ctx, `SELECT id, request_hash, total, duplicates FROM batches
		WHERE actor = $1 AND idempotency_key = $2`, sub.Actor, sub.IdempotencyKey).Scan(&id, &hash, &total, &dups)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up idempotency key: %w", err)
	}
	if hash != sub.Hash {
		return nil, ErrIdempotencyConflict
	}
	out := &Submitted{BatchID: id, Replayed: true, Total: total, Duplicates: dups, UnknownIDs: []string{}}
	rows, err := s.pool.Query(ctx, `SELECT provider_id, state FROM batch_items WHERE batch_id = $1
		AND state = 'unknown_provider' ORDER BY ord LIMIT $2`, id, maxUnknownListed)
	if err != nil {
		return nil, fmt.Errorf("replay batch: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var pid, st string
		if err := rows.Scan(&pid, &st); err != nil {
			return nil, err
		}
		out.UnknownIDs = append(out.UnknownIDs, pid)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM batch_items WHERE batch_id = $1 AND job_id IS NOT NULL`, id).Scan(&out.Queued); err != nil {
		return nil, fmt.Errorf("replay batch: %w", err)
	}
	return out, nil
}

func (s *Service) insert(ctx context.Context, sub Submission) (*Submitted, error) {
	out := &Submitted{BatchID: uuid.NewString(), Total: len(sub.IDs), Duplicates: sub.Duplicates, UnknownIDs: []string{}}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var key any
		if sub.IdempotencyKey != "" {
			key = sub.IdempotencyKey
		}
		if _, err := tx.Exec(ctx, `INSERT INTO batches (id, actor, request_id, idempotency_key, request_hash, source, total, duplicates)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, out.BatchID, sub.Actor, sub.RequestID, key, sub.Hash, sub.Source,
			len(sub.IDs), sub.Duplicates); err != nil {
			return fmt.Errorf("insert batch: %w", err)
		}
		// Chunk by chunk, all inside tx: which ids exist, their jobs, their
		// items. Nothing per batch is held beyond the id list, so a
		// replica's memory does not grow with the batch.
		for start := 0; start < len(sub.IDs); start += insertChunk {
			end := min(start+insertChunk, len(sub.IDs))
			queued, err := s.insertChunk(ctx, tx, out, sub, start, sub.IDs[start:end])
			if err != nil {
				return err
			}
			out.Queued += queued
		}
		if s.testHookAfterJobs != nil {
			if err := s.testHookAfterJobs(ctx, tx); err != nil {
				return err
			}
		}
		if out.Queued == 0 {
			// Nothing to run: the batch is finished at birth.
			if _, err := tx.Exec(ctx, `UPDATE batches SET started_at = now(), finished_at = now() WHERE id = $1`, out.BatchID); err != nil {
				return fmt.Errorf("close empty batch: %w", err)
			}
		}
		return audit.Write(ctx, tx, audit.Entry{Actor: sub.Actor, RequestID: sub.RequestID, Event: "batch.submitted",
			Entity: "batch", EntityID: out.BatchID, After: map[string]any{"source": sub.Source, "total": out.Total,
				"queued": out.Queued, "unknown_providers": out.Total - out.Queued, "duplicates_removed": sub.Duplicates}})
	})
	if err != nil {
		return nil, err
	}
	s.m.items.WithLabelValues(StateUnknownProvider).Add(float64(out.Total - out.Queued))
	s.log.InfoContext(ctx, "batch submitted", "batch_id", out.BatchID, "total", out.Total, "queued", out.Queued,
		"source", sub.Source)
	return out, nil
}

// insertChunk stores ids (positions from ord) of the batch: one River job
// per existing provider (InsertManyTx in tx) and one item per id.
func (s *Service) insertChunk(ctx context.Context, tx pgx.Tx, out *Submitted, sub Submission, ord int, ids []string) (int, error) {
	rows, err := tx.Query(ctx, `SELECT id FROM providers WHERE id = ANY($1::text[])`, ids)
	if err != nil {
		return 0, fmt.Errorf("look up providers: %w", err)
	}
	known, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("look up providers: %w", err)
	}
	exists := make(map[string]int64, len(known))
	for _, id := range known {
		exists[id] = 0
	}
	maxAttempts := s.o.Config.BatchMaxAttempts + 5 // River's own cap; the item's attempts decide first
	params := make([]river.InsertManyParams, 0, len(known))
	order := make([]string, 0, len(known))
	for _, id := range ids {
		if _, ok := exists[id]; ok {
			params = append(params, river.InsertManyParams{Args: JobArgs{BatchID: out.BatchID, ProviderID: id, Actor: sub.Actor},
				InsertOpts: &river.InsertOpts{MaxAttempts: maxAttempts}})
			order = append(order, id)
		} else if len(out.UnknownIDs) < maxUnknownListed {
			out.UnknownIDs = append(out.UnknownIDs, id)
		}
	}
	if len(params) > 0 {
		res, err := s.client.InsertManyTx(ctx, tx, params)
		if err != nil {
			return 0, fmt.Errorf("insert batch jobs: %w", err)
		}
		for i, r := range res {
			exists[order[i]] = r.Job.ID
		}
	}
	_, err = tx.CopyFrom(ctx, pgx.Identifier{"batch_items"}, []string{"batch_id", "ord", "provider_id", "state", "job_id", "last_error", "finished_at"},
		pgx.CopyFromSlice(len(ids), func(i int) ([]any, error) {
			id := ids[i]
			if jid, ok := exists[id]; ok {
				return []any{out.BatchID, ord + i, id, StateQueued, jid, "", nil}, nil
			}
			return []any{out.BatchID, ord + i, id, StateUnknownProvider, nil, "no provider has this id", s.now()}, nil
		}))
	if err != nil {
		return 0, fmt.Errorf("insert batch items: %w", err)
	}
	return len(params), nil
}
