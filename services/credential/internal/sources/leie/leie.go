// Package leie reads the OIG List of Excluded Individuals/Entities monthly
// file UPDATED.csv: every field quoted, a missing NPI written 0000000000,
// dates YYYYMMDD with 00000000 for none.
package leie

import (
	"fmt"
	"path"
	"regexp"
	"strings"

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

// Between two monthly UPDATED.csv, OIG publishes supplements with the same
// header: YYMMEXCL.csv (the month's new exclusions) and YYMMREIN.csv (its
// reinstatements). Format implements sources.Delta for them.
var (
	reSupplement = regexp.MustCompile(`(?i)^([0-9]{2})([0-9]{2})(EXCL|REIN)\.csv$`)
	reFull       = regexp.MustCompile(`(?i)^updated([^a-z0-9].*)?\.csv$`)
)

// Supplement says which supplement a file name is: "EXCL", "REIN", or "".
func Supplement(name string) string {
	if m := reSupplement.FindStringSubmatch(baseName(name)); m != nil {
		return strings.ToUpper(m[3])
	}
	return ""
}

// baseName is the file's name without a directory, from either OS.
func baseName(name string) string { return path.Base(strings.ReplaceAll(name, `\`, "/")) }

// DeltaKind implements sources.Delta.
func (Format) DeltaKind() string { return sources.KindSupplement }

// KindOf implements sources.Delta: YYMMEXCL.csv and YYMMREIN.csv are
// supplements, UPDATED.csv (and UPDATED-<date>.csv) the full list.
func (Format) KindOf(name string) string {
	switch {
	case Supplement(name) != "":
		return sources.KindSupplement
	case reFull.MatchString(baseName(name)):
		return sources.KindFull
	}
	return ""
}

// Key implements sources.Delta: one exclusion is who (names, NPI, date of
// birth) and which action (type and date). A reinstatement row repeats the
// excluded row with its REINDATE filled in; the address and the other
// descriptive fields are not part of the key, as OIG may have updated them.
// As a row value the NULLs (no NPI, no DOB) compare equal.
func (Format) Key(a string) string {
	return fmt.Sprintf(`ROW(%[1]s.last_name, %[1]s.first_name, %[1]s.middle_name, %[1]s.business_name, %[1]s.npi,
		%[1]s.dob, %[1]s.excl_type, %[1]s.excl_date)::text`, a)
}

// Removal implements sources.Delta: a row with a REINDATE reinstates.
func (Format) Removal(a string) string { return a + ".rein_date IS NOT NULL" }

// Contradiction implements sources.Delta: every row of a YYMMREIN.csv has a
// REINDATE and no row of a YYMMEXCL.csv has one; a "full list" whose every
// row has one is a reinstatement supplement sent under another name (what
// turned a 335-row list into 13 rows).
func (Format) Contradiction(kind, name string) string {
	if kind == sources.KindFull {
		return `SELECT min(line), 'every row has a REINDATE: this is a reinstatement supplement (YYMMREIN.csv), ` +
			`not the full list; send it with kind=supplement' FROM %[1]s HAVING bool_and(rein_date IS NOT NULL)`
	}
	switch Supplement(name) {
	case "REIN":
		return `SELECT line, 'the row has no REINDATE, but the file is a reinstatement supplement (YYMMREIN.csv)'
			FROM %[1]s WHERE rein_date IS NULL ORDER BY line LIMIT 1`
	case "EXCL":
		return `SELECT line, 'the row has a REINDATE, but the file is an exclusion supplement (YYMMEXCL.csv)'
			FROM %[1]s WHERE rein_date IS NOT NULL ORDER BY line LIMIT 1`
	}
	return ""
}

// Parser parses LEIE rows under a bound header.
type Parser struct {
	idx  []int // positions of Columns in the file
	enc  *sources.Encoder
	norm sources.NameNorm
}

// Bind implements sources.Format: every column of the published header is required.
func (Format) Bind(header []string) (sources.RowParser, error) {
	h, idx, err := sources.Bind(header, Columns...)
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
func (p *Parser) Parse(row sources.Row, dst []any) error {
	rec, line := row.Fields, row.Line
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
	if err := sources.Keys("LASTNAME", last, "FIRSTNAME", first); err != nil {
		return err
	}
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
	dst[exclusions.ColDigest] = row.Digest
	return nil
}
