package importer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/provcred/credential/internal/config"
	"github.com/provcred/credential/internal/gen"
	"github.com/provcred/credential/internal/monitor"
	"github.com/provcred/credential/internal/sources"
	"github.com/provcred/credential/internal/sources/nppes"
	"github.com/provcred/credential/internal/sources/sourcestest"
	"github.com/provcred/platform/metrics"
)

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// lines splits a file into its physical lines, each with its line ending.
func lines(b []byte) [][]byte { return bytes.SplitAfter(b, []byte("\n")) }

// leieKey is the test's own account of one exclusion (names, NPI, date of
// birth, type, date, trimmed), independent of the importer's SQL.
func leieKey(f []string) string {
	k := make([]string, 0, 8)
	for _, i := range []int{0, 1, 2, 3, 7, 8, 13, 14} {
		k = append(k, strings.TrimSpace(f[i]))
	}
	return strings.Join(k, "|")
}

func parseCSV(t *testing.T, b []byte) [][]string {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs[1:]
}

// oldStyle writes an LEIE row the way the 2017 files do: empty fields
// unquoted, the others quoted as they are (padding kept), CRLF.
func oldStyle(f []string) []byte {
	var b strings.Builder
	for i, v := range f {
		if i > 0 {
			b.WriteByte(',')
		}
		if v != "" {
			b.WriteString(`"` + strings.ReplaceAll(v, `"`, `""`) + `"`)
		}
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}

// activeDigests maps the digest of every row of the active LEIE version to
// (file import, line).
func activeDigests(t *testing.T, pool *pgxpool.Pool) map[string][2]int64 {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT digest, file_import_id, line FROM active_exclusions WHERE source = 'leie'`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][2]int64{}
	for rows.Next() {
		var d string
		var id, line int64
		if err := rows.Scan(&d, &id, &line); err != nil {
			t.Fatal(err)
		}
		out[d] = [2]int64{id, line}
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	return out
}

// The monthly reinstatement supplements OIG published for January to April
// 2017, applied in order to the May 2017 UPDATED.csv sample, remove exactly
// the reinstated rows it holds and nothing else; applied to a list as it
// stood before those reinstatements (the sample with each reinstated row
// spliced back in with its REINDATE blank), they remove exactly those rows.
// Every row's digest is its line's as it stands in the file.
func TestLEIEReinstatementSupplementsOnTheRealSample(t *testing.T) {
	t.Parallel()
	sample := sourcestest.RealData(t, "leie_psm_UPDATED_2017sample.csv")
	months := []string{"1701", "1702", "1703", "1704"}
	supps := map[string][]byte{}
	reinKeys := map[string]bool{}
	for _, m := range months {
		supps[m] = sourcestest.RealData(t, "leie_psm_"+m+"REIN.csv")
		for _, f := range parseCSV(t, supps[m]) {
			reinKeys[leieKey(f)] = true
		}
	}
	for _, spliced := range []bool{false, true} {
		t.Run(fmt.Sprintf("spliced=%v", spliced), func(t *testing.T) {
			t.Parallel()
			im, pool := newImporter(t)
			ctx := context.Background()
			var hooked []int64
			im.OnExclusionsImported = monitor.New(pool, metrics.New("credential"), im.Log).Hook
			hook := im.OnExclusionsImported
			im.OnExclusionsImported = func(ctx context.Context, s string, id int64) error {
				hooked = append(hooked, id)
				return hook(ctx, s, id)
			}
			file := slices.Clone(sample)
			if spliced {
				for _, m := range months {
					for _, f := range parseCSV(t, supps[m]) {
						f[15] = "00000000" // REINDATE, as the row stood before
						file = append(file, oldStyle(f)...)
					}
				}
			}
			// The expected removals, found by the test's own key.
			fileLines := lines(file)
			wantGone := map[string]bool{}
			for i, f := range parseCSV(t, file) {
				if reinKeys[leieKey(f)] {
					wantGone[sha(fileLines[i+1])] = true
				}
			}
			// What the files hold: the May sample none of the 178 reinstated
			// rows (OIG had dropped them), the spliced list all of them.
			if want := map[bool]int{false: 0, true: 178}[spliced]; len(wantGone) != want {
				t.Fatalf("the list holds %d reinstated rows, want %d", len(wantGone), want)
			}
			full, err := im.Import(ctx, Request{Source: sources.LEIE, FileName: "UPDATED.csv", Body: bytes.NewReader(file)})
			if err != nil {
				t.Fatal(err)
			}
			before := activeDigests(t, pool)
			if int64(len(before)) != full.Rows || full.Kind != sources.KindFull {
				t.Fatalf("full list: %d distinct digests, record %+v", len(before), full)
			}
			for d, at := range before { // the digest recipe: sed -n '<line>p' UPDATED.csv | sha256sum
				if d != sha(fileLines[at[1]-1]) || at[0] != full.ID {
					t.Fatalf("row at line %d: digest %s is not its line's", at[1], d)
				}
			}
			ids := []int64{full.ID}
			var removed int64
			for _, m := range months {
				name := m + "REIN.csv"
				rec, err := im.Import(ctx, Request{Source: sources.LEIE, FileName: name, Body: bytes.NewReader(supps[m])})
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				n := int64(len(parseCSV(t, supps[m])))
				if rec.Kind != sources.KindSupplement || rec.Status != "active" || rec.FileRows != n || rec.Changes == nil ||
					rec.Changes.Added != 0 || rec.Changes.Replaced != 0 || rec.Changes.Removed+rec.Changes.Unmatched != n ||
					rec.FileDate == nil || rec.FileDate.Format("0601") != m || *rec.Replaced != ids[len(ids)-1] {
					t.Fatalf("%s: record %+v changes %+v", name, rec, rec.Changes)
				}
				removed += rec.Changes.Removed
				ids = append(ids, rec.ID)
			}
			if removed != int64(len(wantGone)) {
				t.Errorf("the supplements removed %d rows, want %d", removed, len(wantGone))
			}
			after := activeDigests(t, pool)
			for d, at := range before {
				_, kept := after[d]
				if kept == wantGone[d] {
					t.Errorf("row at line %d: kept %v, want %v", at[1], kept, !wantGone[d])
				}
				if kept && after[d] != at {
					t.Errorf("row at line %d now cites import %d line %d, want the file it is in", at[1], after[d][0], after[d][1])
				}
			}
			if len(after) != len(before)-len(wantGone) {
				t.Errorf("%d rows after, want %d", len(after), len(before)-len(wantGone))
			}
			// The history keeps each removed row and the line that removed it.
			rows, err := pool.Query(ctx, `SELECT c.import_id, c.line, c.digest, c.old_import_id, c.old_digest
				FROM source_delta_changes c WHERE c.change = 'removed' ORDER BY c.import_id, c.line`)
			if err != nil {
				t.Fatal(err)
			}
			gone := 0
			for rows.Next() {
				var id, line int64
				var oldID *int64
				var dg, oldDg string
				if err := rows.Scan(&id, &line, &dg, &oldID, &oldDg); err != nil {
					t.Fatal(err)
				}
				m := months[slices.Index(ids, id)-1]
				if !wantGone[oldDg] || oldID == nil || *oldID != full.ID || dg != sha(lines(supps[m])[line-1]) {
					t.Errorf("history: %s line %d (%s) removed %s from import %v", m, line, dg, oldDg, oldID)
				}
				gone++
			}
			if gone != len(wantGone) {
				t.Errorf("history holds %d removals, want %d", gone, len(wantGone))
			}
			if !slices.Equal(hooked, ids) {
				t.Errorf("re-screens after %v, want after every version %v", hooked, ids)
			}
		})
	}
}

func insertProvider(t *testing.T, pool *pgxpool.Pool, p gen.Provider) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), `INSERT INTO providers (id, npi, first_name, last_name) VALUES ($1, $2, $3, $4)`,
		p.ID, p.NPI, p.First, p.Last); err != nil {
		t.Fatal(err)
	}
}

// A generated month: the exclusion supplement adds its rows (and the
// re-screen flags the roster providers it lists), the reinstatement
// supplement removes the excluded providers' rows.
func TestLEIESupplementsGenerated(t *testing.T) {
	t.Parallel()
	im, pool := newImporter(t)
	ctx := context.Background()
	im.OnExclusionsImported = monitor.New(pool, metrics.New("credential"), im.Log).Hook
	g := gen.New(genOptions(200, 5))
	newly, reinstated := g.NewlyExcluded(), g.Reinstated()
	if len(newly) < 2 || len(reinstated) < 1 {
		t.Fatalf("%d newly excluded, %d reinstated: the generator chose too few", len(newly), len(reinstated))
	}
	for _, p := range append(slices.Clone(newly), reinstated...) {
		insertProvider(t, pool, p)
	}
	full, err := im.Import(ctx, Request{Source: sources.LEIE, FileName: gen.FileLEIE, Body: strings.NewReader(render(t, g.WriteLEIE))})
	if err != nil {
		t.Fatal(err)
	}
	excl := render(t, g.WriteLEIEExclusions)
	rec, err := im.Import(ctx, Request{Source: sources.LEIE, FileName: g.SupplementName("EXCL"), Body: strings.NewReader(excl)})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Kind != sources.KindSupplement || rec.FileName != "2610EXCL.csv" || rec.FileDate.Format("2006-01-02") != "2026-10-01" ||
		*rec.Changes != (Changes{Added: int64(len(newly))}) || rec.Rows != full.Rows+int64(len(newly)) || rec.HookError != "" {
		t.Fatalf("exclusion supplement: %+v %+v (full %d rows)", rec, rec.Changes, full.Rows)
	}
	exclLines := lines([]byte(excl))
	for _, p := range newly {
		var dg string
		var id, line int64
		if err := pool.QueryRow(ctx, `SELECT digest, file_import_id, line FROM active_exclusions WHERE npi = $1`, p.NPI).Scan(&dg, &id, &line); err != nil {
			t.Fatalf("%s: %v", p.ID, err)
		}
		if id != rec.ID || dg != sha(exclLines[line-1]) {
			t.Errorf("%s: row cites import %d line %d digest %s", p.ID, id, line, dg)
		}
		// The delta version triggered the re-screen, which flagged the provider.
		if n := count(t, pool, `SELECT count(*) FROM providers p JOIN audit_log a ON a.provider_id = p.id
			WHERE p.id = $1 AND p.exclusion_flagged_at IS NOT NULL AND a.event = 'provider.exclusion_flagged'
			AND (a.after->>'import_id')::bigint = $2`, p.ID, rec.ID); n != 1 {
			t.Errorf("%s not flagged by the re-screen after the supplement", p.ID)
		}
	}
	// Applying it again changes nothing but replaces its own rows.
	again, err := im.Import(ctx, Request{Source: sources.LEIE, FileName: g.SupplementName("EXCL"), Body: strings.NewReader(excl)})
	if err != nil || *again.Changes != (Changes{Replaced: int64(len(newly))}) || again.Rows != rec.Rows {
		t.Fatalf("the same supplement again: %+v, %v", again, err)
	}

	rein, err := im.Import(ctx, Request{Source: sources.LEIE, FileName: g.SupplementName("REIN"),
		Body: strings.NewReader(render(t, g.WriteLEIEReinstatements))})
	if err != nil {
		t.Fatal(err)
	}
	if *rein.Changes != (Changes{Removed: int64(len(reinstated))}) || rein.Rows != again.Rows-int64(len(reinstated)) {
		t.Fatalf("reinstatement supplement: %+v %+v", rein, rein.Changes)
	}
	for _, p := range reinstated {
		if n := count(t, pool, `SELECT count(*) FROM active_exclusions WHERE npi = $1`, p.NPI); n != 0 {
			t.Errorf("%s: still listed after its reinstatement", p.ID)
		}
		if n := count(t, pool, `SELECT count(*) FROM source_delta_changes WHERE import_id = $1 AND npi = $2 AND change = 'removed'
			AND old_import_id = $3 AND old_record::jsonb->>'REINDATE' = '00000000' AND record::jsonb->>'REINDATE' <> '00000000'`,
			rein.ID, p.NPI, full.ID); n != 1 {
			t.Errorf("%s: the removal is not in the history", p.ID)
		}
	}
	if n := count(t, pool, `SELECT count(*) FROM audit_log WHERE event = 'import.activated' AND after->>'kind' = 'supplement'
		AND (after->'changes'->>'removed')::int = $1`, len(reinstated)); n != 1 {
		t.Error("the reinstatement supplement's activation is not audited with its changes")
	}
}

// A generated week: the NPPES increment deactivates NPIs and adds one; the
// rows it does not name stay as the full file had them.
func TestNPPESIncrementGenerated(t *testing.T) {
	t.Parallel()
	im, pool := newImporter(t)
	ctx := context.Background()
	g := gen.New(genOptions(150, 9))
	deact := g.NewlyDeactivated()
	if len(deact) < 2 {
		t.Fatalf("%d NPIs deactivated: the generator chose too few", len(deact))
	}
	full, err := im.Import(ctx, Request{Source: sources.NPPES, FileName: "npidata_pfile_20050523-20261115.csv",
		Body: strings.NewReader(render(t, g.WriteNPPES))})
	if err != nil || full.Kind != sources.KindFull {
		t.Fatalf("full file: %+v, %v", full, err)
	}
	lk := nppes.Table{DB: pool}
	for _, p := range deact {
		if r, _, err := lk.Lookup(ctx, p.NPI); err != nil || !r.Active() {
			t.Fatalf("%s before the increment: %+v, %v", p.ID, r, err)
		}
	}
	week := render(t, g.WriteNPPESIncrement)
	rec, err := im.Import(ctx, Request{Source: sources.NPPES, FileName: g.IncrementName(), Body: strings.NewReader(week)})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Kind != sources.KindIncrement || *rec.Changes != (Changes{Added: 1, Replaced: int64(len(deact))}) ||
		rec.Rows != full.Rows+1 || rec.FileDate.Format("2006-01-02") != "2026-11-26" {
		t.Fatalf("increment: %+v %+v", rec, rec.Changes)
	}
	weekLines := lines([]byte(week))
	for _, p := range deact {
		r, _, err := lk.Lookup(ctx, p.NPI)
		if err != nil || r.Active() || r.ImportID != rec.ID {
			t.Fatalf("%s after the increment: %+v, %v", p.ID, r, err)
		}
		var line, fileID int64
		if err := pool.QueryRow(ctx, `SELECT line, file_import_id FROM active_nppes WHERE npi = $1`, p.NPI).Scan(&line, &fileID); err != nil {
			t.Fatal(err)
		}
		if fileID != rec.ID || r.Digest != sha(weekLines[line-1]) {
			t.Errorf("%s: cites import %d line %d, digest %s", p.ID, fileID, line, r.Digest)
		}
	}
	// Everyone else is as the full file listed them.
	if n := count(t, pool, `SELECT count(*) FROM active_nppes WHERE file_import_id = $1`, full.ID); int64(n) != full.Rows-int64(len(deact)) {
		t.Errorf("%d rows from the full file, want %d", n, full.Rows-int64(len(deact)))
	}
	if n := count(t, pool, `SELECT count(*) FROM source_delta_changes WHERE import_id = $1 AND change = 'replaced' AND old_import_id = $2`,
		rec.ID, full.ID); n != len(deact) {
		t.Errorf("%d replaced rows in the history, want %d", n, len(deact))
	}
	// An NPI twice in the week's file is refused at its second listing.
	twice := week + string(weekLines[1])
	_, err = im.Import(ctx, Request{Source: sources.NPPES, FileName: g.IncrementName(), Body: strings.NewReader(twice)})
	var le *sources.LineError
	if !errors.As(err, &le) || le.Line != int64(len(weekLines)) || !strings.Contains(le.Reason, "already listed on line 2") {
		t.Fatalf("an NPI twice in an increment: %v", err)
	}
}

// A full list much shorter than the active version is refused (409 at the
// edge) and recorded, unless allowed; the threshold is a setting.
func TestShrinkGuard(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		ratio   float64
		rows    int
		allow   bool
		refused bool
	}{
		{"to 4 of 10", config.Defaults().ImportShrinkMinRatio, 4, false, true},
		{"to 4 of 10, allowed", config.Defaults().ImportShrinkMinRatio, 4, true, false},
		{"to 5 of 10", config.Defaults().ImportShrinkMinRatio, 5, false, false},
		{"to 4 of 10, threshold 30%", 0.3, 4, false, false},
		{"to 2 of 10, threshold 30%", 0.3, 2, false, true},
		{"to 1 of 10, guard off", 0, 1, false, false},
		{"growing", config.Defaults().ImportShrinkMinRatio, 30, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			im, pool := newImporter(t)
			im.ShrinkRatio = tt.ratio
			ctx := context.Background()
			first, err := im.Import(ctx, Request{Source: sources.LEIE, Body: strings.NewReader(leieFile(10, "OLD"))})
			if err != nil {
				t.Fatal(err)
			}
			rec, err := im.Import(ctx, Request{Source: sources.LEIE, AllowShrink: tt.allow, Body: strings.NewReader(leieFile(tt.rows, "NEW"))})
			var se *ShrinkError
			if got := errors.As(err, &se); got != tt.refused {
				t.Fatalf("err = %v, want refused %v", err, tt.refused)
			}
			active, _ := sources.ActiveVersion(ctx, pool, sources.LEIE)
			if !tt.refused {
				if err != nil || active.ImportID != rec.ID {
					t.Fatalf("err %v, active %d", err, active.ImportID)
				}
				return
			}
			if se.Rows != int64(tt.rows) || se.ActiveRows != 10 || !strings.Contains(se.Error(), fmt.Sprintf("%d rows, the active version 10", tt.rows)) {
				t.Errorf("refusal %v", se)
			}
			if rec.Status != "failed" || rec.Error != se.Error() || rec.FileRows != int64(tt.rows) || active.ImportID != first.ID {
				t.Errorf("refused import record %+v; active %d", rec, active.ImportID)
			}
			if n := metric(t, im, "credential_source_imports_total", "source=leie", "outcome=shrink_refused"); n != 1 {
				t.Errorf("shrink_refused metric %v", n)
			}
		})
	}
}

// What a file is comes from its published name or the request; when they
// disagree, or the rows contradict the name, the file is refused.
func TestFileKinds(t *testing.T) {
	t.Parallel()
	rein := leieHeader + strings.Replace(leieRow("A", "B", "", "20200101"), `"20200101","00000000"`, `"20200101","20210101"`, 1)
	if rein == leieHeader+leieRow("A", "B", "", "20200101") {
		t.Fatal("test row has no REINDATE")
	}
	tests := []struct {
		name, source, fileName, kind, file string
		wantKind                           string
		wantErr                            string // KindError, LineError reason, ErrNoBase or a parameter error
	}{
		{name: "supplement by name", source: sources.LEIE, fileName: "1701REIN.csv", file: rein, wantKind: sources.KindSupplement},
		{name: "supplement by name, lower case", source: sources.LEIE, fileName: `C:\oig\1701excl.CSV`, file: leieFile(1, "N"), wantKind: sources.KindSupplement},
		{name: "supplement by parameter", source: sources.LEIE, fileName: "leie.csv", kind: "supplement", file: rein, wantKind: sources.KindSupplement},
		{name: "reinstatement supplement sent as the full list", source: sources.LEIE, fileName: "1701REIN.csv", kind: "full", file: rein,
			wantErr: `"1701REIN.csv" is a supplement file, but the upload says kind=full`},
		{name: "full list sent as a supplement", source: sources.LEIE, fileName: "UPDATED.csv", kind: "supplement", file: leieFile(1, "N"),
			wantErr: `"UPDATED.csv" is a full file, but the upload says kind=supplement`},
		{name: "reinstatements under the full list's name", source: sources.LEIE, fileName: "UPDATED.csv", file: rein,
			wantErr: "line 2: every row has a REINDATE"},
		{name: "a reinstatement in an exclusion supplement", source: sources.LEIE, fileName: "1701EXCL.csv",
			file: leieFile(1, "N") + strings.TrimPrefix(rein, leieHeader), wantErr: "line 3: the row has a REINDATE"},
		{name: "an exclusion in a reinstatement supplement", source: sources.LEIE, fileName: "1701REIN.csv",
			file: rein + strings.TrimPrefix(leieFile(1, "N"), leieHeader), wantErr: "line 3: the row has no REINDATE"},
		{name: "weekly NPPES by name", source: sources.NPPES, fileName: "npidata_pfile_20241007-20241013.csv",
			file: nppesHeader + `"1234567893","1","SMITH","JOHN","","","","","","","","","",""` + "\n", wantKind: sources.KindIncrement},
		{name: "monthly NPPES sent as an increment", source: sources.NPPES, fileName: "npidata_pfile_20050523-20241013.csv", kind: "increment",
			file: nppesHeader, wantErr: "is a full file, but the upload says kind=increment"},
		{name: "SAM has no supplements", source: sources.SAM, kind: "supplement", file: "x", wantErr: `kind "supplement" is not one of full for sam`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			im, pool := newImporter(t)
			ctx := context.Background()
			// The base each delta applies to.
			if _, err := im.Import(ctx, Request{Source: sources.LEIE, FileName: "UPDATED.csv", Body: strings.NewReader(leieFile(2, "BASE"))}); err != nil {
				t.Fatal(err)
			}
			if _, err := im.Import(ctx, Request{Source: sources.NPPES, Body: strings.NewReader(nppesHeader +
				`"1000000004","1","A","B","","","","","","","","","",""` + "\n")}); err != nil {
				t.Fatal(err)
			}
			before := count(t, pool, `SELECT count(*) FROM source_imports`)
			rec, err := im.Import(ctx, Request{Source: tt.source, FileName: tt.fileName, Kind: tt.kind, Body: strings.NewReader(tt.file)})
			if tt.wantErr == "" {
				if err != nil || rec.Kind != tt.wantKind || rec.Status != "active" {
					t.Fatalf("record %+v, err %v", rec, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want …%s…", err, tt.wantErr)
			}
			var ke *KindError
			var le *sources.LineError
			if errors.As(err, &ke) || errors.As(err, &le) {
				if rec == nil || rec.Status != "failed" || rec.Error != err.Error() {
					t.Errorf("refusal not recorded: %+v", rec)
				}
			} else if n := count(t, pool, `SELECT count(*) FROM source_imports`); n != before {
				t.Errorf("a bad parameter was recorded as an attempt")
			}
		})
	}
}

func TestDeltaNeedsAnActiveVersion(t *testing.T) {
	t.Parallel()
	im, _ := newImporter(t)
	rec, err := im.Import(context.Background(), Request{Source: sources.LEIE, FileName: "1701EXCL.csv", Body: strings.NewReader(leieFile(1, "N"))})
	if !errors.Is(err, ErrNoBase) || rec.Status != "failed" {
		t.Fatalf("err %v, record %+v", err, rec)
	}
}

// A license roster saved by an old Windows tool (Windows-1252, a DOS
// end-of-file byte) loads with its accented names intact, and the record
// says it was transcoded.
func TestWindows1252Import(t *testing.T) {
	t.Parallel()
	im, pool := newImporter(t)
	ctx := context.Background()
	g := gen.New(genOptions(300, 2))
	var b bytes.Buffer
	w := gen.Windows1252(&b)
	if err := g.WriteLicenses(w); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(b.Bytes(), []byte{0x1a}) || bytes.Equal(b.Bytes()[:b.Len()-1], []byte(render(t, g.WriteLicenses))) {
		t.Fatal("the generated file is not a Windows-1252 file with a DOS end-of-file byte")
	}
	rec, err := im.Import(ctx, Request{Source: sources.Licenses, Body: &b})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Encoding != sources.EncodingWindows1252 {
		t.Errorf("encoding %q", rec.Encoding)
	}
	accented := 0
	for _, p := range g.Providers {
		if !isASCII(p.SrcLast + p.SrcFirst) {
			var last, first string
			if err := pool.QueryRow(ctx, `SELECT last_name, first_name FROM active_licenses WHERE license_number = $1`,
				p.LicenseNumber).Scan(&last, &first); err != nil {
				t.Fatal(err)
			}
			if last != p.SrcLast || first != p.SrcFirst {
				t.Errorf("%s: stored %q %q, want %q %q", p.ID, first, last, p.SrcFirst, p.SrcLast)
			}
			accented++
		}
	}
	if accented == 0 {
		t.Fatal("no accented name in the roster: nothing was checked")
	}
	if n := count(t, pool, `SELECT count(*) FROM active_licenses WHERE position(U&'\FFFD' IN last_name || first_name || record::text) > 0`); n != 0 {
		t.Errorf("%d rows hold U+FFFD", n)
	}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// An import a crash interrupted stays 'loading' in the table; at start-up
// Reconcile marks it failed, but never one a live process is loading.
func TestReconcileInterruptedImports(t *testing.T) {
	t.Parallel()
	im, pool := newImporter(t)
	ctx := context.Background()
	var crashed int64
	if err := pool.QueryRow(ctx, `INSERT INTO source_imports (source, file_name, started_at) VALUES ('sam', 'SAM.csv', now() - interval '1 hour')
		RETURNING id`).Scan(&crashed); err != nil {
		t.Fatal(err)
	}
	br := &blockingReader{head: strings.NewReader(leieHeader + leieRow("A", "B", "", "")), started: make(chan struct{}),
		release: make(chan struct{}), rest: strings.NewReader(leieRow("C", "D", "", ""))}
	done := make(chan *Record, 1)
	go func() {
		rec, err := im.Import(ctx, Request{Source: sources.LEIE, Body: br})
		if err != nil {
			t.Error(err)
		}
		done <- rec
	}()
	<-br.started
	n, err := im.Reconcile(ctx)
	if err != nil || n != 1 {
		t.Fatalf("reconciled %d, %v; want the crashed one only", n, err)
	}
	rec, err := im.Get(ctx, crashed)
	if err != nil || rec.Status != "failed" || rec.Error != "interrupted" || rec.FinishedAt == nil {
		t.Fatalf("crashed import: %+v, %v", rec, err)
	}
	close(br.release)
	if live := <-done; live == nil || live.Status != "active" {
		t.Fatalf("the live import: %+v", live)
	}
	if n, err := im.Reconcile(ctx); err != nil || n != 0 {
		t.Fatalf("second reconcile: %d, %v", n, err)
	}
}

// activated_at and finished_at are when the import ended, not when its
// transaction began.
func TestActivationTimeIsTheRealClock(t *testing.T) {
	t.Parallel()
	im, _ := newImporter(t)
	br := &blockingReader{head: strings.NewReader(leieHeader + leieRow("A", "B", "", "")), started: make(chan struct{}),
		release: make(chan struct{}), rest: strings.NewReader(leieRow("C", "D", "", ""))}
	go func() {
		<-br.started
		time.Sleep(1200 * time.Millisecond)
		close(br.release)
	}()
	rec, err := im.Import(context.Background(), Request{Source: sources.LEIE, Body: br})
	if err != nil {
		t.Fatal(err)
	}
	if rec.ActivatedAt.Sub(rec.StartedAt) < time.Second || rec.FinishedAt.Sub(rec.StartedAt) < time.Second {
		t.Errorf("started %v, activated %v, finished %v: the load took over a second", rec.StartedAt, rec.ActivatedAt, rec.FinishedAt)
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

// The incidents the guard exists for, on generated and real files: a full
// list cut to a third of its rows, and the real 13-row reinstatement
// supplement sent as the full 335-row list under a neutral name (it once
// replaced the list). Neither replaces the active version.
func TestShrunkListsAreRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("generated list cut short", func(t *testing.T) {
		t.Parallel()
		im, pool := newImporter(t)
		g := gen.New(genOptions(300, 4))
		file := render(t, g.WriteLEIE)
		full, err := im.Import(ctx, Request{Source: sources.LEIE, FileName: "UPDATED.csv", Body: strings.NewReader(file)})
		if err != nil {
			t.Fatal(err)
		}
		ls := lines([]byte(file))
		cut := string(bytes.Join(ls[:len(ls)/3], nil))
		rec, err := im.Import(ctx, Request{Source: sources.LEIE, FileName: "UPDATED.csv", Body: strings.NewReader(cut)})
		var se *ShrinkError
		if !errors.As(err, &se) || se.ActiveRows != full.Rows || se.Rows != int64(len(ls)/3-1) || rec.Status != "failed" {
			t.Fatalf("cut list: %v, record %+v", err, rec)
		}
		if v, _ := sources.ActiveVersion(ctx, pool, sources.LEIE); v.ImportID != full.ID {
			t.Errorf("active version %d, want %d", v.ImportID, full.ID)
		}
	})
	t.Run("real supplement as the full list", func(t *testing.T) {
		t.Parallel()
		im, pool := newImporter(t)
		full, err := im.Import(ctx, Request{Source: sources.LEIE, FileName: "UPDATED.csv",
			Body: bytes.NewReader(sourcestest.RealData(t, "leie_psm_UPDATED_2017sample.csv"))})
		if err != nil {
			t.Fatal(err)
		}
		rein := sourcestest.RealData(t, "leie_psm_1701REIN.csv")
		for _, allow := range []bool{false, true} {
			_, err := im.Import(ctx, Request{Source: sources.LEIE, FileName: "leie.csv", Kind: sources.KindFull, AllowShrink: allow,
				Body: bytes.NewReader(rein)})
			var le *sources.LineError
			if !errors.As(err, &le) || le.Line != 2 || !strings.Contains(le.Reason, "every row has a REINDATE") {
				t.Fatalf("allow_shrink=%v: %v", allow, err)
			}
		}
		if v, _ := sources.ActiveVersion(ctx, pool, sources.LEIE); v.ImportID != full.ID || v.Rows != 335 {
			t.Errorf("active version %+v, want the 335-row list", v)
		}
	})
}

// genOptions are gen.DefaultOptions for n providers with seed, current on 2026-11-27.
func genOptions(n int, seed uint64) gen.Options {
	o := gen.DefaultOptions(n)
	o.Seed, o.AsOf = seed, time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	return o
}
