package sources

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func d(y, m, day int) time.Time { return time.Date(y, time.Month(m), day, 0, 0, 0, 0, time.UTC) }

func TestDates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		parse   func(string) (any, error)
		in      string
		want    any
		wantErr bool
	}{
		{"leie date", DateYYYYMMDD, "20240131", d(2024, 1, 31), false},
		{"leie zeros is none", DateYYYYMMDD, "00000000", nil, false},
		{"leie empty is none", DateYYYYMMDD, "", nil, false},
		{"leie short", DateYYYYMMDD, "2024013", nil, true},
		{"leie letters", DateYYYYMMDD, "2024O131", nil, true},
		{"leie month 13", DateYYYYMMDD, "20241301", nil, true},
		{"leie feb 30", DateYYYYMMDD, "20240230", nil, true},
		{"leie leap day", DateYYYYMMDD, "20240229", d(2024, 2, 29), false},
		{"leie iso rejected", DateYYYYMMDD, "2024-01-31", nil, true},
		{"mdy", DateMDY, "01/31/2024", d(2024, 1, 31), false},
		{"mdy one digit", DateMDY, "1/2/2024", d(2024, 1, 2), false},
		{"mdy empty", DateMDY, "", nil, false},
		{"mdy dmy order invalid", DateMDY, "31/01/2024", nil, true},
		{"mdy two digit year", DateMDY, "01/31/24", nil, true},
		{"mdy iso rejected", DateMDY, "2024-01-31", nil, true},
		{"mdy indefinite is not a date", DateMDY, "Indefinite", nil, true},
		{"iso", DateISO, "2027-06-30", d(2027, 6, 30), false},
		{"iso accepts mdy", DateISO, "06/30/2027", d(2027, 6, 30), false},
		{"iso bad", DateISO, "2027-6-30", nil, true},
		{"iso empty", DateISO, "", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.parse(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("%q: err = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if !tt.wantErr && got != tt.want {
				t.Fatalf("%q: got %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestNPI(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    any
		wantErr bool
	}{
		{"1234567893", "1234567893", false},
		{"1234567890", "1234567890", false}, // bad check digit: stored as the source says
		{"0000000000", nil, false},
		{"", nil, false},
		{"123456789", nil, true},
		{"12345678901", nil, true},
		{"12345A7893", nil, true},
	}
	for _, tt := range tests {
		got, err := NPI(tt.in)
		if (err != nil) != tt.wantErr || (!tt.wantErr && got != tt.want) {
			t.Errorf("NPI(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestHeader(t *testing.T) {
	t.Parallel()
	h, err := NewHeader([]string{" NPI", " Last ", "first", ""})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		want int
	}{{"NPI", 0}, {"npi", 0}, {"LAST", 1}, {"First", 2}, {"missing", -1}}
	for _, tt := range tests {
		if got := h.Find(tt.name); got != tt.want {
			t.Errorf("Find(%q) = %d, want %d", tt.name, got, tt.want)
		}
	}
	if _, err := h.Require("NPI", "DOB", "ZIP"); err == nil || !strings.Contains(err.Error(), `"DOB", "ZIP"`) {
		t.Errorf("Require missing: err = %v, want both names", err)
	}
	if _, err := NewHeader([]string{"NPI", "npi"}); err == nil {
		t.Error("duplicate column accepted")
	}
}

func TestEncoder(t *testing.T) {
	t.Parallel()
	e := NewEncoder([]string{"A", "B", ""}, false)
	rec := []string{`he said "hi"`, "tab\there\x01", "é"}
	var got map[string]string
	if err := json.Unmarshal(e.Record(rec), &got); err != nil {
		t.Fatalf("record is not JSON: %v: %s", err, e.Record(rec))
	}
	want := map[string]string{"A": `he said "hi"`, "B": "tab\there\x01", "column_3": "é"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("record[%q] = %q, want %q", k, got[k], v)
		}
	}
	omit := NewEncoder([]string{"A", "B"}, true)
	if r := string(omit.Record([]string{"", "x"})); r != `{"B":"x"}` {
		t.Errorf("omitEmpty record = %s", r)
	}
	if s := string(AppendJSONString(nil, "bad\xffutf8")); s != "\"bad\ufffdutf8\"" {
		t.Errorf("invalid utf-8 encoded as %q", s)
	}
}

func TestCleanText(t *testing.T) {
	t.Parallel()
	if got := CleanText("a\x00b\xff"); got != "ab\ufffd" {
		t.Errorf("CleanText = %q", got)
	}
	if got := CleanText("plain"); got != "plain" {
		t.Errorf("CleanText changed clean text: %q", got)
	}
}

func FuzzEncoder(f *testing.F) {
	f.Add("a", "b\"c", "\x00\xff")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		e := NewEncoder([]string{"x", "y", "z"}, false)
		var m map[string]string
		if err := json.Unmarshal(e.Record([]string{a, b, c}), &m); err != nil {
			t.Fatalf("record not JSON: %v", err)
		}
		for k, v := range map[string]string{"x": a, "y": b, "z": c} {
			if utf8.ValidString(v) && m[k] != v {
				t.Fatalf("%q round-tripped as %q", v, m[k])
			}
		}
	})
}
