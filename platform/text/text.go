// Package text holds the one way the services shorten outside text they
// echo (error details, log fields, span attributes).
package text

import (
	"strings"
	"unicode/utf8"
)

// Clip returns s cut to at most n bytes at a rune boundary, with "…"
// appended when anything was cut. Invalid UTF-8 is replaced by U+FFFD
// first, so the result is always valid UTF-8 whatever a client sent.
func Clip(s string, n int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if len(s) <= n {
		return s
	}
	cut := max(n, 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
