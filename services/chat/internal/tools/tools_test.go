package tools

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestIsPII(t *testing.T) {
	t.Parallel()
	for key, want := range map[string]bool{
		"date_of_birth": true, "DOB": true, "birth_date": true, "ssn": true, "dea_number": true, "ADDRESS": true,
		"Address 1": true, "address_2": true, "ZIP": true, "ZIP Code": true, "postal_code": true, "telephone_number": true,
		"email": true, "first_name": false, "last_name": false, "npi": false, "state": false, "CITY": false,
		"licenses": false, "decision": false, "specialty": false, "number": false,
	} {
		if got := isPII(key); got != want {
			t.Errorf("isPII(%q) = %v", key, got)
		}
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	var v any
	_ = json.Unmarshal([]byte(`{"provider":{"id":"p1","date_of_birth":"1970-01-31","dea_number":"AB1234563",
		"licenses":[{"state":"TX","number":"1"}]},
		"checks":[{"evidence":{"matched_record":{"LASTNAME":"DOE","DOB":"19700131","ADDRESS":"1 Main St","ZIP":"12345"}}}],
		"before":{"date_of_birth":"1970-01-31"}}`), &v)
	b, _ := json.Marshal(redact(v))
	for _, gone := range []string{"1970-01-31", "AB1234563", "19700131", "1 Main St", "12345"} {
		if strings.Contains(string(b), gone) {
			t.Errorf("%s survived: %s", gone, b)
		}
	}
	for _, kept := range []string{`"id":"p1"`, `"LASTNAME":"DOE"`, `"state":"TX"`} {
		if !strings.Contains(string(b), kept) {
			t.Errorf("%s lost: %s", kept, b)
		}
	}
}

func TestFit(t *testing.T) {
	t.Parallel()
	items := make([]any, 100)
	for i := range items {
		items[i] = map[string]any{"id": strings.Repeat("x", 30), "history": []any{1, 2, 3}}
	}
	v := map[string]any{"data": map[string]any{"providers": items, "note": strings.Repeat("n", 50)}}
	b, truncated, ok := fit(v, 1024)
	if !ok || !truncated || len(b) > 1024 {
		t.Fatalf("ok %v truncated %v len %d", ok, truncated, len(b))
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	n := len(back["data"].(map[string]any)["providers"].([]any))
	if n == 0 || n >= 100 {
		t.Fatalf("%d providers kept", n)
	}
	// The list was cut, the other fields kept.
	if back["data"].(map[string]any)["note"] != strings.Repeat("n", 50) {
		t.Fatal("note lost")
	}
	small := map[string]any{"a": 1}
	if b, truncated, ok := fit(small, 1024); !ok || truncated || string(b) != `{"a":1}` {
		t.Fatalf("%s %v %v", b, truncated, ok)
	}
	// One huge string is cut to size; nothing to cut at all is not ok.
	if b, truncated, ok := fit(map[string]any{"s": strings.Repeat("é", 5000)}, 1024); !ok || !truncated || len(b) > 1024 {
		t.Fatalf("long string: %d %v %v", len(b), truncated, ok)
	}
	keys := map[string]any{}
	for i := 0; i < 200; i++ {
		keys[strings.Repeat("k", 10)+string(rune('a'+i%26))+strings.Repeat("z", i)] = 1
	}
	if _, _, ok := fit(keys, 1024); ok {
		t.Fatal("an object that cannot shrink fitted")
	}
}

func TestFill(t *testing.T) {
	t.Parallel()
	tests := []struct {
		tmpl string
		segs []string
		want string
	}{
		{"/providers/{}", []string{"provider_001"}, "/providers/provider_001"},
		{"/providers/{}", []string{"a.b-c_D9"}, "/providers/a.b-c_D9"},
		{"/stats/summary", nil, "/stats/summary"},
		{"/providers/{}", []string{"../admin/imports"}, ""},
		{"/providers/{}", []string{"..%2Fadmin"}, ""},
		{"/providers/{}", []string{".."}, ""},
		{"/providers/{}", []string{"."}, ""},
		{"/providers/{}", []string{"a/b"}, ""},
		{"/providers/{}", []string{"a?b"}, ""},
		{"/providers/{}", []string{"a#b"}, ""},
		{"/providers/{}", []string{""}, ""},
		{"/providers/{}", []string{strings.Repeat("a", 65)}, ""},
		{"/providers/{}", nil, ""},
		{"/stats/summary", []string{"extra"}, ""},
	}
	for _, tt := range tests {
		got, err := fill(tt.tmpl, tt.segs)
		if tt.want == "" {
			if err == nil {
				t.Errorf("fill(%q, %q) = %q, want refused", tt.tmpl, tt.segs, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("fill(%q, %q) = %q %v", tt.tmpl, tt.segs, got, err)
		}
	}
}

// Whatever id a model makes up, the path stays /providers/<one segment>:
// no dot segment, no separator, nothing a server would decode into one.
func FuzzFill(f *testing.F) {
	for _, s := range []string{"provider_001", "../admin", "..%2f", "%2e%2e", "a/b", "é", ".a.", "a..b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		p, err := fill("/providers/{}", []string{id})
		if err != nil {
			return
		}
		seg := strings.TrimPrefix(p, "/providers/")
		if seg == "" || seg == "." || seg == ".." || strings.ContainsAny(seg, "/%?#\\") || seg != id {
			t.Fatalf("fill let %q through as %q", id, p)
		}
	})
}

func TestMay(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		role, min string
		want      bool
	}{
		{"reader", "reader", true}, {"admin", "reader", true}, {"operator", "admin", false}, {"reader", "operator", false},
		{"", "reader", false}, {"root", "reader", false},
	} {
		if got := may(tc.role, tc.min); got != tc.want {
			t.Errorf("may(%q, %q) = %v", tc.role, tc.min, got)
		}
	}
}

func TestIdentifiersOfAResult(t *testing.T) {
	t.Parallel()
	var v any
	_ = json.Unmarshal([]byte(`{"data":{"latest":{"run_id":"r1","npi":"1234567893","batch_id":"b1",
		"checks":[{"evidence":{"source_version":{"import_id":7}}}]},"providers":[{"id":"p1"}]}}`), &v)
	got := strings.Join(identifiers(v), ",")
	for _, want := range []string{"r1", "1234567893", "b1", "7", "p1"} {
		if !strings.Contains(","+got+",", ","+want+",") {
			t.Errorf("identifiers %s lacks %s", got, want)
		}
	}
}
