// Package summary computes GET /stats/summary from the credential
// service's tables, read through a read replica. It only reads, so it runs
// no migrations: a replica accepts no writes.
package summary

import (
	"context"
	"fmt"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Summary is the headline of the credentialing program.
type Summary struct {
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
	GeneratedAt           time.Time        `json:"generated_at"`
}

// Handler serves /stats/summary.
type Handler struct{ Pool *pgxpool.Pool }

// Routes registers the endpoint.
func (h *Handler) Routes(r fiber.Router) { r.Get("/stats/summary", h.summary) }

func (h *Handler) summary(c *fiber.Ctx) error {
	s, err := Compute(c.UserContext(), h.Pool)
	if err != nil {
		return err
	}
	return c.JSON(s)
}

// Compute reads the counts in one round trip per table, in one snapshot.
func Compute(ctx context.Context, pool *pgxpool.Pool) (*Summary, error) {
	s := &Summary{ByDecision: map[string]int64{"approved": 0, "denied": 0, "needs_review": 0, "incomplete": 0}}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read-only
	if _, err := tx.Exec(ctx, `SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY`); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	// Same windows as the credential service: 120 days stale, 36 months to recredential.
	err = tx.QueryRow(ctx, `SELECT count(*),
			count(*) FILTER (WHERE decision IS NULL),
			count(*) FILTER (WHERE last_verified_at IS NULL OR last_verified_at < now() - interval '120 days'),
			count(*) FILTER (WHERE exclusion_flagged_at IS NOT NULL),
			count(*) FILTER (WHERE approved_at IS NOT NULL AND approved_at + interval '36 months' < now() + interval '90 days'),
			clock_timestamp()
		FROM providers`).Scan(&s.ProvidersTotal, &s.NeverCredentialed, &s.VerificationStale, &s.ExclusionFlagged,
		&s.RecredentialingDue90d, &s.GeneratedAt)
	if err != nil {
		return nil, fmt.Errorf("provider counts: %w", err)
	}
	rows, err := tx.Query(ctx, `SELECT decision, count(*) FROM providers WHERE decision IS NOT NULL GROUP BY decision`)
	if err != nil {
		return nil, fmt.Errorf("decision counts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var d string
		var n int64
		if err := rows.Scan(&d, &n); err != nil {
			return nil, err
		}
		s.ByDecision[d] = n
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	err = tx.QueryRow(ctx, `SELECT count(*),
			count(*) FILTER (WHERE expires_on < current_date),
			count(*) FILTER (WHERE expires_on >= current_date AND expires_on < current_date + 90)
		FROM provider_licenses`).Scan(&s.LicensesTotal, &s.LicensesExpired, &s.LicensesExpiring90d)
	if err != nil {
		return nil, fmt.Errorf("license counts: %w", err)
	}
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE at > now() - interval '24 hours'`).Scan(&s.AuditEntriesLast24h); err != nil {
		return nil, fmt.Errorf("audit counts: %w", err)
	}
	return s, nil
}
