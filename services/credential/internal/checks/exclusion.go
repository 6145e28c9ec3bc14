package checks

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/provcred/credential/internal/names"
	"github.com/provcred/credential/internal/providers"
	"github.com/provcred/credential/internal/results"
)

// exclusionRow is one active_exclusions row that matched the provider by NPI
// or by normalized last+first name.
type exclusionRow struct {
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
	Record          []byte
	Digest          string
}

// exclusionQuery reads the source's active version and its matching rows in
// ONE statement: the version cited and the rows read come from the same
// snapshot, so an import swapping versions meanwhile cannot yield a "no
// match" against a version that was just dropped. No row at all means the
// source was never imported.
const exclusionQuery = `SELECT v.import_id, v.file_date, v.activated_at,
	e.line, e.npi, e.last_norm, e.first_norm, e.dob, e.excl_type, e.excl_date, e.rein_date, e.waiver_date,
	e.waiver_state, e.termination_date, e.record, e.digest
FROM source_versions v
LEFT JOIN active_exclusions e ON e.source = v.source AND e.import_id = v.import_id
	AND (e.npi = $2 OR ($3 <> '' AND $4 <> '' AND e.last_norm = $3 AND e.first_norm = $4))
WHERE v.source = $1
ORDER BY e.line`

// exclusionVerdict is how one matched row bears on the provider.
type exclusionVerdict int

const (
	// notExcluding: reinstated, terminated, or a name match without DOB equality.
	notExcluding exclusionVerdict = iota
	// review: a waiver on an NPI match, or a name+DOB match without an NPI match.
	review
	// excluding: an NPI match still in force.
	excluding
)

// checkExclusion applies the exclusion rules shared by the LEIE and SAM:
//   - NPI equal and still in force → fail (denies). "In force" means not
//     reinstated (REINDATE on or before today) and not terminated (SAM
//     Termination Date on or before today; "Indefinite" is stored as none).
//   - NPI equal with a waiver (WAIVERDATE set): the exclusion stands but is
//     waived for care in the waiver state; a human must judge → needs_review.
//   - No NPI match, last+first name (names.Part) equal AND date of birth
//     equal → needs_review: never pass or fail on a name alone.
//   - Name equal but DOB different or unknown on either side → pass, noted.
func (e *Engine) checkExclusion(ctx context.Context, check, source string, p *providers.Provider, at time.Time) results.Check {
	ev := results.Evidence{Source: source, MatchedRecord: json.RawMessage("null"), CheckedAt: at}
	ctx, cancel := context.WithTimeout(ctx, e.o.SourceTimeout)
	defer cancel()
	start := time.Now()
	rows, sv, err := e.exclusionRows(ctx, source, p)
	e.observe(source, start)
	if err != nil {
		e.log.WarnContext(ctx, "exclusion lookup failed", "provider_id", p.ID, "source", source, "error", err)
		return unavailable(check, "the "+label(source)+" list could not be read", ev)
	}
	if sv == nil {
		return unavailable(check, "the "+label(source)+" list has not been imported", ev)
	}
	ev.SourceVersion = sv
	return exclusionOutcome(source, p, rows, today(at), ev)
}

func (e *Engine) exclusionRows(ctx context.Context, source string, p *providers.Provider) ([]exclusionRow, *results.SourceVersion, error) {
	rows, err := e.db.Query(ctx, exclusionQuery, source, p.NPI, names.Part(p.LastName), names.Part(p.FirstName))
	if err != nil {
		return nil, nil, fmt.Errorf("query %s: %w", source, err)
	}
	defer rows.Close()
	var sv *results.SourceVersion
	var out []exclusionRow
	for rows.Next() {
		var v results.SourceVersion
		var activated time.Time
		var r exclusionRow
		var line *int64
		var lastNorm, firstNorm, exclType, waiverState, dig *string
		if err := rows.Scan(&v.ImportID, &v.FileDate, &activated, &line, &r.NPI, &lastNorm, &firstNorm, &r.DOB,
			&exclType, &r.ExclDate, &r.ReinDate, &r.WaiverDate, &waiverState, &r.TerminationDate, &r.Record, &dig); err != nil {
			return nil, nil, fmt.Errorf("scan %s row: %w", source, err)
		}
		if sv == nil {
			v.ActivatedAt = &activated
			sv = &v
		}
		if line == nil { // the LEFT JOIN found no matching row
			continue
		}
		r.Line, r.LastNorm, r.FirstNorm, r.ExclType, r.WaiverState, r.Digest =
			*line, deref(lastNorm), deref(firstNorm), deref(exclType), deref(waiverState), deref(dig)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read %s rows: %w", source, err)
	}
	return out, sv, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// exclusionOutcome weighs the matched rows (pure: table-tested).
func exclusionOutcome(source string, p *providers.Provider, rows []exclusionRow, today time.Time, ev results.Evidence) results.Check {
	name := label(source)
	var decisive *exclusionRow
	best := notExcluding
	var notes []string
	for i := range rows {
		r := &rows[i]
		verdict, key, detail := classify(p, r, today)
		ev.Items = append(ev.Items, results.Item{Key: key, Outcome: verdictOutcome(verdict), Detail: detail, Line: r.Line,
			MatchedRecord: r.Record, Digest: r.Digest})
		if decisive == nil || verdict > best {
			best, decisive = verdict, r
		}
		if verdict == notExcluding {
			notes = append(notes, detail)
		}
	}
	if decisive != nil {
		ev.MatchedRecord, ev.Digest = decisive.Record, decisive.Digest
	}
	switch {
	case best == excluding:
		return results.Check{Outcome: results.Fail, Evidence: ev,
			Detail: fmt.Sprintf("NPI %s is excluded in the %s (line %d)%s", p.NPI, name, decisive.Line, exclSince(decisive))}
	case best == review:
		_, _, detail := classify(p, decisive, today)
		return results.Check{Outcome: results.NeedsReview, Evidence: ev, Detail: name + ": " + detail}
	case len(notes) > 0:
		return results.Check{Outcome: results.Pass, Evidence: ev, Detail: "no exclusion in force in the " + name + "; note: " + strings.Join(notes, "; ")}
	default:
		return results.Check{Outcome: results.Pass, Evidence: ev, Detail: "no match in the " + name + " by NPI or by name"}
	}
}

// classify weighs one row. The detail never carries a name or a DOB (it is
// shown and logged); it cites the row's line instead.
func classify(p *providers.Provider, r *exclusionRow, today time.Time) (exclusionVerdict, string, string) {
	byNPI := r.NPI != nil && *r.NPI == p.NPI
	key := "npi"
	if !byNPI {
		key = "name"
	}
	ended := ""
	switch {
	case r.ReinDate != nil && !r.ReinDate.After(today):
		ended = "reinstated on " + r.ReinDate.Format(time.DateOnly)
	case r.TerminationDate != nil && !r.TerminationDate.After(today):
		ended = "exclusion terminated on " + r.TerminationDate.Format(time.DateOnly)
	}
	if byNPI {
		switch {
		case ended != "":
			return notExcluding, key, fmt.Sprintf("line %d matches the NPI but was %s: no longer excluding", r.Line, ended)
		case r.WaiverDate != nil:
			st := r.WaiverState
			if st == "" {
				st = "an unnamed state"
			}
			return review, key, fmt.Sprintf("NPI %s is excluded (line %d) with a waiver for %s since %s: excluded except there; a human must judge",
				p.NPI, r.Line, st, r.WaiverDate.Format(time.DateOnly))
		default:
			return excluding, key, fmt.Sprintf("line %d matches the NPI%s", r.Line, exclSince(r))
		}
	}
	if ended != "" {
		return notExcluding, key, fmt.Sprintf("line %d matches the name only and was %s", r.Line, ended)
	}
	if p.DateOfBirth != nil && r.DOB != nil && sameDay(p.DateOfBirth.Time, *r.DOB) {
		key = "name+dob"
		other := ""
		if r.NPI != nil {
			other = " (the row lists a different NPI)"
		}
		return review, key, fmt.Sprintf("line %d matches last name, first name and date of birth but not the NPI%s: possible match, review", r.Line, other)
	}
	why := "date of birth differs"
	if p.DateOfBirth == nil || r.DOB == nil {
		why = "no date of birth to compare"
	}
	return notExcluding, key, fmt.Sprintf("line %d matches the name only (%s): not treated as a match", r.Line, why)
}

func verdictOutcome(v exclusionVerdict) string {
	switch v {
	case excluding:
		return results.Fail
	case review:
		return results.NeedsReview
	default:
		return results.Pass
	}
}

func exclSince(r *exclusionRow) string {
	s := ""
	if r.ExclType != "" {
		s += " under " + r.ExclType
	}
	if r.ExclDate != nil {
		s += " since " + r.ExclDate.Format(time.DateOnly)
	}
	return s
}

func sameDay(a, b time.Time) bool {
	ay, am, ad := a.Date()
	by, bm, bd := b.Date()
	return ay == by && am == bm && ad == bd
}

func label(source string) string {
	switch source {
	case "leie":
		return "OIG LEIE"
	case "sam":
		return "SAM.gov exclusions"
	}
	return source
}
