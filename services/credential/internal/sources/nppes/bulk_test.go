package nppes

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/provcred/credential/internal/sources/sourcestest"
)

// A header in the real file's spelling, shuffled, with extra columns the
// importer must ignore.
var bulkHeader = []string{"NPI", "Entity Type Code", "Replacement NPI", "Provider Organization Name (Legal Business Name)",
	"Provider Last Name (Legal Name)", "Provider First Name", "Provider Middle Name", "Provider Name Suffix Text",
	"Provider Credential Text", "Provider Business Practice Location Address State Name", "Provider Enumeration Date",
	"NPI Deactivation Date", "NPI Reactivation Date",
	"Healthcare Provider Taxonomy Code_1", "Provider License Number_1", "Provider License Number State Code_1", "Healthcare Provider Primary Taxonomy Switch_1",
	"Healthcare Provider Taxonomy Code_2", "Provider License Number_2", "Provider License Number State Code_2", "Healthcare Provider Primary Taxonomy Switch_2",
	"Provider Sex Code"}

func bulkFile(rows ...map[string]string) string {
	var b strings.Builder
	b.WriteString(`"` + strings.Join(bulkHeader, `","`) + "\"\n")
	for _, r := range rows {
		vals := make([]string, len(bulkHeader))
		for i, h := range bulkHeader {
			vals[i] = r[h]
		}
		b.WriteString(`"` + strings.Join(vals, `","`) + "\"\n")
	}
	return b.String()
}

var bcol = sourcestest.ColumnIndex(bulkColumns)

func TestBulkParse(t *testing.T) {
	t.Parallel()
	date := func(y, m, d int) time.Time { return time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC) }
	ind := map[string]string{"NPI": "1234567893", "Entity Type Code": "1", "Provider Last Name (Legal Name)": "SMITH",
		"Provider First Name": "JOHN", "Provider Middle Name": "Q", "Provider Name Suffix Text": "JR.",
		"Provider Credential Text": "M.D.", "Provider Business Practice Location Address State Name": "TX",
		"Provider Enumeration Date":           "05/23/2005",
		"Healthcare Provider Taxonomy Code_1": "207Q00000X", "Provider License Number_1": "A1", "Provider License Number State Code_1": "TX", "Healthcare Provider Primary Taxonomy Switch_1": "N",
		"Healthcare Provider Taxonomy Code_2": "207R00000X", "Provider License Number_2": "B2", "Provider License Number State Code_2": "OK", "Healthcare Provider Primary Taxonomy Switch_2": "Y"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range ind {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name     string
		file     string
		check    map[string]any
		taxes    string
		wantLine int64
		wantErr  string
	}{
		{name: "individual", file: bulkFile(ind), check: map[string]any{"npi": "1234567893", "entity_type": "1",
			"last_name": "SMITH", "name_suffix": "JR.", "credential": "M.D.", "state": "TX", "enumeration_date": date(2005, 5, 23),
			"deactivation_date": nil, "primary_taxonomy": "207R00000X"},
			taxes: `[{"code":"207Q00000X","primary":false,"state":"TX","license":"A1"},{"code":"207R00000X","primary":true,"state":"OK","license":"B2"}]`},
		{name: "deactivated blanks entity type", file: bulkFile(map[string]string{"NPI": "1234567893", "NPI Deactivation Date": "01/31/2020"}),
			check: map[string]any{"entity_type": nil, "deactivation_date": date(2020, 1, 31), "primary_taxonomy": ""}, taxes: `[]`},
		{name: "single taxonomy is primary", file: bulkFile(with("Healthcare Provider Taxonomy Code_2", "", "Healthcare Provider Primary Taxonomy Switch_1", "X")),
			check: map[string]any{"primary_taxonomy": "207Q00000X"}},
		{name: "reactivated", file: bulkFile(with("NPI Deactivation Date", "01/01/2020", "NPI Reactivation Date", "02/01/2020")),
			check: map[string]any{"reactivation_date": date(2020, 2, 1)}},
		{name: "organization", file: bulkFile(map[string]string{"NPI": "1234567893", "Entity Type Code": "2",
			"Provider Organization Name (Legal Business Name)": "ACME CLINIC"}), check: map[string]any{"organization_name": "ACME CLINIC", "entity_type": "2"}},
		{name: "missing column", file: "NPI,Entity Type Code,Provider First Name,NPI Deactivation Date\n", wantLine: 1, wantErr: "Provider Last Name (Legal Name)"},
		{name: "empty npi", file: bulkFile(with("NPI", "")), wantLine: 2, wantErr: "NPI is empty"},
		{name: "bad entity type", file: bulkFile(with("Entity Type Code", "3")), wantLine: 2, wantErr: "Entity Type Code"},
		{name: "bad date format", file: bulkFile(with("Provider Enumeration Date", "2005-05-23")), wantLine: 2, wantErr: "Provider Enumeration Date"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			row, ok := sourcestest.ExpectRow(t, BulkFormat{}, tt.file, tt.wantLine, tt.wantErr, bcol, tt.check)
			if !ok {
				return
			}
			if tt.taxes != "" {
				if got := row[bcol("taxonomies")]; got != tt.taxes {
					t.Errorf("taxonomies = %s, want %s", got, tt.taxes)
				}
			}
			var rec map[string]string
			if err := json.Unmarshal([]byte(row[bcol("record")].(string)), &rec); err != nil {
				t.Fatal(err)
			}
			if _, ok := rec["Replacement NPI"]; ok {
				t.Error("empty field kept in the record")
			}
		})
	}
}

func FuzzBulkParse(f *testing.F) {
	f.Add(bulkFile(map[string]string{"NPI": "1234567893", "Entity Type Code": "1", "Provider Last Name (Legal Name)": "X",
		"Healthcare Provider Taxonomy Code_1": "207Q00000X", "Healthcare Provider Primary Taxonomy Switch_1": "Y"}))
	f.Add("NPI,Entity Type Code,Provider Last Name (Legal Name),Provider First Name,NPI Deactivation Date\n1234567893,,,,01/01/2020\n")
	f.Fuzz(func(t *testing.T, file string) {
		for _, r := range sourcestest.FuzzRows(t, BulkFormat{}, file, bcol) {
			if n := r[bcol("npi")].(string); len(n) != 10 {
				t.Fatalf("npi %q accepted", n)
			}
			if s := r[bcol("taxonomies")].(string); !json.Valid([]byte(s)) {
				t.Fatalf("taxonomies %q is not JSON", s)
			}
		}
	})
}
