package reports

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/provcred/platform/domain"
	"github.com/provcred/stats/internal/params"
	"github.com/provcred/stats/internal/sheet"
)

// DecisionCounts are runs by decision.
type DecisionCounts struct {
	Approved    int64 `json:"approved"`
	Denied      int64 `json:"denied"`
	NeedsReview int64 `json:"needs_review"`
	Incomplete  int64 `json:"incomplete"`
	Total       int64 `json:"total"`
}

func (d *DecisionCounts) add(decision string, n int64) {
	switch domain.Decision(decision) {
	case domain.Approved:
		d.Approved += n
	case domain.Denied:
		d.Denied += n
	case domain.NeedsReview:
		d.NeedsReview += n
	case domain.Incomplete:
		d.Incomplete += n
	}
	d.Total += n
}

// DecisionPeriod is one day, week or month.
type DecisionPeriod struct {
	params.Period
	DecisionCounts
}

// Decisions is GET /stats/decisions: every run's decision, counted by the
// period its run finished in.
type Decisions struct {
	Meta
	span
	Interval string           `json:"interval"`
	Totals   DecisionCounts   `json:"totals"`
	Periods  []DecisionPeriod `json:"periods"`
}

type periodParams struct {
	span
	Interval string `json:"interval"`
}

// readPeriods reads the range (default: the last 30 days) and ?interval.
func readPeriods(q *params.Query, now time.Time) (periodParams, error) {
	s, err := readSpan(q, now, 30)
	if err != nil {
		return periodParams{}, err
	}
	iv, err := q.Enum("interval", "day", params.Intervals...)
	return periodParams{span: s, Interval: iv}, err
}

var decisionsReport = report[periodParams]{
	name:   "decisions",
	params: append([]string{"interval"}, spanParams...),
	parse:  readPeriods,
	run:    runDecisions,
}

func runDecisions(ctx context.Context, tx pgx.Tx, p periodParams, _ time.Time) (result, error) {
	periods := p.r.Periods(p.Interval)
	out := &Decisions{span: p.span, Interval: p.Interval, Periods: make([]DecisionPeriod, len(periods))}
	for i, per := range periods {
		out.Periods[i].Period = per
	}
	rows, err := tx.Query(ctx, `SELECT s.k, c.decision, sum(c.n)::bigint FROM `+spansSQL("decision_counts", "c.decision", "runs")+`
		GROUP BY 1, 2`, spanArgs(periods)...)
	if err != nil {
		return nil, fmt.Errorf("decisions: %w", err)
	}
	var k int32
	var decision string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&k, &decision, &n}, func() error {
		out.Periods[k].add(decision, n)
		out.Totals.add(decision, n)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("decisions: %w", err)
	}
	return out, nil
}

func (d *Decisions) table() sheet.Table {
	t := sheet.Table{Header: []string{"period_start", "period_end", "approved", "denied", "needs_review", "incomplete", "total"}}
	for _, p := range d.Periods {
		t.Add(p.First, p.Last, p.Approved, p.Denied, p.NeedsReview, p.Incomplete, p.Total)
	}
	return t
}
