package checks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/provcred/credential/internal/names"
	"github.com/provcred/credential/internal/providers"
	"github.com/provcred/credential/internal/results"
	"github.com/provcred/credential/internal/sources"
	"github.com/provcred/credential/internal/sources/licenses"
)

// licenseRecord is one license as a source holds it (the imported roster
// or a state's verification endpoint).
type licenseRecord struct {
	State      string
	Number     string
	Type       string
	Status     string // licenses.NormalizeStatus
	Expiry     *time.Time
	Last       string
	First      string
	Middle     string
	NPI        string
	Line       int64
	Record     json.RawMessage
	Digest     string
	OtherState bool // found under the number in a state other than the one claimed
}

// licenseLookup is what one source answered for one claimed license.
type licenseLookup struct {
	source    string
	version   *results.SourceVersion
	fetchedAt *time.Time
	records   []licenseRecord // in the claimed state
	elsewhere []licenseRecord // same number, other states
}

// checkLicenses verifies every license the provider claims and combines the
// per-license outcomes: any fail (revoked or expired) fails, else any
// unavailable source makes it unavailable, else any doubt needs review; a
// provider claiming no license needs review.
func (e *Engine) checkLicenses(ctx context.Context, p *providers.Provider, at time.Time) results.Check {
	ev := results.Evidence{Source: sources.Licenses, MatchedRecord: json.RawMessage("null"), CheckedAt: at}
	if len(p.Licenses) == 0 {
		return results.Check{Outcome: results.NeedsReview, Detail: "the provider claims no state license", Evidence: ev}
	}
	day := today(at)
	worst := results.Pass
	var details []string
	for _, l := range p.Licenses {
		item := e.verifyLicense(ctx, p, l, day)
		ev.Items = append(ev.Items, item)
		if rank(item.Outcome) > rank(worst) {
			worst = item.Outcome
		}
		details = append(details, item.Key+": "+item.Detail)
	}
	// The top-level evidence names the deciding license's source and record.
	for _, it := range ev.Items {
		if it.Outcome == worst {
			ev.Source, ev.SourceVersion, ev.FetchedAt, ev.Digest = it.Source, it.SourceVersion, it.FetchedAt, it.Digest
			if it.MatchedRecord != nil {
				ev.MatchedRecord = it.MatchedRecord
			}
			break
		}
	}
	return results.Check{Outcome: worst, Detail: strings.Join(details, "; "), Evidence: ev}
}

// rank orders outcomes for combining: fail > unavailable > needs_review > pass.
func rank(outcome string) int {
	switch outcome {
	case results.Fail:
		return 3
	case results.Unavailable:
		return 2
	case results.NeedsReview:
		return 1
	}
	return 0
}

func (e *Engine) verifyLicense(ctx context.Context, p *providers.Provider, l providers.License, day time.Time) results.Item {
	key := l.State + " " + l.Number
	var (
		lk  *licenseLookup
		err error
	)
	start := time.Now()
	if ep, ok := e.licenses[l.State]; ok {
		lk, err = e.lookupLicenseAPI(ctx, ep, l.Number)
	} else {
		lk, err = e.lookupLicenseTable(ctx, l.State, l.Number)
	}
	source := sources.Licenses
	if lk != nil {
		source = lk.source
	}
	e.observe(source, start)
	item := results.Item{Key: key, Source: source}
	if errors.Is(err, sources.ErrNoVersion) {
		item.Outcome, item.Detail = results.Unavailable, "the license roster has not been imported"
		return item
	}
	if err != nil {
		e.log.WarnContext(ctx, "license lookup failed", "provider_id", p.ID, "state", l.State, "source", source, "error", err)
		item.Outcome, item.Detail = results.Unavailable, "the "+l.State+" license source did not answer: "+describe(err)
		return item
	}
	item.SourceVersion, item.FetchedAt = lk.version, lk.fetchedAt
	item.MatchedRecords = len(lk.records)
	item.Outcome, item.Detail = licenseOutcome(p, l, lk, day)
	switch {
	case len(lk.records) == 1:
		item.MatchedRecord, item.Digest, item.Line = lk.records[0].Record, lk.records[0].Digest, lk.records[0].Line
	case len(lk.records) == 0 && len(lk.elsewhere) > 0:
		item.MatchedRecord, item.Digest, item.Line = lk.elsewhere[0].Record, lk.elsewhere[0].Digest, lk.elsewhere[0].Line
	}
	return item
}

// licenseOutcome applies the license rules to what the source answered (pure: table-tested).
func licenseOutcome(p *providers.Provider, l providers.License, lk *licenseLookup, day time.Time) (string, string) {
	switch len(lk.records) {
	case 0:
		if len(lk.elsewhere) > 0 {
			states := map[string]bool{}
			for _, r := range lk.elsewhere {
				states[r.State] = true
			}
			list := make([]string, 0, len(states))
			for s := range states {
				list = append(list, s)
			}
			sort.Strings(list)
			return results.NeedsReview, "no license " + l.Number + " in " + l.State + "; the number is only found in " + strings.Join(list, ", ")
		}
		return results.NeedsReview, "no license " + l.Number + " found in " + l.State
	case 1:
	default:
		return results.NeedsReview, fmt.Sprintf("%d records match license %s in %s; a human must pick", len(lk.records), l.Number, l.State)
	}
	r := lk.records[0]
	switch {
	case r.Status == "revoked":
		return results.Fail, "license is revoked"
	case r.Status == "expired":
		return results.Fail, "license is expired" + expiryNote(r.Expiry)
	case r.Expiry != nil && r.Expiry.Before(day):
		return results.Fail, "license expired on " + r.Expiry.Format(time.DateOnly)
	case r.Status != "active":
		return results.NeedsReview, "license status is " + r.Status + ", not active"
	}
	if r.NPI != "" && r.NPI != p.NPI {
		return results.NeedsReview, "license is recorded under another NPI"
	}
	switch names.Compare(names.Name{First: p.FirstName, Middle: p.MiddleName, Last: p.LastName, Suffix: p.Suffix},
		names.Name{First: r.First, Middle: r.Middle, Last: r.Last}) {
	case names.Exact:
		return results.Pass, "license is active" + expiryNote(r.Expiry) + " and the name matches"
	case names.Partial:
		return results.NeedsReview, "license is active but the name matches only partially"
	default:
		return results.NeedsReview, "license is active but is held under a different name"
	}
}

func expiryNote(t *time.Time) string {
	if t == nil {
		return ""
	}
	return " (expires " + t.Format(time.DateOnly) + ")"
}

// licenseQuery reads the roster's active version with the in-state matches
// in one statement (one snapshot: see exclusionQuery).
const licenseQuery = `SELECT v.import_id, v.file_date, v.activated_at,
	l.state, l.license_number, l.license_type, l.status, l.expiry_date, l.last_name, l.first_name, l.middle_name,
	l.npi, l.line, l.record, l.digest
FROM source_versions v
LEFT JOIN active_licenses l ON l.import_id = v.import_id AND l.state = $1 AND l.license_number = $2
WHERE v.source = 'licenses'
ORDER BY l.line`

// elsewhereQuery finds the number in other states of the same version
// (only asked when the claimed state has none).
const elsewhereQuery = `SELECT $3::bigint, NULL::date, now(), l.state, l.license_number, l.license_type, l.status,
	l.expiry_date, l.last_name, l.first_name, l.middle_name, l.npi, l.line, l.record, l.digest
FROM active_licenses l WHERE l.import_id = $3 AND l.license_number = $2 AND l.state <> $1
ORDER BY l.state, l.line LIMIT 20`

func (e *Engine) lookupLicenseTable(ctx context.Context, state, number string) (*licenseLookup, error) {
	ctx, cancel := context.WithTimeout(ctx, e.o.SourceTimeout)
	defer cancel()
	number = strings.TrimSpace(number)
	lk := &licenseLookup{source: sources.Licenses}
	recs, sv, err := e.licenseRows(ctx, licenseQuery, state, number)
	if err != nil {
		return lk, err
	}
	if sv == nil {
		return lk, fmt.Errorf("licenses: %w", sources.ErrNoVersion)
	}
	lk.version, lk.records = sv, recs
	if len(recs) == 0 {
		if lk.elsewhere, _, err = e.licenseRows(ctx, elsewhereQuery, state, number, sv.ImportID); err != nil {
			return lk, err
		}
	}
	return lk, nil
}

func (e *Engine) licenseRows(ctx context.Context, sql string, args ...any) ([]licenseRecord, *results.SourceVersion, error) {
	rows, err := e.db.Query(ctx, sql, args...)
	if err != nil {
		return nil, nil, fmt.Errorf("query licenses: %w", err)
	}
	defer rows.Close()
	var sv *results.SourceVersion
	var out []licenseRecord
	for rows.Next() {
		var v results.SourceVersion
		var activated time.Time
		var st, num, typ, status, last, first, middle, npi, dig *string
		var line *int64
		var r licenseRecord
		if err := rows.Scan(&v.ImportID, &v.FileDate, &activated, &st, &num, &typ, &status, &r.Expiry, &last, &first,
			&middle, &npi, &line, &r.Record, &dig); err != nil {
			return nil, nil, fmt.Errorf("scan license row: %w", err)
		}
		if sv == nil {
			v.ActivatedAt = &activated
			sv = &v
		}
		if line == nil {
			continue
		}
		r.State, r.Number, r.Type, r.Status = deref(st), deref(num), deref(typ), licenses.NormalizeStatus(deref(status))
		r.Last, r.First, r.Middle, r.NPI, r.Line, r.Digest = deref(last), deref(first), deref(middle), deref(npi), *line, deref(dig)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read license rows: %w", err)
	}
	return out, sv, nil
}
