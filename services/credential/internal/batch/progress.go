package batch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/provcred/credential/internal/audit"
	"github.com/provcred/platform/domain"
)

// Batch statuses.
const (
	StatusQueued   = "queued"   // no item picked up yet
	StatusRunning  = "running"  // items in progress
	StatusFinished = "finished" // every item final
	StatusCanceled = "canceled" // canceled; nothing left running
)

// Item is one provider of a batch.
type Item struct {
	Ord        int        `json:"-"`
	ProviderID string     `json:"provider_id"`
	State      string     `json:"state"`
	RunID      *string    `json:"run_id"`
	Attempts   int        `json:"attempts"`
	LastError  string     `json:"last_error,omitempty"`
	StartedAt  *time.Time `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
}

// Progress is GET /results/batch/{id}.
type Progress struct {
	BatchID    string         `json:"batch_id"`
	Status     string         `json:"status"`
	StatusURL  string         `json:"status_url"`
	Source     string         `json:"source"`
	Actor      string         `json:"actor"`
	Total      int            `json:"total"`
	Duplicates int            `json:"duplicates_removed"`
	Counts     map[string]int `json:"counts"`
	// Done counts final items (every state but queued and running).
	Done       int        `json:"done"`
	CreatedAt  time.Time  `json:"created_at"`
	StartedAt  *time.Time `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
	CanceledAt *time.Time `json:"canceled_at,omitempty"`
	// ElapsedSeconds runs from the first item started to the end (or now).
	ElapsedSeconds float64 `json:"elapsed_seconds"`
	// ThroughputPerSecond: providers verified per second since the start.
	ThroughputPerSecond float64 `json:"throughput_per_second"`
	// EstimatedSecondsLeft: open items / throughput; null before any rate.
	EstimatedSecondsLeft *float64 `json:"estimated_seconds_left"`
	Items                []Item   `json:"items,omitempty"`
	NextCursor           string   `json:"next_cursor,omitempty"`
	// Set by POST /batch-credential only.
	UnknownIDs []string `json:"unknown_ids,omitempty"`
	Replayed   bool     `json:"replayed,omitempty"`
}

// StatusURL is where a batch's progress is read.
func StatusURL(id string) string { return "/results/batch/" + id }

// ItemQuery selects a page of items.
type ItemQuery struct {
	State    string
	AfterOrd *int
	Limit    int // 0: no items
}

// Progress reads a batch's counts, times, rate and a page of its items.
func (s *Service) Progress(ctx context.Context, id string, q ItemQuery) (*Progress, error) {
	p := &Progress{BatchID: id, StatusURL: StatusURL(id), Counts: make(map[string]int, len(States))}
	err := s.pool.QueryRow(ctx, `SELECT source, actor, total, duplicates, created_at, started_at, finished_at, canceled_at
		FROM batches WHERE id = $1`, id).Scan(&p.Source, &p.Actor, &p.Total, &p.Duplicates, &p.CreatedAt, &p.StartedAt,
		&p.FinishedAt, &p.CanceledAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, domain.NotFound("batch " + id + " does not exist")
	}
	if err != nil {
		return nil, fmt.Errorf("read batch: %w", err)
	}
	if err := s.counts(ctx, p); err != nil {
		return nil, err
	}
	if p.FinishedAt == nil && p.Counts[StateQueued]+p.Counts[StateRunning] > 0 {
		// Items whose River job was discarded (a job rescued too often) would
		// stay open forever: close them as failed.
		if n, err := s.reconcile(ctx, id); err != nil {
			return nil, err
		} else if n > 0 {
			if err := s.counts(ctx, p); err != nil {
				return nil, err
			}
		}
	}
	if p.FinishedAt == nil && p.Counts[StateQueued]+p.Counts[StateRunning] == 0 {
		// Every item is final but the closing write was lost (a replica
		// died between its commit and the close): close it now.
		if err := s.closeIfDone(ctx, id); err != nil {
			return nil, err
		}
		if err := s.pool.QueryRow(ctx, `SELECT finished_at FROM batches WHERE id = $1`, id).Scan(&p.FinishedAt); err != nil {
			return nil, fmt.Errorf("read batch: %w", err)
		}
	}
	s.derive(p)
	if q.Limit > 0 {
		items, err := s.items(ctx, id, q)
		if err != nil {
			return nil, err
		}
		if len(items) > q.Limit {
			items = items[:q.Limit]
			p.NextCursor = encodeCursor(items[len(items)-1].Ord)
		}
		p.Items = items
	}
	return p, nil
}

func (s *Service) counts(ctx context.Context, p *Progress) error {
	for _, st := range States {
		p.Counts[st] = 0
	}
	p.Done = 0
	rows, err := s.pool.Query(ctx, `SELECT state, count(*) FROM batch_items WHERE batch_id = $1 GROUP BY state`, p.BatchID)
	if err != nil {
		return fmt.Errorf("count batch items: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return err
		}
		p.Counts[st] = n
		if finalState(st) {
			p.Done += n
		}
	}
	return rows.Err()
}

// derive fills status, elapsed time, throughput and the estimate.
func (s *Service) derive(p *Progress) {
	open := p.Counts[StateQueued] + p.Counts[StateRunning]
	switch {
	case open == 0 && p.CanceledAt != nil:
		p.Status = StatusCanceled
	case open == 0:
		p.Status = StatusFinished
	case p.StartedAt == nil:
		p.Status = StatusQueued
	default:
		p.Status = StatusRunning
	}
	if p.StartedAt == nil {
		return
	}
	end := s.now()
	if p.FinishedAt != nil {
		end = *p.FinishedAt
	}
	elapsed := end.Sub(*p.StartedAt).Seconds()
	if elapsed <= 0 {
		elapsed = 0
	}
	p.ElapsedSeconds = round3(elapsed)
	// Verified by a worker: not unknown ids (never queued) nor canceled ones.
	verified := p.Done - p.Counts[StateCanceled] - p.Counts[StateUnknownProvider]
	if verified < 0 {
		verified = 0
	}
	if elapsed > 0 && verified > 0 {
		p.ThroughputPerSecond = round3(float64(verified) / elapsed)
		if open > 0 {
			left := round3(float64(open) / (float64(verified) / elapsed))
			p.EstimatedSecondsLeft = &left
		}
	}
	if open == 0 {
		zero := 0.0
		p.EstimatedSecondsLeft = &zero
	}
}

func round3(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }

func (s *Service) items(ctx context.Context, id string, q ItemQuery) ([]Item, error) {
	args := []any{id, q.Limit + 1}
	where := []string{"batch_id = $1"}
	if q.State != "" {
		args = append(args, q.State)
		where = append(where, fmt.Sprintf("state = $%d", len(args)))
	}
	if q.AfterOrd != nil {
		args = append(args, *q.AfterOrd)
		where = append(where, fmt.Sprintf("ord > $%d", len(args)))
	}
	rows, err := s.pool.Query(ctx, `SELECT ord, provider_id, state, run_id, attempts, last_error, started_at, finished_at
		FROM batch_items WHERE `+strings.Join(where, " AND ")+` ORDER BY ord LIMIT $2`, args...)
	if err != nil {
		return nil, fmt.Errorf("list batch items: %w", err)
	}
	defer rows.Close()
	items := []Item{}
	for rows.Next() {
		var it Item
		if err := rows.Scan(&it.Ord, &it.ProviderID, &it.State, &it.RunID, &it.Attempts, &it.LastError, &it.StartedAt, &it.FinishedAt); err != nil {
			return nil, err
		}
		items = append(items, it)
	}
	return items, rows.Err()
}

// reconcile fails open items whose River job was discarded or deleted
// outside this package; it returns how many it closed.
func (s *Service) reconcile(ctx context.Context, id string) (int64, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE batch_items i SET state = 'failed', finished_at = now(), updated_at = now(),
			last_error = CASE WHEN x.job_state IS NULL THEN 'the job is gone from the queue'
				ELSE 'the job was ' || x.job_state END
		FROM (SELECT i2.provider_id, j.state::text AS job_state
			FROM batch_items i2 LEFT JOIN `+s.riverTable("river_job")+` j ON j.id = i2.job_id
			WHERE i2.batch_id = $1 AND i2.state IN ('queued', 'running') AND i2.job_id IS NOT NULL) x
		WHERE i.batch_id = $1 AND i.provider_id = x.provider_id AND i.state IN ('queued', 'running')
		AND (x.job_state IS NULL OR x.job_state IN ('discarded', 'cancelled', 'completed'))
		AND i.updated_at < now() - interval '5 seconds'`, id)
	if err != nil {
		return 0, fmt.Errorf("reconcile batch: %w", err)
	}
	if n := tag.RowsAffected(); n > 0 {
		s.m.items.WithLabelValues(StateFailed).Add(float64(n))
		s.log.Warn("batch items closed as failed: their jobs left the queue", "batch_id", id, "items", n)
		return n, s.closeIfDone(ctx, id)
	}
	return 0, nil
}

// Cancel cancels every item not yet running (they end `canceled`) and
// removes their River jobs; running items finish normally. It is one
// transaction with its audit entry. A worker that picks a job up at the
// same moment either sees the item canceled (and skips it) or had already
// marked it running (and cancel leaves it), decided by the item's row lock.
func (s *Service) Cancel(ctx context.Context, id, actor, requestID string) (int, error) {
	var canceled int
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var finished, canceledAt *time.Time
		if err := tx.QueryRow(ctx, `SELECT finished_at, canceled_at FROM batches WHERE id = $1 FOR UPDATE`, id).Scan(&finished, &canceledAt); errors.Is(err, pgx.ErrNoRows) {
			return domain.NotFound("batch " + id + " does not exist")
		} else if err != nil {
			return fmt.Errorf("cancel batch: %w", err)
		}
		// A finished batch has nothing left to stop: canceling it would
		// relabel a complete batch as canceled (and audit a cancellation
		// that stopped nothing). A canceled one may be canceled again.
		if finished != nil && canceledAt == nil {
			return domain.Conflict("conflict", "batch "+id+" has already finished; nothing is left to cancel")
		}
		rows, err := tx.Query(ctx, `UPDATE batch_items SET state = 'canceled', finished_at = now(), updated_at = now(),
				last_error = 'canceled before it ran'
			WHERE batch_id = $1 AND state = 'queued' RETURNING job_id`, id)
		if err != nil {
			return fmt.Errorf("cancel batch items: %w", err)
		}
		var jobIDs []int64
		for rows.Next() {
			var jid *int64
			if err := rows.Scan(&jid); err != nil {
				rows.Close()
				return err
			}
			canceled++
			if jid != nil {
				jobIDs = append(jobIDs, *jid)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("cancel batch items: %w", err)
		}
		// River has no bulk cancel; JobDeleteMany removes the waiting jobs
		// (running ones are never touched). A job it skips because a worker
		// holds its lock right now finds its item canceled and does nothing.
		for start := 0; start < len(jobIDs); start += 1000 {
			chunk := jobIDs[start:min(start+1000, len(jobIDs))]
			params := river.NewJobDeleteManyParams().IDs(chunk...).First(len(chunk)).States(
				rivertype.JobStateAvailable, rivertype.JobStateScheduled, rivertype.JobStateRetryable, rivertype.JobStatePending)
			if _, err := s.client.JobDeleteManyTx(ctx, tx, params); err != nil {
				return fmt.Errorf("delete batch jobs: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE batches SET canceled_at = COALESCE(canceled_at, now()), canceled_by = COALESCE(canceled_by, $2)
			WHERE id = $1`, id, actor); err != nil {
			return fmt.Errorf("cancel batch: %w", err)
		}
		return audit.Write(ctx, tx, audit.Entry{Actor: actor, RequestID: requestID, Event: "batch.canceled",
			Entity: "batch", EntityID: id, After: map[string]any{"items_canceled": canceled}})
	})
	if err != nil {
		return 0, err
	}
	s.m.items.WithLabelValues(StateCanceled).Add(float64(canceled))
	return canceled, s.closeIfDone(ctx, id)
}
