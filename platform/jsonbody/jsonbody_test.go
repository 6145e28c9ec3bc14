package jsonbody

import (
	"strings"
	"testing"

	"github.com/provcred/platform/apierr"
)

type license struct {
	State  string `json:"state"`
	Number string `json:"number"`
}

type target struct {
	NPI      string         `json:"npi"`
	Role     string         `json:"role"`
	Licenses []license      `json:"licenses"`
	Extra    map[string]any `json:"extra"`
}

func TestDecode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body string
		status     int
		code       string
		detail     string // a substring of the detail
	}{
		{"ok", `{"npi":"1234567893","licenses":[{"state":"CA"},{"state":"NY"}],"extra":{"a":[1,{"b":2}]}}`, 0, "", ""},
		{"same key in sibling objects is fine", `{"licenses":[{"state":"CA"},{"state":"NY"}]}`, 0, "", ""},
		{"duplicate top-level key", `{"role":"reader","role":"admin"}`, 400, "invalid_json", `duplicate key "role" in the body`},
		{"duplicate differing in case", `{"role":"reader","ROLE":"admin"}`, 400, "invalid_json", `duplicate key "ROLE"`},
		{"duplicate in a nested array element", `{"licenses":[{"state":"CA"},{"state":"NY","state":"TX"}]}`, 400, "invalid_json", `duplicate key "state" in licenses[1]`},
		{"duplicate in a free-form map", `{"extra":{"a":{"x":1,"x":2}}}`, 400, "invalid_json", `in extra.a`},
		{"duplicate after nested values", `{"extra":{"a":[1,[2,{}]]},"npi":"1","extra":{}}`, 400, "invalid_json", `duplicate key "extra"`},
		{"long duplicate key is clipped", `{"extra":{"` + strings.Repeat("k", 500) + `":1,"` + strings.Repeat("k", 500) + `":2}}`, 400, "invalid_json", "…"},
		{"empty", ``, 400, "invalid_json", "empty"},
		{"malformed", `{"npi":`, 400, "invalid_json", ""},
		{"two objects", `{} {}`, 400, "invalid_json", "one JSON object"},
		{"stray bracket", `{} ]`, 400, "invalid_json", ""},
		{"array body", `[]`, 400, "invalid_json", "one JSON object"},
		{"unknown field", `{"nope":1}`, 422, "validation_failed", "nope: is not a known field"},
		{"wrong type", `{"licenses":{}}`, 422, "validation_failed", "licenses: must be a JSON array"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var v target
			err := Decode([]byte(tt.body), &v)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				return
			}
			e, ok := apierr.As(err)
			if !ok {
				t.Fatalf("Decode = %v, want an apierr", err)
			}
			if e.Status != tt.status || e.Code != tt.code || !strings.Contains(e.Detail, tt.detail) {
				t.Fatalf("Decode = %d %s %q, want %d %s containing %q", e.Status, e.Code, e.Detail, tt.status, tt.code, tt.detail)
			}
			if len(e.Detail) > 200 {
				t.Fatalf("detail of %d bytes echoes too much of the body", len(e.Detail))
			}
		})
	}
}

// FuzzDecode: whatever the bytes, Decode answers nil or an *apierr.Error
// (never a panic, never a bare error that would become a 500).
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"a":1,"a":2}`, `{"extra":{"b":[{"c":1,"C":1}]}}`, `[1,{"a":{}}]`, `"x"`, `{}`, `{"licenses":[{"state":"CA","state":1}]}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var v target
		if err := Decode([]byte(s), &v); err != nil {
			if _, ok := apierr.As(err); !ok {
				t.Fatalf("Decode(%q) = %v, not an apierr", s, err)
			}
		}
	})
}
