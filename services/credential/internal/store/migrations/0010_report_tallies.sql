-- Report tallies and indexes, measured with services/stats/bench/stats
-- (100,000 providers, 1,000,000 runs; docs/benchmarks.md "Stats").
--
-- /stats/summary counted the providers by decision (an index scan of every
-- provider), the stale verifications (every provider verified before the
-- cutoff) and every license (a scan of every license) on each uncached
-- request: 178 ms at that size. report_tallies keeps those counts, per
-- decision, per UTC day of the last verification and per license expiry
-- date, up to date in the same transaction as the write, so the summary sums
-- a few thousand rows instead (the stale count adds the exact count of the
-- one day the cutoff falls in, through providers_last_verified_idx).
--
-- Writers never wait for each other on a tally: as report_counts (0005), a
-- statement adds to a row of its key no other transaction holds (FOR UPDATE
-- SKIP LOCKED) or appends one; readers sum.

CREATE TABLE report_tallies (
    id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- 'decision': providers by decision (key; '' never decided).
    -- 'verified': providers by the UTC date of their last verification.
    -- 'license':  licenses by expiry date.
    -- day is '-infinity' when there is none (never verified, no expiry, or a decision).
    kind text NOT NULL CHECK (kind IN ('decision', 'verified', 'license')),
    day  date NOT NULL,
    key  text NOT NULL,
    n    bigint NOT NULL
);
CREATE INDEX report_tallies_key_idx ON report_tallies (kind, day, key) INCLUDE (n);

-- report_tally_rows: the tally deltas of the rows of rel (a transition
-- table, or the table itself for a rebuild), each counting sign.
CREATE FUNCTION report_tally_rows(tbl text, rel text, sign int) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE tbl
        WHEN 'providers' THEN format($q$
            SELECT 'decision', '-infinity'::date, coalesce(r.decision, ''), %1$s FROM %2$I r
            UNION ALL
            SELECT 'verified', coalesce((r.last_verified_at AT TIME ZONE 'UTC')::date, '-infinity'::date), '', %1$s FROM %2$I r$q$,
            sign, rel)
        WHEN 'provider_licenses' THEN format($q$
            SELECT 'license', coalesce(r.expires_on, '-infinity'::date), '', %1$s FROM %2$I r$q$, sign, rel)
    END
$$;

-- report_tally_sql adds deltas (a query giving kind, day, key, n) to
-- report_tallies; keys whose deltas cancel (an update that changed neither
-- decision, verification day nor expiry) write nothing. Locking as
-- report_count_sql: only in READ COMMITTED, else append.
CREATE FUNCTION report_tally_sql(deltas text, locking boolean) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN NOT locking THEN
        'WITH d (kind, day, key, n) AS (' || deltas || ')
         INSERT INTO report_tallies (kind, day, key, n)
         SELECT d.kind, d.day, d.key, sum(d.n) FROM d GROUP BY 1, 2, 3 HAVING sum(d.n) <> 0'
    ELSE
        'WITH d (kind, day, key, n) AS (' || deltas || '),
         g AS (SELECT d.kind, d.day, d.key, sum(d.n) AS n FROM d GROUP BY 1, 2, 3 HAVING sum(d.n) <> 0),
         t AS (SELECT g.*, (SELECT k.id FROM report_tallies k
                            WHERE k.kind = g.kind AND k.day = g.day AND k.key = g.key
                            LIMIT 1 FOR UPDATE SKIP LOCKED) AS id
               FROM g),
         added AS (UPDATE report_tallies c SET n = c.n + t.n FROM t WHERE c.id = t.id RETURNING 1)
         INSERT INTO report_tallies (kind, day, key, n) SELECT t.kind, t.day, t.key, t.n FROM t WHERE t.id IS NULL'
    END
$$;

CREATE FUNCTION report_tallies_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    q text;
BEGIN
    q := CASE TG_OP
        WHEN 'INSERT' THEN report_tally_rows(TG_TABLE_NAME, 'new_rows', 1)
        WHEN 'DELETE' THEN report_tally_rows(TG_TABLE_NAME, 'old_rows', -1)
        ELSE report_tally_rows(TG_TABLE_NAME, 'new_rows', 1) || ' UNION ALL ' || report_tally_rows(TG_TABLE_NAME, 'old_rows', -1)
    END;
    EXECUTE report_tally_sql(q, current_setting('transaction_isolation') = 'read committed');
    RETURN NULL;
END $$;

-- One trigger per event: a trigger with transition tables serves one.
CREATE TRIGGER report_tallies_inserted AFTER INSERT ON providers
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION report_tallies_changed();
CREATE TRIGGER report_tallies_updated AFTER UPDATE ON providers
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION report_tallies_changed();
CREATE TRIGGER report_tallies_deleted AFTER DELETE ON providers
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION report_tallies_changed();
CREATE TRIGGER report_tallies_inserted AFTER INSERT ON provider_licenses
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION report_tallies_changed();
CREATE TRIGGER report_tallies_updated AFTER UPDATE ON provider_licenses
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION report_tallies_changed();
CREATE TRIGGER report_tallies_deleted AFTER DELETE ON provider_licenses
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION report_tallies_changed();

-- The tallies that exist now, then report_rebuild() covers them too.
DO $$
BEGIN
    LOCK TABLE providers, provider_licenses IN SHARE MODE;
    EXECUTE report_tally_sql(report_tally_rows('providers', 'providers', 1) || ' UNION ALL '
        || report_tally_rows('provider_licenses', 'provider_licenses', 1), false);
END $$;

CREATE OR REPLACE FUNCTION report_rebuild() RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    q text;
BEGIN
    LOCK TABLE credential_runs, credential_checks, providers, provider_licenses IN SHARE MODE;
    TRUNCATE report_counts, report_first_decisions, report_review_episodes, report_tallies;
    FOREACH q IN ARRAY report_run_sql('credential_runs', false) || report_check_sql('credential_checks', false) LOOP
        EXECUTE q;
    END LOOP;
    EXECUTE report_tally_sql(report_tally_rows('providers', 'providers', 1) || ' UNION ALL '
        || report_tally_rows('provider_licenses', 'provider_licenses', 1), false);
    ANALYZE report_counts, report_first_decisions, report_review_episodes, report_tallies;
END $$;

CREATE VIEW reporting.decision_tallies AS
SELECT nullif(t.key, '') AS decision, t.n AS providers
FROM report_tallies t WHERE t.kind = 'decision';

CREATE VIEW reporting.verification_tallies AS
SELECT CASE WHEN t.day <> '-infinity' THEN t.day END AS verified_on, t.n AS providers
FROM report_tallies t WHERE t.kind = 'verified';

CREATE VIEW reporting.license_tallies AS
SELECT CASE WHEN t.day <> '-infinity' THEN t.day END AS expires_on, t.n AS licenses
FROM report_tallies t WHERE t.kind = 'license';

COMMENT ON VIEW reporting.decision_tallies IS 'Providers by current decision (NULL: never decided). Rows are additive: sum providers per decision.';
COMMENT ON VIEW reporting.verification_tallies IS 'Providers by the UTC date of their last verification (NULL: never verified). Rows are additive.';
COMMENT ON VIEW reporting.license_tallies IS 'Licenses by expiry date (NULL: none given). Rows are additive.';

-- /stats/expiring?kind=verification lists never-verified providers first,
-- then the oldest verification: read in that order, the first page is 51
-- index entries instead of a sort of every stale provider (309 ms -> 0.4 ms
-- at 100,000 providers, EXPLAIN ANALYZE).
CREATE INDEX providers_verification_order_idx ON providers ((coalesce(last_verified_at, '-infinity'::timestamptz)), id);

-- Recredentialing counts read only the index: an expression index answers
-- without the heap only when it also holds the column (31 ms -> 0.5 ms).
CREATE INDEX providers_recredential_due_cover_idx ON providers (report_recredential_due_on(approved_at)) INCLUDE (approved_at);
DROP INDEX providers_recredential_due_idx;

-- /stats/turnaround takes percentiles over the first decisions and the
-- review episodes of the range: read from the index alone, in range, rather
-- than a scan of every row (the scan: 150-200 ms of 460-725 ms for two
-- years by week at the benchmark's load; index-only: 45-110 ms of 270-370).
CREATE INDEX report_first_decisions_decided_cover_idx ON report_first_decisions (decided_at) INCLUDE (submitted_at);
DROP INDEX report_first_decisions_decided_idx;
CREATE INDEX report_review_episodes_resolved_cover_idx ON report_review_episodes (resolved_at) INCLUDE (opened_at);
DROP INDEX report_review_episodes_resolved_idx;

-- Statistics for the new expression index (without them the planner took
-- the recredentialing counts for 20,000 rows, not 1,400, and ran them in
-- parallel: 208 ms instead of under 1) and the new table.
ANALYZE providers, report_first_decisions, report_review_episodes, report_tallies;
