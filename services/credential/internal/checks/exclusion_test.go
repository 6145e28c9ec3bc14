package checks

import (
	"testing"
	"time"

	"github.com/provcred/credential/internal/providers"
	"github.com/provcred/credential/internal/results"
	"github.com/provcred/credential/internal/sources/exclusions"
	"github.com/provcred/platform/domain"
)

// TestExclusionWeighing covers how several matched rows combine (pure: a
// row's Ended is what exclusions.Ended answered for the day, tested in
// package exclusions; the single-row rules run on real PostgreSQL in TestRules).
func TestExclusionWeighing(t *testing.T) {
	t.Parallel()
	d := func(s string) *time.Time { v, _ := time.Parse(time.DateOnly, s); return &v }
	p := &providers.Provider{NPI: "1234567893", FirstName: "Ann", LastName: "Lee", DateOfBirth: date("1970-01-02"),
		Licenses: []providers.License{{State: "IL", Number: "1"}}}
	other := "1999999999"
	byNPI := func(line int64) exclusions.Row {
		return exclusions.Row{Line: line, NPI: &p.NPI, LastNorm: "lee", FirstNorm: "ann", Record: []byte(`{}`), Digest: "d"}
	}
	byName := func(line int64, dob *time.Time) exclusions.Row {
		return exclusions.Row{Line: line, LastNorm: "lee", FirstNorm: "ann", DOB: dob, Record: []byte(`{}`), Digest: "d"}
	}
	with := func(r exclusions.Row, f func(*exclusions.Row)) exclusions.Row { f(&r); return r }
	for _, c := range []struct {
		name string
		rows []exclusions.Row
		want domain.Outcome
		line int64 // the decisive row
	}{
		{"nothing", nil, domain.Pass, 0},
		{"reinstated today", []exclusions.Row{with(byNPI(2), func(r *exclusions.Row) { r.ReinDate, r.Ended = d("2026-06-01"), "reinstated" })}, domain.Pass, 2},
		{"reinstated tomorrow", []exclusions.Row{with(byNPI(2), func(r *exclusions.Row) { r.ReinDate = d("2026-06-02") })}, domain.Fail, 2},
		{"terminated yesterday", []exclusions.Row{with(byNPI(2), func(r *exclusions.Row) { r.TerminationDate, r.Ended = d("2026-05-31"), "terminated" })}, domain.Pass, 2},
		{"reinstated row and a new exclusion", []exclusions.Row{
			with(byNPI(2), func(r *exclusions.Row) { r.ReinDate, r.Ended = d("2019-01-01"), "reinstated" }), byNPI(9)}, domain.Fail, 9},
		{"waiver and an exclusion without waiver", []exclusions.Row{
			with(byNPI(3), func(r *exclusions.Row) { r.WaiverDate = d("2021-01-01"); r.WaiverState = "IL" }), byNPI(4)}, domain.Fail, 4},
		{"reinstated by NPI, name+DOB elsewhere", []exclusions.Row{
			with(byNPI(2), func(r *exclusions.Row) { r.ReinDate, r.Ended = d("2019-01-01"), "reinstated" }), byName(7, d("1970-01-02"))}, domain.Review, 7},
		{"name+DOB with another NPI", []exclusions.Row{with(byName(5, d("1970-01-02")), func(r *exclusions.Row) { r.NPI = &other })}, domain.Review, 5},
		{"name only, other DOB", []exclusions.Row{byName(5, d("1980-01-02"))}, domain.Pass, 5},
		{"name only, no DOB on the row: possible match", []exclusions.Row{byName(5, nil)}, domain.Review, 5},
		{"waiver in a state without a license", []exclusions.Row{with(byNPI(3), func(r *exclusions.Row) { r.WaiverDate = d("2021-01-01"); r.WaiverState = "WI" })}, domain.Fail, 3},
		{"waiver in the licensed state", []exclusions.Row{with(byNPI(3), func(r *exclusions.Row) { r.WaiverDate = d("2021-01-01"); r.WaiverState = "il" })}, domain.Review, 3},
		{"waiver naming no state", []exclusions.Row{with(byNPI(3), func(r *exclusions.Row) { r.WaiverDate = d("2021-01-01") })}, domain.Review, 3},
		{"name+DOB but reinstated", []exclusions.Row{with(byName(6, d("1970-01-02")), func(r *exclusions.Row) { r.ReinDate, r.Ended = d("2020-01-01"), "reinstated" })}, domain.Pass, 6},
	} {
		got := exclusionOutcome("leie", p, c.rows, results.Evidence{Source: "leie"})
		if got.Outcome != c.want {
			t.Errorf("%s: %s (%s), want %s", c.name, got.Outcome, got.Detail, c.want)
		}
		if len(got.Evidence.Items) != len(c.rows) {
			t.Errorf("%s: %d items for %d rows", c.name, len(got.Evidence.Items), len(c.rows))
		}
		if c.line > 0 {
			found := false
			for _, it := range got.Evidence.Items {
				if it.Line == c.line && it.Outcome == c.want {
					found = true
				}
			}
			if !found {
				t.Errorf("%s: line %d is not the deciding row: %+v", c.name, c.line, got.Evidence.Items)
			}
		}
	}
}

// A row a supplement carried into the version cites the import whose file
// holds its line; a row of the version's own file cites nothing more.
func TestExclusionItemCitesTheRowsFile(t *testing.T) {
	t.Parallel()
	p := &providers.Provider{NPI: "1234567893", FirstName: "Ann", LastName: "Lee"}
	rows := []exclusions.Row{
		{Line: 7, NPI: &p.NPI, Record: []byte(`{}`), Digest: "a", FileImportID: 3},
		{Line: 2, NPI: &p.NPI, Record: []byte(`{}`), Digest: "b", FileImportID: 9},
	}
	got := exclusionOutcome("leie", p, rows, results.Evidence{Source: "leie", SourceVersion: &results.SourceVersion{ImportID: 9}})
	if it := got.Evidence.Items; len(it) != 2 || it[0].SourceVersion == nil || it[0].SourceVersion.ImportID != 3 || it[1].SourceVersion != nil {
		t.Fatalf("items %+v", it)
	}
}
