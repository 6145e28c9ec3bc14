package names

import "testing"

func TestPart(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"Smith", "smith"},
		{"SMITH", "smith"},
		{"O'Brien", "obrien"},
		{"O’Brien", "obrien"},
		{"Smith-Jones", "smithjones"},
		{"Smith Jr.", "smith"},
		{"Smith, III", "smith"},
		{"Smith MD", "smith"},
		{"José", "jose"},
		{"Müller", "muller"},
		{"  de la  Cruz ", "delacruz"},
		{"Jr", "jr"}, // a lone word is never dropped
		{"", ""},
	}
	for _, tt := range tests {
		if got := Part(tt.in); got != tt.want {
			t.Errorf("Part(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCompare(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		a, b Name
		want Match
	}{
		{"identical", Name{First: "John", Last: "Smith"}, Name{First: "John", Last: "Smith"}, Exact},
		{"case and punctuation", Name{First: "JOHN", Last: "O'BRIEN"}, Name{First: "john", Last: "OBrien"}, Exact},
		{"suffix on last", Name{First: "John", Last: "Smith Jr."}, Name{First: "John", Last: "SMITH", Suffix: "JR"}, Exact},
		{"middle name vs initial", Name{First: "Mary", Middle: "Ann", Last: "Lee"}, Name{First: "Mary", Middle: "A.", Last: "Lee"}, Exact},
		{"middle missing on one side", Name{First: "Mary", Middle: "Ann", Last: "Lee"}, Name{First: "Mary", Last: "Lee"}, Exact},
		{"middle contradicts", Name{First: "Mary", Middle: "Ann", Last: "Lee"}, Name{First: "Mary", Middle: "Beth", Last: "Lee"}, Mismatch},
		{"first initial", Name{First: "J", Last: "Smith"}, Name{First: "John", Last: "Smith"}, Partial},
		{"different first", Name{First: "John", Last: "Smith"}, Name{First: "Jane", Last: "Smith"}, Mismatch},
		{"different last", Name{First: "John", Last: "Smith"}, Name{First: "John", Last: "Smyth"}, Mismatch},
		{"compound last", Name{First: "Ana", Last: "Garcia Lopez"}, Name{First: "Ana", Last: "Garcia"}, Exact},
		{"hyphen vs space", Name{First: "Ana", Last: "Garcia-Lopez"}, Name{First: "Ana", Last: "Garcia Lopez"}, Exact},
		{"accents", Name{First: "José", Last: "Núñez"}, Name{First: "JOSE", Last: "NUNEZ"}, Exact},
		{"empty last", Name{First: "John"}, Name{First: "John", Last: "Smith"}, Mismatch},
		{"empty first", Name{Last: "Smith"}, Name{First: "John", Last: "Smith"}, Partial},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Compare(tt.a, tt.b); got != tt.want {
				t.Errorf("Compare = %s, want %s", got, tt.want)
			}
			if got := Compare(tt.b, tt.a); got != tt.want {
				t.Errorf("Compare reversed = %s, want %s", got, tt.want)
			}
		})
	}
}

func FuzzPart(f *testing.F) {
	for _, s := range []string{"O'Brien Jr.", "José", "", "a-b c", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p := Part(s)
		if Part(p) != p {
			t.Fatalf("Part not idempotent on %q: %q -> %q", s, p, Part(p))
		}
	})
}
