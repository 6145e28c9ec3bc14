package text

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestClip(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 40, "short"},
		{"exactly", 7, "exactly"},
		{"abcdef", 3, "abc…"},
		{"héllo", 2, "h…"}, // é is two bytes: never cut in half
		{"日本語", 4, "日…"},
		{"a\xffb", 10, "a\uFFFDb"},
		{"x", 0, "…"},
		{"", 0, ""},
	} {
		got := Clip(c.in, c.n)
		if got != c.want || !utf8.ValidString(got) {
			t.Errorf("Clip(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}

func FuzzClip(f *testing.F) {
	f.Add("héllo wörld", 3)
	f.Fuzz(func(t *testing.T, s string, n int) {
		n = n % 100
		if n < 0 {
			n = -n
		}
		got := Clip(s, n)
		valid := strings.ToValidUTF8(s, "\uFFFD")
		kept, cut := strings.CutSuffix(got, "…")
		if !utf8.ValidString(got) || !strings.HasPrefix(valid, kept) || (cut && len(kept) > n) ||
			(!cut && got != valid) || (len(valid) <= n && got != valid) {
			t.Fatalf("Clip(%q, %d) = %q", s, n, got)
		}
	})
}
