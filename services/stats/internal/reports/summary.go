package reports

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/provcred/platform/domain"
	"github.com/provcred/stats/internal/params"
	"github.com/provcred/stats/internal/sheet"
)

// Summary is the headline of the credentialing program, all from one snapshot.
type Summary struct {
	Meta
	TZ                    string           `json:"tz"`
	Today                 params.Date      `json:"today"`
	ProvidersTotal        int64            `json:"providers_total"`
	ByDecision            map[string]int64 `json:"by_decision"`
	NeverCredentialed     int64            `json:"never_credentialed"`
	VerificationStale     int64            `json:"verification_stale"`
	ExclusionFlagged      int64            `json:"exclusion_flagged"`
	RecredentialingDue90d int64            `json:"recredentialing_due_90d"`
	LicensesTotal         int64            `json:"licenses_total"`
	LicensesExpired       int64            `json:"licenses_expired"`
	LicensesExpiring90d   int64            `json:"licenses_expiring_90d"`
	AuditEntriesLast24h   int64            `json:"audit_entries_last_24h"`
	// GeneratedAt is as_of, under the name the first clients read.
	GeneratedAt time.Time `json:"generated_at"`
}

type summaryParams struct {
	TZ    string      `json:"tz"`
	Today params.Date `json:"today"`
	// MaxAge is VERIFICATION_MAX_AGE (set by the handler, part of the cache key).
	MaxAge time.Duration `json:"max_age"`
}

func (p *summaryParams) setMaxAge(d time.Duration) { p.MaxAge = d }

var summaryReport = report[summaryParams]{
	name:   "summary",
	params: []string{"tz"},
	parse: func(q *params.Query, now time.Time) (summaryParams, error) {
		d, tz, err := today(q, now)
		return summaryParams{TZ: tz, Today: d}, err
	},
	run: runSummary,
}

// The counts of every provider or license come from the credential
// service's tallies (reporting.*_tallies, kept by its triggers): summing a
// few thousand rows instead of scanning 100,000 providers and their
// licenses (178 ms uncached at that size; docs/benchmarks.md). Stale: never
// verified, or longer ago than VERIFICATION_MAX_AGE (staleSQL). Due: the recredentialing date falls within 90 days (or
// has passed). A license is expired the day after its expiry date; expiring
// within 90 days: it lapses before today + 90. The other counts read their
// own index.
func runSummary(ctx context.Context, tx pgx.Tx, p summaryParams, now time.Time) (result, error) {
	s := &Summary{TZ: p.TZ, Today: p.Today, GeneratedAt: now, ByDecision: map[string]int64{}}
	for _, d := range domain.Decisions {
		s.ByDecision[string(d)] = 0
	}
	today := p.Today.Time()
	b := &pgx.Batch{}
	b.Queue(`SELECT decision, sum(providers)::bigint FROM decision_tallies GROUP BY 1`).Query(func(rows pgx.Rows) error {
		var d *string
		var n int64
		_, err := pgx.ForEachRow(rows, []any{&d, &n}, func() error {
			s.ProvidersTotal += n
			if d == nil {
				s.NeverCredentialed += n
			} else {
				s.ByDecision[*d] += n
			}
			return nil
		})
		return err
	})
	count := func(dest *int64, sql string, args ...any) {
		b.Queue(sql, args...).QueryRow(func(row pgx.Row) error { return row.Scan(dest) })
	}
	b.Queue(staleSQL, now, p.MaxAge).QueryRow(func(row pgx.Row) error {
		var stale, never int64
		err := row.Scan(&stale, &never)
		s.VerificationStale = stale + never
		return err
	})
	count(&s.ExclusionFlagged, `SELECT count(*) FROM providers WHERE exclusion_flagged_at IS NOT NULL`)
	count(&s.RecredentialingDue90d, `SELECT count(*) FROM providers WHERE recredential_due_on < $1::date + 90`, today)
	b.Queue(`SELECT coalesce(sum(licenses), 0)::bigint,
			coalesce(sum(licenses) FILTER (WHERE expires_on < $1::date), 0)::bigint,
			coalesce(sum(licenses) FILTER (WHERE expires_on >= $1::date AND expires_on < $1::date + 90), 0)::bigint
		FROM license_tallies`, today).QueryRow(func(row pgx.Row) error {
		return row.Scan(&s.LicensesTotal, &s.LicensesExpired, &s.LicensesExpiring90d)
	})
	count(&s.AuditEntriesLast24h, `SELECT count(*) FROM audit_events WHERE at > $1::timestamptz - interval '24 hours'`, now)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("summary: %w", err)
	}
	return s, nil
}

func (s *Summary) table() sheet.Table {
	t := sheet.Table{Header: []string{"metric", "value"}}
	t.Add("providers_total", s.ProvidersTotal)
	for _, d := range domain.Decisions {
		t.Add("decision_"+string(d), s.ByDecision[string(d)])
	}
	t.Add("never_credentialed", s.NeverCredentialed)
	t.Add("verification_stale", s.VerificationStale)
	t.Add("exclusion_flagged", s.ExclusionFlagged)
	t.Add("recredentialing_due_90d", s.RecredentialingDue90d)
	t.Add("licenses_total", s.LicensesTotal)
	t.Add("licenses_expired", s.LicensesExpired)
	t.Add("licenses_expiring_90d", s.LicensesExpiring90d)
	t.Add("audit_entries_last_24h", s.AuditEntriesLast24h)
	return t
}
