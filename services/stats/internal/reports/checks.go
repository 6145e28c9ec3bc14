package reports

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/provcred/platform/domain"
	"github.com/provcred/stats/internal/params"
	"github.com/provcred/stats/internal/sheet"
)

// CheckOutcomes are one check's results from one source.
type CheckOutcomes struct {
	Check           string  `json:"check"`
	Source          string  `json:"source"`
	Total           int64   `json:"total"`
	Pass            int64   `json:"pass"`
	Fail            int64   `json:"fail"`
	NeedsReview     int64   `json:"needs_review"`
	Unavailable     int64   `json:"unavailable"`
	PassRate        float64 `json:"pass_rate"`
	FailRate        float64 `json:"fail_rate"`
	NeedsReviewRate float64 `json:"needs_review_rate"`
	UnavailableRate float64 `json:"unavailable_rate"`
}

// Reason is one of the most frequent reasons a check did not pass: its
// detail with identifiers, numbers and dates shown as #.
type Reason struct {
	Check   string `json:"check"`
	Outcome string `json:"outcome"`
	Reason  string `json:"reason"`
	Count   int64  `json:"count"`
	// Share is Count over all results of that check in the range.
	Share float64 `json:"share"`
}

// Checks is GET /stats/checks: outcome rates by check and source over the
// range (by the finish of the run), and the most frequent reasons.
type Checks struct {
	Meta
	span
	Checks  []CheckOutcomes `json:"checks"`
	Reasons []Reason        `json:"reasons"`
	csvPart string
}

type checksParams struct {
	span
	Reasons int    `json:"reasons"`
	Table   string `json:"table"`
}

var checksReport = report[checksParams]{
	name:   "checks",
	params: append([]string{"reasons", "table"}, spanParams...),
	parse: func(q *params.Query, now time.Time) (checksParams, error) {
		s, err := readSpan(q, now, 30)
		if err != nil {
			return checksParams{}, err
		}
		n, err := q.Int("reasons", 10, 0, 100)
		if err != nil {
			return checksParams{}, err
		}
		t, err := q.Enum("table", "outcomes", "outcomes", "reasons")
		return checksParams{span: s, Reasons: n, Table: t}, err
	},
	run: runChecks,
}

func runChecks(ctx context.Context, tx pgx.Tx, p checksParams, _ time.Time) (result, error) {
	out := &Checks{span: p.span, Checks: []CheckOutcomes{}, Reasons: []Reason{}, csvPart: p.Table}
	rows, err := tx.Query(ctx, `SELECT c."check", c.source, c.outcome, c.reason, sum(c.n)::bigint
		FROM `+spansSQL("check_counts", `c."check", c.source, c.outcome, c.reason`, "checks")+` GROUP BY 1, 2, 3, 4`,
		spanArgs([]params.Period{{Start: p.r.Start, End: p.r.End}})...)
	if err != nil {
		return nil, fmt.Errorf("checks: %w", err)
	}
	type key struct{ check, source string }
	byKey := map[key]*CheckOutcomes{}
	perCheck := map[string]int64{}
	var check, source, outcome, reason string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&check, &source, &outcome, &reason, &n}, func() error {
		o := byKey[key{check, source}]
		if o == nil {
			o = &CheckOutcomes{Check: check, Source: source}
			byKey[key{check, source}] = o
		}
		switch domain.Outcome(outcome) {
		case domain.Pass:
			o.Pass += n
		case domain.Fail:
			o.Fail += n
		case domain.Review:
			o.NeedsReview += n
		case domain.Unavailable:
			o.Unavailable += n
		}
		o.Total += n
		perCheck[check] += n
		if domain.Outcome(outcome) != domain.Pass {
			out.Reasons = append(out.Reasons, Reason{Check: check, Outcome: outcome, Reason: reason, Count: n})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("checks: %w", err)
	}
	for _, o := range byKey {
		o.PassRate, o.FailRate = ratio(o.Pass, o.Total), ratio(o.Fail, o.Total)
		o.NeedsReviewRate, o.UnavailableRate = ratio(o.NeedsReview, o.Total), ratio(o.Unavailable, o.Total)
		out.Checks = append(out.Checks, *o)
	}
	sort.Slice(out.Checks, func(i, j int) bool {
		a, b := out.Checks[i], out.Checks[j]
		if checkOrder[a.Check] != checkOrder[b.Check] {
			return checkOrder[a.Check] < checkOrder[b.Check]
		}
		return a.Source < b.Source
	})
	// One reason may come from several sources (license rosters and state
	// endpoints): the same text is one reason.
	merged := map[Reason]int64{}
	for _, r := range out.Reasons {
		merged[Reason{Check: r.Check, Outcome: r.Outcome, Reason: r.Reason}] += r.Count
	}
	out.Reasons = out.Reasons[:0]
	for r, n := range merged {
		r.Count, r.Share = n, ratio(n, perCheck[r.Check])
		out.Reasons = append(out.Reasons, r)
	}
	sort.Slice(out.Reasons, func(i, j int) bool {
		a, b := out.Reasons[i], out.Reasons[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		if a.Check != b.Check {
			return checkOrder[a.Check] < checkOrder[b.Check]
		}
		if a.Outcome != b.Outcome {
			return a.Outcome < b.Outcome
		}
		return a.Reason < b.Reason
	})
	if len(out.Reasons) > p.Reasons {
		out.Reasons = out.Reasons[:p.Reasons]
	}
	return out, nil
}

// table is the outcomes, or with ?table=reasons the reasons.
func (c *Checks) table() sheet.Table {
	if c.csvPart == "reasons" {
		t := sheet.Table{Header: []string{"check", "outcome", "reason", "count", "share"}}
		for _, r := range c.Reasons {
			t.Add(r.Check, r.Outcome, r.Reason, r.Count, r.Share)
		}
		return t
	}
	t := sheet.Table{Header: []string{"check", "source", "total", "pass", "fail", "needs_review", "unavailable",
		"pass_rate", "fail_rate", "needs_review_rate", "unavailable_rate"}}
	for _, o := range c.Checks {
		t.Add(o.Check, o.Source, o.Total, o.Pass, o.Fail, o.NeedsReview, o.Unavailable,
			o.PassRate, o.FailRate, o.NeedsReviewRate, o.UnavailableRate)
	}
	return t
}
