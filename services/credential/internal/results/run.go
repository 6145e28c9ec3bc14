// Package results is the read and store side of credentialing runs: the run
// record (the decision, its reasons, and every check with its evidence), the
// store that saves a run with the provider's new decision and its events,
// and GET /results (the latest run per provider), GET /results/:provider_id
// (the latest run and the history) and GET /results/run/:run_id. Runs are
// made by package checks (the engine, and POST /credential/:id).
//
// A run is evidence: it is never updated after it is stored, it keeps the
// NPI it checked, and it outlives the provider record.
package results

import (
	"encoding/json"
	"time"

	"github.com/provcred/platform/domain"
)

// Review resolutions (the review queue, package reviews).
const (
	ReviewCleared   = "cleared"
	ReviewConfirmed = "confirmed"
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
	Outcome        domain.Outcome  `json:"outcome"`
	Detail         string          `json:"detail"`
	Source         string          `json:"source,omitempty"`
	SourceVersion  *SourceVersion  `json:"source_version,omitempty"`
	FetchedAt      *time.Time      `json:"fetched_at,omitempty"`
	Line           int64           `json:"line,omitempty"`
	MatchedRecord  json.RawMessage `json:"matched_record,omitempty"`
	Digest         string          `json:"digest,omitempty"`
	MatchedRecords int             `json:"matched_records,omitempty"`
	// ReviewID is the review item that resolved this record (cleared or
	// confirmed) for the provider.
	ReviewID string `json:"review_id,omitempty"`
}

// Check is one check's result in a run.
type Check struct {
	Check      string         `json:"check"`
	Outcome    domain.Outcome `json:"outcome"`
	Detail     string         `json:"detail"`
	Evidence   Evidence       `json:"evidence"`
	DurationMS float64        `json:"duration_ms"`
}

// Reason explains a decision: one check that was not a plain pass.
type Reason struct {
	Check   string         `json:"check"`
	Outcome domain.Outcome `json:"outcome"`
	Detail  string         `json:"detail"`
}

// Run is one credentialing of one provider.
type Run struct {
	ID         string          `json:"run_id"`
	ProviderID string          `json:"provider_id"`
	NPI        string          `json:"npi"`
	BatchID    *string         `json:"batch_id,omitempty"`
	Decision   domain.Decision `json:"decision"`
	Reasons    []Reason        `json:"reasons"`
	Checks     []Check         `json:"checks"`
	Actor      string          `json:"actor"`
	RequestID  string          `json:"request_id,omitempty"`
	StartedAt  time.Time       `json:"started_at"`
	FinishedAt time.Time       `json:"finished_at"`
}

// RunOptions say who asked for a run.
type RunOptions struct {
	Actor     string
	RequestID string
	// BatchID ties the run to a batch (empty for a single run).
	BatchID string
}
