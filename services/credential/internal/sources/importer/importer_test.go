package importer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/provcred/credential/internal/sources"
	"github.com/provcred/credential/internal/sources/nppes"
	"github.com/provcred/credential/internal/testdb"
	"github.com/provcred/platform/metrics"
)

const leieHeader = `"LASTNAME","FIRSTNAME","MIDNAME","BUSNAME","GENERAL","SPECIALTY","UPIN","NPI","DOB","ADDRESS","CITY","STATE","ZIP","EXCLTYPE","EXCLDATE","REINDATE","WAIVERDATE","WVRSTATE"` + "\n"

func leieRow(last, first, npi, excl string) string {
	return fmt.Sprintf(`"%s","%s","","","IND","NURSE","","%s","19700101","1 MAIN","AUSTIN","TX","78701","1128a1","%s","00000000","00000000",""`+"\n",
		last, first, npi, excl)
}

func leieFile(n int, prefix string) string {
	var b strings.Builder
	b.WriteString(leieHeader)
	for i := 0; i < n; i++ {
		b.WriteString(leieRow(fmt.Sprintf("%s%d", prefix, i), "ANN", "0000000000", "20200101"))
	}
	return b.String()
}

// registries remembers each test importer's metrics registry.
var registries sync.Map

func newImporter(t *testing.T) (*Importer, *pgxpool.Pool) {
	t.Helper()
	pool, _ := testdb.New(t)
	reg := metrics.New("credential")
	im := New(pool, slog.New(slog.NewTextHandler(io.Discard, nil))).WithMetrics(reg)
	registries.Store(im, reg)
	return im, pool
}

func metric(t *testing.T, im *Importer, name string, labels ...string) float64 {
	t.Helper()
	reg, _ := registries.Load(im)
	v, err := reg.(*metrics.Registry).Value(name, labels...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func count(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func TestImportActivatesAndReplaces(t *testing.T) {
	t.Parallel()
	im, pool := newImporter(t)
	ctx := context.Background()
	var hooked []string
	im.OnExclusionsImported = func(_ context.Context, source string, id int64) error {
		hooked = append(hooked, fmt.Sprintf("%s:%d", source, id))
		return nil
	}
	file := leieHeader + leieRow("SMITH", "JOHN", "1234567893", "20200115") + leieRow("DOE", "JANE", "0000000000", "20210301")
	first, err := im.Import(ctx, Request{Source: sources.LEIE, FileName: "UPDATED-2024-10-01.csv", Actor: "key_1", Body: strings.NewReader(file)})
	if err != nil {
		t.Fatal(err)
	}
	if first.Status != "active" || first.Rows != 2 || *first.Version != 1 || len(first.SHA256) != 64 ||
		first.FileDate.Format("2006-01-02") != "2024-10-01" || first.Bytes != int64(len(file)) {
		t.Fatalf("first import record %+v", first)
	}
	var npi *string
	var line int64
	var lastNorm string
	if err := pool.QueryRow(ctx, `SELECT npi, line, last_norm FROM active_exclusions WHERE last_name = 'DOE'`).Scan(&npi, &line, &lastNorm); err != nil {
		t.Fatal(err)
	}
	if npi != nil || line != 3 || lastNorm != "doe" {
		t.Errorf("DOE row: npi %v line %d norm %q", npi, line, lastNorm)
	}
	v, err := sources.ActiveVersion(ctx, pool, sources.LEIE)
	if err != nil || v.ImportID != first.ID || v.Rows != 2 {
		t.Fatalf("active version %+v, %v", v, err)
	}
	if _, err := sources.ActiveVersion(ctx, pool, sources.SAM); !errors.Is(err, sources.ErrNoVersion) {
		t.Errorf("SAM version err = %v, want ErrNoVersion", err)
	}
	// Parent indexes are adopted by the partition, not duplicated.
	if n := count(t, pool, `SELECT count(*) FROM pg_indexes WHERE tablename = $1`, fmt.Sprintf("exclusion_rows_%d", first.ID)); n != 2 {
		t.Errorf("version table has %d indexes, want the parent's 2", n)
	}

	second, err := im.Import(ctx, Request{Source: sources.LEIE, FileName: "UPDATED.csv", Body: strings.NewReader(leieFile(5, "NEW"))})
	if err != nil {
		t.Fatal(err)
	}
	if *second.Version != 2 || second.Replaced == nil || *second.Replaced != first.ID {
		t.Fatalf("second import record %+v", second)
	}
	if n := count(t, pool, `SELECT count(*) FROM active_exclusions`); n != 5 {
		t.Errorf("%d active rows, want the second version's 5", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM exclusion_rows WHERE import_id = $1`, first.ID); n != 0 {
		t.Errorf("old version still has %d rows", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM source_imports WHERE id = $1 AND status = 'superseded'`, first.ID); n != 1 {
		t.Error("first import not superseded")
	}
	if n := count(t, pool, `SELECT count(*) FROM audit_log WHERE event = 'import.activated' AND entity = 'import'`); n != 2 {
		t.Errorf("%d import.activated audit entries, want 2", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM audit_log WHERE entity_id = $1 AND actor = 'key_1'`, fmt.Sprint(first.ID)); n != 1 {
		t.Error("audit entry lacks the actor")
	}
	if n := metric(t, im, "credential_source_imports_total", "source=leie", "outcome=activated"); n != 2 {
		t.Errorf("activated imports metric %v, want 2", n)
	}
	if n := metric(t, im, "credential_source_rows", "source=leie"); n != 5 {
		t.Errorf("rows metric %v, want 5", n)
	}
	// Read from the database: the second version's activation time, and 0
	// for a source never imported.
	var activated float64
	if err := pool.QueryRow(ctx, `SELECT EXTRACT(EPOCH FROM activated_at)::float8 FROM source_imports WHERE id = $1`, second.ID).Scan(&activated); err != nil {
		t.Fatal(err)
	}
	if ts := metric(t, im, "credential_source_last_import_timestamp_seconds", "source=leie"); ts != activated || time.Since(time.Unix(int64(ts), 0)) > time.Hour {
		t.Errorf("last import timestamp %v, want %v", ts, activated)
	}
	if ts := metric(t, im, "credential_source_last_import_timestamp_seconds", "source=sam"); ts != 0 {
		t.Errorf("never-imported SAM timestamp %v, want 0", ts)
	}
	if strings.Join(hooked, ",") != fmt.Sprintf("leie:%d,leie:%d", first.ID, second.ID) {
		t.Errorf("hook calls %v", hooked)
	}
	// One import.activated event per activation, written with it.
	var link, data string
	if err := pool.QueryRow(ctx, `SELECT link, data::text FROM events WHERE type = 'import.activated.v1'
		AND (data->>'import_id')::bigint = $1`, second.ID).Scan(&link, &data); err != nil {
		t.Fatalf("import.activated of %d: %v", second.ID, err)
	}
	if n := count(t, pool, `SELECT count(*) FROM events WHERE type = 'import.activated.v1'`); n != 2 ||
		link != fmt.Sprintf("/admin/imports/%d", second.ID) || !strings.Contains(data, `"version": 2`) ||
		!strings.Contains(data, fmt.Sprintf(`"replaced_import_id": %d`, first.ID)) {
		t.Errorf("%d events; second: %s %s", n, link, data)
	}
}

func TestFailedImportKeepsPreviousVersion(t *testing.T) {
	t.Parallel()
	im, pool := newImporter(t)
	ctx := context.Background()
	good, err := im.Import(ctx, Request{Source: sources.LEIE, Body: strings.NewReader(leieFile(3, "OLD"))})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		file     string
		wantLine int64
		want     string
	}{
		{"bad date on line 4", leieHeader + leieRow("A", "B", "", "20200101") + leieRow("C", "D", "", "20200101") +
			leieRow("E", "F", "", "2020-01-01") + leieRow("G", "H", "", "20200101"), 4, "EXCLDATE"},
		{"truncated mid-row", leieFile(2000, "X") + `"TRUNC","AT`, 2002, "malformed CSV"},
		{"short last row", leieFile(10, "X") + `"A","B","C"` + "\n", 12, "3 fields"},
		{"wrong header", "NAME,NPI\nX,1234567893\n", 1, "LASTNAME"},
		{"header only", leieHeader, 2, "no rows"},
		{"empty", "", 1, "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, err := im.Import(ctx, Request{Source: sources.LEIE, Body: strings.NewReader(tt.file)})
			var le *sources.LineError
			if !errors.As(err, &le) || le.Line != tt.wantLine || !strings.Contains(le.Reason, tt.want) {
				t.Fatalf("err = %v, want line %d: …%s…", err, tt.wantLine, tt.want)
			}
			if rec.Status != "failed" || rec.ErrorLine == nil || *rec.ErrorLine != tt.wantLine || rec.Error != le.Error() {
				t.Errorf("failed record %+v", rec)
			}
			v, err := sources.ActiveVersion(ctx, pool, sources.LEIE)
			if err != nil || v.ImportID != good.ID {
				t.Errorf("active version %+v, %v; want the previous %d", v, err, good.ID)
			}
			if n := count(t, pool, `SELECT count(*) FROM active_exclusions`); n != 3 {
				t.Errorf("%d active rows, want the previous 3", n)
			}
			if n := count(t, pool, `SELECT count(*) FROM pg_tables WHERE tablename = $1`, fmt.Sprintf("exclusion_rows_%d", rec.ID)); n != 0 {
				t.Error("failed version's table left behind")
			}
		})
	}
	if n := count(t, pool, `SELECT count(*) FROM events WHERE type = 'import.activated.v1'`); n != 1 {
		t.Errorf("%d import.activated events, want the one good import's", n)
	}
	if n := metric(t, im, "credential_source_imports_total", "source=leie", "outcome=rejected"); n != float64(len(tests)) {
		t.Errorf("rejected imports metric %v, want %d", n, len(tests))
	}
}

// blockingReader hands out the header, then blocks until released.
type blockingReader struct {
	head    io.Reader
	started chan struct{}
	release chan struct{}
	rest    io.Reader
	once    sync.Once
}

func (b *blockingReader) Read(p []byte) (int, error) {
	n, err := b.head.Read(p)
	if n > 0 || !errors.Is(err, io.EOF) {
		return n, err
	}
	b.once.Do(func() { close(b.started); <-b.release })
	return b.rest.Read(p)
}

func TestConcurrentImportsOfOneSourceAreRejected(t *testing.T) {
	t.Parallel()
	im, pool := newImporter(t)
	ctx := context.Background()
	br := &blockingReader{head: strings.NewReader(leieHeader + leieRow("A", "B", "", "")), started: make(chan struct{}),
		release: make(chan struct{}), rest: strings.NewReader(leieRow("C", "D", "", ""))}
	done := make(chan error, 1)
	go func() {
		_, err := im.Import(ctx, Request{Source: sources.LEIE, Body: br})
		done <- err
	}()
	<-br.started
	rec, err := im.Import(ctx, Request{Source: sources.LEIE, Body: strings.NewReader(leieFile(1, "Z"))})
	if !errors.Is(err, ErrBusy) || rec.Status != "failed" {
		t.Fatalf("second concurrent import: err %v, record %+v; want ErrBusy", err, rec)
	}
	// Another source is not blocked.
	if _, err := im.Import(ctx, Request{Source: sources.SAM, Body: strings.NewReader(
		"Classification,Name,First,Middle,Last,Exclusion Type,Active Date,Termination Date,NPI\nIndividual,,Bo,,Li,X,01/02/2020,Indefinite,\n")}); err != nil {
		t.Fatalf("SAM import during LEIE load: %v", err)
	}
	close(br.release)
	if err := <-done; err != nil {
		t.Fatalf("first import: %v", err)
	}
	if n := count(t, pool, `SELECT count(*) FROM active_exclusions WHERE source = 'leie'`); n != 2 {
		t.Errorf("%d LEIE rows", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM active_exclusions WHERE source = 'sam' AND termination_date IS NULL`); n != 1 {
		t.Errorf("%d SAM rows", n)
	}
}

const nppesHeader = `"NPI","Entity Type Code","Provider Last Name (Legal Name)","Provider First Name","Provider Middle Name","Provider Credential Text","NPI Deactivation Date","NPI Reactivation Date","Provider Enumeration Date","Provider Business Practice Location Address State Name","Healthcare Provider Taxonomy Code_1","Provider License Number_1","Provider License Number State Code_1","Healthcare Provider Primary Taxonomy Switch_1"` + "\n"

func TestNPPESImportAndTableLookup(t *testing.T) {
	t.Parallel()
	im, pool := newImporter(t)
	ctx := context.Background()
	file := nppesHeader +
		`"1234567893","1","SMITH","JOHN","Q","MD","","","05/23/2005","TX","207Q00000X","A1","TX","Y"` + "\n" +
		`"1000000004","","","","","","01/31/2020","","","","","","",""` + "\n"
	rec, err := im.Import(ctx, Request{Source: sources.NPPES, FileName: "npidata_pfile_20050523-20241013.csv", Body: strings.NewReader(file)})
	if err != nil {
		t.Fatal(err)
	}
	if rec.FileDate.Format("2006-01-02") != "2024-10-13" {
		t.Errorf("file date %v", rec.FileDate)
	}
	var lk nppes.Lookup = nppes.Table{DB: pool}
	r, raw, err := lk.Lookup(ctx, "1234567893")
	if err != nil {
		t.Fatal(err)
	}
	if r.LastName != "SMITH" || !r.Individual() || !r.Active() || r.PrimaryTaxonomy != "207Q00000X" ||
		len(r.Taxonomies) != 1 || r.Taxonomies[0].License != "A1" || r.ImportID != rec.ID || len(r.Digest) != 64 ||
		!strings.Contains(string(raw), `"Provider First Name": "JOHN"`) {
		t.Errorf("record %+v raw %s", r, raw)
	}
	d, _, err := lk.Lookup(ctx, "1000000004")
	if err != nil || d.Active() || d.Status != "D" || d.EntityType != "" {
		t.Errorf("deactivated record %+v, %v", d, err)
	}
	if _, _, err := lk.Lookup(ctx, "1999999999"); !errors.Is(err, nppes.ErrNotFound) {
		t.Errorf("missing NPI: %v", err)
	}

	dup := nppesHeader + `"1234567893","1","A","B","","","","","","","","","",""` + "\n" +
		`"1000000004","1","A","B","","","","","","","","","",""` + "\n" +
		`"1234567893","1","A","B","","","","","","","","","",""` + "\n"
	_, err = im.Import(ctx, Request{Source: sources.NPPES, Body: strings.NewReader(dup)})
	var le *sources.LineError
	if !errors.As(err, &le) || le.Line != 4 || !strings.Contains(le.Reason, "already listed on line 2") {
		t.Fatalf("duplicate NPI: %v", err)
	}
	if n := count(t, pool, `SELECT count(*) FROM active_nppes`); n != 2 {
		t.Errorf("%d active NPPES rows after a failed import, want 2", n)
	}
}

func TestLicensesImport(t *testing.T) {
	t.Parallel()
	im, pool := newImporter(t)
	ctx := context.Background()
	file := "state,license_number,license_type,status,issue_date,expiration_date,last_name,first_name,middle_name,npi\n" +
		"TX,A1,MD,Active,2015-01-01,2027-06-30,Smith,John,Q,1234567893\nCA,B2,RN,REVOKED,,2020-01-01,Doe,Jane,,\n"
	if _, err := im.Import(ctx, Request{Source: sources.Licenses, Body: strings.NewReader(file)}); err != nil {
		t.Fatal(err)
	}
	var status string
	var expiry time.Time
	if err := pool.QueryRow(ctx, `SELECT status, expiry_date FROM active_licenses WHERE state = 'CA' AND license_number = 'B2'`).Scan(&status, &expiry); err != nil {
		t.Fatal(err)
	}
	if status != "revoked" || expiry.Year() != 2020 {
		t.Errorf("status %q expiry %v", status, expiry)
	}
	if n := count(t, pool, `SELECT count(*) FROM active_licenses WHERE npi = '1234567893' AND first_norm = 'john'`); n != 1 {
		t.Error("license lookup by npi/name")
	}
}

func TestUnknownSource(t *testing.T) {
	t.Parallel()
	im, _ := newImporter(t)
	if _, err := im.Import(context.Background(), Request{Source: "dea", Body: strings.NewReader("x")}); !errors.Is(err, ErrUnknownSource) {
		t.Fatalf("err = %v", err)
	}
}

func TestFileDateFromName(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"npidata_pfile_20050523-20241013.csv":        "2024-10-13",
		"SAM_Exclusions_Public_Extract_V2_24100.CSV": "2024-04-09",
		"UPDATED-2024-10-01.csv":                     "2024-10-01",
		"UPDATED.csv":                                "",
		"roster_20241399.csv":                        "",
		"1701REIN.csv":                               "2017-01-01",
		"2612excl.CSV":                               "2026-12-01",
		"1713REIN.csv":                               "",
	}
	for name, want := range tests {
		got := FileDateFromName(name)
		s := ""
		if got != nil {
			s = got.Format("2006-01-02")
		}
		if s != want {
			t.Errorf("FileDateFromName(%q) = %q, want %q", name, s, want)
		}
	}
}

func TestHookErrorDoesNotUndoTheImport(t *testing.T) {
	t.Parallel()
	im, pool := newImporter(t)
	ctx := context.Background()
	calls := 0
	im.OnExclusionsImported = func(context.Context, string, int64) error {
		calls++
		return errors.New("engine unavailable")
	}
	rec, err := im.Import(ctx, Request{Source: sources.SAM, Body: strings.NewReader(
		"Classification,Name,First,Middle,Last,Exclusion Type,Active Date,Termination Date,NPI\nFirm,ACME,,,,X,01/01/2020,,\n")})
	if err != nil || rec.Status != "active" || rec.HookError != "engine unavailable" {
		t.Fatalf("record %+v, err %v", rec, err)
	}
	if _, err := im.Import(ctx, Request{Source: sources.Licenses, Body: strings.NewReader(
		"state,license_number,status,expiration_date,last_name,first_name\nTX,1,active,,A,B\n")}); err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Errorf("hook called %d times, want once (not for licenses)", calls)
	}
	if n := count(t, pool, `SELECT count(*) FROM active_exclusions WHERE source = 'sam'`); n != 1 {
		t.Errorf("%d SAM rows", n)
	}
}

// FuzzFileName: whatever name and kind an upload gives, the kind resolves
// to one the source has or to an error, and a date read from the name is a
// real day.
func FuzzFileName(f *testing.F) {
	for _, s := range []string{"UPDATED.csv", "1701REIN.csv", `C:\x\2612excl.CSV`, "npidata_pfile_20050523-20241013.csv",
		"npidata_pfile_20241007-20241013.csv", "NPPES_Weekly.csv", "SAM_Exclusions_Public_Extract_V2_24100.CSV", "1713REIN.csv"} {
		f.Add(s, "")
		f.Add(s, "supplement")
	}
	formats := Formats()
	f.Fuzz(func(t *testing.T, name, kind string) {
		for src, fm := range formats {
			k, err := ResolveKind(fm, kind, name)
			if err == nil && !slices.Contains(sources.KindsOf(fm), k) {
				t.Fatalf("%s: %q kind %q resolved to %q", src, name, kind, k)
			}
		}
		if d := FileDateFromName(name); d != nil && (d.Year() < 1900 || d.Year() > 2200 || d.Hour() != 0) {
			t.Fatalf("%q: date %v", name, d)
		}
	})
}
