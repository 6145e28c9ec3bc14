package params

import (
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/provcred/platform/apierr"
)

// badParameter checks err is the 400 every bad parameter gets: code
// invalid_parameter, a field from fields, and a short UTF-8 detail that
// starts with it.
func badParameter(t *testing.T, err error, fields ...string) {
	t.Helper()
	e, ok := apierr.As(err)
	if !ok || e.Status != 400 || e.Code != "invalid_parameter" {
		t.Fatalf("not a 400 invalid_parameter: %#v", err)
	}
	if !strings.HasPrefix(e.Detail, e.Field+": ") || !utf8.ValidString(e.Detail) || len(e.Detail) > 400 {
		t.Fatalf("detail %q of field %q", e.Detail, e.Field)
	}
	if len(fields) > 0 && !slices.Contains(fields, e.Field) {
		t.Fatalf("field %q, want one of %v", e.Field, fields)
	}
}

// Any query string: a 400 naming a parameter, or values that are all
// UTF-8, each under a name the report takes, given once.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "from=2026-01-01&to=2026-01-31", "form=1", "from=1&from=2", "from=%ff", "%ff=1",
		"tz=America%2FNew_York&limit=10", "a=" + strings.Repeat("x", 100), strings.Repeat("n", 65) + "=1", "from", "=&&=", "to=%e2%82"} {
		f.Add(s)
	}
	allowed := []string{"from", "to", "tz", "limit"}
	app := fiber.New()
	var q *Query
	var perr error
	app.Get("/", func(c *fiber.Ctx) error { q, perr = Parse(c, allowed...); return nil })
	f.Fuzz(func(t *testing.T, raw string) {
		// Bytes a request line cannot carry never reach the service; their
		// percent-encoded forms do, and the fuzzer finds those.
		if strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r >= 0x7f || r == '#' }) {
			return
		}
		req := httptest.NewRequest("GET", "/", nil)
		req.URL.RawQuery = raw
		q, perr = nil, nil
		resp, err := app.Test(req, -1)
		if err != nil || resp.StatusCode != 200 {
			return // fasthttp refused the request line itself
		}
		if perr != nil {
			badParameter(t, perr)
			return
		}
		if q == nil {
			t.Fatal("no query and no error")
		}
		for name, v := range q.vals {
			if !slices.Contains(allowed, name) || !utf8.ValidString(v) {
				t.Fatalf("%q=%q let through", name, v)
			}
		}
	})
}

// Any from, to and tz: a 400 naming one of them, or a range of at most two
// years whose periods (by day, week and month) tile it without gaps, each
// covered exactly by aligned UTC buckets.
func FuzzRange(f *testing.F) {
	f.Add("2026-01-01", "2026-01-31", "America/New_York", int16(0))
	f.Add("2024-03-01", "2026-02-28", "Asia/Kathmandu", int16(10))
	f.Add("", "2026-03-08", "Europe/London", int16(-3))
	f.Add("2026-02-30", "", "UTC", int16(0))
	f.Add("", "", "Australia/Lord_Howe", int16(100)) // a 30-minute DST shift
	f.Add("1972-01-01", "", "Pacific/Chatham", int16(0))
	f.Add("", "", "../etc/passwd", int16(0))
	f.Fuzz(func(t *testing.T, from, to, tz string, todayOffset int16) {
		vals := map[string]string{}
		for k, v := range map[string]string{"from": from, "to": to, "tz": tz} {
			if v != "" {
				vals[k] = v
			}
		}
		q := FromValues(vals)
		loc, err := q.Location()
		if err != nil {
			badParameter(t, err, "tz")
			return
		}
		today := MakeDate(2026, 3, 15).AddDays(int(todayOffset))
		r, err := q.Range(loc, today, 30)
		if err != nil {
			badParameter(t, err, "from", "to", "tz")
			return
		}
		if from != "" && r.From.String() != from || to != "" && r.To.String() != to {
			t.Fatalf("%q..%q read as %s..%s", from, to, r.From, r.To)
		}
		if r.To.Before(r.From) || !r.To.Before(Date{r.From.t.AddDate(MaxRangeYears, 0, 0)}) || !r.Start.Before(r.End) {
			t.Fatalf("range %s..%s [%s, %s)", r.From, r.To, r.Start, r.End)
		}
		for _, iv := range Intervals {
			ps := r.Periods(iv)
			if len(ps) == 0 || !ps[0].Start.Equal(r.Start) || !ps[len(ps)-1].End.Equal(r.End) {
				t.Fatalf("%s: periods do not start and end with the range", iv)
			}
			for i, p := range ps {
				if i > 0 && (!p.Start.Equal(ps[i-1].End) || p.First.String() != ps[i-1].Last.AddDays(1).String()) {
					t.Fatalf("%s: gap before %s", iv, p.First)
				}
				if iv == "day" || i == 0 || i == len(ps)-1 {
					checkSpans(t, p.Start, p.End)
				}
			}
		}
	})
}

// checkSpans: Spans covers [start, end) exactly, with buckets aligned on
// their width.
func checkSpans(t *testing.T, start, end time.Time) {
	t.Helper()
	width := map[string]time.Duration{Quarter: 15 * time.Minute, Hour: time.Hour, Day: 24 * time.Hour}
	at := start
	for _, s := range Spans(start, end) {
		w := width[s.Width]
		if w == 0 || !s.Start.Equal(at) || !s.Start.Before(s.End) || s.End.After(end) ||
			s.Start.Unix()%int64(w/time.Second) != 0 || s.End.Sub(s.Start)%w != 0 {
			t.Fatalf("span %s %s..%s does not tile [%s, %s)", s.Width, s.Start, s.End, start, end)
		}
		at = s.End
	}
	if !at.Equal(end) {
		t.Fatalf("spans end at %s, not %s", at, end)
	}
}
