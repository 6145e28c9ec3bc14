package reports

import (
	"time"

	"github.com/provcred/stats/internal/params"
)

// span is the parameters shared by the reports over a range of days; it is
// part of their cache keys (the exported fields), and is echoed in answers.
type span struct {
	From params.Date `json:"from"`
	To   params.Date `json:"to"`
	TZ   string      `json:"tz"`
	r    params.Range
}

var spanParams = []string{"from", "to", "tz"}

// readSpan reads from, to and tz; an absent range is the defaultDays ending today.
func readSpan(q *params.Query, now time.Time, defaultDays int) (span, error) {
	loc, err := q.Location()
	if err != nil {
		return span{}, err
	}
	r, err := q.Range(loc, params.DateOf(now.In(loc)), defaultDays)
	if err != nil {
		return span{}, err
	}
	return span{From: r.From, To: r.To, TZ: loc.String(), r: r}, nil
}

// today reads tz and gives the date it is there now.
func today(q *params.Query, now time.Time) (params.Date, string, error) {
	loc, err := q.Location()
	if err != nil {
		return params.Date{}, "", err
	}
	return params.DateOf(now.In(loc)), loc.String(), nil
}

// seconds renders a duration in seconds, null when absent.
func seconds(v *float64) *float64 {
	if v == nil {
		return nil
	}
	r := float64(int64(*v*1000+0.5)) / 1000
	return &r
}

// staleSQL counts, as of $1, the providers verified longer ago than $2
// (VERIFICATION_MAX_AGE) and those never verified, from the verification tallies
// (by UTC day): the days before the cutoff's day, plus the providers of that
// one day verified before the cutoff, read through providers_last_verified_idx
// (a scan of every stale provider took 310 ms at 100,000 providers under the
// benchmark's load; docs/benchmarks.md).
const staleSQL = `WITH c AS (SELECT $1::timestamptz - $2::interval AS cutoff)
	SELECT (SELECT coalesce(sum(t.providers), 0) FROM verification_tallies t, c
	        WHERE t.verified_on < (c.cutoff AT TIME ZONE 'UTC')::date)::bigint
	     + (SELECT count(*) FROM providers p, c
	        WHERE p.last_verified_at >= date_trunc('day', c.cutoff AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
	          AND p.last_verified_at < c.cutoff),
	       (SELECT coalesce(sum(t.providers), 0) FROM verification_tallies t WHERE t.verified_on IS NULL)::bigint`
