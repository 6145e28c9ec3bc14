package nppes

import (
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/provcred/credential/internal/sources"
	"github.com/provcred/platform/text"
)

// Bulk file column names (the dissemination file's header spells them so).
const (
	ColNPI            = "NPI"
	ColEntityType     = "Entity Type Code"
	ColOrgName        = "Provider Organization Name (Legal Business Name)"
	ColLastName       = "Provider Last Name (Legal Name)"
	ColFirstName      = "Provider First Name"
	ColMiddleName     = "Provider Middle Name"
	ColSuffix         = "Provider Name Suffix Text"
	ColCredential     = "Provider Credential Text"
	ColPracticeState  = "Provider Business Practice Location Address State Name"
	ColEnumeration    = "Provider Enumeration Date"
	ColDeactivation   = "NPI Deactivation Date"
	ColReactivation   = "NPI Reactivation Date"
	taxCodePrefix     = "Healthcare Provider Taxonomy Code_"
	taxSwitchPrefix   = "Healthcare Provider Primary Taxonomy Switch_"
	licNumberPrefix   = "Provider License Number_"
	licStatePrefix    = "Provider License Number State Code_"
	maxTaxonomyGroups = 15
)

var required = []string{ColNPI, ColEntityType, ColLastName, ColFirstName, ColDeactivation}

// BulkFormat is the NPPES bulk file's sources.Format.
type BulkFormat struct{}

// Source implements sources.Format.
func (BulkFormat) Source() string { return sources.NPPES }

// CMS publishes the full file monthly and, between them, weekly increments
// with the same header (the NPIs created or changed that week). The file
// inside each archive is named npidata_pfile_<from>-<to>.csv; the full
// file's range starts on 20050523, the day enumeration began.
var (
	reRange  = regexp.MustCompile(`(?i)npidata_pfile_([0-9]{8})-([0-9]{8})`)
	reWeekly = regexp.MustCompile(`(?i)weekly`)
)

// FirstDay is the first day of the full file's range.
const FirstDay = "20050523"

// DeltaKind implements sources.Delta.
func (BulkFormat) DeltaKind() string { return sources.KindIncrement }

// KindOf implements sources.Delta.
func (BulkFormat) KindOf(name string) string {
	name = path.Base(strings.ReplaceAll(name, `\`, "/"))
	if m := reRange.FindStringSubmatch(name); m != nil {
		if m[1] == FirstDay {
			return sources.KindFull
		}
		return sources.KindIncrement
	}
	if reWeekly.MatchString(name) {
		return sources.KindIncrement
	}
	return ""
}

// Key implements sources.Delta: an increment's row is the NPI's new row.
func (BulkFormat) Key(a string) string { return a + ".npi" }

// Removal implements sources.Delta: a deactivated NPI stays listed (blank
// but for its NPI and deactivation date), so no row removes.
func (BulkFormat) Removal(string) string { return "false" }

// Contradiction implements sources.Delta: the rows do not tell a week's file
// from the whole (the shrink guard stops a weekly file sent as the full list).
func (BulkFormat) Contradiction(string, string) string { return "" }

// Table implements sources.Format.
func (BulkFormat) Table() string { return "nppes_rows" }

// Columns implements sources.Format.
func (BulkFormat) Columns() []string { return bulkColumns }

var bulkColumns = []string{"line", "npi", "entity_type", "last_name", "first_name", "middle_name", "name_suffix",
	"credential", "organization_name", "deactivation_date", "reactivation_date", "enumeration_date",
	"primary_taxonomy", "taxonomies", "state", "record", "digest"}

// Analyze implements sources.Format.
func (BulkFormat) Analyze() []string { return []string{"npi"} }

// Indexes implements sources.Format. The unique index also rejects a file
// that lists an NPI twice.
func (BulkFormat) Indexes() []string {
	return []string{"CREATE UNIQUE INDEX ON %s (npi, import_id)"}
}

type taxCols struct{ code, primary, license, state int }

// BulkParser parses bulk rows under a bound header.
type BulkParser struct {
	npi, entity, org, last, first, middle, suffix, cred, state, enum, deact, react int
	tax                                                                            []taxCols
	enc                                                                            *sources.Encoder
	taxBuf                                                                         []byte
}

// Bind implements sources.Format: the five identity columns are required, the
// rest are used when present.
func (BulkFormat) Bind(header []string) (sources.RowParser, error) {
	h, idx, err := sources.Bind(header, required...)
	if err != nil {
		return nil, err
	}
	p := &BulkParser{
		npi: idx[0], entity: idx[1], last: idx[2], first: idx[3], deact: idx[4],
		org: h.Find(ColOrgName), middle: h.Find(ColMiddleName), suffix: h.Find(ColSuffix),
		cred: h.Find(ColCredential), state: h.Find(ColPracticeState), enum: h.Find(ColEnumeration),
		react: h.Find(ColReactivation),
		enc:   sources.NewEncoder(h.Names(), true),
	}
	for i := 1; i <= maxTaxonomyGroups; i++ {
		n := strconv.Itoa(i)
		tc := taxCols{h.Find(taxCodePrefix + n), h.Find(taxSwitchPrefix + n), h.Find(licNumberPrefix + n), h.Find(licStatePrefix + n)}
		if tc.code >= 0 {
			p.tax = append(p.tax, tc)
		}
	}
	return p, nil
}

// Parse implements sources.RowParser.
func (p *BulkParser) Parse(row sources.Row, dst []any) error {
	rec, line := row.Fields, row.Line
	f := func(i int) string { return sources.Field(rec, i) }
	npi, err := sources.NPI(f(p.npi))
	if err != nil {
		return err
	}
	if npi == nil {
		return fmt.Errorf("NPI is empty")
	}
	var entity any
	switch e := f(p.entity); e {
	case "":
	case "1", "2":
		entity = e
	default:
		return fmt.Errorf("Entity Type Code %q is not 1 or 2", text.Clip(e, 40))
	}
	if err := sources.Keys(ColLastName, f(p.last), ColFirstName, f(p.first)); err != nil {
		return err
	}
	deact, err := sources.DateMDY(f(p.deact))
	if err != nil {
		return fmt.Errorf("%s: %w", ColDeactivation, err)
	}
	react, err := sources.DateMDY(f(p.react))
	if err != nil {
		return fmt.Errorf("%s: %w", ColReactivation, err)
	}
	enum, err := sources.DateMDY(f(p.enum))
	if err != nil {
		return fmt.Errorf("%s: %w", ColEnumeration, err)
	}
	// Taxonomies as JSON, built by hand into a reused buffer: this runs for
	// every one of ~8 million rows in the real file.
	primary, first := "", ""
	b := append(p.taxBuf[:0], '[')
	n := 0
	for _, tc := range p.tax {
		code := f(tc.code)
		if code == "" {
			continue
		}
		isPrimary := strings.EqualFold(f(tc.primary), "Y")
		if isPrimary && primary == "" {
			primary = code
		}
		if first == "" {
			first = code
		}
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = append(b, `{"code":`...)
		b = sources.AppendJSONString(b, code)
		b = append(b, `,"primary":`...)
		b = strconv.AppendBool(b, isPrimary)
		b = append(b, `,"state":`...)
		b = sources.AppendJSONString(b, f(tc.state))
		b = append(b, `,"license":`...)
		b = sources.AppendJSONString(b, f(tc.license))
		b = append(b, '}')
	}
	b = append(b, ']')
	p.taxBuf = b
	if primary == "" && n == 1 {
		primary = first // a single taxonomy is the primary one whatever the switch says
	}
	dst[0] = line
	dst[1] = npi
	dst[2] = entity
	dst[3] = f(p.last)
	dst[4] = f(p.first)
	dst[5] = f(p.middle)
	dst[6] = f(p.suffix)
	dst[7] = f(p.cred)
	dst[8] = f(p.org)
	dst[9] = deact
	dst[10] = react
	dst[11] = enum
	dst[12] = primary
	dst[13] = b
	dst[14] = f(p.state)
	dst[15] = p.enc.Record(rec)
	dst[16] = row.Digest
	return nil
}
