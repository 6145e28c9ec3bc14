package gen

import (
	"bytes"
	"context"
	"encoding/csv"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/provcred/credential/internal/names"
	"github.com/provcred/credential/internal/npi"
	"github.com/provcred/credential/internal/providers"
	"github.com/provcred/credential/internal/sources"
	"github.com/provcred/credential/internal/sources/importer"
	"github.com/provcred/credential/internal/sources/leie"
	"github.com/provcred/credential/internal/sources/licenses"
	"github.com/provcred/credential/internal/sources/nppes"
	"github.com/provcred/credential/internal/sources/sam"
	"github.com/provcred/credential/internal/sources/sourcestest"
	"github.com/provcred/credential/internal/testdb"
)

var asOf = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)

func render(t *testing.T, write func(io.Writer) error) string {
	t.Helper()
	var b bytes.Buffer
	if err := write(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func all(t *testing.T, g *Generator) map[string]string {
	return map[string]string{
		"roster": render(t, g.WriteRoster), "expected": render(t, g.WriteExpected), "nppes": render(t, g.WriteNPPES),
		"leie": render(t, g.WriteLEIE), "sam": render(t, g.WriteSAM), "licenses": render(t, g.WriteLicenses),
	}
}

func TestDeterministic(t *testing.T) {
	t.Parallel()
	a := all(t, New(Options{Providers: 120, Seed: 7, AsOf: asOf}))
	b := all(t, New(Options{Providers: 120, Seed: 7, AsOf: asOf}))
	c := all(t, New(Options{Providers: 120, Seed: 8, AsOf: asOf}))
	for k := range a {
		if a[k] != b[k] {
			t.Errorf("%s differs between two runs with the same seed", k)
		}
		if a[k] == c[k] {
			t.Errorf("%s is the same for another seed", k)
		}
	}
}

func TestRosterIsValid(t *testing.T) {
	t.Parallel()
	g := New(Options{Providers: 300, Seed: 1, AsOf: asOf})
	recs, err := csv.NewReader(strings.NewReader(render(t, g.WriteRoster))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(recs[0], ",") != "id,npi,first_name,middle_name,last_name,suffix,date_of_birth,specialty,taxonomy_code,license_state,license_number,license_type,license_expires_on,dea_number" {
		t.Fatalf("header %v", recs[0])
	}
	seenNPI, seenName := map[string]bool{}, map[string]bool{}
	for _, r := range recs[1:] {
		if err := npi.Validate(r[1]); err != nil || seenNPI[r[1]] {
			t.Errorf("%s: NPI %s invalid or repeated: %v", r[0], r[1], err)
		}
		seenNPI[r[1]] = true
		if dea := r[13]; dea != "" && !providers.ValidDEA(dea) {
			t.Errorf("%s: DEA %s invalid", r[0], dea)
		}
		if _, err := time.Parse("2006-01-02", r[6]); err != nil {
			t.Errorf("%s: dob %q", r[0], r[6])
		}
		k := names.Part(r[4]) + "|" + names.Part(r[2])
		if seenName[k] {
			t.Errorf("%s: name %s repeated", r[0], k)
		}
		seenName[k] = true
	}
	counts := map[Case]int{}
	for _, p := range g.Providers {
		counts[p.Case]++
	}
	for _, c := range edgeCases {
		if counts[c] == 0 {
			t.Errorf("no provider has case %s", c)
		}
	}
}

func TestFilesParse(t *testing.T) {
	t.Parallel()
	g := New(Options{Providers: 200, Seed: 3, AsOf: asOf})
	files := all(t, g)
	for name, f := range map[string]sources.Format{"nppes": nppes.BulkFormat{}, "leie": leie.Format{}, "sam": sam.Format{}, "licenses": licenses.Format{}} {
		rows, err := sourcestest.ParseAll(f, files[name])
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if len(rows) == 0 {
			t.Errorf("%s: no rows", name)
		}
	}
	if first := strings.SplitN(files["nppes"], "\n", 2)[0]; strings.Count(first, `","`) != 329 {
		t.Errorf("NPPES header has %d columns, want 330", strings.Count(first, `","`)+1)
	}
	for _, line := range strings.Split(strings.TrimSpace(files["leie"]), "\r\n")[1:] {
		if !strings.HasPrefix(line, `"`) || !strings.HasSuffix(line, `"`) || strings.Count(line, `","`) != 17 {
			t.Fatalf("LEIE line not fully quoted: %s", line)
		}
	}
}

// TestEdgeCasesInTheDatabase imports the generated files and checks, through
// the engine's views, that each seeded case is what expected.csv says it is.
func TestEdgeCasesInTheDatabase(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.New(t)
	ctx := context.Background()
	g := New(Options{Providers: 150, Seed: 11, AsOf: asOf})
	files := all(t, g)
	im := importer.New(pool, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for src, key := range map[string]string{sources.NPPES: "nppes", sources.LEIE: "leie", sources.SAM: "sam", sources.Licenses: "licenses"} {
		if _, err := im.Import(ctx, importer.Request{Source: src, Body: strings.NewReader(files[key])}); err != nil {
			t.Fatalf("import %s: %v", src, err)
		}
	}
	q := func(sql string, args ...any) int {
		var n int
		if err := pool.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return n
	}
	today := asOf
	for _, p := range g.Providers {
		byNPI := q(`SELECT count(*) FROM active_exclusions WHERE npi = $1
			AND (rein_date IS NULL OR rein_date > $2) AND (waiver_date IS NULL OR waiver_date > $2)
			AND (termination_date IS NULL OR termination_date > $2)`, p.NPI, today)
		byName := q(`SELECT count(*) FROM active_exclusions WHERE npi IS NULL AND last_norm = $1 AND first_norm = $2 AND dob = $3`,
			names.Part(p.Last), names.Part(p.First), p.DOB)
		lic := q(`SELECT count(*) FROM active_licenses WHERE state = $1 AND license_number = $2 AND status = 'active' AND expiry_date >= $3`,
			p.LicenseState, p.LicenseNumber, today)
		licAnywhere := q(`SELECT count(*) FROM active_licenses WHERE license_number = $1`, p.LicenseNumber)
		rec, _, err := nppes.Table{DB: pool}.Lookup(ctx, p.NPI)
		if err != nil {
			t.Fatalf("%s: NPPES lookup: %v", p.ID, err)
		}
		nameOK := names.Compare(names.Name{First: p.First, Middle: p.Middle, Last: p.Last, Suffix: p.Suffix},
			names.Name{First: rec.FirstName, Middle: rec.MiddleName, Last: rec.LastName, Suffix: rec.NameSuffix}) == names.Exact
		excluded := byNPI > 0
		wantExcluded := p.Case == ExcludedLEIE || p.Case == ExcludedSAM
		if excluded != wantExcluded {
			t.Errorf("%s (%s): excluded by NPI = %v", p.ID, p.Case, excluded)
		}
		if (byName > 0) != (p.Case == LEIENameDOB) {
			t.Errorf("%s (%s): name+DOB matches %d", p.ID, p.Case, byName)
		}
		wantLic := p.Case != LicenseExpired && p.Case != LicenseRevoked && p.Case != LicenseOtherState
		if (lic == 1) != wantLic || licAnywhere != 1 {
			t.Errorf("%s (%s): active license in claimed state %d, anywhere %d", p.ID, p.Case, lic, licAnywhere)
		}
		if rec.Active() != (p.Case != NPIDeactivated) {
			t.Errorf("%s (%s): NPPES active = %v", p.ID, p.Case, rec.Active())
		}
		if p.Case != NPIDeactivated && (!nameOK || !rec.Individual()) {
			t.Errorf("%s (%s): roster name %q %q %q does not match NPPES %q %q %q", p.ID, p.Case,
				p.First, p.Middle, p.Last, rec.FirstName, rec.MiddleName, rec.LastName)
		}
	}
}
