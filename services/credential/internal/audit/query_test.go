package audit

import (
	"strings"
	"testing"
)

func TestParseFilter(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name                                 string
		provider, actor, event, since, until string
		field                                string // "" when valid
	}{
		{name: "empty"},
		{name: "all", provider: "p1", actor: "key_1", event: "credential.completed", since: "2026-01-01", until: "2026-01-02T00:00:00Z"},
		{name: "rfc3339 offset", since: "2026-01-01T10:00:00+02:00"},
		{name: "bad since", since: "yesterday", field: "since"},
		{name: "bad month", until: "2026-13-01", field: "until"},
		{name: "until before since", since: "2026-02-01", until: "2026-01-01", field: "until"},
		{name: "until equals since", since: "2026-02-01", until: "2026-02-01", field: "until"},
		{name: "long provider", provider: strings.Repeat("x", 201), field: "provider"},
		{name: "nul actor", actor: "a\x00b", field: "actor"},
	} {
		_, err := ParseFilter(c.provider, c.actor, c.event, c.since, c.until)
		switch {
		case c.field == "" && err != nil:
			t.Errorf("%s: unexpected %v", c.name, err)
		case c.field != "" && (err == nil || !strings.Contains(err.Error(), "validation_failed")):
			t.Errorf("%s: want a 422 on %s, got %v", c.name, c.field, err)
		}
	}
}

// FuzzParseFilter: /logs query parameters are outside input; parsing never
// panics, and what it accepts is a usable filter.
func FuzzParseFilter(f *testing.F) {
	f.Add("p1", "key", "credential.completed", "2026-01-01", "2026-01-02T00:00:00Z")
	f.Add("", "", "", "0000-01-01", "9999-12-31T23:59:59.999999999Z")
	f.Add("\x00", "", "", "2026-01-01T00:00:00+25:00", "")
	f.Fuzz(func(t *testing.T, provider, actor, event, since, until string) {
		flt, err := ParseFilter(provider, actor, event, since, until)
		if err != nil {
			return
		}
		if flt.Since != nil && flt.Until != nil && !flt.Until.After(*flt.Since) {
			t.Fatalf("accepted until %v not after since %v", flt.Until, flt.Since)
		}
		if len(flt.ProviderID) > 200 || len(flt.Actor) > 200 || len(flt.Event) > 200 {
			t.Fatal("accepted an over-long filter")
		}
	})
}
