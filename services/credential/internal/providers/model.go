// Package providers stores provider records (identity, licenses, DEA,
// board certifications), validates them, and serves the /providers API.
// Every change is written with its audit entry in one transaction.
package providers

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// DateLayout is how dates travel in JSON and CSV.
const DateLayout = "2006-01-02"

// Date is a calendar date without a time zone, "YYYY-MM-DD" in JSON.
type Date struct {
	time.Time
	// invalid holds text that did not parse, so Validate can name the field
	// (encoding/json cannot say which field a custom type's error came from).
	invalid string
}

// ParseDate parses "YYYY-MM-DD".
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(DateLayout, strings.TrimSpace(s))
	if err != nil {
		return Date{}, fmt.Errorf("must be a date as YYYY-MM-DD")
	}
	return Date{Time: t}, nil
}

// Valid reports whether the date parsed.
func (d *Date) Valid() bool { return d == nil || d.invalid == "" }

func (d Date) String() string { return d.Format(DateLayout) }

// MarshalJSON writes "YYYY-MM-DD".
func (d Date) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads "YYYY-MM-DD".
func (d *Date) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		s = string(b)
	}
	p, err := ParseDate(s)
	if err != nil {
		*d = Date{invalid: s}
		return nil
	}
	*d = p
	return nil
}

// License is a state license the provider claims.
type License struct {
	State     string `json:"state"`
	Number    string `json:"number"`
	Type      string `json:"type,omitempty"`
	ExpiresOn *Date  `json:"expires_on,omitempty"`
}

// BoardCertification is a specialty board certification the provider claims.
type BoardCertification struct {
	Board     string `json:"board"`
	Specialty string `json:"specialty,omitempty"`
	ExpiresOn *Date  `json:"expires_on,omitempty"`
}

// Provider is one provider record. Fields below the blank line are kept by
// the service, never taken from a request.
type Provider struct {
	ID                  string               `json:"id"`
	NPI                 string               `json:"npi"`
	FirstName           string               `json:"first_name"`
	MiddleName          string               `json:"middle_name"`
	LastName            string               `json:"last_name"`
	Suffix              string               `json:"suffix"`
	DateOfBirth         *Date                `json:"date_of_birth,omitempty"`
	Specialty           string               `json:"specialty"`
	TaxonomyCode        string               `json:"taxonomy_code"`
	DEANumber           string               `json:"dea_number"`
	Licenses            []License            `json:"licenses"`
	BoardCertifications []BoardCertification `json:"board_certifications"`

	Decision           *string    `json:"decision"`
	LastVerifiedAt     *time.Time `json:"last_verified_at"`
	ApprovedAt         *time.Time `json:"approved_at"`
	ExclusionFlaggedAt *time.Time `json:"exclusion_flagged_at"`
	// VerificationStale is true when the last verification is older than
	// VERIFICATION_MAX_AGE (Store.StaleAfter), or there was none.
	VerificationStale bool `json:"verification_stale"`
	// RecredentialDueOn is RecredentialAfter past the approval.
	RecredentialDueOn *Date     `json:"recredential_due_on"`
	CreatedAt         time.Time `json:"created_at"`
	UpdatedAt         time.Time `json:"updated_at"`
}

// RecredentialMonths after approval, recredentialing falls due.
const RecredentialMonths = 36

// derive fills the computed fields as of now; a verification older than
// staleAfter (VERIFICATION_MAX_AGE) must be redone.
func (p *Provider) derive(now time.Time, staleAfter time.Duration) {
	p.VerificationStale = p.LastVerifiedAt == nil || now.Sub(*p.LastVerifiedAt) > staleAfter
	p.RecredentialDueOn = nil
	if p.ApprovedAt != nil {
		d := Date{Time: p.ApprovedAt.UTC().AddDate(0, RecredentialMonths, 0).Truncate(24 * time.Hour)}
		p.RecredentialDueOn = &d
	}
}
