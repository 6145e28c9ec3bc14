// Package leie reads the OIG List of Excluded Individuals/Entities monthly
// file UPDATED.csv: every field quoted, a missing NPI written 0000000000,
// dates YYYYMMDD with 00000000 for none.
package leie

import (
	"fmt"

	"github.com/provcred/credential/internal/sources"
)

// Columns is the file's header, in the publisher's order.
var Columns = []string{"LASTNAME", "FIRSTNAME", "MIDNAME", "BUSNAME", "GENERAL", "SPECIALTY", "UPIN", "NPI",
	"DOB", "ADDRESS", "CITY", "STATE", "ZIP", "EXCLTYPE", "EXCLDATE", "REINDATE", "WAIVERDATE", "WVRSTATE"}

// Format is the LEIE's sources.Format.
type Format struct{}

// Source implements sources.Format.
func (Format) Source() string { return sources.LEIE }

// Table implements sources.Format.
func (Format) Table() string { return "exclusion_rows" }

// Columns implements sources.Format.
func (Format) Columns() []string { return ExclusionColumns }

// Analyze implements sources.Format.
func (Format) Analyze() []string { return []string{"npi", "last_norm", "first_norm"} }

// Indexes implements sources.Format.
func (Format) Indexes() []string { return ExclusionIndexes }

// ExclusionColumns are the exclusion_rows columns both exclusion formats fill.
var ExclusionColumns = []string{"source", "line", "npi", "last_name", "first_name", "middle_name", "business_name",
	"last_norm", "first_norm", "dob", "excl_type", "excl_date", "rein_date", "waiver_date", "waiver_state",
	"termination_date", "state", "classification", "record_status", "record", "digest"}

// ExclusionIndexes match the indexes of exclusion_rows (migration 0002).
var ExclusionIndexes = []string{
	"CREATE INDEX ON %s (npi) WHERE npi IS NOT NULL",
	"CREATE INDEX ON %s (last_norm, first_norm)",
}

// Parser parses LEIE rows under a bound header.
type Parser struct {
	idx  []int // positions of Columns in the file
	enc  *sources.Encoder
	norm sources.NameNorm
}

// Bind implements sources.Format: every column of the published header is required.
func (Format) Bind(header []string) (sources.RowParser, error) {
	h, err := sources.NewHeader(header)
	if err != nil {
		return nil, err
	}
	idx, err := h.Require(Columns...)
	if err != nil {
		return nil, err
	}
	return &Parser{idx: idx, enc: sources.NewEncoder(h.Names(), false)}, nil
}

const (
	cLast = iota
	cFirst
	cMid
	cBus
	cGeneral
	cSpecialty
	cUPIN
	cNPI
	cDOB
	cAddress
	cCity
	cState
	cZip
	cExclType
	cExclDate
	cReinDate
	cWaiverDate
	cWvrState
)

// Parse implements sources.RowParser.
func (p *Parser) Parse(rec []string, line int64, dst []any) error {
	f := func(c int) string { return sources.Field(rec, p.idx[c]) }
	npi, err := sources.NPI(f(cNPI))
	if err != nil {
		return err
	}
	dob, err := sources.DateYYYYMMDD(f(cDOB))
	if err != nil {
		// No value in the reason: a date of birth is PII and reasons are stored and shown.
		return fmt.Errorf("DOB is not a valid YYYYMMDD date")
	}
	excl, err := sources.DateYYYYMMDD(f(cExclDate))
	if err != nil {
		return fmt.Errorf("EXCLDATE: %w", err)
	}
	rein, err := sources.DateYYYYMMDD(f(cReinDate))
	if err != nil {
		return fmt.Errorf("REINDATE: %w", err)
	}
	waiver, err := sources.DateYYYYMMDD(f(cWaiverDate))
	if err != nil {
		return fmt.Errorf("WAIVERDATE: %w", err)
	}
	last, first := f(cLast), f(cFirst)
	if last == "" && first == "" && f(cBus) == "" {
		return fmt.Errorf("row has no LASTNAME, FIRSTNAME or BUSNAME")
	}
	dst[0] = sources.LEIE
	dst[1] = line
	dst[2] = npi
	dst[3] = last
	dst[4] = first
	dst[5] = f(cMid)
	dst[6] = f(cBus)
	dst[7] = p.norm.Part(last)
	dst[8] = p.norm.Part(first)
	dst[9] = dob
	dst[10] = f(cExclType)
	dst[11] = excl
	dst[12] = rein
	dst[13] = waiver
	dst[14] = f(cWvrState)
	dst[15] = nil // the LEIE has no termination date: an exclusion ends by reinstatement
	dst[16] = f(cState)
	dst[17] = ""
	dst[18] = ""
	dst[19] = p.enc.Record(rec)
	dst[20] = p.enc.Digest(rec)
	return nil
}
