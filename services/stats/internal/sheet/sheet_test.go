package sheet

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"
	"time"
)

func TestWrite(t *testing.T) {
	t.Parallel()
	tb := Table{Header: []string{"name", "detail", "n", "rate", "at", "none"}}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.FixedZone("EST", -5*3600))
	var missing *float64
	tb.Add("Zoë O'Brien", `said "hi", then left`+"\nnext line", 3, 0.25, at, missing)
	tb.Add("=HYPERLINK(\"http://x\")", "+1", int64(-2), -1.5, &at, nil)
	tb.Add("@SUM(A1)", "-3", 0, 0.0, (*time.Time)(nil), "\tTab")
	var buf bytes.Buffer
	if err := Write(&buf, tb); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.HasPrefix(out, "\ufeffname,") {
		t.Fatalf("no byte order mark: %q", out[:10])
	}
	if !strings.Contains(out, "none\r\n") {
		t.Error("lines do not end in CRLF")
	}
	rows, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(out, "\ufeff"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"name", "detail", "n", "rate", "at", "none"},
		{"Zoë O'Brien", "said \"hi\", then left\nnext line", "3", "0.25", "2026-03-01T17:00:00Z", ""},
		// Text a spreadsheet would run is quoted; numbers stay numbers.
		{"'=HYPERLINK(\"http://x\")", "'+1", "-2", "-1.5", "2026-03-01T17:00:00Z", ""},
		{"'@SUM(A1)", "'-3", "0", "0", "", "'\tTab"},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows: %q", len(rows), rows)
	}
	for i := range want {
		if strings.Join(rows[i], "|") != strings.Join(want[i], "|") {
			t.Errorf("row %d: %q, want %q", i, rows[i], want[i])
		}
	}
}
