// Package monitor is continuous monitoring: after every exclusion list
// import (LEIE or SAM) the whole provider base is re-screened against the new
// version, and every provider newly found excluded by NPI is flagged
// (providers.exclusion_flagged_at), audited, announced (exclusion.match_found)
// and counted in credential_new_exclusions_total.
package monitor

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/provcred/credential/internal/config"
	"github.com/provcred/credential/internal/events"
	"github.com/provcred/credential/internal/sources"
	"github.com/provcred/credential/internal/sources/exclusions"
	"github.com/provcred/platform/metrics"
)

// Monitor re-screens providers after exclusion imports.
type Monitor struct {
	db  *pgxpool.Pool
	log *slog.Logger
	// newExclusions is credential_new_exclusions_total.
	newExclusions prometheus.Counter
	// client inserts re-screen jobs (Attach).
	client *river.Client[pgx.Tx]
	// JobTimeout bounds one re-screen attempt, as given (RESCREEN_JOB_TIMEOUT:
	// New sets the setting's default; main sets the configured value).
	JobTimeout time.Duration
}

// New returns a Monitor, registering credential_new_exclusions_total in reg.
func New(db *pgxpool.Pool, reg *metrics.Registry, log *slog.Logger) *Monitor {
	if log == nil {
		log = slog.Default()
	}
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "credential_new_exclusions_total",
		Help: "Providers newly found excluded by continuous monitoring after an exclusion list import."})
	reg.Registerer.MustRegister(c)
	return &Monitor{db: db, log: log, newExclusions: c, JobTimeout: config.Defaults().RescreenJobTimeout}
}

// rescreenSQL is one set-based statement: the join of providers with the
// import's exclusion rows by NPI (rows still in force today, by the same
// definition the leie/sam checks use: exclusions.InForce), restricted to providers not flagged yet;
// the UPDATE flags them and the INSERTs write one audit entry and one
// exclusion.match_found event per flagged provider, all in the same statement, so a flag never exists
// without its entry. Only providers the UPDATE actually changed are audited:
// under concurrent re-screens PostgreSQL re-checks exclusion_flagged_at IS
// NULL on the locked row, so a provider is flagged and counted once.
//
// A row with a waiver still flags: the provider is excluded (except in the
// waiver state) and a human must look, which is what the flag asks for.
var rescreenSQL = `WITH hits AS (
	SELECT DISTINCT ON (p.id) p.id, p.decision, e.line, e.excl_type, e.excl_date, e.waiver_date, e.waiver_state, e.digest
	FROM providers p
	JOIN active_exclusions e ON e.npi = p.npi
	WHERE e.source = $1 AND e.import_id = $2
	  AND p.exclusion_flagged_at IS NULL
	  AND ` + exclusions.InForce("e", "(now() AT TIME ZONE 'UTC')::date") + `
	ORDER BY p.id, e.line
), flagged AS (
	UPDATE providers p SET exclusion_flagged_at = now()
	FROM hits h
	WHERE p.id = h.id AND p.exclusion_flagged_at IS NULL
	RETURNING p.id, p.exclusion_flagged_at
), audited AS (
	INSERT INTO audit_log (actor, event, provider_id, entity, entity_id, before, after, request_id)
	SELECT 'system', 'provider.exclusion_flagged', f.id, 'provider', f.id,
		jsonb_build_object('exclusion_flagged_at', NULL, 'decision', h.decision),
		jsonb_build_object('exclusion_flagged_at', f.exclusion_flagged_at, 'source', $1::text, 'import_id', $2::bigint,
			'line', h.line, 'excl_type', h.excl_type, 'excl_date', h.excl_date, 'waiver_date', h.waiver_date,
			'waiver_state', h.waiver_state, 'digest', h.digest),
		''
	FROM flagged f JOIN hits h ON h.id = f.id
	RETURNING 1
), announced AS (
	INSERT INTO events (type, provider_id, link, data)
	SELECT '` + events.ExclusionMatchFound + `', f.id, '/providers/' || f.id,
		jsonb_build_object('source', $1::text, 'import_id', $2::bigint, 'line', h.line, 'excl_type', h.excl_type,
			'excl_date', h.excl_date, 'waiver_state', h.waiver_state, 'digest', h.digest,
			'flagged_at', f.exclusion_flagged_at, 'previous_decision', h.decision)
	FROM flagged f JOIN hits h ON h.id = f.id
	RETURNING 1
)
SELECT count(*) FROM audited`

// Rescreen re-screens every provider against the exclusion list version
// importID of source (leie or sam) and returns how many were newly flagged.
// Running it again for the same version flags nobody twice. It is the
// importer's OnExclusionsImported hook.
func (m *Monitor) Rescreen(ctx context.Context, source string, importID int64) (newlyFlagged int, err error) {
	if !sources.IsExclusion(source) {
		return 0, fmt.Errorf("rescreen: %q is not an exclusion list", source)
	}
	var n int64
	err = pgx.BeginFunc(ctx, m.db, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, rescreenSQL, source, importID).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("rescreen %s import %d: %w", source, importID, err)
	}
	m.newExclusions.Add(float64(n))
	m.log.InfoContext(ctx, "exclusion re-screen done", "source", source, "import_id", importID, "newly_flagged", n)
	return int(n), nil
}

// Hook adapts Rescreen to the importer's OnExclusionsImported signature.
func (m *Monitor) Hook(ctx context.Context, source string, importID int64) error {
	_, err := m.Rescreen(ctx, source, importID)
	return err
}
