package params

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/provcred/platform/apierr"
)

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// field is the parameter a 400 names ("" for no error).
func field(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		return ""
	}
	e, ok := apierr.As(err)
	if !ok || e.Status != 400 || e.Code != "invalid_parameter" || !strings.HasPrefix(e.Detail, e.Field+": ") {
		t.Fatalf("not a 400 invalid_parameter naming its field: %#v", err)
	}
	return e.Field
}

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		query, field string
	}{
		{"from=2026-01-01&to=2026-01-31", ""},
		{"", ""},
		{"form=2026-01-01", "form"},                 // a typo is refused, not ignored
		{"from=2026-01-01&from=2026-02-01", "from"}, // ambiguous
		{"from=%ff", "from"},
		{"%ff=1", "query"},
	}
	for _, tc := range tests {
		app := fiber.New()
		var got error
		app.Get("/", func(c *fiber.Ctx) error { _, got = Parse(c, "from", "to"); return nil })
		if _, err := app.Test(httptest.NewRequest("GET", "/?"+tc.query, nil)); err != nil {
			t.Fatal(err)
		}
		if f := field(t, got); f != tc.field {
			t.Errorf("%q: field %q, want %q (%v)", tc.query, f, tc.field, got)
		}
	}
}

func TestValues(t *testing.T) {
	t.Parallel()
	q := FromValues(map[string]string{"n": "7", "big": "501", "e": "week", "b": "yes", "limit": "0", "tz": "Mars/Olympus"})
	if n, err := q.Int("n", 1, 0, 10); err != nil || n != 7 {
		t.Errorf("Int = %d %v", n, err)
	}
	if n, err := q.Int("absent", 3, 0, 10); err != nil || n != 3 {
		t.Errorf("Int default = %d %v", n, err)
	}
	if _, err := q.Int("big", 1, 0, 500); field(t, err) != "big" {
		t.Errorf("Int out of range: %v", err)
	}
	if v, err := q.Enum("e", "day", Intervals...); err != nil || v != "week" {
		t.Errorf("Enum = %q %v", v, err)
	}
	if _, err := q.Enum("b", "x", "x", "y"); field(t, err) != "b" {
		t.Errorf("Enum bad: %v", err)
	}
	if _, err := q.Bool("b", false); field(t, err) != "b" {
		t.Errorf("Bool bad: %v", err)
	}
	if _, err := q.Limit(); field(t, err) != "limit" {
		t.Errorf("limit 0: %v", err)
	}
	if _, err := q.Location(); field(t, err) != "tz" {
		t.Errorf("unknown tz: %v", err)
	}
	for _, tz := range []string{"Local", "../etc/passwd", "/etc/localtime", ""} {
		if _, err := FromValues(map[string]string{"tz": tz}).Location(); field(t, err) != "tz" {
			t.Errorf("tz %q: %v", tz, err)
		}
	}
	if loc, err := FromValues(nil).Location(); err != nil || loc != time.UTC {
		t.Errorf("default tz = %v %v", loc, err)
	}
	if f, err := FromValues(map[string]string{"format": "xlsx"}).Format(); field(t, err) != "format" {
		t.Errorf("format xlsx = %q %v", f, err)
	}
}

func TestRange(t *testing.T) {
	t.Parallel()
	today := MakeDate(2026, 3, 15)
	ny := mustLoad(t, "America/New_York")
	tests := []struct {
		name       string
		vals       map[string]string
		from, to   string
		field      string
		start, end string // RFC 3339, in UTC
	}{
		{name: "default: the 30 days ending today", from: "2026-02-14", to: "2026-03-15",
			start: "2026-02-14T05:00:00Z", end: "2026-03-16T04:00:00Z"}, // DST began 8 March
		{name: "from only: to today", vals: map[string]string{"from": "2026-03-01"}, from: "2026-03-01", to: "2026-03-15"},
		{name: "to only", vals: map[string]string{"to": "2026-01-31"}, from: "2026-01-02", to: "2026-01-31"},
		{name: "from in the future", vals: map[string]string{"from": "2026-04-01"}, from: "2026-04-01", to: "2026-04-30"},
		{name: "one day", vals: map[string]string{"from": "2026-03-08", "to": "2026-03-08"}, from: "2026-03-08", to: "2026-03-08",
			start: "2026-03-08T05:00:00Z", end: "2026-03-09T04:00:00Z"}, // a 23-hour day
		{name: "exactly two years", vals: map[string]string{"from": "2024-03-01", "to": "2026-02-28"}, from: "2024-03-01", to: "2026-02-28"},
		{name: "two years and a day", vals: map[string]string{"from": "2024-03-01", "to": "2026-03-01"}, field: "to"},
		{name: "from too early for today", vals: map[string]string{"from": "2020-01-01"}, field: "from"},
		{name: "backwards", vals: map[string]string{"from": "2026-03-02", "to": "2026-03-01"}, field: "to"},
		{name: "bad date", vals: map[string]string{"from": "2026-02-30"}, field: "from"},
		{name: "not a date", vals: map[string]string{"to": "yesterday"}, field: "to"},
		{name: "a time is not a date", vals: map[string]string{"to": "2026-03-01T00:00:00Z"}, field: "to"},
		{name: "out of years", vals: map[string]string{"from": "1900-01-01"}, field: "from"},
	}
	for _, tc := range tests {
		r, err := FromValues(tc.vals).Range(ny, today, 30)
		if f := field(t, err); f != tc.field {
			t.Errorf("%s: field %q, want %q (%v)", tc.name, f, tc.field, err)
			continue
		}
		if err != nil {
			continue
		}
		if r.From.String() != tc.from || r.To.String() != tc.to {
			t.Errorf("%s: %s..%s, want %s..%s", tc.name, r.From, r.To, tc.from, tc.to)
		}
		if tc.start != "" && (r.Start.UTC().Format(time.RFC3339) != tc.start || r.End.UTC().Format(time.RFC3339) != tc.end) {
			t.Errorf("%s: [%s, %s), want [%s, %s)", tc.name, r.Start.UTC().Format(time.RFC3339), r.End.UTC().Format(time.RFC3339), tc.start, tc.end)
		}
	}
	// An offset that is no quarter hour cannot be counted exactly.
	odd := time.FixedZone("odd", 5*3600+10*60)
	if _, err := FromValues(nil).Range(odd, today, 30); field(t, err) != "tz" {
		t.Errorf("odd offset: %v", err)
	}
	if _, err := FromValues(nil).Range(mustLoad(t, "Asia/Kathmandu"), today, 30); err != nil { // +05:45
		t.Errorf("Kathmandu: %v", err)
	}
}

func TestPeriods(t *testing.T) {
	t.Parallel()
	r, err := FromValues(map[string]string{"from": "2026-01-28", "to": "2026-03-03"}).Range(time.UTC, MakeDate(2026, 3, 3), 30)
	if err != nil {
		t.Fatal(err)
	}
	got := func(interval string) string {
		var s []string
		for _, p := range r.Periods(interval) {
			s = append(s, p.First.String()+".."+p.Last.String())
		}
		return strings.Join(s, " ")
	}
	if g, w := got("month"), "2026-01-28..2026-01-31 2026-02-01..2026-02-28 2026-03-01..2026-03-03"; g != w {
		t.Errorf("months %s, want %s", g, w)
	}
	// 28 Jan 2026 is a Wednesday; weeks start on Monday.
	if g, w := got("week"), "2026-01-28..2026-02-01 2026-02-02..2026-02-08 2026-02-09..2026-02-15 2026-02-16..2026-02-22 "+
		"2026-02-23..2026-03-01 2026-03-02..2026-03-03"; g != w {
		t.Errorf("weeks %s, want %s", g, w)
	}
	if n := len(r.Periods("day")); n != 35 {
		t.Errorf("%d days, want 35", n)
	}
	// Periods tile the range.
	for _, iv := range Intervals {
		ps := r.Periods(iv)
		if !ps[0].Start.Equal(r.Start) || !ps[len(ps)-1].End.Equal(r.End) {
			t.Errorf("%s: periods do not start and end with the range", iv)
		}
		for i := 1; i < len(ps); i++ {
			if !ps[i].Start.Equal(ps[i-1].End) {
				t.Errorf("%s: gap before %s", iv, ps[i].First)
			}
		}
	}
}

func TestSpans(t *testing.T) {
	t.Parallel()
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name, start, end, want string
	}{
		{"UTC days", "2026-01-01T00:00:00Z", "2026-03-01T00:00:00Z", "1 day 2026-01-01T00:00:00Z..2026-03-01T00:00:00Z"},
		{"a New York day is 24 hours", "2026-01-05T05:00:00Z", "2026-01-06T05:00:00Z", "1 hour 2026-01-05T05:00:00Z..2026-01-06T05:00:00Z"},
		{"a New York week: hours, days, hours", "2026-01-05T05:00:00Z", "2026-01-12T05:00:00Z",
			"1 hour 2026-01-05T05:00:00Z..2026-01-06T00:00:00Z, 1 day 2026-01-06T00:00:00Z..2026-01-12T00:00:00Z, 1 hour 2026-01-12T00:00:00Z..2026-01-12T05:00:00Z"},
		{"a Kathmandu day (+05:45)", "2026-01-04T18:15:00Z", "2026-01-05T18:15:00Z",
			"15 minutes 2026-01-04T18:15:00Z..2026-01-04T19:00:00Z, 1 hour 2026-01-04T19:00:00Z..2026-01-05T18:00:00Z, 15 minutes 2026-01-05T18:00:00Z..2026-01-05T18:15:00Z"},
		{"empty", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", ""},
	}
	for _, tc := range tests {
		var s []string
		for _, sp := range Spans(at(tc.start), at(tc.end)) {
			s = append(s, sp.Width+" "+sp.Start.Format(time.RFC3339)+".."+sp.End.Format(time.RFC3339))
		}
		if g := strings.Join(s, ", "); g != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, g, tc.want)
		}
	}
}

func TestDate(t *testing.T) {
	t.Parallel()
	d := MakeDate(2024, 2, 28)
	if d.AddDays(1).String() != "2024-02-29" || d.AddDays(2).Sub(d) != 2 || !d.Before(d.AddDays(1)) {
		t.Error("date arithmetic")
	}
	b, _ := d.MarshalText()
	var e Date
	if err := e.UnmarshalText(b); err != nil || e != d {
		t.Errorf("round trip %s: %v %v", b, e, err)
	}
	// Midnight in New York on the day DST starts is 05:00 UTC.
	if got := MakeDate(2026, 3, 8).Start(mustLoad(t, "America/New_York")).UTC(); got.Hour() != 5 {
		t.Errorf("start of 8 March in New York: %s", got)
	}
}
