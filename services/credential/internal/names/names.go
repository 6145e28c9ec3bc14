// Package names normalizes person names for matching across sources that
// spell them differently: case, accents, punctuation, spacing, suffixes
// ("Jr.", "III") and credentials ("MD") are not evidence of a different
// person, so they are removed before comparing.
package names

import (
	"strings"
	"unicode"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// suffixes are generational suffixes and professional credentials that
// sources append to a name part inconsistently.
var suffixes = map[string]bool{
	"jr": true, "sr": true, "ii": true, "iii": true, "iv": true, "v": true,
	"md": true, "do": true, "dds": true, "dmd": true, "phd": true, "np": true, "pa": true,
	"rn": true, "lpn": true, "aprn": true, "crna": true, "dpm": true, "od": true,
	"pharmd": true, "dc": true, "facp": true, "facs": true, "mph": true, "pac": true,
}

// Part normalizes one name part (a last or first name): accents folded,
// lower case, letters only, trailing suffix words dropped.
// "O'Brien-Smith, Jr." → "obriensmith"; "José" → "jose".
func Part(s string) string {
	words := Words(s)
	for len(words) > 1 && suffixes[words[len(words)-1]] {
		words = words[:len(words)-1]
	}
	return strings.Join(words, "")
}

// Words splits s into lower-case ASCII-folded words, splitting on anything
// that is not a letter or digit, and joining apostrophes ("O'Brien" is one word).
func Words(s string) []string {
	s = fold(s)
	s = strings.NewReplacer("'", "", "’", "", "`", "").Replace(s)
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
}

// fold removes diacritics.
func fold(s string) string {
	// Invalid UTF-8 would make the transform fail and leave accents in place.
	s = strings.ToValidUTF8(s, "")
	t := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
	out, _, err := transform.String(t, s)
	if err != nil {
		return s
	}
	return out
}

// Name is a person's name as sources hold it.
type Name struct {
	First, Middle, Last, Suffix string
}

// Match is how well two names agree.
type Match int

const (
	// Mismatch: last or first name differ.
	Mismatch Match = iota
	// Partial: last names agree and one first name is an initial or prefix of
	// the other ("Bob"/"Robert" is not detected; "J"/"John" is).
	Partial
	// Exact: last and first names agree after normalization; middle names,
	// when both are given, do not contradict each other.
	Exact
)

func (m Match) String() string {
	return [...]string{"mismatch", "partial", "exact"}[m]
}

// Compare decides whether a and b name the same person. Middle names only
// count against a match when both are present and their initials differ.
func Compare(a, b Name) Match {
	al, bl := Part(a.Last), Part(b.Last)
	if al == "" || bl == "" || al != bl {
		// Hyphenated or compound last names: accept when every word of the
		// shorter one is in the longer ("Garcia" vs "Garcia Lopez").
		if !compoundMatch(a.Last, b.Last) {
			return Mismatch
		}
	}
	af, bf := Part(a.First), Part(b.First)
	if af == "" || bf == "" {
		return Partial
	}
	am, bm := Part(a.Middle), Part(b.Middle)
	if am != "" && bm != "" && am[0] != bm[0] {
		return Mismatch
	}
	if af == bf {
		return Exact
	}
	if strings.HasPrefix(af, bf) || strings.HasPrefix(bf, af) {
		return Partial
	}
	return Mismatch
}

func compoundMatch(a, b string) bool {
	aw, bw := stripSuffixWords(Words(a)), stripSuffixWords(Words(b))
	if len(aw) == 0 || len(bw) == 0 {
		return false
	}
	if len(aw) > len(bw) {
		aw, bw = bw, aw
	}
	set := map[string]bool{}
	for _, w := range bw {
		set[w] = true
	}
	for _, w := range aw {
		if !set[w] {
			return false
		}
	}
	return true
}

func stripSuffixWords(w []string) []string {
	for len(w) > 1 && suffixes[w[len(w)-1]] {
		w = w[:len(w)-1]
	}
	return w
}
