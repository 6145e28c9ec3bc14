// Package exclusions owns the table both federal exclusion lists load into
// (exclusion_rows, source leie or sam): its columns and indexes, the lookup
// of a provider's rows by NPI or name, and the one SQL definition of an
// exclusion "in force" that both the leie/sam checks and the continuous
// monitoring re-screen use. The lists' file formats stay in sources/leie
// and sources/sam; the rules that weigh the rows are checks/exclusion.go.
package exclusions

import (
	"context"
	"fmt"
	"time"

	"github.com/provcred/credential/internal/sources"
	"github.com/provcred/platform/database"
)

// Table is the partitioned table of both lists (migration 0002).
const Table = "exclusion_rows"

// Columns are the exclusion_rows columns a list's parser fills, in this
// order (the Col* positions).
var Columns = []string{"source", "line", "npi", "last_name", "first_name", "middle_name", "business_name",
	"last_norm", "first_norm", "dob", "excl_type", "excl_date", "rein_date", "waiver_date", "waiver_state",
	"termination_date", "state", "classification", "record_status", "record", "digest"}

// Positions of Columns in a parsed row.
const (
	ColSource = iota
	ColLine
	ColNPI
	ColLastName
	ColFirstName
	ColMiddleName
	ColBusinessName
	ColLastNorm
	ColFirstNorm
	ColDOB
	ColExclType
	ColExclDate
	ColReinDate
	ColWaiverDate
	ColWaiverState
	ColTerminationDate
	ColState
	ColClassification
	ColRecordStatus
	ColRecord
	ColDigest
)

// Shared is the sources.Format half both lists share; each list's Format
// embeds it and adds its Source and Bind.
type Shared struct{}

// Table implements sources.Format.
func (Shared) Table() string { return Table }

// Columns implements sources.Format.
func (Shared) Columns() []string { return Columns }

// Analyze implements sources.Format.
func (Shared) Analyze() []string { return []string{"npi", "last_norm", "first_norm"} }

// Indexes implements sources.Format; they match exclusion_rows' own.
func (Shared) Indexes() []string {
	return []string{
		"CREATE INDEX ON %s (npi) WHERE npi IS NOT NULL",
		"CREATE INDEX ON %s (last_norm, first_norm)",
	}
}

// Ended is the SQL expression saying why the exclusion row alias.* no
// longer applies on day (an SQL date expression): 'reinstated' (REINDATE on
// or before it), 'terminated' (SAM Termination Date on or before it), or
// NULL while it is in force. Rule: a date of today already ends it (the
// date is the day it takes effect); "Indefinite" is stored as no date.
func Ended(alias, day string) string {
	return fmt.Sprintf(`CASE WHEN %[1]s.rein_date <= %[2]s THEN 'reinstated'
		WHEN %[1]s.termination_date <= %[2]s THEN 'terminated' END`, alias, day)
}

// InForce is the SQL condition that the row alias.* still excludes on day.
func InForce(alias, day string) string { return "(" + Ended(alias, day) + ") IS NULL" }

// Row is one exclusion row that matched a provider by NPI or by normalized
// last+first name.
type Row struct {
	Line            int64
	NPI             *string
	LastNorm        string
	FirstNorm       string
	DOB             *time.Time
	ExclType        string
	ExclDate        *time.Time
	ReinDate        *time.Time
	WaiverDate      *time.Time
	WaiverState     string
	TerminationDate *time.Time
	// Ended is "reinstated" or "terminated" when the row no longer applies
	// on the day looked up (Ended), "" while it is in force.
	Ended  string
	Record []byte
	Digest string
	// FileImportID is the import whose file holds the row at Line: the
	// version's own, or for a row a delta version carried over, the import it
	// came from.
	FileImportID int64
	// Resolution is how a reviewer resolved this record (by its digest) for
	// the provider looked up: "cleared", "confirmed", or "" when never; with
	// the review item's id.
	Resolution string
	ReviewID   string
}

// lookupSQL reads the list's active version and its matching rows in ONE
// statement: the version cited and the rows read come from the same
// snapshot, so an import swapping versions meanwhile cannot yield a "no
// match" against a version that was just dropped. No row at all means the
// list was never imported.
var lookupSQL = `SELECT v.import_id, v.file_date, v.activated_at,
	e.line, e.npi, e.last_norm, e.first_norm, e.dob, e.excl_type, e.excl_date, e.rein_date, e.waiver_date,
	e.waiver_state, e.termination_date, ` + Ended("e", "$5::date") + `, e.record, e.digest, e.file_import_id,
	rv.status, rv.id::text
FROM source_versions v
LEFT JOIN active_exclusions e ON e.source = v.source AND e.import_id = v.import_id
	AND (e.npi = $2 OR ($3 <> '' AND $4 <> '' AND e.last_norm = $3 AND e.first_norm = $4))
LEFT JOIN review_items rv ON rv.provider_id = $6 AND rv."check" = v.source AND rv.digest = e.digest
	AND rv.status IN ('cleared', 'confirmed')
WHERE v.source = $1
ORDER BY e.line`

// Lookup returns the rows of source's active version (leie or sam) listing
// npi, or lastNorm and firstNorm (names.Part forms; empty never matches), in
// file order, each with whether it still applied on day and how a reviewer
// resolved it for providerID (review_items, by the row's digest); and the
// version. A list never imported gives sources.ErrNoVersion.
func Lookup(ctx context.Context, db database.Querier, source, providerID, npi, lastNorm, firstNorm string, day time.Time) ([]Row, *sources.Version, error) {
	rows, err := db.Query(ctx, lookupSQL, source, npi, lastNorm, firstNorm, day, providerID)
	if err != nil {
		return nil, nil, fmt.Errorf("query %s: %w", source, err)
	}
	defer rows.Close()
	var v *sources.Version
	var out []Row
	for rows.Next() {
		ver := sources.Version{Source: source}
		var r Row
		var line, fileImport *int64
		// The LEFT JOIN's NULLs read as "".
		if err := rows.Scan(&ver.ImportID, &ver.FileDate, &ver.ActivatedAt, &line, &r.NPI, database.Text(&r.LastNorm),
			database.Text(&r.FirstNorm), &r.DOB, database.Text(&r.ExclType), &r.ExclDate, &r.ReinDate, &r.WaiverDate, database.Text(&r.WaiverState),
			&r.TerminationDate, database.Text(&r.Ended), &r.Record, database.Text(&r.Digest), &fileImport,
			database.Text(&r.Resolution), database.Text(&r.ReviewID)); err != nil {
			return nil, nil, fmt.Errorf("scan %s row: %w", source, err)
		}
		if v == nil {
			v = &ver
		}
		if line == nil { // the LEFT JOIN found no matching row
			continue
		}
		r.Line, r.FileImportID = *line, *fileImport
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read %s rows: %w", source, err)
	}
	if v == nil {
		return nil, nil, fmt.Errorf("%s: %w", source, sources.ErrNoVersion)
	}
	return out, v, nil
}
