package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// seed generates the history in SQL, into the credential service's own
// tables (schema credential), then builds the reporting summaries with
// report_rebuild(), the backfill its migration runs. Every choice is a
// hash of the row number, so two runs with the same sizes seed the same
// history relative to now.
//
// Shape (P providers, R runs, K = ceil(R / active providers) runs each):
//   - 2% of providers were submitted in the last two days and never
//     verified; the others were submitted over the four years before the
//     last 30 days, in order.
//   - A provider's first run comes 1 minute to 66 hours after submission;
//     the others spread to now, except every 7th provider, verified only in
//     its first 400 days (its verification goes stale and its
//     recredentialing falls due).
//   - Decisions: first runs 50% approved, 10% denied, 25% needs_review,
//     15% incomplete; later runs 78/4/10/8. Five checks per run, all pass
//     on approval; a denial fails one (LEIE, NPPES or license), a review
//     flags one, an incomplete run has one source unavailable, each with
//     the details the checks write (identifiers, lines, states).
//   - One license per provider and a second for a third of them, expiring
//     from 300 days ago to 3 years ahead; board certifications for half,
//     a second for a tenth.
//   - One batch per 500 runs over the last two years (50 to 249 items
//     each; the last two still running, every 50th canceled).
//   - LEIE and SAM imported monthly for two years (every 6th SAM import
//     failed); 1% of providers flagged by one of them.
//   - One audit entry per run, and one per exclusion flag.
func seed(ctx context.Context, dbURL string, o options, now time.Time) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	pn := max(o.providers/50, 1)
	pa := o.providers - pn
	k := (o.runs + pa - 1) / pa
	nb := max(o.runs/500, 10)
	vars := strings.NewReplacer(
		":Pn", fmt.Sprint(pn), ":Pa", fmt.Sprint(pa), ":P", fmt.Sprint(o.providers), ":R", fmt.Sprint(o.runs),
		":K", fmt.Sprint(k), ":NB", fmt.Sprint(nb), ":now", "'"+now.Format(time.RFC3339)+"'::timestamptz")
	steps := []struct{ name, sql string }{
		{"settings", `SET search_path = credential; SET work_mem = '256MB'; SET maintenance_work_mem = '512MB';
			SET synchronous_commit = off`},
		// The certifications row trigger runs here, as for a real write.
		{"providers", `
INSERT INTO providers (id, npi, first_name, last_name, specialty, board_certifications, created_at, updated_at)
SELECT 'p' || g, '1' || lpad(g::text, 9, '0'),
       (ARRAY['James','Mary','Robert','Patricia','John','Jennifer','Michael','Linda'])[1 + g % 8],
       (ARRAY['Smith','Johnson','Williams','Brown','Jones','Garcia','Miller','Davis','Wilson','Lee'])[1 + (g / 8) % 10] || g,
       (ARRAY['Internal Medicine','Family Medicine','Cardiology','Pediatrics','Psychiatry'])[1 + g % 5],
       CASE WHEN g % 2 = 0 THEN '[]'::jsonb ELSE
         jsonb_build_array(jsonb_build_object('board', 'ABIM', 'specialty', 'Internal Medicine',
           'expires_on', to_char(:now::date - 365 + (hashint4(g) & 2147483647) % 1460, 'YYYY-MM-DD')))
         || CASE WHEN g % 10 = 1 THEN jsonb_build_array(jsonb_build_object('board', 'ABFM', 'specialty', 'Family Medicine',
           'expires_on', to_char(:now::date - 100 + (hashint4(-g) & 2147483647) % 900, 'YYYY-MM-DD'))) ELSE '[]'::jsonb END
       END,
       c.created, c.created
FROM generate_series(0, :P - 1) g
CROSS JOIN LATERAL (SELECT CASE WHEN g < :Pn THEN :now - (g::float8 / :Pn) * interval '2 days'
    ELSE :now - interval '1460 days' + ((g - :Pn)::float8 / :Pa) * interval '1430 days' END AS created) c`},
		{"licenses", `
INSERT INTO provider_licenses (provider_id, state, number, type, expires_on)
SELECT 'p' || g, (ARRAY['IL','CA','NY','TX','FL','WA','PA','OH'])[1 + (g + k) % 8], 'L' || lpad((2 * g + k)::text, 8, '0'),
       CASE WHEN k = 0 THEN 'MD' ELSE 'DO' END, :now::date - 300 + (hashint4(2 * g + k) & 2147483647) % 1400
FROM generate_series(0, :P - 1) g CROSS JOIN generate_series(0, 1) k
WHERE k = 0 OR g % 3 = 0`},
		// Runs and checks without their triggers (and foreign key checks):
		// report_rebuild() below builds the summaries from them.
		{"runs", `
SET session_replication_role = replica;
INSERT INTO credential_runs (id, provider_id, npi, decision, actor, latest, started_at, finished_at)
SELECT md5('run' || i)::uuid, 'p' || a.p, '1' || lpad(a.p::text, 9, '0'),
       CASE WHEN a.k = 0 THEN CASE WHEN a.d < 50 THEN 'approved' WHEN a.d < 60 THEN 'denied' WHEN a.d < 85 THEN 'needs_review' ELSE 'incomplete' END
            ELSE CASE WHEN a.d < 78 THEN 'approved' WHEN a.d < 82 THEN 'denied' WHEN a.d < 92 THEN 'needs_review' ELSE 'incomplete' END END,
       'bench', i >= :R - :Pa, f.fin - (1 + a.h % 5) * interval '1 second', f.fin
FROM generate_series(0, :R - 1) i
CROSS JOIN LATERAL (SELECT :Pn + i % :Pa AS p, i / :Pa AS k, (hashint8(i) & 2147483647) AS h, (hashint8(i) & 2147483647) / 1000 % 100 AS d) a
CROSS JOIN LATERAL (SELECT :now - interval '1460 days' + ((a.p - :Pn)::float8 / :Pa) * interval '1430 days' AS created) c
CROSS JOIN LATERAL (SELECT CASE WHEN a.k = 0 THEN c.created + (1 + a.h % 4000) * interval '1 minute'
    ELSE c.created + (CASE WHEN a.p % 7 = 0 THEN least(interval '400 days', :now - c.created) ELSE :now - c.created END)
         * ((a.k + (a.h % 1000) / 1000.0) / (:K + 1))::float8 END AS fin) f`},
		{"checks", `
INSERT INTO credential_checks (run_id, "check", outcome, detail, evidence, duration_ms)
SELECT r.id, c.name, o.outcome,
       CASE WHEN o.outcome = 'pass' THEN c.pass ELSE CASE c.name || '/' || o.outcome
         WHEN 'nppes/fail' THEN CASE WHEN b.h % 3 = 0 THEN 'the NPPES name for this NPI does not match the provider''s name'
                                     ELSE 'NPI ' || r.npi || ' is not in the NPPES registry' END
         WHEN 'nppes/needs_review' THEN 'the NPPES name matches only partially (initial or shortened first name)'
         WHEN 'nppes/unavailable' THEN 'the NPI Registry did not answer in 30s'
         WHEN 'leie/fail' THEN 'NPI ' || r.npi || ' is excluded in the OIG LEIE (line ' || (b.h % 80000) || ')'
         WHEN 'leie/needs_review' THEN 'OIG LEIE: line ' || (b.h % 80000) || ' matches last name, first name and date of birth but not the NPI: possible match, review'
         WHEN 'license/fail' THEN b.st || ' L' || (b.h % 100000) || ': license expired on 2025-0' || (1 + b.h % 9) || '-01'
         WHEN 'license/needs_review' THEN CASE WHEN b.h % 5 = 0 THEN 'the provider claims no state license'
                                               ELSE b.st || ' L' || (b.h % 100000) || ': no license L' || (b.h % 100000) || ' found in ' || b.st END
         WHEN 'license/unavailable' THEN 'the ' || b.st || ' license board did not answer in 10s'
       END END,
       jsonb_build_object('source', CASE c.name WHEN 'nppes' THEN CASE WHEN b.h % 5 = 0 THEN 'nppes_api' ELSE 'nppes' END
                                                WHEN 'license' THEN CASE WHEN b.h % 4 = 0 THEN 'license_api:' || b.st ELSE 'licenses' END
                                                ELSE c.name END),
       (b.h % 500) / 10.0
FROM credential_runs r
CROSS JOIN (VALUES ('npi_format', 'the NPI is well formed'), ('nppes', 'NPI is active, individual, and the NPPES name matches'),
                   ('leie', 'no match in the OIG LEIE by NPI or by name'), ('sam', 'no match in the SAM exclusions by NPI or by name'),
                   ('license', 'every claimed license is active')) c (name, pass)
CROSS JOIN LATERAL (SELECT (hashtext(r.id::text) & 2147483647) AS h) hh
CROSS JOIN LATERAL (SELECT hh.h, (ARRAY['IL','CA','NY','TX','FL','WA','PA','OH'])[1 + hh.h % 8] AS st,
    CASE r.decision
      WHEN 'denied' THEN CASE WHEN hh.h % 10 < 5 THEN 'leie' WHEN hh.h % 10 < 8 THEN 'nppes' ELSE 'license' END
      WHEN 'needs_review' THEN CASE WHEN hh.h % 20 < 12 THEN 'license' WHEN hh.h % 20 < 17 THEN 'nppes' ELSE 'leie' END
      WHEN 'incomplete' THEN CASE WHEN hh.h % 2 = 0 THEN 'nppes' ELSE 'license' END
    END AS bad) b
CROSS JOIN LATERAL (SELECT CASE WHEN b.bad IS DISTINCT FROM c.name THEN 'pass'
    WHEN r.decision = 'denied' THEN 'fail' WHEN r.decision = 'needs_review' THEN 'needs_review' ELSE 'unavailable' END AS outcome) o`},
		{"provider state", `
SET session_replication_role = origin;
UPDATE providers p SET decision = l.decision, last_verified_at = l.finished_at, approved_at = a.at
FROM credential_runs l
LEFT JOIN (SELECT provider_id, max(finished_at) AS at FROM credential_runs WHERE decision = 'approved' GROUP BY 1) a
       ON a.provider_id = l.provider_id
WHERE l.latest AND p.id = l.provider_id`},
		{"batches", `
INSERT INTO batches (id, actor, source, total, duplicates, created_at, started_at, finished_at, canceled_at, canceled_by)
SELECT md5('batch' || b)::uuid::text, 'bench', CASE WHEN b % 3 = 0 THEN 'roster' ELSE 'ids' END, s.size, b % 4,
       t.created, t.created + (5 + h % 55) * interval '1 second',
       CASE WHEN b >= :NB - 2 THEN NULL ELSE t.created + (5 + h % 55) * interval '1 second' + (s.size * (0.2 + (h % 30) / 100.0))::float8 * interval '1 second' END,
       CASE WHEN b % 50 = 49 AND b < :NB - 2 THEN t.created + interval '20 seconds' END,
       CASE WHEN b % 50 = 49 AND b < :NB - 2 THEN 'bench' END
FROM generate_series(0, :NB - 1) b
CROSS JOIN LATERAL (SELECT (hashint4(b) & 2147483647) AS h) hh (h)
CROSS JOIN LATERAL (SELECT 50 + h % 200 AS size) s
CROSS JOIN LATERAL (SELECT :now - interval '730 days' + (b::float8 / :NB) * interval '729 days' + (h % 3600) * interval '1 second' AS created) t;
INSERT INTO batch_items (batch_id, ord, provider_id, state, attempts, started_at, finished_at)
SELECT x.id, j, 'p' || (:Pn + (x0.b * 157 + j) % :Pa), st.state, 1,
       CASE WHEN st.state NOT IN ('queued', 'unknown_provider', 'canceled') THEN x.started_at + j * interval '200 milliseconds' END,
       CASE WHEN st.state NOT IN ('queued', 'running', 'unknown_provider', 'canceled') THEN x.started_at + j * interval '200 milliseconds' + interval '150 milliseconds' END
FROM (SELECT b, md5('batch' || b)::uuid::text AS id FROM generate_series(0, :NB - 1) b) x0
JOIN batches x ON x.id = x0.id
CROSS JOIN LATERAL (SELECT x0.b) bb (b)
CROSS JOIN LATERAL generate_series(0, x.total - 1) j
CROSS JOIN LATERAL (SELECT (hashint4(x0.b * 1000 + j) & 2147483647) % 100 AS d) dd
CROSS JOIN LATERAL (SELECT CASE
    WHEN x.finished_at IS NULL AND j > x.total / 2 THEN CASE WHEN j < x.total / 2 + 10 THEN 'running' ELSE 'queued' END
    WHEN x.canceled_at IS NOT NULL AND j > 20 THEN 'canceled'
    WHEN dd.d < 78 THEN 'approved' WHEN dd.d < 81 THEN 'denied' WHEN dd.d < 91 THEN 'needs_review'
    WHEN dd.d < 96 THEN 'incomplete' WHEN dd.d < 98 THEN 'unknown_provider' ELSE 'failed' END AS state) st`},
		{"imports", `
INSERT INTO source_imports (id, source, status, file_name, file_date, row_count, version, started_at, finished_at, activated_at)
SELECT 1 + m * 2 + s.k, s.source,
       CASE WHEN s.source = 'sam' AND m % 6 = 5 THEN 'failed' WHEN m = 23 THEN 'active' ELSE 'superseded' END,
       s.source || '.csv', (:now - (23 - m) * interval '30 days')::date, CASE WHEN s.source = 'sam' AND m % 6 = 5 THEN 0 ELSE 80000 + m * 100 END,
       CASE WHEN s.source = 'sam' AND m % 6 = 5 THEN NULL ELSE 1 + m - CASE WHEN s.source = 'sam' THEN m / 6 ELSE 0 END END,
       :now - (23 - m) * interval '30 days', :now - (23 - m) * interval '30 days' + interval '90 seconds',
       CASE WHEN s.source = 'sam' AND m % 6 = 5 THEN NULL ELSE :now - (23 - m) * interval '30 days' + interval '90 seconds' END
FROM generate_series(0, 23) m CROSS JOIN (VALUES (0, 'leie'), (1, 'sam')) s (k, source);
SELECT setval(pg_get_serial_sequence('source_imports', 'id'), 100);
WITH f AS (
    SELECT p.id, i.id AS import_id, i.source, i.activated_at
    FROM providers p
    JOIN source_imports i ON i.id = 1 + ((hashtext(p.id) & 2147483647) % 24) * 2 + ((hashtext(p.id) & 2147483647) / 24) % 2
    WHERE p.last_verified_at IS NOT NULL AND (hashtext(p.id || 'x') & 2147483647) % 100 = 0 AND i.activated_at IS NOT NULL
), u AS (UPDATE providers p SET exclusion_flagged_at = f.activated_at FROM f WHERE p.id = f.id RETURNING 1)
INSERT INTO audit_log (at, actor, event, provider_id, entity, entity_id, after)
SELECT f.activated_at, 'system', 'provider.exclusion_flagged', f.id, 'provider', f.id,
       jsonb_build_object('exclusion_flagged_at', f.activated_at, 'source', f.source, 'import_id', f.import_id)
FROM f`},
		{"audit log", `
INSERT INTO audit_log (at, actor, event, provider_id, entity, entity_id, request_id)
SELECT r.finished_at, 'bench', 'credential.completed', r.provider_id, 'credential_run', r.id::text, ''
FROM credential_runs r ORDER BY r.finished_at`},
		{"report_rebuild()", `SELECT report_rebuild()`},
		{"vacuum analyze", `VACUUM ANALYZE`},
		{"stamp", fmt.Sprintf(`CREATE TABLE public.bench_seed (version int, seeded_now timestamptz, providers int, runs int);
INSERT INTO public.bench_seed VALUES (%d, :now, :P, :R)`, seedVersion)},
	}
	for _, s := range steps {
		t0 := time.Now()
		if _, err := conn.Exec(ctx, vars.Replace(s.sql)); err != nil {
			return fmt.Errorf("seed %s: %w", s.name, err)
		}
		fmt.Printf("  %-18s %s\n", s.name, time.Since(t0).Round(time.Millisecond))
	}
	return nil
}
