// Package licenses reads a state license roster CSV. Its columns are ours
// (docs/sources.md), matched by name:
//
//	state,license_number,license_type,status,issue_date,expiration_date,last_name,first_name,middle_name,npi
//
// state, license_number and status are required in every row; dates are
// YYYY-MM-DD (MM/DD/YYYY accepted); status is stored folded (FoldStatus)
// and classified by a StatusTable when a license is checked; the number is
// also stored as its NumberKey, the form lookups compare.
package licenses

import (
	"fmt"
	"strings"

	"github.com/provcred/credential/internal/sources"
	"github.com/provcred/platform/text"
)

// Columns is the roster header the generator writes.
var Columns = []string{"state", "license_number", "license_type", "status", "issue_date", "expiration_date",
	"last_name", "first_name", "middle_name", "npi"}

var required = []string{"state", "license_number", "status", "expiration_date", "last_name", "first_name"}

// Format is the license roster's sources.Format.
type Format struct{}

// Source implements sources.Format.
func (Format) Source() string { return sources.Licenses }

// Table implements sources.Format.
func (Format) Table() string { return "license_rows" }

// Columns implements sources.Format.
func (Format) Columns() []string { return tableColumns }

var tableColumns = []string{"line", "state", "license_number", "license_type", "status", "issue_date", "expiry_date",
	"last_name", "first_name", "middle_name", "last_norm", "first_norm", "npi", "record", "digest", "number_key"}

// Analyze implements sources.Format.
func (Format) Analyze() []string {
	return []string{"state", "license_number", "npi", "last_norm", "first_norm"}
}

// Indexes implements sources.Format.
func (Format) Indexes() []string {
	return []string{
		"CREATE INDEX ON %s (state, license_number)",
		"CREATE INDEX ON %s (state, number_key)",
		"CREATE INDEX ON %s (number_key)",
		"CREATE INDEX ON %s (npi) WHERE npi IS NOT NULL",
		"CREATE INDEX ON %s (last_norm, first_norm)",
	}
}

// Parser parses roster rows under a bound header.
type Parser struct {
	state, number, typ, status, issue, expiry, last, first, middle, npi int
	enc                                                                 *sources.Encoder
	norm                                                                sources.NameNorm
}

// Bind implements sources.Format.
func (Format) Bind(header []string) (sources.RowParser, error) {
	h, idx, err := sources.Bind(header, required...)
	if err != nil {
		return nil, err
	}
	return &Parser{
		state: idx[0], number: idx[1], status: idx[2], expiry: idx[3], last: idx[4], first: idx[5],
		typ: h.Find("license_type"), issue: h.Find("issue_date"), middle: h.Find("middle_name"), npi: h.Find("npi"),
		enc: sources.NewEncoder(h.Names(), false),
	}, nil
}

// Parse implements sources.RowParser.
func (p *Parser) Parse(row sources.Row, dst []any) error {
	rec, line := row.Fields, row.Line
	f := func(i int) string { return sources.Field(rec, i) }
	state := strings.ToUpper(f(p.state))
	if len(state) != 2 || state[0] < 'A' || state[0] > 'Z' || state[1] < 'A' || state[1] > 'Z' {
		return fmt.Errorf("state %q is not a two-letter code", text.Clip(f(p.state), 40))
	}
	number := f(p.number)
	key := NumberKey(number)
	if key == "" {
		return fmt.Errorf("license_number has no letter or digit")
	}
	// Stored as the board wrote it (folded): the status table classifies it
	// when a license is checked, so a changed LICENSE_STATUS_WORDS applies
	// to rows already imported.
	status := FoldStatus(f(p.status))
	if status == "" {
		return fmt.Errorf("status is empty")
	}
	issue, err := sources.DateISO(f(p.issue))
	if err != nil {
		return fmt.Errorf("issue_date: %w", err)
	}
	expiry, err := sources.DateISO(f(p.expiry))
	if err != nil {
		return fmt.Errorf("expiration_date: %w", err)
	}
	npi, err := sources.NPI(f(p.npi))
	if err != nil {
		return err
	}
	last, first := f(p.last), f(p.first)
	if err := sources.Keys("license_number", number, "last_name", last, "first_name", first); err != nil {
		return err
	}
	dst[0] = line
	dst[1] = state
	dst[2] = number
	dst[3] = f(p.typ)
	dst[4] = status
	dst[5] = issue
	dst[6] = expiry
	dst[7] = last
	dst[8] = first
	dst[9] = f(p.middle)
	dst[10] = p.norm.Part(last)
	dst[11] = p.norm.Part(first)
	dst[12] = npi
	dst[13] = p.enc.Record(rec)
	dst[14] = row.Digest
	dst[15] = key
	return nil
}
