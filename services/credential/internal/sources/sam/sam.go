// Package sam reads the SAM.gov exclusions public extract CSV: dates
// MM/DD/YYYY, a Termination Date of "Indefinite" for open-ended exclusions,
// and firms (Classification other than Individual) named in Name.
package sam

import (
	"fmt"
	"strings"

	"github.com/provcred/credential/internal/sources"
	"github.com/provcred/credential/internal/sources/exclusions"
)

// Columns is the public extract's header, in the publisher's order.
var Columns = []string{"Classification", "Name", "Prefix", "First", "Middle", "Last", "Suffix",
	"Address 1", "Address 2", "Address 3", "Address 4", "City", "State / Province", "Country", "Zip Code",
	"DUNS", "Exclusion Program", "Excluding Agency", "CT Code", "Exclusion Type", "Additional Comments",
	"Active Date", "Termination Date", "Record Status", "Cross-Reference", "SAM Number", "CAGE", "NPI",
	"Creation_Date"}

// required are the columns the checks need; the others are kept in the
// record only, so a release that renames, say, DUNS to Unique Entity ID
// still loads.
var required = []string{"Classification", "Name", "First", "Middle", "Last", "Exclusion Type",
	"Active Date", "Termination Date", "NPI"}

// Format is SAM's sources.Format: its rows go to the shared exclusion table.
type Format struct{ exclusions.Shared }

// Source implements sources.Format.
func (Format) Source() string { return sources.SAM }

// Parser parses SAM rows under a bound header.
type Parser struct {
	class, name, first, middle, last, exclType, active, term, npi int
	state, status                                                 int
	enc                                                           *sources.Encoder
	norm                                                          sources.NameNorm
}

// Bind implements sources.Format.
func (Format) Bind(header []string) (sources.RowParser, error) {
	h, idx, err := sources.Bind(header, required...)
	if err != nil {
		return nil, err
	}
	return &Parser{
		class: idx[0], name: idx[1], first: idx[2], middle: idx[3], last: idx[4], exclType: idx[5],
		active: idx[6], term: idx[7], npi: idx[8],
		state: h.Find("State / Province"), status: h.Find("Record Status"),
		enc: sources.NewEncoder(h.Names(), false),
	}, nil
}

// TerminationDate parses SAM's Termination Date: "Indefinite" (any case) and
// "" mean the exclusion has no end (nil).
func TerminationDate(s string) (any, error) {
	if strings.EqualFold(s, "indefinite") {
		return nil, nil
	}
	return sources.DateMDY(s)
}

// Parse implements sources.RowParser.
func (p *Parser) Parse(row sources.Row, dst []any) error {
	rec, line := row.Fields, row.Line
	f := func(i int) string { return sources.Field(rec, i) }
	npi, err := sources.NPI(f(p.npi))
	if err != nil {
		return err
	}
	active, err := sources.DateMDY(f(p.active))
	if err != nil {
		return fmt.Errorf("Active Date: %w", err)
	}
	term, err := TerminationDate(f(p.term))
	if err != nil {
		return fmt.Errorf("Termination Date: %w", err)
	}
	class := f(p.class)
	last, first := f(p.last), f(p.first)
	if err := sources.Keys("Last", last, "First", first); err != nil {
		return err
	}
	business := ""
	if !strings.EqualFold(class, "Individual") {
		business = f(p.name)
	}
	if last == "" && first == "" && f(p.name) == "" {
		return fmt.Errorf("row has no Name, First or Last")
	}
	dst[exclusions.ColSource] = sources.SAM
	dst[exclusions.ColLine] = line
	dst[exclusions.ColNPI] = npi
	dst[exclusions.ColLastName] = last
	dst[exclusions.ColFirstName] = first
	dst[exclusions.ColMiddleName] = f(p.middle)
	dst[exclusions.ColBusinessName] = business
	dst[exclusions.ColLastNorm] = p.norm.Part(last)
	dst[exclusions.ColFirstNorm] = p.norm.Part(first)
	dst[exclusions.ColDOB] = nil // SAM publishes no date of birth
	dst[exclusions.ColExclType] = f(p.exclType)
	dst[exclusions.ColExclDate] = active
	dst[exclusions.ColReinDate] = nil
	dst[exclusions.ColWaiverDate] = nil
	dst[exclusions.ColWaiverState] = ""
	dst[exclusions.ColTerminationDate] = term
	dst[exclusions.ColState] = f(p.state)
	dst[exclusions.ColClassification] = class
	dst[exclusions.ColRecordStatus] = f(p.status)
	dst[exclusions.ColRecord] = p.enc.Record(rec)
	dst[exclusions.ColDigest] = row.Digest
	return nil
}
