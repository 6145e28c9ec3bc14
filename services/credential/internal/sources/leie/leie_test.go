package leie

import (
	"strings"
	"testing"
	"time"

	"github.com/provcred/credential/internal/sources/exclusions"
	"github.com/provcred/credential/internal/sources/sourcestest"
)

const header = `"LASTNAME","FIRSTNAME","MIDNAME","BUSNAME","GENERAL","SPECIALTY","UPIN","NPI","DOB","ADDRESS","CITY","STATE","ZIP","EXCLTYPE","EXCLDATE","REINDATE","WAIVERDATE","WVRSTATE"` + "\n"

func row(last, first, npi, dob, excl, rein, waiver string) string {
	return `"` + strings.Join([]string{last, first, "A", "", "IND- LIC HC SERV PRO", "NURSE", "", npi, dob,
		"1 MAIN ST", "AUSTIN", "TX", "78701", "1128b4", excl, rein, waiver, ""}, `","`) + "\"\n"
}

var col = sourcestest.ColumnIndex(exclusions.Columns)

func TestParse(t *testing.T) {
	t.Parallel()
	date := func(y, m, d int) time.Time { return time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC) }
	tests := []struct {
		name     string
		file     string
		check    map[string]any
		wantLine int64
		wantErr  string
	}{
		{name: "full row", file: header + row("O'BRIEN", "MARY", "1234567893", "19700102", "20200115", "00000000", "00000000"),
			check: map[string]any{"npi": "1234567893", "last_name": "O'BRIEN", "last_norm": "obrien", "first_norm": "mary",
				"dob": date(1970, 1, 2), "excl_date": date(2020, 1, 15), "rein_date": nil, "waiver_date": nil,
				"excl_type": "1128b4", "state": "TX", "source": "leie", "line": int64(2)}},
		{name: "missing npi is 0000000000", file: header + row("DOE", "JOHN", "0000000000", "00000000", "20200115", "", ""),
			check: map[string]any{"npi": nil, "dob": nil}},
		{name: "reinstated and waiver", file: header + row("DOE", "JOHN", "0000000000", "", "20200115", "20210101", "20200601"),
			check: map[string]any{"rein_date": date(2021, 1, 1), "waiver_date": date(2020, 6, 1)}},
		{name: "header by name in another order", file: strings.Replace(header, `"LASTNAME","FIRSTNAME"`, `"FIRSTNAME","LASTNAME"`, 1) +
			row("MARY", "SMITH", "", "", "", "", ""),
			check: map[string]any{"last_name": "SMITH", "first_name": "MARY"}},
		{name: "missing column", file: strings.Replace(header, `,"WVRSTATE"`, "", 1), wantLine: 1, wantErr: `"WVRSTATE"`},
		{name: "empty file", file: "", wantLine: 1, wantErr: "empty"},
		{name: "bad exclusion date", file: header + row("A", "B", "", "", "2020-01-15", "", ""), wantLine: 2, wantErr: "EXCLDATE"},
		{name: "bad dob hides value", file: header + row("A", "B", "", "19701340", "", "", ""), wantLine: 2, wantErr: "DOB is not"},
		{name: "bad npi", file: header + row("A", "B", "12345", "", "", "", ""), wantLine: 2, wantErr: "NPI"},
		{name: "truncated mid-field", file: header + row("A", "B", "", "", "", "", "") + `"SMITH","JO`, wantLine: 3, wantErr: "malformed CSV"},
		{name: "short row", file: header + row("A", "B", "", "", "", "", "") + `"SMITH","JOHN"` + "\n", wantLine: 3, wantErr: "2 fields"},
		{name: "no name", file: header + row("", "", "", "", "", "", ""), wantLine: 2, wantErr: "no LASTNAME"},
		{name: "quoted comma and quote", file: header + row(`SMITH, ""JR""`, "JOHN", "", "", "", "", ""),
			check: map[string]any{"last_name": `SMITH, "JR"`, "last_norm": "smith"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sourcestest.ExpectRow(t, Format{}, tt.file, tt.wantLine, tt.wantErr, col, tt.check)
		})
	}
}

// The digest is of the row's bytes as they stand in the file, line ending
// included: older LEIE files leave empty fields unquoted and pad values, so
// re-quoting the parsed fields would give another digest.
func TestDigestIsRawLine(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, file, line string }{
		{"quoted LF", header + row("DOE", "JANE", "1234567893", "19800101", "20200101", "00000000", "00000000"),
			row("DOE", "JANE", "1234567893", "19800101", "20200101", "00000000", "00000000")},
		{"unquoted empties CRLF", header + `"DOE","JANE ",,,"IND",,,"0000000000",,"1 MAIN","X","TX","1","1128a1","20200101","00000000","00000000",` + "\r\n",
			`"DOE","JANE ",,,"IND",,,"0000000000",,"1 MAIN","X","TX","1","1128a1","20200101","00000000","00000000",` + "\r\n"},
		{"last line without ending", header + strings.TrimSuffix(row("DOE", "JANE", "", "", "", "", ""), "\n"),
			strings.TrimSuffix(row("DOE", "JANE", "", "", "", "", ""), "\n")},
		{"blank line before", header + "\r\n\n" + row("DOE", "JANE", "", "", "", "", ""), row("DOE", "JANE", "", "", "", "", "")},
		{"quoted line break", header + strings.Replace(row("DOE", "JANE", "", "", "", "", ""), "1 MAIN ST", "1 MAIN\r\nST", 1),
			strings.Replace(row("DOE", "JANE", "", "", "", "", ""), "1 MAIN ST", "1 MAIN\r\nST", 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, err := sourcestest.ParseAll(Format{}, tt.file)
			if err != nil || len(rows) != 1 {
				t.Fatalf("rows %d, err %v", len(rows), err)
			}
			if got, want := rows[0][col("digest")], sha(tt.line); got != want {
				t.Errorf("digest %v, want sha256 of the raw line %s", got, want)
			}
		})
	}
}

// FuzzParse feeds arbitrary files through the header binding and row parser:
// no panic, and every accepted row has a 10-digit or nil NPI and a JSON record.
func FuzzParse(f *testing.F) {
	f.Add(header + row("DOE", "JOHN", "1234567893", "19700101", "20200101", "00000000", "00000000"))
	f.Add(header + row("A", "B", "0000000000", "", "", "20210101", ""))
	f.Add(header + `"SMITH","JO`)
	f.Add("LASTNAME\n\"x\"\n")
	f.Fuzz(func(t *testing.T, file string) {
		for _, r := range sourcestest.FuzzRows(t, Format{}, file, col) {
			if n, ok := r[col("npi")].(string); ok && len(n) != 10 {
				t.Fatalf("npi %q accepted", n)
			}
		}
	})
}
