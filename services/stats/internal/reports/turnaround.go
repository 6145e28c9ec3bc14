package reports

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/provcred/stats/internal/params"
	"github.com/provcred/stats/internal/sheet"
)

// Durations are percentiles of a set of durations, in seconds (null when
// the set is empty), interpolated between the two nearest values
// (PostgreSQL percentile_cont).
type Durations struct {
	Count int64    `json:"count"`
	P50   *float64 `json:"p50_seconds"`
	P90   *float64 `json:"p90_seconds"`
	P95   *float64 `json:"p95_seconds"`
}

// TurnaroundPeriod is one day, week or month.
type TurnaroundPeriod struct {
	params.Period
	// Turnaround: submission to first final decision, of the providers
	// decided in the period.
	Turnaround Durations `json:"turnaround"`
	// NeedsReview: time in needs_review, of the episodes resolved in the period.
	NeedsReview Durations `json:"needs_review"`
}

// Turnaround is GET /stats/turnaround: how long credentialing takes.
type Turnaround struct {
	Meta
	span
	Interval    string    `json:"interval"`
	Turnaround  Durations `json:"turnaround"`
	NeedsReview Durations `json:"needs_review"`
	// OpenReviews are providers in needs_review now (episodes not resolved).
	OpenReviews int64              `json:"open_reviews"`
	Periods     []TurnaroundPeriod `json:"periods"`
}

var turnaroundReport = report[periodParams]{
	name:   "turnaround",
	params: append([]string{"interval"}, spanParams...),
	parse:  readPeriods,
	run:    runTurnaround,
}

// durationsSQL takes the percentiles of end - start per period of end
// (width_bucket over the period starts, $1) and over the whole range (the
// grouping set with k NULL).
func durationsSQL(view, start, end string) string {
	return fmt.Sprintf(`SELECT width_bucket(%[3]s, $1::timestamptz[]) AS k, count(*),
		percentile_cont(ARRAY[0.5, 0.9, 0.95]) WITHIN GROUP (ORDER BY extract(epoch FROM %[3]s - %[2]s))::float8[]
	FROM %[1]s WHERE %[3]s >= $2 AND %[3]s < $3
	GROUP BY GROUPING SETS ((width_bucket(%[3]s, $1::timestamptz[])), ())`, view, start, end)
}

func runTurnaround(ctx context.Context, tx pgx.Tx, p periodParams, _ time.Time) (result, error) {
	periods := p.r.Periods(p.Interval)
	out := &Turnaround{span: p.span, Interval: p.Interval, Periods: make([]TurnaroundPeriod, len(periods))}
	starts := make([]time.Time, len(periods))
	for i, per := range periods {
		out.Periods[i].Period, starts[i] = per, per.Start
	}
	read := func(total *Durations, per func(i int) *Durations) func(pgx.Rows) error {
		return func(rows pgx.Rows) error {
			var k *int32
			var d Durations
			var pct []float64
			_, err := pgx.ForEachRow(rows, []any{&k, &d.Count, &pct}, func() error {
				if len(pct) == 3 {
					d.P50, d.P90, d.P95 = seconds(&pct[0]), seconds(&pct[1]), seconds(&pct[2])
				}
				if k == nil {
					*total = d
				} else {
					*per(int(*k) - 1) = d
				}
				d = Durations{}
				return nil
			})
			return err
		}
	}
	b := &pgx.Batch{}
	b.Queue(durationsSQL("first_decisions", "submitted_at", "decided_at"), starts, p.r.Start, p.r.End).Query(
		read(&out.Turnaround, func(i int) *Durations { return &out.Periods[i].Turnaround }))
	b.Queue(durationsSQL("review_episodes", "opened_at", "resolved_at"), starts, p.r.Start, p.r.End).Query(
		read(&out.NeedsReview, func(i int) *Durations { return &out.Periods[i].NeedsReview }))
	b.Queue(`SELECT count(*) FROM review_episodes WHERE resolved_at IS NULL`).QueryRow(func(row pgx.Row) error {
		return row.Scan(&out.OpenReviews)
	})
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("turnaround: %w", err)
	}
	return out, nil
}

func (t *Turnaround) table() sheet.Table {
	tb := sheet.Table{Header: []string{"period_start", "period_end",
		"decided", "turnaround_p50_seconds", "turnaround_p90_seconds", "turnaround_p95_seconds",
		"reviews_resolved", "needs_review_p50_seconds", "needs_review_p90_seconds", "needs_review_p95_seconds"}}
	for _, p := range t.Periods {
		a, r := p.Turnaround, p.NeedsReview
		tb.Add(p.First, p.Last, a.Count, a.P50, a.P90, a.P95, r.Count, r.P50, r.P90, r.P95)
	}
	return tb
}
