package checks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/provcred/credential/internal/names"
	"github.com/provcred/credential/internal/providers"
	"github.com/provcred/credential/internal/results"
	"github.com/provcred/credential/internal/sources"
	"github.com/provcred/credential/internal/sources/licenses"
	"github.com/provcred/platform/domain"
)

// checkLicenses verifies every license the provider claims and combines the
// per-license outcomes: any fail (revoked or expired) fails, else any
// unavailable source makes it unavailable, else any doubt needs review; a
// provider claiming no license needs review.
func (e *Engine) checkLicenses(ctx context.Context, p *providers.Provider, at time.Time) results.Check {
	ev := results.Evidence{Source: sources.Licenses, MatchedRecord: json.RawMessage("null"), CheckedAt: at}
	if len(p.Licenses) == 0 {
		return results.Check{Outcome: domain.Review, Detail: "the provider claims no state license", Evidence: ev}
	}
	day := today(at)
	worst := domain.Pass
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
func rank(outcome domain.Outcome) int {
	switch outcome {
	case domain.Fail:
		return 3
	case domain.Unavailable:
		return 2
	case domain.Review:
		return 1
	}
	return 0
}

func (e *Engine) verifyLicense(ctx context.Context, p *providers.Provider, l providers.License, day time.Time) results.Item {
	key := l.State + " " + l.Number
	var (
		lk  *licenses.Found
		err error
	)
	start := time.Now()
	if ep, ok := e.licenses[l.State]; ok {
		lk, err = ep.Lookup(ctx, l.Number)
	} else {
		tctx, cancel := context.WithTimeout(ctx, e.o.SourceTimeout)
		lk, err = licenses.Table{DB: e.db}.Lookup(tctx, l.State, l.Number)
		cancel()
	}
	source := sources.Licenses
	if lk != nil {
		source = lk.Source
	}
	e.observe(source, start)
	item := results.Item{Key: key, Source: source}
	if errors.Is(err, sources.ErrNoVersion) {
		item.Outcome, item.Detail = domain.Unavailable, "the license roster has not been imported"
		return item
	}
	if err != nil {
		e.log.WarnContext(ctx, "license lookup failed", "provider_id", p.ID, "state", l.State, "source", source, "err", err)
		item.Outcome, item.Detail = domain.Unavailable, "the "+l.State+" license source did not answer: "+describe(err)
		return item
	}
	if lk.Version != nil {
		item.SourceVersion = version(*lk.Version)
	}
	item.FetchedAt = lk.FetchedAt
	item.MatchedRecords = len(lk.InState)
	item.Outcome, item.Detail = licenseOutcome(p, l, lk, day, e.o.LicenseStatuses)
	switch {
	case len(lk.InState) == 1:
		item.MatchedRecord, item.Digest, item.Line = lk.InState[0].Record, lk.InState[0].Digest, lk.InState[0].Line
	case len(lk.InState) == 0 && len(lk.Elsewhere) > 0:
		item.MatchedRecord, item.Digest, item.Line = lk.Elsewhere[0].Record, lk.Elsewhere[0].Digest, lk.Elsewhere[0].Line
	}
	return item
}

// licenseOutcome applies the license rules to what the source answered (pure: table-tested).
func licenseOutcome(p *providers.Provider, l providers.License, lk *licenses.Found, day time.Time, st licenses.StatusTable) (domain.Outcome, string) {
	switch len(lk.InState) {
	case 0:
		if len(lk.Elsewhere) > 0 {
			states := map[string]bool{}
			for _, r := range lk.Elsewhere {
				states[r.State] = true
			}
			list := make([]string, 0, len(states))
			for s := range states {
				list = append(list, s)
			}
			sort.Strings(list)
			return domain.Review, "no license " + l.Number + " in " + l.State + "; the number is only found in " + strings.Join(list, ", ")
		}
		return domain.Review, "no license " + l.Number + " found in " + l.State
	case 1:
	default:
		return domain.Review, fmt.Sprintf("%d records match license %s in %s; a human must pick", len(lk.InState), l.Number, l.State)
	}
	r := lk.InState[0]
	class, known := st.Class(r.Status)
	switch {
	case !known:
		// Rule: a word the status table does not list is not guessed at.
		return domain.Review, "license status " + strconv.Quote(r.Status) + " is not in the status table (LICENSE_STATUS_WORDS)"
	case class == licenses.StatusRevoked:
		return domain.Fail, "license is revoked"
	case class == licenses.StatusExpired:
		return domain.Fail, "license is expired" + expiryNote(r.Expiry)
	case class != licenses.StatusActive:
		return domain.Review, "license status is " + class + ", not active"
	case r.Expiry != nil && r.Expiry.Before(day):
		// Rule: the source contradicts itself (active, yet past its expiry):
		// an adverse decision needs a source that says so.
		return domain.Review, "license status is active but its expiry date " + r.Expiry.Format(time.DateOnly) +
			" has passed: the source contradicts itself"
	}
	if r.NPI != "" && r.NPI != p.NPI {
		return domain.Review, "license is recorded under another NPI"
	}
	switch names.Compare(names.Name{First: p.FirstName, Middle: p.MiddleName, Last: p.LastName, Suffix: p.Suffix},
		names.Name{First: r.First, Middle: r.Middle, Last: r.Last}) {
	case names.Exact:
		return domain.Pass, "license is active" + expiryNote(r.Expiry) + " and the name matches"
	case names.Partial:
		return domain.Review, "license is active but the name matches only partially"
	default:
		return domain.Review, "license is active but is held under a different name"
	}
}

func expiryNote(t *time.Time) string {
	if t == nil {
		return ""
	}
	return " (expires " + t.Format(time.DateOnly) + ")"
}
