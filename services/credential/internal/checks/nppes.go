package checks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/provcred/credential/internal/names"
	"github.com/provcred/credential/internal/providers"
	"github.com/provcred/credential/internal/results"
	"github.com/provcred/credential/internal/sources"
	"github.com/provcred/credential/internal/sources/nppes"
	"github.com/provcred/platform/breaker"
	"github.com/provcred/platform/domain"
	"github.com/provcred/platform/semaphore"
	"github.com/provcred/platform/text"
)

// checkNPPES: the NPI exists in the registry, is active (deactivated without
// a later reactivation fails), belongs to an individual (NPI-1; every
// provider record is a person) and the name matches: Exact passes, Partial
// needs review, Mismatch fails. A registry that cannot answer (no imported
// version, API down, breaker open, Errors on 200) is unavailable.
func (e *Engine) checkNPPES(ctx context.Context, p *providers.Provider, at time.Time) results.Check {
	source := sources.NPPES
	if e.nppesAPI {
		source = nppes.Name
	}
	ev := results.Evidence{Source: source, MatchedRecord: json.RawMessage("null"), CheckedAt: at}
	ctx, cancel := context.WithTimeout(ctx, e.lookupTimeout())
	defer cancel()
	start := time.Now()
	defer e.observe(source, start)

	if !e.nppesAPI {
		v, err := sources.ActiveVersion(ctx, e.db, sources.NPPES)
		if errors.Is(err, sources.ErrNoVersion) {
			return unavailable(results.CheckNPPES, "the NPPES file has not been imported", ev)
		}
		if err != nil {
			e.log.WarnContext(ctx, "nppes version lookup failed", "provider_id", p.ID, "err", err)
			return unavailable(results.CheckNPPES, "the NPPES table could not be read", ev)
		}
		ev.SourceVersion = version(v)
	}
	rec, raw, err := e.nppes.Lookup(ctx, p.NPI)
	if errors.Is(err, nppes.ErrNotFound) {
		var nf *nppes.NotFound
		if errors.As(err, &nf) { // the live registry's answer is the evidence of the absence
			ev.Digest, ev.FetchedAt = nf.Digest, &nf.FetchedAt
		}
		return results.Check{Outcome: domain.Fail, Detail: "NPI " + p.NPI + " is not in the NPPES registry", Evidence: ev}
	}
	if err != nil {
		e.log.WarnContext(ctx, "nppes lookup failed", "provider_id", p.ID, "source", source, "err", err)
		return unavailable(results.CheckNPPES, "the NPPES registry did not answer: "+describe(err), ev)
	}
	if json.Valid(raw) {
		ev.MatchedRecord = raw
	} else {
		ev.MatchedRecord, _ = json.Marshal(rec)
	}
	ev.Digest = rec.Digest
	if ev.Digest == "" {
		ev.Digest = sources.Digest(raw)
	}
	if e.nppesAPI {
		f := rec.FetchedAt
		ev.FetchedAt = &f
	} else if ev.SourceVersion != nil && rec.ImportID != ev.SourceVersion.ImportID {
		// A new version became active between the two reads: cite the row's own.
		ev.SourceVersion = &results.SourceVersion{ImportID: rec.ImportID}
	}
	return nppesOutcome(p, rec, ev)
}

// nppesOutcome applies the NPPES rules to a found record.
func nppesOutcome(p *providers.Provider, rec *nppes.Record, ev results.Evidence) results.Check {
	if !rec.Active() {
		d := "NPI " + p.NPI + " is deactivated in NPPES"
		if rec.DeactivationDate != nil {
			d += " since " + rec.DeactivationDate.Format(time.DateOnly)
		}
		return results.Check{Outcome: domain.Fail, Detail: d + " and not reactivated", Evidence: ev}
	}
	if rec.EntityType == "2" {
		return results.Check{Outcome: domain.Fail, Detail: "NPI " + p.NPI + " belongs to an organization (NPI-2), not an individual", Evidence: ev}
	}
	m := names.Compare(names.Name{First: p.FirstName, Middle: p.MiddleName, Last: p.LastName, Suffix: p.Suffix},
		names.Name{First: rec.FirstName, Middle: rec.MiddleName, Last: rec.LastName, Suffix: rec.NameSuffix})
	switch m {
	case names.Exact:
		return results.Check{Outcome: domain.Pass, Detail: "NPI is active, individual, and the NPPES name matches", Evidence: ev}
	case names.Partial:
		return results.Check{Outcome: domain.Review, Detail: "the NPPES name matches only partially (initial or shortened first name)", Evidence: ev}
	default:
		return results.Check{Outcome: domain.Fail, Detail: "the NPPES name for this NPI does not match the provider's name", Evidence: ev}
	}
}

func version(v sources.Version) *results.SourceVersion {
	at := v.ActivatedAt
	return &results.SourceVersion{ImportID: v.ImportID, FileDate: v.FileDate, ActivatedAt: &at}
}

// lookupTimeout bounds a registry lookup: the API client's own attempts and
// retries need room (NPPESDeadline), a table lookup gets the source timeout.
func (e *Engine) lookupTimeout() time.Duration {
	if e.nppesAPI {
		return e.o.NPPESDeadline
	}
	return e.o.SourceTimeout
}

// describe says why a source did not answer, for the check's detail: short,
// stable, and free of internal addresses (transport errors carry URLs) and
// of PII (none of these errors carry names).
func describe(err error) string {
	var se *breaker.StatusError
	var ae *nppes.APIError
	var ue *url.Error
	switch {
	case errors.Is(err, breaker.ErrOpen):
		return "circuit breaker open"
	case errors.Is(err, semaphore.ErrBusy):
		return "too many calls in flight"
	case breaker.IsTimeout(err):
		return "timed out"
	case errors.As(err, &se):
		return fmt.Sprintf("answered HTTP %d", se.Code)
	case errors.As(err, &ae):
		return text.Clip(ae.Error(), 160)
	case errors.As(err, &ue):
		return "connection failed"
	default:
		return text.Clip(err.Error(), 160)
	}
}
