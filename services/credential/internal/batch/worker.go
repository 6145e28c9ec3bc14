package batch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/provcred/platform/domain"
)

// JobArgs is one provider of one batch. Only batch_id and provider_id make
// a job unique (UniqueOpts.ByArgs with `river:"unique"` tags), so the same
// provider is never queued twice in a batch whoever submits it.
type JobArgs struct {
	BatchID    string `json:"batch_id" river:"unique"`
	ProviderID string `json:"provider_id" river:"unique"`
	Actor      string `json:"actor"`
}

// Kind is River's job kind.
func (JobArgs) Kind() string { return "credential_batch_item" }

// InsertOpts puts every batch job on the batch queue, unique per (batch, provider).
func (JobArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueName, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// Item states.
const (
	StateQueued          = "queued"
	StateRunning         = "running"
	StateApproved        = string(domain.Approved)
	StateDenied          = string(domain.Denied)
	StateNeedsReview     = string(domain.NeedsReview)
	StateIncomplete      = string(domain.Incomplete)
	StateUnknownProvider = "unknown_provider"
	StateCanceled        = "canceled"
	StateFailed          = "failed"
)

// States lists every item state, in report order.
var States = []string{StateQueued, StateRunning, StateApproved, StateDenied, StateNeedsReview, StateIncomplete,
	StateUnknownProvider, StateCanceled, StateFailed}

// finalState reports whether an item in state st is done.
func finalState(st string) bool { return st != StateQueued && st != StateRunning }

type worker struct {
	river.WorkerDefaults[JobArgs]
	s *Service
}

// Timeout bounds one provider's verification (BATCH_JOB_TIMEOUT).
func (w *worker) Timeout(*river.Job[JobArgs]) time.Duration { return w.s.o.Config.BatchJobTimeout }

// Work verifies one provider. The item row decides whether there is work:
// an item already final (a rescued job whose result was written) or
// canceled is skipped, which with the engine's idempotency gives each
// provider exactly one final result.
func (w *worker) Work(ctx context.Context, job *river.Job[JobArgs]) error {
	s := w.s
	// The `batch` semaphore mirrors River's MaxWorkers, so its in_use in
	// /health/concurrency is the number of providers being verified.
	if err := s.o.Semaphore.Acquire(ctx); err != nil {
		return river.JobSnooze(time.Second)
	}
	defer s.o.Semaphore.Release()
	s.running.Add(1)
	s.m.running.Inc()
	defer func() { s.running.Add(-1); s.m.running.Dec() }()

	start := time.Now()
	a := job.Args
	attempts, ok, err := s.beginItem(ctx, a.BatchID, a.ProviderID, job.ID)
	if err != nil {
		return err
	}
	if !ok {
		return nil
	}
	log := s.log.With("batch_id", a.BatchID, "provider_id", a.ProviderID, "job_id", job.ID, "attempt", attempts)

	runID, decision, err := s.o.Credentialer.CredentialForBatch(ctx, a.ProviderID, a.BatchID, a.Actor)
	// Writes below must happen even when the job's context has ended.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	observe := func(result string) { s.m.duration.WithLabelValues(result).Observe(time.Since(start).Seconds()) }

	switch {
	case err == nil && decision != domain.Incomplete:
		if !decision.Valid() {
			return w.fail(wctx, job, attempts, fmt.Errorf("engine returned unknown decision %q", decision), observe)
		}
		observe(string(decision))
		return s.finishItem(wctx, a.BatchID, a.ProviderID, string(decision), runID, "")

	case err == nil: // incomplete: a source was down; try again later
		if attempts >= s.o.Config.BatchMaxAttempts {
			observe(string(decision))
			log.Info("batch item incomplete after max attempts")
			return s.finishItem(wctx, a.BatchID, a.ProviderID, StateIncomplete, runID,
				fmt.Sprintf("a source was unavailable on all %d attempts", attempts))
		}
		wait := s.snoozeFor(attempts)
		if err := s.requeueItem(wctx, a.BatchID, a.ProviderID, runID,
			fmt.Sprintf("a source was unavailable (attempt %d of %d); retrying in %s", attempts, s.o.Config.BatchMaxAttempts, wait), false); err != nil {
			return err
		}
		observe("snoozed")
		s.m.snoozes.Inc()
		return river.JobSnooze(wait)

	case isNotFound(err):
		observe(StateUnknownProvider)
		return s.finishItem(wctx, a.BatchID, a.ProviderID, StateUnknownProvider, "", "the provider does not exist")

	case errors.Is(context.Cause(ctx), river.ErrJobCancelledRemotely):
		observe(StateCanceled)
		return s.finishItem(wctx, a.BatchID, a.ProviderID, StateCanceled, "", "canceled")

	case ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded):
		// The replica is stopping: give the attempt back; River makes the
		// job available again without counting it.
		observe("stopped")
		if rerr := s.requeueItem(wctx, a.BatchID, a.ProviderID, "", "interrupted by a replica shutdown", true); rerr != nil {
			return errors.Join(err, rerr)
		}
		return err

	default:
		return w.fail(wctx, job, attempts, err, observe)
	}
}

// fail records an engine error: retried by River with its backoff until the
// item's attempts run out, then the item ends `failed`.
func (w *worker) fail(ctx context.Context, job *river.Job[JobArgs], attempts int, err error, observe func(string)) error {
	s := w.s
	a := job.Args
	msg := err.Error()
	if errors.Is(err, context.DeadlineExceeded) {
		msg = "timed out after " + s.o.Config.BatchJobTimeout.String()
	}
	if len(msg) > 300 {
		msg = msg[:300]
	}
	s.log.Warn("batch item attempt failed", "batch_id", a.BatchID, "provider_id", a.ProviderID, "job_id", job.ID,
		"attempt", attempts, "err", msg)
	if attempts >= s.o.Config.BatchMaxAttempts || job.Attempt >= job.MaxAttempts {
		observe(StateFailed)
		return s.finishItem(ctx, a.BatchID, a.ProviderID, StateFailed, "", msg)
	}
	observe("error")
	if rerr := s.requeueItem(ctx, a.BatchID, a.ProviderID, "", msg, false); rerr != nil {
		return errors.Join(err, rerr)
	}
	return err
}

// snoozeFor is BATCH_SNOOZE_BASE doubled per attempt, capped at
// BATCH_SNOOZE_MAX (New checked that the base is positive and the cap at
// least the base).
func (s *Service) snoozeFor(attempt int) time.Duration {
	d, limit := s.o.Config.BatchSnoozeBase, s.o.Config.BatchSnoozeMax
	for i := 1; i < attempt && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// beginItem marks the item running and counts the attempt. ok is false
// when there is nothing to do (the item is final or canceled).
func (s *Service) beginItem(ctx context.Context, batchID, providerID string, jobID int64) (attempts int, ok bool, err error) {
	err = s.queuePool.QueryRow(ctx, `WITH item AS (
			UPDATE batch_items SET state = 'running', attempts = attempts + 1, job_id = $3,
				started_at = COALESCE(started_at, now()), updated_at = now()
			WHERE batch_id = $1 AND provider_id = $2 AND state IN ('queued', 'running')
			RETURNING attempts),
		b AS (UPDATE batches SET started_at = now()
			WHERE id = $1 AND started_at IS NULL AND EXISTS (SELECT 1 FROM item))
		SELECT attempts FROM item`, batchID, providerID, jobID).Scan(&attempts)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("begin batch item: %w", err)
	}
	return attempts, true, nil
}

// finishItem writes the item's final state (on the queue pool: the run it
// points at was committed durably by the engine first, and WAL order means
// a PostgreSQL crash that loses this write also loses River's later
// completion of the job, which then runs again and gets the same run back)
// and, in the same statement,
// closes the batch when no other item is open. Two items finishing at once
// may each still see the other open (neither commit is visible to the
// other), leaving the batch unclosed: Progress and ?wait close it lazily
// from the items, so finished_at is exact either way, and the common case
// costs one round trip.
func (s *Service) finishItem(ctx context.Context, batchID, providerID, state, runID, msg string) error {
	var n int
	err := s.queuePool.QueryRow(ctx, `WITH item AS (
			UPDATE batch_items SET state = $3, run_id = NULLIF($4, ''), last_error = $5,
				finished_at = now(), updated_at = now()
			WHERE batch_id = $1 AND provider_id = $2 AND state IN ('queued', 'running')
			RETURNING 1),
		b AS (UPDATE batches SET finished_at = now()
			WHERE id = $1 AND finished_at IS NULL AND EXISTS (SELECT 1 FROM item)
			AND NOT EXISTS (SELECT 1 FROM batch_items WHERE batch_id = $1 AND provider_id <> $2
				AND state IN ('queued', 'running')))
		SELECT count(*) FROM item`, batchID, providerID, state, runID, msg).Scan(&n)
	if err != nil {
		return fmt.Errorf("finish batch item: %w", err)
	}
	if n == 1 {
		s.m.items.WithLabelValues(state).Inc()
	}
	return nil
}

// closeIfDone sets finished_at once no item is queued or running.
func (s *Service) closeIfDone(ctx context.Context, batchID string) error {
	_, err := s.pool.Exec(ctx, `UPDATE batches b SET finished_at = COALESCE(
			(SELECT max(finished_at) FROM batch_items WHERE batch_id = b.id), now())
		WHERE b.id = $1 AND b.finished_at IS NULL
		AND NOT EXISTS (SELECT 1 FROM batch_items WHERE batch_id = $1 AND state IN ('queued', 'running'))`, batchID)
	if err != nil {
		return fmt.Errorf("close batch: %w", err)
	}
	return nil
}

// requeueItem puts a running item back to queued (snoozed or retrying);
// giveBack undoes the attempt count (shutdown).
func (s *Service) requeueItem(ctx context.Context, batchID, providerID, runID, msg string, giveBack bool) error {
	dec := 0
	if giveBack {
		dec = 1
	}
	_, err := s.queuePool.Exec(ctx, `UPDATE batch_items SET state = 'queued', last_error = $3,
			run_id = COALESCE(NULLIF($4, ''), run_id), attempts = greatest(attempts - $5, 0), updated_at = now()
		WHERE batch_id = $1 AND provider_id = $2 AND state = 'running'`, batchID, providerID, msg, runID, dec)
	if err != nil {
		return fmt.Errorf("requeue batch item: %w", err)
	}
	return nil
}
