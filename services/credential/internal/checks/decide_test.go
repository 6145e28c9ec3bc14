package checks

import (
	"strings"
	"testing"

	"github.com/provcred/credential/internal/results"
	"github.com/provcred/platform/domain"
)

func TestDecide(t *testing.T) {
	t.Parallel()
	const (
		Pass, Fail, NeedsReview, Unavailable = domain.Pass, domain.Fail, domain.Review, domain.Unavailable
	)
	checks := func(outcomes ...domain.Outcome) []results.Check {
		out := make([]results.Check, len(results.CheckNames))
		for i, n := range results.CheckNames {
			out[i] = results.Check{Check: n, Outcome: outcomes[i], Detail: n + " " + string(outcomes[i])}
		}
		return out
	}
	for _, c := range []struct {
		name     string
		outcomes []domain.Outcome // npi_format, nppes, leie, sam, license
		want     domain.Decision
		reasons  int
	}{
		{"all pass", []domain.Outcome{Pass, Pass, Pass, Pass, Pass}, domain.Approved, 0},
		{"bad NPI denies", []domain.Outcome{Fail, Pass, Pass, Pass, Pass}, domain.Denied, 1},
		{"LEIE NPI match denies", []domain.Outcome{Pass, Pass, Fail, Pass, Pass}, domain.Denied, 1},
		{"SAM NPI match denies", []domain.Outcome{Pass, Pass, Pass, Fail, Pass}, domain.Denied, 1},
		{"revoked or expired license denies", []domain.Outcome{Pass, Pass, Pass, Pass, Fail}, domain.Denied, 1},
		{"denial stands with a source down", []domain.Outcome{Pass, Unavailable, Fail, Pass, Pass}, domain.Denied, 2},
		{"NPPES fail needs review", []domain.Outcome{Pass, Fail, Pass, Pass, Pass}, domain.NeedsReview, 1},
		{"unavailable is incomplete", []domain.Outcome{Pass, Pass, Pass, Unavailable, Pass}, domain.Incomplete, 1},
		{"unavailable beats review", []domain.Outcome{Pass, NeedsReview, Pass, Unavailable, Pass}, domain.Incomplete, 2},
		{"review", []domain.Outcome{Pass, Pass, NeedsReview, Pass, Pass}, domain.NeedsReview, 1},
		{"NPPES fail and unavailable", []domain.Outcome{Pass, Fail, Unavailable, Pass, Pass}, domain.Incomplete, 2},
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
