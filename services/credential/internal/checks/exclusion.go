package checks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/provcred/credential/internal/names"
	"github.com/provcred/credential/internal/providers"
	"github.com/provcred/credential/internal/results"
	"github.com/provcred/credential/internal/sources"
	"github.com/provcred/credential/internal/sources/exclusions"
)

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
//   - NPI equal and still in force → fail (denies). "In force" is
//     exclusions.InForce: not reinstated (REINDATE on or before today) and
//     not terminated (SAM Termination Date on or before today; "Indefinite"
//     is stored as none).
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
	rows, v, err := exclusions.Lookup(ctx, e.db, source, p.NPI, names.Part(p.LastName), names.Part(p.FirstName), today(at))
	e.observe(source, start)
	if errors.Is(err, sources.ErrNoVersion) {
		return unavailable(check, "the "+label(source)+" list has not been imported", ev)
	}
	if err != nil {
		e.log.WarnContext(ctx, "exclusion lookup failed", "provider_id", p.ID, "source", source, "err", err)
		return unavailable(check, "the "+label(source)+" list could not be read", ev)
	}
	ev.SourceVersion = version(*v)
	return exclusionOutcome(source, p, rows, ev)
}

// exclusionOutcome weighs the matched rows (pure: table-tested).
func exclusionOutcome(source string, p *providers.Provider, rows []exclusions.Row, ev results.Evidence) results.Check {
	name := label(source)
	var decisive *exclusions.Row
	best := notExcluding
	var notes []string
	for i := range rows {
		r := &rows[i]
		verdict, key, detail := classify(p, r)
		it := results.Item{Key: key, Outcome: verdictOutcome(verdict), Detail: detail, Line: r.Line,
			MatchedRecord: r.Record, Digest: r.Digest}
		if ev.SourceVersion != nil && r.FileImportID != 0 && r.FileImportID != ev.SourceVersion.ImportID {
			// A row a supplement carried over: its line is in an earlier import's file.
			it.SourceVersion = &results.SourceVersion{ImportID: r.FileImportID}
		}
		ev.Items = append(ev.Items, it)
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
		_, _, detail := classify(p, decisive)
		return results.Check{Outcome: results.NeedsReview, Evidence: ev, Detail: name + ": " + detail}
	case len(notes) > 0:
		return results.Check{Outcome: results.Pass, Evidence: ev, Detail: "no exclusion in force in the " + name + "; note: " + strings.Join(notes, "; ")}
	default:
		return results.Check{Outcome: results.Pass, Evidence: ev, Detail: "no match in the " + name + " by NPI or by name"}
	}
}

// classify weighs one row. The detail never carries a name or a DOB (it is
// shown and logged); it cites the row's line instead.
func classify(p *providers.Provider, r *exclusions.Row) (exclusionVerdict, string, string) {
	byNPI := r.NPI != nil && *r.NPI == p.NPI
	key := "npi"
	if !byNPI {
		key = "name"
	}
	ended := ""
	switch r.Ended {
	case "reinstated":
		ended = "reinstated on " + r.ReinDate.Format(time.DateOnly)
	case "terminated":
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

func exclSince(r *exclusions.Row) string {
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
