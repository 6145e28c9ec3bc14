package licenses

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/provcred/credential/internal/sources"
	"github.com/provcred/platform/database"
)

// Record is one license as a source holds it: the imported roster or a
// state's verification endpoint (see Endpoint).
type Record struct {
	State  string
	Number string
	Type   string
	Status string // FoldStatus; StatusTable.Class classifies it
	Expiry *time.Time
	Last   string
	First  string
	Middle string
	NPI    string
	Line   int64 // the roster's file line (0 from an endpoint)
	Record json.RawMessage
	Digest string
}

// Found is what one source answered for one claimed license.
type Found struct {
	// Source is "licenses" (the roster) or "license_api:<ST>" (an endpoint).
	Source string
	// Version is the roster version read; FetchedAt when an endpoint answered.
	Version   *sources.Version
	FetchedAt *time.Time
	// InState are the records under the number in the claimed state;
	// Elsewhere, when there are none, the same number in other states.
	InState   []Record
	Elsewhere []Record
}

// Table looks licenses up in the active roster version (view active_licenses).
type Table struct {
	DB database.Querier
}

// lookupSQL reads the roster's active version with the in-state matches in
// one statement, so the version cited and the rows read come from the same
// snapshot even while an import swaps versions.
const lookupSQL = `SELECT v.import_id, v.file_date, v.activated_at,
	l.state, l.license_number, l.license_type, l.status, l.expiry_date, l.last_name, l.first_name, l.middle_name,
	l.npi, l.line, l.record, l.digest
FROM source_versions v
LEFT JOIN active_licenses l ON l.import_id = v.import_id AND l.state = $1 AND l.number_key = $2
WHERE v.source = 'licenses'
ORDER BY l.line`

// elsewhereSQL finds the number in other states of the same version (asked
// only when the claimed state has none; license_rows_key_idx serves it).
const elsewhereSQL = `SELECT $3::bigint, NULL::date, now(), l.state, l.license_number, l.license_type, l.status,
	l.expiry_date, l.last_name, l.first_name, l.middle_name, l.npi, l.line, l.record, l.digest
FROM active_licenses l WHERE l.import_id = $3 AND l.number_key = $2 AND l.state <> $1
ORDER BY l.state, l.line LIMIT 20`

// Lookup finds license number of state in the active roster, compared by
// NumberKey on both sides. A roster never imported gives sources.ErrNoVersion.
func (t Table) Lookup(ctx context.Context, state, number string) (*Found, error) {
	number = NumberKey(number)
	f := &Found{Source: sources.Licenses}
	recs, v, err := t.rows(ctx, lookupSQL, state, number)
	if err != nil {
		return f, err
	}
	if v == nil {
		return f, fmt.Errorf("licenses: %w", sources.ErrNoVersion)
	}
	f.Version, f.InState = v, recs
	if len(recs) == 0 {
		if f.Elsewhere, _, err = t.rows(ctx, elsewhereSQL, state, number, v.ImportID); err != nil {
			return f, err
		}
	}
	return f, nil
}

func (t Table) rows(ctx context.Context, sql string, args ...any) ([]Record, *sources.Version, error) {
	rows, err := t.DB.Query(ctx, sql, args...)
	if err != nil {
		return nil, nil, fmt.Errorf("query licenses: %w", err)
	}
	defer rows.Close()
	var v *sources.Version
	var out []Record
	for rows.Next() {
		ver := sources.Version{Source: sources.Licenses}
		var r Record
		var line *int64
		// The LEFT JOIN's NULLs read as "".
		if err := rows.Scan(&ver.ImportID, &ver.FileDate, &ver.ActivatedAt, database.Text(&r.State),
			database.Text(&r.Number), database.Text(&r.Type), database.Text(&r.Status), &r.Expiry, database.Text(&r.Last),
			database.Text(&r.First), database.Text(&r.Middle), database.Text(&r.NPI), &line, &r.Record,
			database.Text(&r.Digest)); err != nil {
			return nil, nil, fmt.Errorf("scan license row: %w", err)
		}
		if v == nil {
			v = &ver
		}
		if line == nil {
			continue
		}
		r.Line, r.Status = *line, FoldStatus(r.Status)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read license rows: %w", err)
	}
	return out, v, nil
}
