package params

import (
	"fmt"
	"time"
)

// Date is a calendar date (held as midnight UTC).
type Date struct{ t time.Time }

// DateOf is the date of t in its own location.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date{time.Date(y, m, d, 0, 0, 0, 0, time.UTC)}
}

// MakeDate builds a date.
func MakeDate(y int, m time.Month, d int) Date { return Date{time.Date(y, m, d, 0, 0, 0, 0, time.UTC)} }

// AddDays moves the date by n days.
func (d Date) AddDays(n int) Date { return Date{d.t.AddDate(0, 0, n)} }

// Sub is d - e in days.
func (d Date) Sub(e Date) int { return int(d.t.Sub(e.t).Hours() / 24) }

// Before reports d < e.
func (d Date) Before(e Date) bool { return d.t.Before(e.t) }

// Start is the instant d begins in loc.
func (d Date) Start(loc *time.Location) time.Time {
	y, m, day := d.t.Date()
	return time.Date(y, m, day, 0, 0, 0, 0, loc)
}

// Time is the date as midnight UTC (for a SQL date parameter).
func (d Date) Time() time.Time { return d.t }

func (d Date) String() string { return d.t.Format(time.DateOnly) }

// MarshalText writes YYYY-MM-DD.
func (d Date) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads YYYY-MM-DD.
func (d *Date) UnmarshalText(b []byte) error {
	t, err := time.Parse(time.DateOnly, string(b))
	d.t = t
	return err
}

// Range is a span of whole days in a time zone: From..To inclusive, the
// instants [Start, End).
type Range struct {
	From, To   Date
	Loc        *time.Location
	Start, End time.Time
}

// Range reads ?from and ?to (dates, both inclusive, in loc). Absent, to is
// today and from is defaultDays-1 days before to. The range must not run
// backwards nor cover more than two years.
func (q *Query) Range(loc *time.Location, today Date, defaultDays int) (Range, error) {
	from, hasFrom, err := q.Date("from")
	if err != nil {
		return Range{}, err
	}
	to, hasTo, err := q.Date("to")
	if err != nil {
		return Range{}, err
	}
	if !hasTo {
		to = today
		if hasFrom && today.Before(from) {
			to = from.AddDays(defaultDays - 1)
		}
	}
	if !hasFrom {
		from = to.AddDays(-(defaultDays - 1))
	}
	if to.Before(from) {
		return Range{}, Invalid("to", fmt.Sprintf("must not be before from (%s), got %s", from, to))
	}
	if limit := (Date{from.t.AddDate(MaxRangeYears, 0, 0)}); !to.Before(limit) {
		field := "to"
		if !hasTo {
			field = "from"
		}
		return Range{}, Invalid(field, fmt.Sprintf("the range from %s to %s is longer than %d years; the last day it may reach is %s",
			from, to, MaxRangeYears, limit.AddDays(-1)))
	}
	r := Range{From: from, To: to, Loc: loc, Start: from.Start(loc), End: to.AddDays(1).Start(loc)}
	// Counts are kept per quarter hour: every day must start on one.
	for d := from; !to.Before(d); d = d.AddDays(1) {
		if err := aligned(d.AddDays(1).Start(loc)); err != nil {
			return Range{}, err
		}
	}
	return r, aligned(r.Start)
}

// Intervals a report groups by.
var Intervals = []string{"day", "week", "month"}

// Period is one step of a range: days First..Last, instants [Start, End).
type Period struct {
	First Date      `json:"start"`
	Last  Date      `json:"end"`
	Start time.Time `json:"-"`
	End   time.Time `json:"-"`
}

// Periods splits r by interval (day, week from Monday, or calendar month);
// the first and last are cut to the range.
func (r Range) Periods(interval string) []Period {
	var out []Period
	for first := r.From; !r.To.Before(first); {
		next := first.AddDays(1)
		switch interval {
		case "week":
			next = first.AddDays(7 - (int(first.t.Weekday())+6)%7) // next Monday
		case "month":
			y, m, _ := first.t.Date()
			next = MakeDate(y, m+1, 1)
		}
		last := next.AddDays(-1)
		if r.To.Before(last) {
			last = r.To
		}
		out = append(out, Period{First: first, Last: last, Start: first.Start(r.Loc), End: last.AddDays(1).Start(r.Loc)})
		first = next
	}
	return out
}

// Bucket widths of the reporting counts, as SQL intervals.
const (
	Quarter = "15 minutes"
	Hour    = "1 hour"
	Day     = "1 day"
)

// Span is a run of adjacent buckets of one width in the counts views:
// those starting in [Start, End).
type Span struct {
	Start, End time.Time
	Width      string
}

var widths = []struct {
	name string
	d    time.Duration
}{{Day, 24 * time.Hour}, {Hour, time.Hour}, {Quarter, 15 * time.Minute}}

// Spans covers [start, end) with the widest UTC-aligned buckets that fit
// (days, then hours, then quarter hours), as runs of one width: a New York
// day is one run of 24 hours, two years in UTC one run of 731 days. Both
// ends must fall on a quarter hour, which every local midnight since 1972
// does (Range checks).
func Spans(start, end time.Time) []Span {
	var out []Span
	for t := start.UTC(); t.Before(end); {
		for _, w := range widths {
			if t.Truncate(w.d).Equal(t) && !t.Add(w.d).After(end) || w.name == Quarter {
				if n := len(out); n > 0 && out[n-1].Width == w.name && out[n-1].End.Equal(t) {
					out[n-1].End = t.Add(w.d)
				} else {
					out = append(out, Span{Start: t, End: t.Add(w.d), Width: w.name})
				}
				t = t.Add(w.d)
				break
			}
		}
	}
	return out
}

func aligned(times ...time.Time) error {
	for _, t := range times {
		if t.Unix()%(15*60) != 0 {
			return Invalid("tz", fmt.Sprintf("%s has a UTC offset that is not a whole quarter hour at %s",
				t.Location(), t.Format(time.RFC3339)))
		}
	}
	return nil
}
