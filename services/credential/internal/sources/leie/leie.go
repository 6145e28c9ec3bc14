// Package leie reads the OIG List of Excluded Individuals/Entities monthly
// file UPDATED.csv: every field quoted, a missing NPI written 0000000000,
// dates YYYYMMDD with 00000000 for none.
package leie

import (
	"fmt"

	"github.com/provcred/credential/internal/sources"
	"github.com/provcred/credential/internal/sources/exclusions"
)

// Columns is the file's header, in the publisher's order.
var Columns = []string{"LASTNAME", "FIRSTNAME", "MIDNAME", "BUSNAME", "GENERAL", "SPECIALTY", "UPIN", "NPI",
	"DOB", "ADDRESS", "CITY", "STATE", "ZIP", "EXCLTYPE", "EXCLDATE", "REINDATE", "WAIVERDATE", "WVRSTATE"}

// Format is the LEIE's sources.Format: its rows go to the shared exclusion table.
type Format struct{ exclusions.Shared }

// Source implements sources.Format.
func (Format) Source() string { return sources.LEIE }

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
	dst[exclusions.ColSource] = sources.LEIE
	dst[exclusions.ColLine] = line
	dst[exclusions.ColNPI] = npi
	dst[exclusions.ColLastName] = last
	dst[exclusions.ColFirstName] = first
	dst[exclusions.ColMiddleName] = f(cMid)
	dst[exclusions.ColBusinessName] = f(cBus)
	dst[exclusions.ColLastNorm] = p.norm.Part(last)
	dst[exclusions.ColFirstNorm] = p.norm.Part(first)
	dst[exclusions.ColDOB] = dob
	dst[exclusions.ColExclType] = f(cExclType)
	dst[exclusions.ColExclDate] = excl
	dst[exclusions.ColReinDate] = rein
	dst[exclusions.ColWaiverDate] = waiver
	dst[exclusions.ColWaiverState] = f(cWvrState)
	dst[exclusions.ColTerminationDate] = nil // the LEIE has no termination date: an exclusion ends by reinstatement
	dst[exclusions.ColState] = f(cState)
	dst[exclusions.ColClassification] = ""
	dst[exclusions.ColRecordStatus] = ""
	dst[exclusions.ColRecord] = p.enc.Record(rec)
	dst[exclusions.ColDigest] = p.enc.Digest(rec)
	return nil
}
