// Package roster parses provider roster CSV files: one row per provider
// license, columns found by header name (any order, case-insensitive):
//
//	id,npi,first_name,middle_name,last_name,suffix,date_of_birth,specialty,
//	taxonomy_code,license_state,license_number,license_type,license_expires_on,dea_number
//
// Only npi, first_name and last_name are required columns. Rows for the
// same provider (same id, else same NPI) are merged, each adding a license.
// Every row is validated as the API validates a provider; errors carry the
// line number.
package roster

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/provcred/credential/internal/providers"
	"github.com/provcred/credential/internal/sources"
	"github.com/provcred/platform/apierr"
	"github.com/provcred/platform/text"
)

// Columns is the documented column set, in the generator's order.
var Columns = []string{"id", "npi", "first_name", "middle_name", "last_name", "suffix", "date_of_birth",
	"specialty", "taxonomy_code", "license_state", "license_number", "license_type", "license_expires_on", "dea_number"}

var required = []string{"npi", "first_name", "last_name"}

// LineError is a problem with one line of the file.
type LineError struct {
	Line   int    `json:"line"`
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason"`
}

func (e LineError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("line %d: %s: %s", e.Line, e.Field, e.Reason)
	}
	return fmt.Sprintf("line %d: %s", e.Line, e.Reason)
}

// Result of Parse.
type Result struct {
	Providers []*providers.Provider
	Rows      int
	Errors    []LineError
}

// Parse reads the roster. It stops at maxProviders distinct providers (a
// LineError says so) and collects at most maxErrors row errors; a file-level
// problem (no header, a missing or repeated column, broken CSV) is returned
// as error. A row with more or fewer fields than the header is a row error:
// a roster cut off mid-row must not upsert its last provider with the
// missing columns empty (that wiped licenses' type and expiry).
func Parse(r io.Reader, now time.Time, maxProviders, maxErrors int) (*Result, error) {
	// The same byte stream as the source importers read: no BOM, no DOS EOF.
	cr := csv.NewReader(sources.NewTextInput(r))
	cr.ReuseRecord = true
	// FieldsPerRecord 0: every row must have the header's field count; a
	// row that has not comes back with csv.ErrFieldCount, and reading goes on.
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, LineError{Line: 1, Reason: "the file is empty; expected a header row"}
	}
	if err != nil {
		return nil, csvError(err)
	}
	width := len(header)
	col := map[string]int{}
	for i, h := range header {
		name := strings.ToLower(strings.TrimSpace(h))
		if name == "" {
			continue
		}
		if _, dup := col[name]; dup {
			return nil, LineError{Line: 1, Reason: fmt.Sprintf("column %q appears twice in the header", text.Clip(name, 40))}
		}
		col[name] = i
	}
	for _, c := range required {
		if _, ok := col[c]; !ok {
			return nil, LineError{Line: 1, Reason: fmt.Sprintf("missing required column %q (columns: %s)", c, strings.Join(Columns, ","))}
		}
	}
	res := &Result{}
	byKey := map[string]*providers.Provider{}
	line := 1 // the last record's line
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		var pe *csv.ParseError
		if err != nil && !(errors.As(err, &pe) && errors.Is(pe.Err, csv.ErrFieldCount)) {
			return res, csvError(err)
		}
		if pe != nil {
			line = pe.StartLine
		} else {
			line, _ = cr.FieldPos(0)
		}
		if isBlank(rec) {
			continue
		}
		res.Rows++
		var lerr *LineError
		if pe != nil {
			lerr = &LineError{Reason: fmt.Sprintf("the row has %d fields, the header has %d (a cut-off or misquoted row?)", len(rec), width)}
		} else {
			get := func(name string) string {
				if i, ok := col[name]; ok && i < len(rec) {
					return strings.TrimSpace(rec[i])
				}
				return ""
			}
			var p *providers.Provider
			p, lerr = rowProvider(get, now)
			if lerr == nil {
				key := p.ID
				if key == "" {
					key = "npi:" + p.NPI
				}
				if prev, ok := byKey[key]; ok {
					lerr = merge(prev, p, now)
				} else if len(byKey) >= maxProviders {
					return res, LineError{Line: line, Reason: fmt.Sprintf("the roster has more than %d providers (BATCH_MAX_PROVIDERS)", maxProviders)}
				} else {
					byKey[key] = p
					res.Providers = append(res.Providers, p)
				}
			}
		}
		if lerr != nil {
			lerr.Line = line
			res.Errors = append(res.Errors, *lerr)
			if len(res.Errors) >= maxErrors {
				break
			}
		}
	}
	if res.Rows == 0 {
		return res, LineError{Line: line + 1, Reason: "the roster has a header but no rows"}
	}
	return res, nil
}

func rowProvider(get func(string) string, now time.Time) (*providers.Provider, *LineError) {
	p := &providers.Provider{
		ID: get("id"), NPI: get("npi"), FirstName: get("first_name"), MiddleName: get("middle_name"),
		LastName: get("last_name"), Suffix: get("suffix"), Specialty: get("specialty"),
		TaxonomyCode: get("taxonomy_code"), DEANumber: get("dea_number"),
	}
	if s := get("date_of_birth"); s != "" {
		d, err := providers.ParseDate(s)
		if err != nil {
			return nil, &LineError{Field: "date_of_birth", Reason: err.Error()}
		}
		p.DateOfBirth = &d
	}
	if st, num := get("license_state"), get("license_number"); st != "" || num != "" {
		l := providers.License{State: st, Number: num, Type: get("license_type")}
		if s := get("license_expires_on"); s != "" {
			d, err := providers.ParseDate(s)
			if err != nil {
				return nil, &LineError{Field: "license_expires_on", Reason: err.Error()}
			}
			l.ExpiresOn = &d
		}
		p.Licenses = []providers.License{l}
	}
	p.Normalize()
	if e := p.Validate(now); e != nil {
		return nil, lineError(e)
	}
	return p, nil
}

// lineError names a validation error's field by its roster column.
func lineError(e *apierr.Error) *LineError {
	field := e.Field
	if i := strings.Index(field, "]."); strings.HasPrefix(field, "licenses[") && i > 0 {
		field = "license_" + field[i+2:]
	} else if strings.HasPrefix(field, "licenses[") {
		field = "license_number" // the license as a whole, e.g. a duplicate
	}
	return &LineError{Field: field, Reason: strings.TrimPrefix(e.Detail, e.Field+": ")}
}

// merge adds a further row's license to the provider it repeats; the
// identity columns must agree.
func merge(into, row *providers.Provider, now time.Time) *LineError {
	if into.NPI != row.NPI || !strings.EqualFold(into.LastName, row.LastName) {
		who := "NPI " + into.NPI
		if into.ID != "" {
			who = into.ID
		}
		return &LineError{Field: "npi", Reason: "repeats provider " + who + " with a different NPI or last name"}
	}
	n := len(into.Licenses)
	into.Licenses = append(into.Licenses, row.Licenses...)
	if e := into.Validate(now); e != nil {
		// Keep the provider as it was, so later rows are judged on their own.
		into.Licenses = into.Licenses[:n]
		return lineError(e)
	}
	return nil
}

func isBlank(rec []string) bool {
	for _, f := range rec {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

func csvError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return LineError{Line: pe.StartLine, Reason: "malformed CSV: " + pe.Err.Error()}
	}
	return fmt.Errorf("read roster: %w", err)
}
