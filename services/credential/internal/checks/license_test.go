package checks

import (
	"strings"
	"testing"
	"time"

	"github.com/provcred/credential/internal/providers"
	"github.com/provcred/credential/internal/results"
)

func TestLicenseOutcome(t *testing.T) {
	t.Parallel()
	day := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	d := func(s string) *time.Time { v, _ := time.Parse(time.DateOnly, s); return &v }
	p := &providers.Provider{NPI: "1234567893", FirstName: "Ann", LastName: "Lee"}
	l := providers.License{State: "IL", Number: "A1"}
	rec := func(f func(*licenseRecord)) licenseRecord {
		r := licenseRecord{State: "IL", Number: "A1", Status: "active", Expiry: d("2027-01-01"), Last: "LEE", First: "ANN"}
		if f != nil {
			f(&r)
		}
		return r
	}
	for _, c := range []struct {
		name   string
		lk     licenseLookup
		want   string
		detail string
	}{
		{"active", licenseLookup{records: []licenseRecord{rec(nil)}}, results.Pass, "active"},
		{"no expiry date", licenseLookup{records: []licenseRecord{rec(func(r *licenseRecord) { r.Expiry = nil })}}, results.Pass, "active"},
		{"expires today is still valid", licenseLookup{records: []licenseRecord{rec(func(r *licenseRecord) { r.Expiry = d("2026-06-01") })}}, results.Pass, ""},
		{"expired yesterday", licenseLookup{records: []licenseRecord{rec(func(r *licenseRecord) { r.Expiry = d("2026-05-31") })}}, results.Fail, "expired on 2026-05-31"},
		{"revoked", licenseLookup{records: []licenseRecord{rec(func(r *licenseRecord) { r.Status = "revoked" })}}, results.Fail, "revoked"},
		{"probation", licenseLookup{records: []licenseRecord{rec(func(r *licenseRecord) { r.Status = "probation" })}}, results.NeedsReview, "probation"},
		{"another NPI", licenseLookup{records: []licenseRecord{rec(func(r *licenseRecord) { r.NPI = "1999999999" })}}, results.NeedsReview, "another NPI"},
		{"same NPI", licenseLookup{records: []licenseRecord{rec(func(r *licenseRecord) { r.NPI = p.NPI })}}, results.Pass, ""},
		{"initial only", licenseLookup{records: []licenseRecord{rec(func(r *licenseRecord) { r.First = "A" })}}, results.NeedsReview, "partially"},
		{"other name", licenseLookup{records: []licenseRecord{rec(func(r *licenseRecord) { r.Last = "Park" })}}, results.NeedsReview, "different name"},
		{"none", licenseLookup{}, results.NeedsReview, "no license A1 found in IL"},
		{"elsewhere", licenseLookup{elsewhere: []licenseRecord{rec(func(r *licenseRecord) { r.State = "WI" }), rec(func(r *licenseRecord) { r.State = "IA" })}},
			results.NeedsReview, "only found in IA, WI"},
		{"two", licenseLookup{records: []licenseRecord{rec(nil), rec(nil)}}, results.NeedsReview, "2 records"},
	} {
		got, detail := licenseOutcome(p, l, &c.lk, day)
		if got != c.want || !strings.Contains(detail, c.detail) {
			t.Errorf("%s: %s %q, want %s containing %q", c.name, got, detail, c.want, c.detail)
		}
	}
}
