// Package expirables is the daily job that tells users before something
// lapses: licenses and board certifications expiring within
// LICENSE_EXPIRY_WINDOWS days (license.expiring; license.expired once past),
// recredentialing due within RECREDENTIAL_WINDOWS days (36 months after
// approval, no grace period) and verifications older than
// VERIFICATION_MAX_AGE (verification.stale).
//
// It is a River periodic job, so only the elected leader replica inserts it
// once a day (and once when it is elected: the job is idempotent). Each run
// is set-based: for every item it finds the tightest window the item is in
// today and records (kind, provider, item, due date, window) in
// expirable_notices; only rows it inserted raise an event, in the same
// statement. A second run on the same day, or the next day inside the same
// window, raises nothing; a renewal (a new expiry date) starts over.
package expirables

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/provcred/credential/internal/config"
	"github.com/provcred/credential/internal/events"
	"github.com/provcred/platform/metrics"
)

// QueueName is the River queue of the credential service's maintenance jobs.
const QueueName = "credential_maintenance"

// Kinds of expirables (credential_expirables_total's kind label).
const (
	KindLicense            = "license"
	KindBoardCertification = "board_certification"
	KindRecredentialing    = "recredentialing"
	KindVerification       = "verification"
)

// Job finds and raises expirables.
type Job struct {
	pool  *pgxpool.Pool
	cfg   config.Webhooks
	log   *slog.Logger
	total *prometheus.CounterVec // credential_expirables_total{kind,window}
	now   func() time.Time
}

// New returns the job, registering credential_expirables_total in reg.
func New(pool *pgxpool.Pool, cfg config.Webhooks, reg *metrics.Registry, log *slog.Logger) *Job {
	if log == nil {
		log = slog.Default()
	}
	j := &Job{pool: pool, cfg: cfg, log: log.With("component", "expirables"), now: time.Now,
		total: reg.CounterVec("credential_expirables_total",
			"Expirable windows crossed (one event each) by kind and window in days (0: expired, due or stale).", "kind", "window")}
	for _, k := range j.specs() {
		for _, w := range k.windows {
			j.total.WithLabelValues(k.kind, strconv.Itoa(w))
		}
	}
	return j
}

// spec is one kind of expirable: a query of (provider_id, subject, due_on,
// data) and the windows that apply to it.
type spec struct {
	kind    string
	windows []int
	// query may use $1 (the day, date), and $7 (the verification max age, interval).
	query string
	// expiringType is raised for windows > 0, dueType for window 0.
	expiringType, dueType string
	link                  string
}

func (j *Job) specs() []spec {
	return []spec{
		{kind: KindLicense, windows: j.cfg.LicenseExpiryWindows, expiringType: events.LicenseExpiring, dueType: events.LicenseExpired,
			link: "/providers/", query: `SELECT l.provider_id, l.state || ':' || l.number AS subject, l.expires_on AS due_on,
				jsonb_build_object('kind', 'state_license', 'state', l.state, 'number', l.number, 'type', l.type,
					'expires_on', l.expires_on) AS data
			FROM provider_licenses l WHERE l.expires_on IS NOT NULL`},
		// report_board_certifications is the providers' certifications as
		// rows, kept by triggers (migration 0005).
		{kind: KindBoardCertification, windows: j.cfg.LicenseExpiryWindows, expiringType: events.LicenseExpiring,
			dueType: events.LicenseExpired, link: "/providers/",
			query: `SELECT c.provider_id, c.board || ':' || c.specialty AS subject, c.expires_on AS due_on,
				jsonb_build_object('kind', 'board_certification', 'board', c.board, 'specialty', c.specialty,
					'expires_on', c.expires_on) AS data
			FROM report_board_certifications c WHERE c.expires_on IS NOT NULL`},
		// The due date is reporting's (report_recredential_due_on, the
		// providers API's recredential_due_on): one rule, one home.
		{kind: KindRecredentialing, windows: j.cfg.RecredentialWindows, expiringType: events.RecredentialingDue,
			dueType: events.RecredentialingDue, link: "/providers/",
			query: `SELECT p.id AS provider_id, '' AS subject, report_recredential_due_on(p.approved_at) AS due_on,
				jsonb_build_object('approved_at', p.approved_at, 'due_on', report_recredential_due_on(p.approved_at)) AS data
			FROM providers p WHERE p.approved_at IS NOT NULL AND p.decision = 'approved'`},
		{kind: KindVerification, windows: []int{0}, expiringType: events.VerificationStale, dueType: events.VerificationStale,
			link: "/results/", query: `SELECT p.id AS provider_id, '' AS subject,
				((p.last_verified_at + $7::interval) AT TIME ZONE 'UTC')::date AS due_on,
				jsonb_build_object('last_verified_at', p.last_verified_at,
					'max_age_days', extract(epoch FROM $7::interval)::bigint / 86400) AS data
			FROM providers p WHERE p.last_verified_at IS NOT NULL`},
	}
}

// raiseSQL raises the windows crossed on $1 for one spec: the tightest
// window each item is in (a window > 0 the days left fit in; 0 once the
// date has come), recorded once in expirable_notices, and an event for
// each row actually inserted.
func raiseSQL(query string) string {
	return `WITH cand AS (` + query + `),
	w AS (
		SELECT DISTINCT ON (c.provider_id, c.subject, c.due_on) c.*, (c.due_on - $1::date) AS days_left,
			CASE WHEN c.due_on - $1::date <= 0 THEN (CASE WHEN 0 = ANY ($2::int[]) THEN 0 END)
				ELSE (SELECT min(x) FROM unnest($2::int[]) x WHERE x > 0 AND x >= c.due_on - $1::date) END AS window_days
		FROM cand c ORDER BY c.provider_id, c.subject, c.due_on),
	fresh AS (
		INSERT INTO expirable_notices (kind, provider_id, subject, due_on, window_days, raised_on)
		SELECT $3, w.provider_id, w.subject, w.due_on, w.window_days, $1::date FROM w WHERE w.window_days IS NOT NULL
		ON CONFLICT DO NOTHING
		RETURNING provider_id, subject, due_on, window_days),
	raised AS (
		INSERT INTO events (type, provider_id, link, data)
		SELECT CASE WHEN f.window_days = 0 THEN $5 ELSE $4 END, f.provider_id, $6 || f.provider_id,
			w.data || jsonb_build_object('days_left', w.days_left, 'window_days', f.window_days)
		FROM fresh f JOIN w USING (provider_id, subject, due_on, window_days)
		RETURNING 1)
	SELECT f.window_days, count(*), (SELECT count(*) FROM raised) FROM fresh f GROUP BY f.window_days`
}

// Result counts what one run raised: kind → window days → events.
type Result map[string]map[int]int

// Total is the number of events raised.
func (r Result) Total() int {
	n := 0
	for _, ws := range r {
		for _, c := range ws {
			n += c
		}
	}
	return n
}

// Run raises the expirables of day (its UTC date) in one transaction and
// removes events older than EVENT_RETENTION. Running it again for the same
// day raises nothing.
func (j *Job) Run(ctx context.Context, day time.Time) (Result, error) {
	date := day.UTC().Format(time.DateOnly)
	maxAge := fmt.Sprintf("%d seconds", int64(j.cfg.VerificationMaxAge/time.Second))
	res := Result{}
	err := pgx.BeginFunc(ctx, j.pool, func(tx pgx.Tx) error {
		clear(res)
		for _, sp := range j.specs() {
			args := []any{date, sp.windows, sp.kind, sp.expiringType, sp.dueType, sp.link}
			q := raiseSQL(sp.query)
			if sp.kind == KindVerification {
				args = append(args, maxAge)
			}
			rows, err := tx.Query(ctx, q, args...)
			if err != nil {
				return fmt.Errorf("expirables %s: %w", sp.kind, err)
			}
			for rows.Next() {
				var window, n, raised int
				if err := rows.Scan(&window, &n, &raised); err != nil {
					rows.Close()
					return fmt.Errorf("expirables %s: %w", sp.kind, err)
				}
				if res[sp.kind] == nil {
					res[sp.kind] = map[int]int{}
				}
				res[sp.kind][window] = n
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return fmt.Errorf("expirables %s: %w", sp.kind, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for kind, ws := range res {
		for w, n := range ws {
			j.total.WithLabelValues(kind, strconv.Itoa(w)).Add(float64(n))
		}
	}
	purged, err := j.purge(ctx)
	if err != nil {
		return res, err
	}
	j.log.InfoContext(ctx, "expirables raised", "day", date, "events", res.Total(), "events_purged", purged)
	return res, nil
}

// purge removes published events past EVENT_RETENTION with no delivery
// still open (their deliveries go with them).
func (j *Job) purge(ctx context.Context) (int64, error) {
	tag, err := j.pool.Exec(ctx, `DELETE FROM events e WHERE e.occurred_at < now() - $1::interval AND e.published_at IS NOT NULL
		AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id AND d.status IN ('pending', 'retrying'))`,
		fmt.Sprintf("%d seconds", int64(j.cfg.EventRetention/time.Second)))
	if err != nil {
		return 0, fmt.Errorf("purge events: %w", err)
	}
	return tag.RowsAffected(), nil
}

// Args is the daily job's River job.
type Args struct{}

// Kind is River's job kind.
func (Args) Kind() string { return "credential_expirables" }

// InsertOpts puts the job on the maintenance queue.
func (Args) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: QueueName, MaxAttempts: 5} }

type worker struct {
	river.WorkerDefaults[Args]
	j *Job
}

func (w *worker) Timeout(*river.Job[Args]) time.Duration { return 30 * time.Minute }

func (w *worker) Work(ctx context.Context, _ *river.Job[Args]) error {
	_, err := w.j.Run(ctx, w.j.now())
	return err
}

// Register adds the worker.
func (j *Job) Register(workers *river.Workers) { river.AddWorker(workers, &worker{j: j}) }

// Queues is the maintenance queue (one job at a time per replica).
func (j *Job) Queues() map[string]river.QueueConfig {
	return map[string]river.QueueConfig{QueueName: {MaxWorkers: 1}}
}

// Periodic is the daily schedule at EXPIRABLES_RUN_AT (UTC), also run when
// a replica becomes leader (a missed day is caught up; a repeat raises nothing).
func (j *Job) Periodic() []*river.PeriodicJob {
	at, _ := j.cfg.RunAt() // validated with the configuration
	return []*river.PeriodicJob{river.NewPeriodicJob(Daily(at),
		func() (river.JobArgs, *river.InsertOpts) { return Args{}, nil },
		&river.PeriodicJobOpts{ID: "credential_expirables", RunOnStart: true})}
}

// Daily is a schedule firing once a day at the given offset from UTC midnight.
func Daily(at time.Duration) river.PeriodicSchedule { return daily{at: at} }

type daily struct{ at time.Duration }

func (d daily) Next(t time.Time) time.Time {
	u := t.UTC()
	next := time.Date(u.Year(), u.Month(), u.Day(), 0, 0, 0, 0, time.UTC).Add(d.at)
	if !next.After(u) {
		next = next.AddDate(0, 0, 1)
	}
	return next
}
