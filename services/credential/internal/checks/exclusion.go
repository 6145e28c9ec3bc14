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
	"github.com/provcred/platform/domain"
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
//   - NPI equal with a waiver (WAIVERDATE set): the exclusion stands except
//     in WVRSTATE. No claimed license in that state → fail (the waiver cannot
//     cover this provider's work); a license there → needs_review.
//   - No NPI match, last+first name (names.Part) equal: a possible match →
//     needs_review, unless both dates of birth are known and differ. SAM
//     never publishes a DOB and many LEIE rows lack one: an unknown DOB
//     cannot rule a person out.
//   - Never a fail on a name alone.
func (e *Engine) checkExclusion(ctx context.Context, check, source string, p *providers.Provider, at time.Time) results.Check {
	ev := results.Evidence{Source: source, MatchedRecord: json.RawMessage("null"), CheckedAt: at}
	ctx, cancel := context.WithTimeout(ctx, e.o.SourceTimeout)
	defer cancel()
	start := time.Now()
	rows, v, err := exclusions.Lookup(ctx, e.db, source, p.ID, p.NPI, names.Part(p.LastName), names.Part(p.FirstName), today(at))
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
	decisiveDetail := ""
	var notes []string
	for i := range rows {
		r := &rows[i]
		verdict, key, detail := classify(p, r)
		if verdict == review && r.Resolution != "" {
			verdict, detail = reviewed(r)
		}
		it := results.Item{Key: key, Outcome: verdictOutcome(verdict), Detail: detail, Line: r.Line,
			MatchedRecord: r.Record, Digest: r.Digest, ReviewID: r.ReviewID}
		if ev.SourceVersion != nil && r.FileImportID != 0 && r.FileImportID != ev.SourceVersion.ImportID {
			// A row a supplement carried over: its line is in an earlier import's file.
			it.SourceVersion = &results.SourceVersion{ImportID: r.FileImportID}
		}
		ev.Items = append(ev.Items, it)
		if decisive == nil || verdict > best {
			best, decisive, decisiveDetail = verdict, r, detail
		}
		if verdict == notExcluding {
			notes = append(notes, detail)
		}
	}
	if decisive != nil {
		ev.MatchedRecord, ev.Digest = decisive.Record, decisive.Digest
	}
	switch {
	case best == excluding && decisive.Resolution == results.ReviewConfirmed:
		return results.Check{Outcome: domain.Fail, Evidence: ev, Detail: name + ": " + decisiveDetail}
	case best == excluding:
		detail := fmt.Sprintf("NPI %s is excluded in the %s (line %d)%s", p.NPI, name, decisive.Line, exclSince(decisive))
		if decisive.WaiverDate != nil {
			detail += "; " + decisiveDetail[strings.Index(decisiveDetail, "its waiver"):]
		}
		return results.Check{Outcome: domain.Fail, Evidence: ev, Detail: detail}
	case best == review:
		return results.Check{Outcome: domain.Review, Evidence: ev, Detail: name + ": " + decisiveDetail}
	case len(notes) > 0:
		return results.Check{Outcome: domain.Pass, Evidence: ev, Detail: "no exclusion in force in the " + name + "; note: " + strings.Join(notes, "; ")}
	default:
		return results.Check{Outcome: domain.Pass, Evidence: ev, Detail: "no match in the " + name + " by NPI or by name"}
	}
}

// reviewed is the verdict on a row a reviewer resolved for this provider
// (remembered by the row's digest): cleared → not this person, or not
// applicable; confirmed → a real match, excluding.
func reviewed(r *exclusions.Row) (exclusionVerdict, string) {
	if r.Resolution == results.ReviewConfirmed {
		return excluding, fmt.Sprintf("line %d was confirmed as this provider by review %s%s", r.Line, r.ReviewID, exclSince(r))
	}
	return notExcluding, fmt.Sprintf("line %d was cleared by review %s (not this provider, or not applicable)", r.Line, r.ReviewID)
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
			return waiverVerdict(p, r)
		default:
			return excluding, key, fmt.Sprintf("line %d matches the NPI%s", r.Line, exclSince(r))
		}
	}
	if ended != "" {
		return notExcluding, key, fmt.Sprintf("line %d matches the name only and was %s", r.Line, ended)
	}
	other := ""
	if r.NPI != nil {
		other = " (the row lists a different NPI)"
	}
	switch {
	case p.DateOfBirth != nil && r.DOB != nil && sameDay(p.DateOfBirth.Time, *r.DOB):
		return review, "name+dob", fmt.Sprintf("line %d matches last name, first name and date of birth but not the NPI%s: possible match, review", r.Line, other)
	case p.DateOfBirth != nil && r.DOB != nil:
		return notExcluding, key, fmt.Sprintf("line %d matches the name only (date of birth differs): not the same person", r.Line)
	}
	// Rule: an unknown date of birth (SAM publishes none; many LEIE rows and
	// some provider records lack one) cannot rule a person out.
	return review, key, fmt.Sprintf("line %d matches last name and first name but not the NPI%s, with no date of birth to compare: possible match, review", r.Line, other)
}

// waiverVerdict weighs an NPI match in force that carries an LEIE waiver.
// Rule: a waiver lets an excluded person furnish services in WVRSTATE only
// (OIG waivers under §1128(c)(3)(B) are for one state's program). With no
// claimed license in that state the waiver cannot cover the work being
// credentialed, so the exclusion stands (fail); with one, whether the work
// is the waived work is a human's judgement (needs_review). A waiver without
// a state names no place it applies: a human reads the file.
func waiverVerdict(p *providers.Provider, r *exclusions.Row) (exclusionVerdict, string, string) {
	since := r.WaiverDate.Format(time.DateOnly)
	st := strings.ToUpper(strings.TrimSpace(r.WaiverState))
	if st == "" {
		return review, "npi", fmt.Sprintf("NPI %s is excluded (line %d) with a waiver since %s naming no state: a human must judge",
			p.NPI, r.Line, since)
	}
	for _, l := range p.Licenses {
		if strings.EqualFold(strings.TrimSpace(l.State), st) {
			return review, "npi", fmt.Sprintf("NPI %s is excluded (line %d) with a waiver for %s since %s and a license is claimed there: excluded except there; a human must judge",
				p.NPI, r.Line, st, since)
		}
	}
	return excluding, "npi", fmt.Sprintf("line %d matches the NPI%s; its waiver (since %s) applies only in %s, where no license is claimed",
		r.Line, exclSince(r), since, st)
}

func verdictOutcome(v exclusionVerdict) domain.Outcome {
	switch v {
	case excluding:
		return domain.Fail
	case review:
		return domain.Review
	default:
		return domain.Pass
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
