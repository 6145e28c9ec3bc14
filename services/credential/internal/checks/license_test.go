package checks

import (
	"strings"
	"testing"
	"time"

	"github.com/provcred/credential/internal/providers"
	"github.com/provcred/credential/internal/sources/licenses"
	"github.com/provcred/platform/domain"
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
		want   domain.Outcome
		detail string
	}{
		{"active", licenses.Found{InState: []licenses.Record{rec(nil)}}, domain.Pass, "active"},
		{"no expiry date", licenses.Found{InState: []licenses.Record{rec(func(r *licenses.Record) { r.Expiry = nil })}}, domain.Pass, "active"},
		{"expires today is still valid", licenses.Found{InState: []licenses.Record{rec(func(r *licenses.Record) { r.Expiry = d("2026-06-01") })}}, domain.Pass, ""},
		{"active but expired yesterday: the source contradicts itself", licenses.Found{InState: []licenses.Record{rec(func(r *licenses.Record) { r.Expiry = d("2026-05-31") })}}, domain.Review, "2026-05-31 has passed"},
		{"lapsed yesterday", licenses.Found{InState: []licenses.Record{rec(func(r *licenses.Record) { r.Expiry, r.Status = d("2026-05-31"), "lapsed" })}}, domain.Fail, "expired (expires 2026-05-31)"},
		{"unknown status", licenses.Found{InState: []licenses.Record{rec(func(r *licenses.Record) { r.Status = "pending board action" })}}, domain.Review, "not in the status table"},
		{"a word the configured table adds", licenses.Found{InState: []licenses.Record{rec(func(r *licenses.Record) { r.Status = "emeritus" })}}, domain.Fail, "expired"},
		{"revoked", licenses.Found{InState: []licenses.Record{rec(func(r *licenses.Record) { r.Status = "revoked" })}}, domain.Fail, "revoked"},
		{"probation", licenses.Found{InState: []licenses.Record{rec(func(r *licenses.Record) { r.Status = "probation" })}}, domain.Review, "probation"},
		{"another NPI", licenses.Found{InState: []licenses.Record{rec(func(r *licenses.Record) { r.NPI = "1999999999" })}}, domain.Review, "another NPI"},
		{"same NPI", licenses.Found{InState: []licenses.Record{rec(func(r *licenses.Record) { r.NPI = p.NPI })}}, domain.Pass, ""},
		{"initial only", licenses.Found{InState: []licenses.Record{rec(func(r *licenses.Record) { r.First = "A" })}}, domain.Review, "partially"},
		{"other name", licenses.Found{InState: []licenses.Record{rec(func(r *licenses.Record) { r.Last = "Park" })}}, domain.Review, "different name"},
		{"none", licenses.Found{}, domain.Review, "no license A1 found in IL"},
		{"elsewhere", licenses.Found{Elsewhere: []licenses.Record{rec(func(r *licenses.Record) { r.State = "WI" }), rec(func(r *licenses.Record) { r.State = "IA" })}},
			domain.Review, "only found in IA, WI"},
		{"two", licenses.Found{InState: []licenses.Record{rec(nil), rec(nil)}}, domain.Review, "2 records"},
	} {
		got, detail := licenseOutcome(p, l, &c.lk, day, table)
		if got != c.want || !strings.Contains(detail, c.detail) {
			t.Errorf("%s: %s %q, want %s containing %q", c.name, got, detail, c.want, c.detail)
		}
	}
}
