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
