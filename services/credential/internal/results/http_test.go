package results

import (
	"strings"
	"testing"
)

func TestParseFilter(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		decision, provider, since string
		ok                        bool
	}{
		{"", "", "", true},
		{"approved", "p1", "2026-01-01", true},
		{"needs_review", "", "2026-01-01T00:00:00Z", true},
		{"maybe", "", "", false},
		{"", "", "soon", false},
		{"", strings.Repeat("p", 201), "", false},
	} {
		_, err := ParseFilter(c.decision, c.provider, c.since)
		if (err == nil) != c.ok {
			t.Errorf("%q %q %q: %v", c.decision, c.provider, c.since, err)
		}
	}
}

// FuzzParseFilter: GET /results query parameters are outside input.
func FuzzParseFilter(f *testing.F) {
	f.Add("approved", "p1", "2026-01-01")
	f.Add("", "", "2026-01-01T00:00:00.123+01:00")
	f.Fuzz(func(t *testing.T, decision, provider, since string) {
		flt, err := ParseFilter(decision, provider, since)
		if err != nil {
			return
		}
		if !(flt.Decision == "" || flt.Decision.Valid()) || len(flt.ProviderID) > 200 {
			t.Fatalf("accepted %+v", flt)
		}
	})
}

func TestUUIDLike(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"6110e298-cee6-4c89-ad70-3cc94a7318c0": true, "6110E298-CEE6-4C89-AD70-3CC94A7318C0": true,
		"6110e298cee64c89ad703cc94a7318c0": false, "6110e298-cee6-4c89-ad70-3cc94a7318cg": false, "": false,
	} {
		if uuidLike(s) != want {
			t.Errorf("uuidLike(%q) != %v", s, want)
		}
	}
}
