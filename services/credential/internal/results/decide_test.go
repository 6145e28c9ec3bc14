package results

import (
	"strings"
	"testing"
)

func TestDecide(t *testing.T) {
	t.Parallel()
	checks := func(outcomes ...string) []Check {
		out := make([]Check, len(CheckNames))
		for i, n := range CheckNames {
			out[i] = Check{Check: n, Outcome: outcomes[i], Detail: n + " " + outcomes[i]}
		}
		return out
	}
	for _, c := range []struct {
		name     string
		outcomes []string // npi_format, nppes, leie, sam, license
		want     string
		reasons  int
	}{
		{"all pass", []string{Pass, Pass, Pass, Pass, Pass}, Approved, 0},
		{"bad NPI denies", []string{Fail, Pass, Pass, Pass, Pass}, Denied, 1},
		{"LEIE NPI match denies", []string{Pass, Pass, Fail, Pass, Pass}, Denied, 1},
		{"SAM NPI match denies", []string{Pass, Pass, Pass, Fail, Pass}, Denied, 1},
		{"revoked or expired license denies", []string{Pass, Pass, Pass, Pass, Fail}, Denied, 1},
		{"denial stands with a source down", []string{Pass, Unavailable, Fail, Pass, Pass}, Denied, 2},
		{"NPPES fail needs review", []string{Pass, Fail, Pass, Pass, Pass}, DecisionReview, 1},
		{"unavailable is incomplete", []string{Pass, Pass, Pass, Unavailable, Pass}, DecisionIncomplete, 1},
		{"unavailable beats review", []string{Pass, NeedsReview, Pass, Unavailable, Pass}, DecisionIncomplete, 2},
		{"review", []string{Pass, Pass, NeedsReview, Pass, Pass}, DecisionReview, 1},
		{"NPPES fail and unavailable", []string{Pass, Fail, Unavailable, Pass, Pass}, DecisionIncomplete, 2},
	} {
		got, reasons := Decide(checks(c.outcomes...))
		if got != c.want || len(reasons) != c.reasons {
			t.Errorf("%s: %s with %d reasons, want %s with %d", c.name, got, len(reasons), c.want, c.reasons)
		}
		for _, r := range reasons {
			if r.Outcome == Pass || !strings.HasPrefix(r.Detail, r.Check) {
				t.Errorf("%s: bad reason %+v", c.name, r)
			}
		}
	}
}

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
		if !validDecisions[flt.Decision] || len(flt.ProviderID) > 200 {
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
