package checks

import (
	"github.com/provcred/credential/internal/results"
	"github.com/provcred/platform/domain"
)

// Decide applies the decision rules to a run's checks:
//   - denied: the NPI is malformed, an exclusion list matched the NPI, or a
//     claimed license is revoked or expired. Those are the only checks that
//     answer "fail" for those reasons (nppes "fail" is not among them).
//     A denial stands even when another source was unavailable: more data
//     cannot undo it.
//   - incomplete: any source was unavailable; never approved.
//   - needs_review: anything else that is not a pass (an NPPES failure, a
//     name+DOB exclusion hit, a waiver, a license found zero or several
//     times or in another state, a partial name match).
//   - approved: every check passed.
func Decide(checks []results.Check) (domain.Decision, []results.Reason) {
	var reasons []results.Reason
	denied, incomplete, review := false, false, false
	for _, c := range checks {
		if c.Outcome == domain.Pass {
			continue
		}
		reasons = append(reasons, results.Reason{Check: c.Check, Outcome: c.Outcome, Detail: c.Detail})
		switch {
		case c.Outcome == domain.Fail && c.Check != results.CheckNPPES:
			denied = true
		case c.Outcome == domain.Unavailable:
			incomplete = true
		default:
			review = true
		}
	}
	if reasons == nil {
		reasons = []results.Reason{}
	}
	switch {
	case denied:
		return domain.Denied, reasons
	case incomplete:
		return domain.Incomplete, reasons
	case review:
		return domain.NeedsReview, reasons
	default:
		return domain.Approved, reasons
	}
}
