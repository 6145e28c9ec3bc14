package reports

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/provcred/platform/domain"
	"github.com/provcred/platform/page"
	"github.com/provcred/stats/internal/params"
	"github.com/provcred/stats/internal/sheet"
)

// batchStates are the item states a batch reports (credential/batch).
var batchStates = []string{string(domain.Approved), string(domain.Denied), string(domain.NeedsReview),
	string(domain.Incomplete), "unknown_provider", "failed", "canceled", "queued", "running"}

// BatchStats is one batch: its size, how long it waited and ran, how fast
// it went, and what came of its items.
type BatchStats struct {
	BatchID    string     `json:"batch_id"`
	Source     string     `json:"source"`
	Status     string     `json:"status"`
	Size       int64      `json:"size"`
	Duplicates int64      `json:"duplicates"`
	CreatedAt  time.Time  `json:"created_at"`
	StartedAt  *time.Time `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
	CanceledAt *time.Time `json:"canceled_at"`
	// QueuedSeconds: from submission to the first item picked up.
	QueuedSeconds *float64 `json:"queued_seconds"`
	// DurationSeconds: from the first item picked up to the end (as_of while running).
	DurationSeconds *float64 `json:"duration_seconds"`
	// Done: items in a final state; ThroughputPerMinute is Done per minute of DurationSeconds.
	Done                int64            `json:"done"`
	ThroughputPerMinute *float64         `json:"throughput_per_minute"`
	Outcomes            map[string]int64 `json:"outcomes"`
}

// Batches is GET /stats/batches: batches submitted in the range, newest
// first, cursor paged, with totals over the whole range.
type Batches struct {
	Meta
	span
	Totals struct {
		Batches   int64            `json:"batches"`
		Providers int64            `json:"providers"`
		Outcomes  map[string]int64 `json:"outcomes"`
	} `json:"totals"`
	page.Page[BatchStats]
}

type batchesParams struct {
	span
	Limit int          `json:"limit"`
	After *batchCursor `json:"after"`
}

type batchCursor struct {
	T time.Time `json:"t"`
	I string    `json:"i"`
}

var batchesReport = report[batchesParams]{
	name:   "batches",
	params: append([]string{"limit", "cursor"}, spanParams...),
	parse: func(q *params.Query, now time.Time) (batchesParams, error) {
		s, err := readSpan(q, now, 30)
		if err != nil {
			return batchesParams{}, err
		}
		p := batchesParams{span: s}
		if p.Limit, err = q.Limit(); err != nil {
			return p, err
		}
		if c := q.Get("cursor"); c != "" {
			p.After = &batchCursor{}
			err = page.DecodeString(c, p.After)
		}
		return p, err
	},
	run: runBatches,
}

// Outcomes per batch through the batch's own rows (the view's grouping
// column takes the batch id, so each batch reads only its items).
const batchOutcomesSQL = `FROM batches b CROSS JOIN LATERAL (SELECT o.state, o.items FROM batch_outcomes o WHERE o.batch_id = b.batch_id) o
	WHERE b.created_at >= $1 AND b.created_at < $2`

func runBatches(ctx context.Context, tx pgx.Tx, p batchesParams, now time.Time) (result, error) {
	out := &Batches{span: p.span}
	out.Totals.Outcomes = zeroStates()
	var a sqlArgs
	a.add(p.r.Start)
	a.add(p.r.End)
	where := "b.created_at >= $1 AND b.created_at < $2"
	if c := p.After; c != nil {
		where += fmt.Sprintf(" AND (b.created_at, b.batch_id) < (%s::timestamptz, %s)", a.add(c.T), a.add(c.I))
	}
	var list []BatchStats
	b := &pgx.Batch{}
	b.Queue(`SELECT count(*), coalesce(sum(total), 0)::bigint FROM batches b WHERE b.created_at >= $1 AND b.created_at < $2`,
		p.r.Start, p.r.End).QueryRow(func(row pgx.Row) error { return row.Scan(&out.Totals.Batches, &out.Totals.Providers) })
	b.Queue(`SELECT o.state, sum(o.items)::bigint `+batchOutcomesSQL+` GROUP BY 1`, p.r.Start, p.r.End).Query(func(rows pgx.Rows) error {
		var state string
		var n int64
		_, err := pgx.ForEachRow(rows, []any{&state, &n}, func() error { out.Totals.Outcomes[state] += n; return nil })
		return err
	})
	b.Queue(`SELECT b.batch_id, b.source, b.total, b.duplicates, b.created_at, b.started_at, b.finished_at, b.canceled_at,
			coalesce((SELECT json_object_agg(o.state, o.items) FROM batch_outcomes o WHERE o.batch_id = b.batch_id), '{}')
		FROM batches b WHERE `+where+` ORDER BY b.created_at DESC, b.batch_id DESC LIMIT `+a.add(p.Limit+1), a...).
		Query(func(rows pgx.Rows) error {
			var s BatchStats
			var outcomes map[string]int64
			_, err := pgx.ForEachRow(rows, []any{&s.BatchID, &s.Source, &s.Size, &s.Duplicates, &s.CreatedAt, &s.StartedAt,
				&s.FinishedAt, &s.CanceledAt, &outcomes}, func() error {
				s.Outcomes = zeroStates()
				for k, v := range outcomes {
					s.Outcomes[k] = v
				}
				s.derive(now)
				list = append(list, s)
				s, outcomes = BatchStats{}, nil
				return nil
			})
			return err
		})
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("batches: %w", err)
	}
	out.Page = page.Build(list, p.Limit, func(s BatchStats) any { return batchCursor{T: s.CreatedAt, I: s.BatchID} })
	return out, nil
}

func zeroStates() map[string]int64 {
	m := make(map[string]int64, len(batchStates))
	for _, s := range batchStates {
		m[s] = 0
	}
	return m
}

// derive fills status, times and throughput; now stands in for the end of
// a batch still running.
func (s *BatchStats) derive(now time.Time) {
	s.Done = s.Size - s.Outcomes["queued"] - s.Outcomes["running"]
	switch {
	case s.CanceledAt != nil:
		s.Status = "canceled"
	case s.FinishedAt != nil:
		s.Status = "finished"
	case s.StartedAt != nil:
		s.Status = "running"
	default:
		s.Status = "queued"
	}
	if s.StartedAt == nil {
		return
	}
	q := s.StartedAt.Sub(s.CreatedAt).Seconds()
	s.QueuedSeconds = seconds(&q)
	end := now
	if s.FinishedAt != nil {
		end = *s.FinishedAt
	}
	d := end.Sub(*s.StartedAt).Seconds()
	s.DurationSeconds = seconds(&d)
	if d > 0 {
		t := float64(s.Done) / (d / 60)
		s.ThroughputPerMinute = seconds(&t)
	}
}

func (b *Batches) table() sheet.Table {
	h := []string{"batch_id", "source", "status", "size", "duplicates", "created_at", "started_at", "finished_at",
		"canceled_at", "queued_seconds", "duration_seconds", "done", "throughput_per_minute"}
	t := sheet.Table{Header: append(h, batchStates...)}
	for _, s := range b.Items {
		row := []any{s.BatchID, s.Source, s.Status, s.Size, s.Duplicates, s.CreatedAt, s.StartedAt, s.FinishedAt,
			s.CanceledAt, s.QueuedSeconds, s.DurationSeconds, s.Done, s.ThroughputPerMinute}
		for _, st := range batchStates {
			row = append(row, s.Outcomes[st])
		}
		t.Add(row...)
	}
	return t
}
