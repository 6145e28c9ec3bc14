package licenses

import (
	"strings"
	"testing"
	"time"

	"github.com/provcred/credential/internal/sources/sourcestest"
)

const header = "state,license_number,license_type,status,issue_date,expiration_date,last_name,first_name,middle_name,npi\n"

var col = sourcestest.ColumnIndex(tableColumns)

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
		{name: "row", file: header + "tx,A123,MD,Active,2015-01-01,2027-06-30,Smith Jr.,John,Q,1234567893\n",
			check: map[string]any{"state": "TX", "status": "active", "expiry_date": date(2027, 6, 30), "issue_date": date(2015, 1, 1),
				"last_norm": "smith", "npi": "1234567893", "line": int64(2)}},
		{name: "status synonyms", file: header + "CA,1,RN,Lapsed,,06/30/2020,A,B,,\n",
			check: map[string]any{"status": "expired", "issue_date": nil, "expiry_date": date(2020, 6, 30), "npi": nil}},
		{name: "status kept lower", file: header + "CA,1,RN,  Revoked ,,,A,B,,\n", check: map[string]any{"status": "revoked"}},
		{name: "columns by name any order", file: "first_name,last_name,expiration_date,status,license_number,state\nJo,Li,,active,9,NY\n",
			check: map[string]any{"first_name": "Jo", "state": "NY", "license_type": ""}},
		{name: "missing column", file: "state,license_number,status\nTX,1,active\n", wantLine: 1, wantErr: "expiration_date"},
		{name: "bad state", file: header + "Texas,1,MD,active,,,A,B,,\n", wantLine: 2, wantErr: "two-letter"},
		{name: "no number", file: header + "TX,,MD,active,,,A,B,,\n", wantLine: 2, wantErr: "license_number"},
		{name: "no status", file: header + "TX,1,MD,,,,A,B,,\n", wantLine: 2, wantErr: "status"},
		{name: "bad date", file: header + "TX,1,MD,active,,2027/06/30,A,B,,\n", wantLine: 2, wantErr: "expiration_date"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sourcestest.ExpectRow(t, Format{}, tt.file, tt.wantLine, tt.wantErr, col, tt.check)
		})
	}
}

func TestNormalizeStatus(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"ACTIVE": "active", "Current": "active", "Expired": "expired",
		"Revoked": "revoked", "SUSPENDED": "suspended", "Active on Probation": "probation", "Retired": "retired"} {
		if got := NormalizeStatus(in); got != want {
			t.Errorf("NormalizeStatus(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(header + "TX,A1,MD,active,2015-01-01,2027-06-30,Smith,John,,1234567893\n")
	f.Add(header + "TX,A1,MD,active,,06/30/2027,Smith,John,,\n")
	f.Fuzz(func(t *testing.T, file string) {
		for _, r := range sourcestest.FuzzRows(t, Format{}, file, col) {
			if s := r[col("state")].(string); len(s) != 2 {
				t.Fatalf("state %q accepted", s)
			}
			if s := r[col("status")].(string); s == "" || s != strings.ToLower(s) {
				t.Fatalf("status %q", s)
			}
		}
	})
}
