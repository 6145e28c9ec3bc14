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
		{name: "status kept as the board wrote it", file: header + "CA,1,RN,In  Good Standing,,06/30/2020,A,B,,\n",
			check: map[string]any{"status": "in good standing", "issue_date": nil, "expiry_date": date(2020, 6, 30), "npi": nil}},
		{name: "number key folds case, spaces and punctuation", file: header + "CA,a-890 104,MD,Active,,,A,B,,\n",
			check: map[string]any{"license_number": "a-890 104", "number_key": "A890104"}},
		{name: "status kept lower", file: header + "CA,1,RN,  Revoked ,,,A,B,,\n", check: map[string]any{"status": "revoked"}},
		{name: "columns by name any order", file: "first_name,last_name,expiration_date,status,license_number,state\nJo,Li,,active,9,NY\n",
			check: map[string]any{"first_name": "Jo", "state": "NY", "license_type": ""}},
		{name: "missing column", file: "state,license_number,status\nTX,1,active\n", wantLine: 1, wantErr: "expiration_date"},
		{name: "bad state", file: header + "Texas,1,MD,active,,,A,B,,\n", wantLine: 2, wantErr: "two-letter"},
		{name: "no number", file: header + "TX,,MD,active,,,A,B,,\n", wantLine: 2, wantErr: "license_number"},
		{name: "number of punctuation only", file: header + "TX,--,MD,active,,,A,B,,\n", wantLine: 2, wantErr: "license_number"},
		{name: "no status", file: header + "TX,1,MD,,,,A,B,,\n", wantLine: 2, wantErr: "status"},
		{name: "bad date", file: header + "TX,1,MD,active,,2027/06/30,A,B,,\n", wantLine: 2, wantErr: "expiration_date"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sourcestest.ExpectRow(t, Format{}, tt.file, tt.wantLine, tt.wantErr, col, tt.check)
		})
	}
}

// The status table: the documented defaults, an override changing a
// word's class, an added word, and a word nobody listed.
func TestStatusTable(t *testing.T) {
	t.Parallel()
	tbl, err := NewStatusTable("Retired=expired, Pending Board Action = suspended")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		table       StatusTable
		word, class string
		known       bool
	}{
		{StatusTable{}, "ACTIVE", StatusActive, true},
		{StatusTable{}, "Clear", StatusActive, true},
		{StatusTable{}, "Current", StatusActive, true},
		{StatusTable{}, "Registered", StatusActive, true},
		{StatusTable{}, "In  Good Standing", StatusActive, true},
		{StatusTable{}, "Lapsed", StatusExpired, true},
		{StatusTable{}, "Inactive", StatusInactive, true},
		{StatusTable{}, "Revoked", StatusRevoked, true},
		{StatusTable{}, "Surrendered", StatusSurrendered, true},
		{StatusTable{}, "SUSPENDED", StatusSuspended, true},
		{StatusTable{}, "Active on Probation", StatusProbation, true},
		{StatusTable{}, "Retired", StatusInactive, true},
		{tbl, "retired", StatusExpired, true},
		{tbl, "pending board action", StatusSuspended, true},
		{StatusTable{}, "Pending Board Action", "", false},
		{tbl, "Under Investigation", "", false},
	} {
		if class, known := c.table.Class(c.word); class != c.class || known != c.known {
			t.Errorf("Class(%q) = %q %v, want %q %v", c.word, class, known, c.class, c.known)
		}
	}
	for _, bad := range []string{"Retired", "Retired=gone", "=active"} {
		if _, err := NewStatusTable(bad); err == nil {
			t.Errorf("NewStatusTable(%q) accepted", bad)
		}
	}
}

func TestNumberKey(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"A 890104": "A890104", "a890104": "A890104", "A-890104": "A890104",
		" 036.123/456 ": "036123456", "--": ""} {
		if got := NumberKey(in); got != want {
			t.Errorf("NumberKey(%q) = %q, want %q", in, got, want)
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
