package cite

import (
	"slices"
	"strings"
	"testing"
)

func TestIdentifiers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text string
		want []string
	}{
		{"Provider [provider_001] was denied.", []string{"provider_001"}},
		{"See provider_002. And provider_003, too", []string{"provider_002", "provider_003"}},
		{"Run [6F1D2C3B-0000-4000-8000-000000000000]", []string{"6f1d2c3b-0000-4000-8000-000000000000"}},
		{"NPIs 1234567893 and 2234567890, not 12345678931 or 3234567890", []string{"1234567893", "2234567890"}},
		{"A [link](https://example.org) is not an id; [a b] neither", nil},
		{"Import [42] on [2026-01-01]", []string{"42", "2026-01-01"}},
		{"needs_review is a decision, not an id", nil},
		{"", nil},
	}
	for _, tt := range tests {
		if got := Identifiers(tt.text); !slices.Equal(got, tt.want) {
			t.Errorf("Identifiers(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	l := NewLedger()
	l.Add(
		Record{Citation: Citation{Type: Provider, ID: "p1", URL: "/providers/p1"}, Direct: true, Mentions: []string{"p1"}},
		Record{Citation: Citation{Type: Result, ID: "0f0e0d0c-0000-4000-8000-000000000001", URL: "/results/run/0f0e0d0c-0000-4000-8000-000000000001"}, Direct: true},
		Record{Citation: Citation{Type: Provider, ID: "p2", URL: "/providers/p2"}, Mentions: []string{"p2", "1234567893", "Ada Lovelace"}},
		Record{Citation: Citation{Type: Provider, ID: "p3", URL: "/providers/p3"}, Mentions: []string{"p3", "Bo Li"}},
		Record{Citation: Citation{Type: Provider, ID: "p1", URL: "/providers/p1"}, Mentions: []string{"p1"}}, // twice: cited once
	)
	l.Know("batch_7")
	tests := []struct {
		answer     string
		cited      []string
		unverified []string
	}{
		{"Nothing in particular.", []string{"p1", "0f0e0d0c-0000-4000-8000-000000000001"}, nil},
		{"ADA LOVELACE [p2] and [batch_7]", []string{"p1", "0f0e0d0c-0000-4000-8000-000000000001", "p2"}, nil},
		{"NPI 1234567893 belongs to someone", []string{"p1", "0f0e0d0c-0000-4000-8000-000000000001", "p2"}, nil},
		// "Bo Li" inside "Bo Lindqvist" is not a mention.
		{"Bo Lindqvist, [p9], run [0F0E0D0C-0000-4000-8000-000000000001]", []string{"p1", "0f0e0d0c-0000-4000-8000-000000000001"}, []string{"p9"}},
	}
	for _, tt := range tests {
		cs, un := l.Check(tt.answer)
		var ids []string
		for _, c := range cs {
			ids = append(ids, c.ID)
		}
		if !slices.Equal(ids, tt.cited) || !slices.Equal(un, append([]string{}, tt.unverified...)) {
			t.Errorf("%q: cited %v unverified %v; want %v %v", tt.answer, ids, un, tt.cited, tt.unverified)
		}
	}
}

func FuzzIdentifiers(f *testing.F) {
	f.Add("Provider [provider_001] (NPI 1234567893), run 6f1d2c3b-0000-4000-8000-000000000000")
	f.Add("[x](y) [[a]] provider_")
	f.Fuzz(func(t *testing.T, text string) {
		lower := strings.ToLower(text)
		for _, id := range Identifiers(text) {
			if id == "" || !strings.Contains(lower, strings.ToLower(id)) {
				t.Fatalf("%q is not in %q", id, text)
			}
		}
		// Whatever the text, an empty ledger cites nothing.
		if cs, _ := NewLedger().Check(text); len(cs) != 0 {
			t.Fatalf("cited %v", cs)
		}
	})
}
