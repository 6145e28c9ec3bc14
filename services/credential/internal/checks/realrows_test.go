package checks

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/provcred/credential/internal/providers"
	"github.com/provcred/credential/internal/results"
	"github.com/provcred/credential/internal/seed"
	"github.com/provcred/credential/internal/sources/importer"
	"github.com/provcred/credential/internal/sources/sourcestest"
	"github.com/provcred/platform/domain"
)

// The possible-match rule on real published rows, loaded by the real
// importer: OIG's UPDATED.csv sample (rows with and without a DOB, NPI
// 0000000000) and SAM's V2 extract (no DOB column at all; no NPIs).
func TestPossibleMatchesOnRealRows(t *testing.T) {
	t.Parallel()
	k := newKit(t)
	ctx := context.Background()
	for _, f := range []struct{ source, file, name string }{
		{"leie", "leie_psm_UPDATED_2017sample.csv", "UPDATED.csv"},
		{"sam", "sam_v2_2023_parse-samgov.csv", "SAM_Exclusions_Public_Extract_V2_23320.CSV"},
	} {
		if _, err := k.im.Import(ctx, importer.Request{Source: f.source, FileName: f.name, Actor: "test",
			Body: bytes.NewReader(sourcestest.RealData(t, f.file))}); err != nil {
			t.Fatalf("import %s: %v", f.file, err)
		}
	}
	cases := []struct {
		name, first, last, dob string
		check                  string
		outcome                domain.Outcome
		detail                 string
		decision               domain.Decision
	}{
		// "COBB","RUSSELL",...,"0000000000",,  (DOB empty in the file)
		{"LEIE row without DOB", "Russell", "Cobb", "1961-02-18", "leie", domain.Review, "no date of birth to compare: possible match", "needs_review"},
		// "AARON","CHRISTOPHER",...,"19870908"
		{"LEIE row with the same DOB", "Christopher", "Aaron", "1987-09-08", "leie", domain.Review, "date of birth but not the NPI: possible match", "needs_review"},
		{"LEIE row with the same DOB, provider's DOB unknown", "Christopher", "Aaron", "", "leie", domain.Review, "no date of birth to compare", "needs_review"},
		{"LEIE row with another DOB", "Ricky", "Acord", "1961-02-19", "leie", domain.Pass, "date of birth differs", "approved"},
		// "Individual","","","ANTONIO","","FLORES","III",... Indefinite (SAM publishes no DOB)
		{"SAM individual, no DOB published", "Antonio", "Flores", "1970-03-04", "sam", domain.Review, "possible match", "needs_review"},
		// CARLOS PIEXOTTO's exclusion terminated on 10/19/2026
		{"SAM row terminated", "Carlos", "Piexotto", "1970-03-04", "sam", domain.Pass, "terminated on 2026-10-19", "approved"},
	}
	var nppesRows []seed.NPPESRow
	var licRows []seed.LicenseRow
	ids := make([]string, len(cases))
	for i, c := range cases {
		n := seed.NPI("18880000" + string(rune('0'+i)))
		ids[i] = "real_" + n
		nppesRows = append(nppesRows, seed.NPPESRow{NPI: n, Entity: "1", Last: strings.ToUpper(c.last), First: strings.ToUpper(c.first)})
		licRows = append(licRows, seed.LicenseRow{State: "IL", Number: "R-" + n, Status: "Active", Expiry: future, Last: c.last, First: c.first, NPI: n})
		var born *providers.Date
		if c.dob != "" {
			born = date(c.dob)
		}
		k.create(&providers.Provider{ID: ids[i], NPI: n, FirstName: c.first, LastName: c.last, DateOfBirth: born,
			Licenses: lic("IL", "R-"+n)})
	}
	k.importCSV("nppes", seed.NPPES(nppesRows...))
	k.importCSV("licenses", seed.Licenses(licRows...))
	e := k.engine(Options{})
	for i, c := range cases {
		run, err := e.Credential(ctx, ids[i], RunOptions{Actor: "tester"})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if c.name == "SAM row terminated" && run.StartedAt.Before(mustDate("2026-10-19")) {
			continue // the clock has not reached the termination yet
		}
		var got results.Check
		for _, ch := range run.Checks {
			if ch.Check == c.check {
				got = ch
			}
		}
		if got.Outcome != c.outcome || !strings.Contains(got.Detail, c.detail) || run.Decision != c.decision {
			t.Errorf("%s: %s %s %q, want %s %s containing %q", c.name, run.Decision, got.Outcome, got.Detail, c.decision, c.outcome, c.detail)
		}
		if c.outcome == domain.Review && (len(got.Evidence.Digest) != 64 || got.Evidence.SourceVersion == nil) {
			t.Errorf("%s: a possible match cites no row: %+v", c.name, got.Evidence)
		}
	}
}

func mustDate(s string) time.Time { return must(time.Parse(time.DateOnly, s)) }
