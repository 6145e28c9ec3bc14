package reports

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/provcred/platform/metrics"
	"github.com/provcred/platform/server"
	"github.com/provcred/stats/internal/cache"
	"github.com/provcred/stats/internal/replica"
	"github.com/provcred/stats/internal/statstest"
)

// now is the pinned clock of the seeded history: Tuesday 10 March 2026,
// 11:00 in New York (daylight time began on the 8th).
var now = time.Date(2026, 3, 10, 15, 0, 0, 0, time.UTC)

type kit struct {
	t       *testing.T
	srv     *server.Server
	reader  *replica.Reader
	reg     *metrics.Registry
	seed    *pgxpool.Pool // writes as the credential service does
	url     string
	queries *queryCounter
	clock   atomic.Pointer[time.Time]
}

type kitOptions struct {
	ttl     time.Duration
	timeout time.Duration
	maxAge  time.Duration // VERIFICATION_MAX_AGE; zero: the default
	// url and searchPath of the database the reports read (default: the
	// seeded database, as its owner).
	readURL string
}

// queryCounter counts the statements the reports send, by a word they hold.
type queryCounter struct{ n atomic.Int64 }

func (q *queryCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if strings.Contains(d.SQL, "decision_counts") {
		q.n.Add(1)
	}
	return ctx
}
func (q *queryCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func newKit(t *testing.T, o kitOptions) *kit {
	t.Helper()
	seed, url := statstest.NewDB(t)
	return newKitOn(t, seed, url, o)
}

// newKitOn is a kit seeding through seed (the database at url).
func newKitOn(t *testing.T, seed *pgxpool.Pool, url string, o kitOptions) *kit {
	t.Helper()
	k := &kit{t: t, seed: seed, url: url, reg: metrics.New("stats"), queries: &queryCounter{}}
	k.clock.Store(&now)
	if o.readURL == "" {
		o.readURL = url
	}
	k.serve(o)
	return k
}

// serve (re)builds the service on o.readURL, as main wires it.
func (k *kit) serve(o kitOptions) {
	if o.timeout == 0 {
		o.timeout = 10 * time.Second
	}
	cfg, err := pgxpool.ParseConfig(o.readURL)
	if err != nil {
		k.t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = "reporting"
	cfg.ConnConfig.Tracer = k.queries
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		k.t.Fatal(err)
	}
	k.t.Cleanup(pool.Close)
	k.reg = metrics.New("stats")
	reader := replica.New(pool, o.timeout, k.reg).WithClock(func() time.Time { return *k.clock.Load() })
	k.reader = reader
	log := slog.New(slog.NewTextHandler(testLog{k.t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	k.srv = server.New(server.Options{Service: "stats", Logger: log, Metrics: k.reg, BodyLimit: 1 << 20, RequestTimeout: 20 * time.Second})
	(&Handler{Reader: reader, Cache: cache.New(cache.Options{TTL: o.ttl, MaxEntries: 100, MaxSize: MaxCacheRows,
		LoadTimeout: o.timeout + time.Second}, k.reg), VerificationMaxAge: o.maxAge}).Routes(k.srv.App)
}

// testLog shows the service's warnings and errors in the test's output.
type testLog struct{ t *testing.T }

func (l testLog) Write(b []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

func (k *kit) setNow(t time.Time) { k.clock.Store(&t) }

// exec runs seeding SQL on the credential schema.
func (k *kit) exec(sql string, args ...any) {
	k.t.Helper()
	if _, err := k.seed.Exec(context.Background(), sql, args...); err != nil {
		k.t.Fatalf("seed: %v\n%s", err, sql)
	}
}

type answer struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

func (k *kit) get(path string) answer {
	k.t.Helper()
	resp, err := k.srv.App.Test(httptest.NewRequest("GET", path, nil), 30000)
	if err != nil {
		k.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, header: resp.Header}
	a.raw, _ = io.ReadAll(resp.Body)
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(a.raw, &a.body); err != nil {
			k.t.Fatalf("GET %s: %v: %s", path, err, a.raw)
		}
	}
	return a
}

// ok gets path and fails unless it answers 200, decoding the body into v.
func (k *kit) ok(path string, v any) answer {
	k.t.Helper()
	a := k.get(path)
	if a.status != 200 {
		k.t.Fatalf("GET %s: %d %s", path, a.status, a.raw)
	}
	if v != nil {
		if err := json.Unmarshal(a.raw, v); err != nil {
			k.t.Fatalf("GET %s: %v", path, err)
		}
	}
	return a
}

func (k *kit) metric(name string, labels ...string) float64 {
	k.t.Helper()
	v, err := k.reg.Value(name, labels...)
	if err != nil {
		k.t.Fatal(err)
	}
	return v
}

// history is the seeded credentialing history every report is checked
// against; the comments give the answers.
const history = `
-- Decisions (providers d1..d8, submitted long before).
INSERT INTO providers (id, npi, first_name, last_name, created_at, last_verified_at)
SELECT 'd' || g, (1000000000 + g)::text, 'D', 'Provider' || g, '2025-01-01T00:00:00Z', '2026-03-09T15:00:00Z'
FROM generate_series(0, 8) g;
INSERT INTO credential_runs (id, provider_id, npi, decision, actor, started_at, finished_at) VALUES
 ('00000000-0000-0000-0000-000000000000', 'd0', '1000000000', 'approved', 't', '2025-06-01T10:00:00Z', '2025-06-01T10:00:01Z'),
 ('00000000-0000-0000-0000-000000000001', 'd1', '1000000001', 'approved',     't', '2026-03-01T02:59:59Z', '2026-03-01T03:00:00Z'), -- UTC 1 Mar, NY 28 Feb
 ('00000000-0000-0000-0000-000000000002', 'd2', '1000000002', 'denied',       't', '2026-03-01T11:59:59Z', '2026-03-01T12:00:00Z'),
 ('00000000-0000-0000-0000-000000000003', 'd3', '1000000003', 'needs_review', 't', '2026-03-08T06:29:59Z', '2026-03-08T06:30:00Z'), -- NY 01:30 EST
 ('00000000-0000-0000-0000-000000000004', 'd4', '1000000004', 'incomplete',   't', '2026-03-09T03:59:00Z', '2026-03-09T03:59:59Z'), -- NY 23:59 EDT on the 8th
 ('00000000-0000-0000-0000-000000000005', 'd5', '1000000005', 'approved',     't', '2026-03-09T03:59:59Z', '2026-03-09T04:00:00Z'), -- NY midnight of the 9th
 ('00000000-0000-0000-0000-000000000006', 'd0', '1000000000', 'approved',     't', '2026-02-15T09:59:59Z', '2026-02-15T10:00:00Z'),
 ('00000000-0000-0000-0000-000000000007', 'd7', '1000000007', 'approved',     't', '2026-03-20T18:29:00Z', '2026-03-20T18:29:59Z'), -- Kolkata 23:59 on the 20th
 ('00000000-0000-0000-0000-000000000008', 'd8', '1000000008', 'denied',       't', '2026-03-20T18:29:59Z', '2026-03-20T18:30:00Z'); -- Kolkata midnight of the 21st
INSERT INTO credential_checks (run_id, "check", outcome, detail, evidence)
SELECT r.id, c.name,
  CASE WHEN r.id::text LIKE '%2' AND c.name = 'leie' THEN 'fail'
       WHEN r.id::text LIKE '%3' AND c.name = 'license' THEN 'needs_review'
       WHEN r.id::text LIKE '%4' AND c.name = 'nppes' THEN 'unavailable' ELSE 'pass' END,
  CASE WHEN r.id::text LIKE '%2' AND c.name = 'leie' THEN 'NPI ' || r.npi || ' is excluded in the OIG LEIE (line 12)'
       WHEN r.id::text LIKE '%3' AND c.name = 'license' THEN 'CA A1: no license A1 found in CA'
       WHEN r.id::text LIKE '%4' AND c.name = 'nppes' THEN 'the NPI Registry did not answer in 30s' ELSE 'fine' END,
  jsonb_build_object('source', CASE WHEN r.id::text LIKE '%4' AND c.name = 'nppes' THEN 'nppes_api' ELSE c.name END)
FROM credential_runs r CROSS JOIN (VALUES ('npi_format'), ('nppes'), ('leie'), ('sam'), ('license')) c (name);
UPDATE providers SET decision = v.d FROM (VALUES ('d1', 'approved'), ('d2', 'denied'), ('d3', 'needs_review'),
  ('d4', 'incomplete'), ('d5', 'approved')) v (id, d) WHERE providers.id = v.id;

-- Turnaround (tp1..tp10 submitted Monday 5 January 2026 00:00 UTC, approved
-- after 1..10 hours; tp1..tp4 in needs_review from 00:30 until approved;
-- tp11 in needs_review since 01:00).
INSERT INTO providers (id, npi, first_name, last_name, created_at, last_verified_at)
SELECT 'tp' || g, (1100000000 + g)::text, 'T', 'Provider' || g, '2026-01-05T00:00:00Z', '2026-03-09T15:00:00Z'
FROM generate_series(1, 11) g;
INSERT INTO credential_runs (id, provider_id, npi, decision, actor, started_at, finished_at)
SELECT gen_random_uuid(), 'tp' || g, '1', 'needs_review', 't', '2026-01-05T00:30:00Z', '2026-01-05T00:30:00Z'
FROM generate_series(1, 4) g;
INSERT INTO credential_runs (id, provider_id, npi, decision, actor, started_at, finished_at)
SELECT gen_random_uuid(), 'tp' || g, '1', 'approved', 't', '2026-01-05T00:00:00Z'::timestamptz + g * interval '1 hour',
       '2026-01-05T00:00:00Z'::timestamptz + g * interval '1 hour'
FROM generate_series(1, 10) g;
INSERT INTO credential_runs (id, provider_id, npi, decision, actor, started_at, finished_at)
VALUES (gen_random_uuid(), 'tp11', '1', 'needs_review', 't', '2026-01-05T01:00:00Z', '2026-01-05T01:00:00Z');

-- Expirables (today is 10 March in UTC and in New York).
INSERT INTO providers (id, npi, first_name, last_name, created_at, last_verified_at, approved_at, board_certifications) VALUES
 ('e1', '1200000001', '@Zoë', 'Expiring', '2025-01-01', '2026-03-09T15:00:00Z', NULL,
  '[{"board":"ABIM","specialty":"Cardiology","expires_on":"2026-03-12"},{"board":"ABP"},{"board":"ABFM","expires_on":"2026-01-01"}]'),
 ('e2', '1200000002', 'E', 'Two',   '2023-01-01', '2025-11-10T14:00:00Z', '2023-03-20T10:00:00Z', '[]'), -- stale (120 days and 1 hour); due 20 Mar
 ('e3', '1200000003', 'E', 'Three', '2023-01-01', '2025-11-11T14:59:00Z', '2023-03-09T10:00:00Z', '[]'), -- stale within 1 day; overdue since 9 Mar
 ('e4', '1200000004', 'E', 'Four',  '2023-01-01', NULL,                   '2023-07-08T10:00:00Z', '[]'), -- never verified; due in 120 days
 ('e5', '1200000005', 'E', 'Five',  '2023-01-01', '2026-03-09T15:00:00Z', '2023-07-07T10:00:00Z', '[]'); -- due in 119 days
INSERT INTO provider_licenses (provider_id, state, number, type, expires_on) VALUES
 ('e1', 'CA', 'L0', 'MD', '2026-03-09'), -- expired yesterday
 ('e1', 'CA', 'L1', 'MD', '2026-03-10'), -- today: 0 days left
 ('e1', 'NY', 'L2', 'MD', '2026-03-16'), -- 6 days: within 7
 ('e1', 'NY', 'L3', 'DO', '2026-03-17'), -- 7 days: within 14, not 7
 ('e1', 'TX', 'L4', 'MD', '2026-06-07'), -- 89 days: within 90
 ('e1', 'TX', 'L5', 'MD', '2026-06-08'), -- 90 days: not within 90
 ('e1', 'WA', 'L6', 'MD', NULL);

-- Batches.
INSERT INTO batches (id, actor, source, total, created_at, started_at, finished_at) VALUES
 ('b1', 'k', 'ids', 4, '2026-03-05T10:00:00Z', '2026-03-05T10:01:00Z', '2026-03-05T10:03:00Z'),
 ('b2', 'k', 'roster', 3, '2026-03-06T09:00:00Z', '2026-03-06T09:00:30Z', NULL),
 ('b3', 'k', 'ids', 1, '2026-01-01T09:00:00Z', '2026-01-01T09:00:00Z', '2026-01-01T09:00:01Z');
INSERT INTO batch_items (batch_id, ord, provider_id, state) VALUES
 ('b1', 0, 'd1', 'approved'), ('b1', 1, 'd2', 'approved'), ('b1', 2, 'd3', 'denied'), ('b1', 3, 'x', 'unknown_provider'),
 ('b2', 0, 'd1', 'queued'), ('b2', 1, 'd2', 'running'), ('b2', 2, 'd3', 'approved'), ('b3', 0, 'd1', 'approved');

-- Exclusion imports and what their re-screens flagged.
INSERT INTO source_imports (id, source, status, version, file_date, row_count, started_at, finished_at, activated_at) VALUES
 (1, 'leie', 'superseded', 1, '2026-02-01', 79000, '2026-02-01T01:00:00Z', '2026-02-01T01:01:00Z', '2026-02-01T01:01:00Z'),
 (2, 'leie', 'active', 2, '2026-03-01', 80000, '2026-03-01T00:59:00Z', '2026-03-01T01:00:00Z', '2026-03-01T01:00:00Z'),
 (3, 'sam', 'failed', NULL, NULL, 0, '2026-03-02T00:00:00Z', '2026-03-02T00:00:05Z', NULL),
 (4, 'nppes', 'active', 1, NULL, 10, '2026-03-02T00:00:00Z', '2026-03-02T00:00:05Z', '2026-03-02T00:00:05Z');
UPDATE providers SET exclusion_flagged_at = '2026-03-01T01:00:00Z' WHERE id IN ('d1', 'd2', 'd3', 'd4');
INSERT INTO audit_log (at, actor, event, provider_id, entity, entity_id, after) VALUES
 ('2026-02-01T01:01:00Z', 'system', 'provider.exclusion_flagged', 'd4', 'provider', 'd4', '{"source":"leie","import_id":1}'),
 ('2026-03-01T01:00:00Z', 'system', 'provider.exclusion_flagged', 'd1', 'provider', 'd1', '{"source":"leie","import_id":2}'),
 ('2026-03-01T01:00:00Z', 'system', 'provider.exclusion_flagged', 'd2', 'provider', 'd2', '{"source":"leie","import_id":2}'),
 ('2026-03-01T01:00:00Z', 'system', 'provider.exclusion_flagged', 'd3', 'provider', 'd3', '{"source":"leie","import_id":2}'),
 ('2026-03-10T14:00:00Z', 'k', 'provider.updated', 'e1', 'provider', 'e1', NULL),
 ('2026-03-09T15:00:01Z', 'k', 'provider.updated', 'e1', 'provider', 'e1', NULL),
 ('2026-03-09T14:59:59Z', 'k', 'provider.updated', 'e1', 'provider', 'e1', NULL);
`

// seeded is a kit with the history loaded.
func seeded(t *testing.T, o kitOptions) *kit {
	t.Helper()
	k := newKit(t, o)
	k.exec(history)
	return k
}
