package checks

import (
	"strings"
	"testing"
	"time"

	"github.com/provcred/credential/internal/providers"
	"github.com/provcred/credential/internal/results"
	"github.com/provcred/credential/internal/sources/licenses"
)

func TestLicenseOutcome(t *testing.T) {
	t.Parallel()
	day := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	d := func(s string) *time.Time { v, _ := time.Parse(time.DateOnly, s); return &v }
	p := &providers.Provider{NPI: "1234567893", FirstName: "Ann", LastName: "Lee"}
	l := providers.License{State: "IL", Number: "A1"}
	table, err := licenses.NewStatusTable("Emeritus=expired")
	if err != nil {
		t.Fatal(err)
	}
	rec := func(f func(*licenses.Record)) licenses.Record {
		r := licenses.Record{State: "IL", Number: "A1", Status: "active", Expiry: d("2027-01-01"), Last: "LEE", First: "ANN"}
		if f != nil {
			f(&r)
		}
		return r
	}
	for _, c := range []struct {
		name   string
		lk     licenses.Found
		want   string
		detail string
	}{
		{"active", licenses.Found{InState: []licenses.Record{rec(nil)}}, results.Pass, "active"},
		{"no expiry date", licenses.Found{InState: []licenses.Record{rec(func(r *licenses.Record) { r.Expiry = nil })}}, results.Pass, "active"},
		{"expires today is still valid", licenses.Found{InState: []licenses.Record{rec(func(r *licenses.Record) { r.Expiry = d("2026-06-01") })}}, results.Pass, ""},
		{"active but expired yesterday: the source contradicts itself", licenses.Found{InState: []licenses.Record{rec(func(r *licenses.Record) { r.Expiry = d("2026-05-31") })}}, results.NeedsReview, "2026-05-31 has passed"},
		{"lapsed yesterday", licenses.Found{InState: []licenses.Record{rec(func(r *licenses.Record) { r.Expiry, r.Status = d("2026-05-31"), "lapsed" })}}, results.Fail, "expired (expires 2026-05-31)"},
		{"unknown status", licenses.Found{InState: []licenses.Record{rec(func(r *licenses.Record) { r.Status = "pending board action" })}}, results.NeedsReview, "not in the status table"},
		{"a word the configured table adds", licenses.Found{InState: []licenses.Record{rec(func(r *licenses.Record) { r.Status = "emeritus" })}}, results.Fail, "expired"},
		{"revoked", licenses.Found{InState: []licenses.Record{rec(func(r *licenses.Record) { r.Status = "revoked" })}}, results.Fail, "revoked"},
		{"probation", licenses.Found{InState: []licenses.Record{rec(func(r *licenses.Record) { r.Status = "probation" })}}, results.NeedsReview, "probation"},
		{"another NPI", licenses.Found{InState: []licenses.Record{rec(func(r *licenses.Record) { r.NPI = "1999999999" })}}, results.NeedsReview, "another NPI"},
		{"same NPI", licenses.Found{InState: []licenses.Record{rec(func(r *licenses.Record) { r.NPI = p.NPI })}}, results.Pass, ""},
		{"initial only", licenses.Found{InState: []licenses.Record{rec(func(r *licenses.Record) { r.First = "A" })}}, results.NeedsReview, "partially"},
		{"other name", licenses.Found{InState: []licenses.Record{rec(func(r *licenses.Record) { r.Last = "Park" })}}, results.NeedsReview, "different name"},
		{"none", licenses.Found{}, results.NeedsReview, "no license A1 found in IL"},
		{"elsewhere", licenses.Found{Elsewhere: []licenses.Record{rec(func(r *licenses.Record) { r.State = "WI" }), rec(func(r *licenses.Record) { r.State = "IA" })}},
			results.NeedsReview, "only found in IA, WI"},
		{"two", licenses.Found{InState: []licenses.Record{rec(nil), rec(nil)}}, results.NeedsReview, "2 records"},
	} {
		got, detail := licenseOutcome(p, l, &c.lk, day, table)
		if got != c.want || !strings.Contains(detail, c.detail) {
			t.Errorf("%s: %s %q, want %s containing %q", c.name, got, detail, c.want, c.detail)
		}
	}
}
