// Package results stores credentialing runs (the decision, its reasons, and
// every check with its evidence) and serves them: POST /credential/:id runs
// the checks through the engine, GET /results lists the latest run per
// provider, GET /results/:provider_id gives the latest run and the history.
//
// A run is evidence: it is never updated after it is stored, it keeps the
// NPI it checked, and it outlives the provider record.
package results

import (
	"encoding/json"
	"time"
)

// Check outcomes.
const (
	Pass        = "pass"
	Fail        = "fail"
	NeedsReview = "needs_review"
	Unavailable = "unavailable"
)

// Decisions.
const (
	Approved           = "approved"
	Denied             = "denied"
	DecisionReview     = "needs_review"
	DecisionIncomplete = "incomplete"
)

// Check names, in the order they are reported.
const (
	CheckNPIFormat = "npi_format"
	CheckNPPES     = "nppes"
	CheckLEIE      = "leie"
	CheckSAM       = "sam"
	CheckLicense   = "license"
)

// CheckNames lists every check in report order.
var CheckNames = []string{CheckNPIFormat, CheckNPPES, CheckLEIE, CheckSAM, CheckLicense}

// SourceVersion identifies the imported file an answer came from.
type SourceVersion struct {
	ImportID    int64      `json:"import_id"`
	FileDate    *time.Time `json:"file_date,omitempty"`
	ActivatedAt *time.Time `json:"activated_at,omitempty"`
}

// Evidence is what a source said and when: enough for an auditor to find
// the very record again (import id and line, or the fetch time) and to prove
// it was not altered (the digest of the raw record or response).
type Evidence struct {
	// Source is leie, sam, nppes, nppes_api, licenses, license_api:XX or npi_format.
	Source string `json:"source"`
	// SourceVersion is set for imported sources.
	SourceVersion *SourceVersion `json:"source_version,omitempty"`
	// FetchedAt is set for live sources.
	FetchedAt *time.Time `json:"fetched_at,omitempty"`
	// MatchedRecord is the record the outcome rests on (null when none matched).
	MatchedRecord json.RawMessage `json:"matched_record"`
	// Digest is the SHA-256 (hex) of the raw record or response.
	Digest    string    `json:"digest,omitempty"`
	CheckedAt time.Time `json:"checked_at"`
	// Items are the per-record findings when several records were weighed
	// (each claimed license; every exclusion row that matched).
	Items []Item `json:"items,omitempty"`
}

// Item is one record weighed by a check.
type Item struct {
	// Key names what was looked up, e.g. "CA 12345" or "npi" / "name+dob".
	Key            string          `json:"key"`
	Outcome        string          `json:"outcome"`
	Detail         string          `json:"detail"`
	Source         string          `json:"source,omitempty"`
	SourceVersion  *SourceVersion  `json:"source_version,omitempty"`
	FetchedAt      *time.Time      `json:"fetched_at,omitempty"`
	Line           int64           `json:"line,omitempty"`
	MatchedRecord  json.RawMessage `json:"matched_record,omitempty"`
	Digest         string          `json:"digest,omitempty"`
	MatchedRecords int             `json:"matched_records,omitempty"`
}

// Check is one check's result in a run.
type Check struct {
	Check      string   `json:"check"`
	Outcome    string   `json:"outcome"`
	Detail     string   `json:"detail"`
	Evidence   Evidence `json:"evidence"`
	DurationMS float64  `json:"duration_ms"`
}

// Reason explains a decision: one check that was not a plain pass.
type Reason struct {
	Check   string `json:"check"`
	Outcome string `json:"outcome"`
	Detail  string `json:"detail"`
}

// Run is one credentialing of one provider.
type Run struct {
	ID         string    `json:"run_id"`
	ProviderID string    `json:"provider_id"`
	NPI        string    `json:"npi"`
	BatchID    *string   `json:"batch_id,omitempty"`
	Decision   string    `json:"decision"`
	Reasons    []Reason  `json:"reasons"`
	Checks     []Check   `json:"checks"`
	Actor      string    `json:"actor"`
	RequestID  string    `json:"request_id,omitempty"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
}

// RunOptions say who asked for a run.
type RunOptions struct {
	Actor     string
	RequestID string
	// BatchID ties the run to a batch (empty for a single run).
	BatchID string
}

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
func Decide(checks []Check) (string, []Reason) {
	var reasons []Reason
	denied, incomplete, review := false, false, false
	for _, c := range checks {
		if c.Outcome == Pass {
			continue
		}
		reasons = append(reasons, Reason{Check: c.Check, Outcome: c.Outcome, Detail: c.Detail})
		switch {
		case c.Outcome == Fail && c.Check != CheckNPPES:
			denied = true
		case c.Outcome == Unavailable:
			incomplete = true
		default:
			review = true
		}
	}
	if reasons == nil {
		reasons = []Reason{}
	}
	switch {
	case denied:
		return Denied, reasons
	case incomplete:
		return DecisionIncomplete, reasons
	case review:
		return DecisionReview, reasons
	default:
		return Approved, reasons
	}
}
