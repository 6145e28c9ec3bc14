package gen

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
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

// options are DefaultOptions for n providers with seed and the fixed asOf.
func options(n int, seed uint64) Options {
	o := DefaultOptions(n)
	o.Seed, o.AsOf = seed, asOf
	return o
}

// TestSameBytesAsBefore pins WriteAll's bytes for one seed and as-of day:
// digests of what credgen wrote for `-providers 37 -seed 9 -as-of
// 2026-11-27 -deltas -windows-1252` before DefaultOptions replaced New's
// zero-value defaults. A change to the generator's output changes them.
func TestSameBytesAsBefore(t *testing.T) {
	t.Parallel()
	o := options(37, 9)
	o.Deltas, o.Windows1252 = true, true
	paths, err := WriteAll(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"2610EXCL.csv":                        "1c6d274fd4de773a45491e7a95c50197292e5dc849fecdd7d18fe60c7c7336aa",
		"2610REIN.csv":                        "5c4c6bd28a9fc2e589a1f4a8af3b2bb07f054775f6b1b9f267264cf0b3638400",
		"UPDATED.csv":                         "0666c65ac2b5a4c2b0eddb6a895739546781ae34e4c6612b3ca252aaf36c774a",
		"expected.csv":                        "f7d27d4450e1cc11289c6030cd3d10a3b3d18d20a2430ed07f73d7a50dd12856",
		"licenses.csv":                        "e5d39c603018a6f67e5094f8e98ae23205eaf2b6b31c6db568f5c1e0ff773d45",
		"npidata_pfile.csv":                   "cf388a4f2fe1d92e5df5fd5e46e1f7d46ebd3310451a290e07f754bad420edbf",
		"npidata_pfile_20261120-20261126.csv": "978670f384714319528ad1661e612b790524e84cb51412d21d9fdb3eba3390e8",
		"providers.csv":                       "1089146fa339d648d86284e1476a44f084e8d2dd0444dcff4ba502a5b8f9d2b8",
		"sam_exclusions.csv":                  "646f5f1c28953eb33483dd7224f5309fe85350608768d26b6a381a9bac087263",
	}
	if len(paths) != len(want) {
		t.Fatalf("wrote %v, want %d files", paths, len(want))
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprintf("%x", sha256.Sum256(b)); got != want[filepath.Base(p)] {
			t.Errorf("%s: sha256 %s, want %s", filepath.Base(p), got, want[filepath.Base(p)])
		}
	}
}

// TestExtrasAsGiven: 0 unrelated rows are none (New substitutes nothing).
func TestExtrasAsGiven(t *testing.T) {
	t.Parallel()
	o := options(30, 5)
	o.NPPESExtra, o.LEIEExtra, o.SAMExtra, o.LicenseExtra = 0, 0, 0, 0
	g := New(o)
	roster := strings.Count(render(t, g.WriteNPPES), "\n") - 1 // less the header
	if roster != o.Providers {
		t.Errorf("NPPES rows %d with no extras, want one per provider (%d)", roster, o.Providers)
	}
	d := DefaultOptions(30)
	if d.NPPESExtra != 60 || d.LEIEExtra != 30 || d.SAMExtra != 15 || d.LicenseExtra != 15 || d.EdgeRate != 0.15 {
		t.Errorf("DefaultOptions(30) = %+v", d)
	}
}

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
	a := all(t, New(options(120, 7)))
	b := all(t, New(options(120, 7)))
	c := all(t, New(options(120, 8)))
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
	g := New(options(300, 1))
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
	g := New(options(200, 3))
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
	g := New(options(150, 11))
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
