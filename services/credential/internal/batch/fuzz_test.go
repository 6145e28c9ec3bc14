package batch

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/provcred/platform/apierr"
)

func TestParseIDs(t *testing.T) {
	t.Parallel()
	cases := []struct {
		body    string
		ids     []string
		dups    int
		status  int
		errCode string
	}{
		{`{"provider_ids":["a","b","a"]}`, []string{"a", "b"}, 1, 0, ""},
		{`{"provider_ids":[" a ","a"]}`, []string{"a"}, 1, 0, ""},
		{`{"provider_ids":[]}`, nil, 0, 422, "validation_failed"},
		{`{"provider_ids":null}`, nil, 0, 422, "validation_failed"},
		{`{"provider_ids":["a"]} {}`, nil, 0, 400, "invalid_json"},
		{`{"provider_ids":["a\u0000"]}`, nil, 0, 422, "validation_failed"},
		{`{"provider_ids":["` + strings.Repeat("x", 201) + `"]}`, nil, 0, 422, "validation_failed"},
		{`{"provider_ids":["a","b","c","d"]}`, nil, 0, 413, "batch_too_large"},
		{`{"provider_ids":["a","b","c","a","b","c"]}`, []string{"a", "b", "c"}, 3, 0, ""},
		{`[]`, nil, 0, 422, "validation_failed"},
	}
	for _, tc := range cases {
		ids, dups, err := ParseIDs([]byte(tc.body), 3)
		if tc.status == 0 {
			if err != nil || strings.Join(ids, ",") != strings.Join(tc.ids, ",") || dups != tc.dups {
				t.Errorf("%s: ids %v dups %d err %v", tc.body, ids, dups, err)
			}
			continue
		}
		e, ok := apierr.As(err)
		if !ok || e.Status != tc.status || e.Code != tc.errCode {
			t.Errorf("%s: err %v, want %d %s", tc.body, err, tc.status, tc.errCode)
		}
	}
}

func TestParseWait(t *testing.T) {
	t.Parallel()
	limit := 30 * time.Second
	cases := []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{"", 0, false}, {"10s", 10 * time.Second, false}, {"5", 5 * time.Second, false},
		{"2m", limit, false}, {"0", 0, false}, {"-1", 0, true}, {"-2s", 0, true}, {"soon", 0, true},
		{"99999999999999", 0, true},
	}
	for _, tc := range cases {
		got, err := ParseWait(tc.in, limit)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("ParseWait(%q) = %s, %v", tc.in, got, err)
		}
	}
}

// FuzzParseIDs: any body gives ids or a 4xx apierr, never a panic; ids are
// distinct, trimmed, non-blank and within the limit.
func FuzzParseIDs(f *testing.F) {
	for _, s := range []string{`{"provider_ids":["a","b"]}`, `{"provider_ids":[1,"x"]}`, `{}`, `[`, `{"provider_ids":["a","a"," "]}`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ids, dups, err := ParseIDs(body, 5)
		if err != nil {
			e, ok := apierr.As(err)
			if !ok || e.Status < 400 || e.Status > 499 {
				t.Fatalf("non-4xx error %v", err)
			}
			return
		}
		if len(ids) == 0 || len(ids) > 5 || dups < 0 {
			t.Fatalf("ids %v dups %d", ids, dups)
		}
		seen := map[string]bool{}
		for _, id := range ids {
			if seen[id] || strings.TrimSpace(id) != id || id == "" {
				t.Fatalf("bad id %q in %v", id, ids)
			}
			seen[id] = true
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
	})
}

// FuzzParseWait: never a panic; accepted values lie in [0, limit].
func FuzzParseWait(f *testing.F) {
	for _, s := range []string{"30s", "5", "-1", "1h", "", "1e9", "9223372036854775807"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseWait(s, time.Minute)
		if err != nil {
			if e, ok := apierr.As(err); !ok || e.Status != 422 {
				t.Fatalf("err %v", err)
			}
			return
		}
		if d < 0 || d > time.Minute {
			t.Fatalf("ParseWait(%q) = %s", s, d)
		}
	})
}
