package sam

import (
	"strings"
	"testing"
	"time"

	"github.com/provcred/credential/internal/sources/exclusions"
	"github.com/provcred/credential/internal/sources/sourcestest"
)

var header = `"` + strings.Join(Columns, `","`) + "\"\n"

// row builds a SAM row from the columns it names, the rest empty.
func row(kv map[string]string) string {
	vals := make([]string, len(Columns))
	for i, c := range Columns {
		vals[i] = strings.ReplaceAll(kv[c], `"`, `""`)
	}
	return `"` + strings.Join(vals, `","`) + "\"\n"
}

var col = sourcestest.ColumnIndex(exclusions.Columns)

func TestParse(t *testing.T) {
	t.Parallel()
	date := func(y, m, d int) time.Time { return time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC) }
	ind := map[string]string{"Classification": "Individual", "First": "Ana", "Middle": "M", "Last": "García-López",
		"Exclusion Type": "Ineligible (Proceedings Completed)", "Active Date": "03/15/2021",
		"Termination Date": "Indefinite", "Record Status": "Active", "NPI": "1234567893", "State / Province": "CA"}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range ind {
			m[a] = b
		}
		m[k] = v
		return m
	}
	tests := []struct {
		name     string
		file     string
		check    map[string]any
		wantLine int64
		wantErr  string
	}{
		{name: "individual indefinite", file: header + row(ind), check: map[string]any{
			"source": "sam", "npi": "1234567893", "last_norm": "garcialopez", "first_norm": "ana", "excl_date": date(2021, 3, 15),
			"termination_date": nil, "state": "CA", "classification": "Individual", "record_status": "Active", "business_name": ""}},
		{name: "termination date", file: header + row(with("Termination Date", "12/31/2022")),
			check: map[string]any{"termination_date": date(2022, 12, 31)}},
		{name: "indefinite any case", file: header + row(with("Termination Date", "INDEFINITE")),
			check: map[string]any{"termination_date": nil}},
		{name: "empty npi", file: header + row(with("NPI", "")), check: map[string]any{"npi": nil}},
		{name: "firm keeps name", file: header + row(map[string]string{"Classification": "Firm", "Name": "ACME MEDICAL LLC",
			"Active Date": "01/02/2020", "Termination Date": ""}), check: map[string]any{"business_name": "ACME MEDICAL LLC", "last_name": ""}},
		{name: "only required columns", file: "Classification,Name,First,Middle,Last,Exclusion Type,Active Date,Termination Date,NPI\n" +
			"Individual,,Bo,,Li,X,1/2/2020,,\n", check: map[string]any{"first_name": "Bo", "state": ""}},
		{name: "missing NPI column", file: strings.Replace(header, `,"NPI"`, "", 1), wantLine: 1, wantErr: `"NPI"`},
		{name: "bad active date", file: header + row(with("Active Date", "2021-03-15")), wantLine: 2, wantErr: "Active Date"},
		{name: "bad termination", file: header + row(with("Termination Date", "never")), wantLine: 2, wantErr: "Termination Date"},
		{name: "no name at all", file: header + row(map[string]string{"Classification": "Individual"}), wantLine: 2, wantErr: "no Name"},
		{name: "truncated", file: header + row(ind) + `"Individual","","","Jo`, wantLine: 3, wantErr: "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sourcestest.ExpectRow(t, Format{}, tt.file, tt.wantLine, tt.wantErr, col, tt.check)
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add(header + row(map[string]string{"Classification": "Individual", "Last": "X", "Active Date": "01/01/2020",
		"Termination Date": "Indefinite", "NPI": "1234567893"}))
	f.Add("Classification,Name,First,Middle,Last,Exclusion Type,Active Date,Termination Date,NPI\nFirm,A,,,,,,,\n")
	f.Fuzz(func(t *testing.T, file string) {
		for _, r := range sourcestest.FuzzRows(t, Format{}, file, col) {
			if n, ok := r[col("npi")].(string); ok && len(n) != 10 {
				t.Fatalf("npi %q accepted", n)
			}
		}
	})
}
