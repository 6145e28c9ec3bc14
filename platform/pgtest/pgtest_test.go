package pgtest

import (
	"strings"
	"testing"
)

func TestRedacted(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		"postgres://ci:s3cret@db.internal:5432/postgres?sslmode=require",
		"postgres://ci:s3cret@db.internal/postgres",
		"postgres://ci:s3cret@[::1]:5432/postgres",
		"::not a url s3cret",
	} {
		if got := redacted(raw); strings.Contains(got, "s3cret") {
			t.Errorf("redacted(%q) = %q", raw, got)
		}
	}
	if got := redacted(DefaultURL); got != DefaultURL {
		t.Errorf("a URL without a password changed: %q", got)
	}
}
