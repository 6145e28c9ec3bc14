-- The reporting contract (docs/reporting.md): the schema `reporting` holds
-- views only, and they are the one thing the stats service reads. Their
-- names, columns and meanings are a stable interface: a change to the
-- credential tables rewrites a view's body in a later migration, never its
-- columns. Columns may be added; none is renamed or removed without a new
-- view name.
--
-- Aggregates that would scan the whole history on every report (1,000,000
-- runs: 1.7 s for decisions by day; docs/benchmarks.md) are kept up to date
-- here, in the same transaction as the run that changes them, by statement
-- triggers on credential_runs and credential_checks:
--
--   report_counts            runs by decision and checks by outcome, per UTC
--                            day, hour and quarter hour
--   report_first_decisions   each provider's first final decision (turnaround)
--   report_review_episodes   the spans a provider spent in needs_review
--
-- Three widths because every UTC offset in use is a multiple of 15 minutes:
-- a day, week or month in any time zone is an exact union of aligned days,
-- hours and quarters, and a reader sums a few hundred rows per period
-- instead of every run in it (two years by New York day: 17,544 hours).
--
-- Writers never wait for each other on a counter: a transaction adds to a
-- row of its key that no one else holds (FOR UPDATE SKIP LOCKED), or appends
-- a new row; readers sum. A key gets at most as many rows as writers that
-- ever added to it at the same moment.
--
-- report_rebuild() recomputes the three tables from the runs and checks
-- with the same SQL the triggers run; this migration calls it once to
-- backfill existing history.

CREATE SCHEMA IF NOT EXISTS reporting;
COMMENT ON SCHEMA reporting IS
    'Stable reporting interface of the credential service (docs/reporting.md); views only, read by the stats service.';

-- Policy windows (NCQA 2025). A view, so a later migration can read them from
-- configuration without changing the contract.
CREATE VIEW reporting.policy AS
SELECT interval '120 days' AS verification_max_age, interval '36 months' AS recredential_after;

-- The date recredentialing falls due: 36 months after the approval's UTC
-- date, with the day carried over the way Go's time.AddDate does (29 Feb +
-- 36 months is 1 Mar), so it equals the providers API's recredential_due_on.
CREATE FUNCTION report_recredential_due_on(approved_at timestamptz) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (date_trunc('month', approved_at AT TIME ZONE 'UTC') + interval '36 months')::date
           + (extract(day FROM approved_at AT TIME ZONE 'UTC')::int - 1)
$$;

-- The bucket of width (15 minutes, 1 hour, 1 day) that holds at, aligned on UTC.
CREATE FUNCTION report_bucket(width interval, at timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT date_bin(width, at, timestamptz '2000-01-01 00:00:00+00')
$$;

-- A check's detail with identifiers, numbers and dates replaced by '#', so
-- that details differing only in the provider's NPI, a license number or a
-- line cite count as one reason ("NPI # is excluded in the OIG LEIE (line #)").
-- Details never hold a name or a date of birth (checks/exclusion.go).
CREATE FUNCTION report_reason(detail text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT left(regexp_replace(detail, '[A-Za-z]*[0-9][A-Za-z0-9-]*', '#', 'g'), 200)
$$;

-- kind 'run': runs by decision (outcome), "check", source and reason
-- empty; kind 'check': checks by name, source, outcome and reason. The key
-- index serves both the writers' row lookup and the readers' range scans
-- (kind and width by equality, then a range of buckets).
CREATE TABLE report_counts (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind    text NOT NULL CHECK (kind IN ('run', 'check')),
    width   interval NOT NULL,
    bucket  timestamptz NOT NULL,
    "check" text NOT NULL,
    source  text NOT NULL,
    outcome text NOT NULL,
    reason  text NOT NULL,
    n       bigint NOT NULL
);
CREATE INDEX report_counts_key_idx ON report_counts (kind, width, bucket, "check", source, outcome, reason) INCLUDE (n);

CREATE TABLE report_first_decisions (
    provider_id  text PRIMARY KEY,
    submitted_at timestamptz NOT NULL,
    decided_at   timestamptz NOT NULL,
    decision     text NOT NULL,
    run_id       uuid NOT NULL
);
CREATE INDEX report_first_decisions_decided_idx ON report_first_decisions (decided_at);

CREATE TABLE report_review_episodes (
    provider_id     text NOT NULL,
    opened_at       timestamptz NOT NULL,
    opened_run_id   uuid NOT NULL,
    resolved_at     timestamptz,
    resolution      text,
    resolved_run_id uuid
);
CREATE INDEX report_review_episodes_open_idx ON report_review_episodes (provider_id) WHERE resolved_at IS NULL;
CREATE INDEX report_review_episodes_resolved_idx ON report_review_episodes (resolved_at);

-- The summaries are brought up to date by SQL statements over a relation of
-- new rows: the trigger's transition table, or the whole table for a
-- rebuild. The builders below are the one home of that SQL; the callers
-- EXECUTE it themselves, because a transition table is only visible to the
-- trigger function's own statements.

-- report_count_sql adds the rows of additions (a query giving at, kind,
-- check, source, outcome, reason, n) to report_counts, in each width. With locking, each
-- key goes to a row of it no other transaction holds (SKIP LOCKED: never a
-- wait, so never a deadlock) or to a new row; without, every key appends
-- (a rebuild; and outside READ COMMITTED, where locking a row another
-- transaction changed since the snapshot would fail to serialize).
CREATE FUNCTION report_count_sql(additions text, locking boolean) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN NOT locking THEN
        'WITH a (at, kind, "check", source, outcome, reason, n) AS (' || additions || ')
         INSERT INTO report_counts (kind, width, bucket, "check", source, outcome, reason, n)
         SELECT a.kind, w.width, report_bucket(w.width, a.at) AS bucket, a."check", a.source, a.outcome, a.reason, sum(a.n)
         FROM a CROSS JOIN (VALUES (interval ''15 minutes''), (interval ''1 hour''), (interval ''1 day'')) w (width)
         GROUP BY 1, 2, 3, 4, 5, 6, 7'
    ELSE
        'WITH a (at, kind, "check", source, outcome, reason, n) AS (' || additions || '),
         g AS (SELECT a.kind, w.width, report_bucket(w.width, a.at) AS bucket, a."check", a.source, a.outcome, a.reason,
                      sum(a.n) AS n
               FROM a CROSS JOIN (VALUES (interval ''15 minutes''), (interval ''1 hour''), (interval ''1 day'')) w (width)
               GROUP BY 1, 2, 3, 4, 5, 6, 7),
         t AS (SELECT g.*, (SELECT k.id FROM report_counts k
                            WHERE k.kind = g.kind AND k.width = g.width AND k.bucket = g.bucket AND k."check" = g."check"
                              AND k.source = g.source AND k.outcome = g.outcome AND k.reason = g.reason
                            LIMIT 1 FOR UPDATE SKIP LOCKED) AS id
               FROM g),
         added AS (UPDATE report_counts c SET n = c.n + t.n FROM t WHERE c.id = t.id RETURNING 1)
         INSERT INTO report_counts (kind, width, bucket, "check", source, outcome, reason, n)
         SELECT t.kind, t.width, t.bucket, t."check", t.source, t.outcome, t.reason, t.n FROM t WHERE t.id IS NULL'
    END
$$;

-- report_run_sql brings the summaries up to date with the runs in rel:
-- their decision counts, first final decisions, and needs_review episodes.
-- Within one statement runs are taken in finished_at order; across
-- statements, in the order they were stored (the order the provider's
-- decision changed in).
--
-- An episode opens at a needs_review run when the provider has none open,
-- and is resolved by its next approved or denied run; incomplete runs (a
-- source was down) neither open nor resolve one.
CREATE FUNCTION report_run_sql(rel text, locking boolean) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY[
        report_count_sql(format(
            $q$SELECT r.finished_at, 'run', '', '', r.decision, '', 1 FROM %I r$q$, rel),
            locking),

        -- Submission is the provider record's creation; a run before it
        -- (the record was deleted and made again) belongs to an earlier one.
        format($q$
        INSERT INTO report_first_decisions (provider_id, submitted_at, decided_at, decision, run_id)
        SELECT DISTINCT ON (r.provider_id) r.provider_id, p.created_at, r.finished_at, r.decision, r.id
        FROM %I r JOIN providers p ON p.id = r.provider_id
        WHERE r.decision IN ('approved', 'denied') AND r.finished_at >= p.created_at
        ORDER BY r.provider_id, r.finished_at, r.id
        ON CONFLICT (provider_id) DO UPDATE
            SET submitted_at = excluded.submitted_at, decided_at = excluded.decided_at,
                decision = excluded.decision, run_id = excluded.run_id
            WHERE report_first_decisions.decided_at > excluded.decided_at$q$, rel),

        -- Transitions between "in review" and "not in review", per provider,
        -- from the state before these runs (an episode open or not). An
        -- opening pairs with the next transition, its resolution; a first
        -- transition that resolves closes the episode already open. The
        -- UPDATE and the INSERT touch different rows (open ones before this
        -- statement; new ones), so their order within it does not matter.
        format($q$
        WITH s AS (
            SELECT r.provider_id, r.finished_at, r.id, r.decision, r.decision <> 'needs_review' AS resolves
            FROM %I r
            WHERE r.decision IN ('needs_review', 'approved', 'denied')
        ), seq AS (
            SELECT s.*, coalesce(lag(s.resolves) OVER w,
                       NOT EXISTS (SELECT 1 FROM report_review_episodes e
                                   WHERE e.provider_id = s.provider_id AND e.resolved_at IS NULL)) AS was_resolved
            FROM s WINDOW w AS (PARTITION BY s.provider_id ORDER BY s.finished_at, s.id)
        ), t AS (
            SELECT seq.*, row_number() OVER (PARTITION BY seq.provider_id ORDER BY seq.finished_at, seq.id) AS k
            FROM seq WHERE seq.resolves <> seq.was_resolved
        ), closed AS (
            UPDATE report_review_episodes e
            SET resolved_at = t.finished_at, resolution = t.decision, resolved_run_id = t.id
            FROM t
            WHERE t.k = 1 AND t.resolves AND e.provider_id = t.provider_id AND e.resolved_at IS NULL
            RETURNING 1
        )
        INSERT INTO report_review_episodes (provider_id, opened_at, opened_run_id, resolved_at, resolution, resolved_run_id)
        SELECT o.provider_id, o.finished_at, o.id, c.finished_at, c.decision, c.id
        FROM t o LEFT JOIN t c ON c.provider_id = o.provider_id AND c.k = o.k + 1
        WHERE NOT o.resolves$q$, rel)
    ]
$$;

-- report_check_sql adds the checks in rel to the outcome counts, in the
-- bucket of their run's finish (the run is stored first, in the same
-- transaction).
CREATE FUNCTION report_check_sql(rel text, locking boolean) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY[report_count_sql(format($q$
        SELECT r.finished_at, 'check', c."check", coalesce(c.evidence->>'source', c."check"), c.outcome,
               CASE WHEN c.outcome = 'pass' THEN '' ELSE report_reason(c.detail) END, 1
        FROM %I c JOIN credential_runs r ON r.id = c.run_id$q$, rel), locking)]
$$;

CREATE FUNCTION report_runs_inserted() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    q text;
BEGIN
    FOREACH q IN ARRAY report_run_sql('new_runs', current_setting('transaction_isolation') = 'read committed') LOOP
        EXECUTE q;
    END LOOP;
    RETURN NULL;
END $$;
CREATE TRIGGER report_runs_inserted AFTER INSERT ON credential_runs
    REFERENCING NEW TABLE AS new_runs FOR EACH STATEMENT EXECUTE FUNCTION report_runs_inserted();

CREATE FUNCTION report_checks_inserted() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    q text;
BEGIN
    FOREACH q IN ARRAY report_check_sql('new_checks', current_setting('transaction_isolation') = 'read committed') LOOP
        EXECUTE q;
    END LOOP;
    RETURN NULL;
END $$;
CREATE TRIGGER report_checks_inserted AFTER INSERT ON credential_checks
    REFERENCING NEW TABLE AS new_checks FOR EACH STATEMENT EXECUTE FUNCTION report_checks_inserted();

-- report_rebuild recomputes the summaries from all runs and checks
-- (backfill; or after runs were deleted by hand, which the triggers do not
-- follow), blocking new runs meanwhile.
CREATE FUNCTION report_rebuild() RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    q text;
BEGIN
    LOCK TABLE credential_runs, credential_checks IN SHARE MODE;
    TRUNCATE report_counts, report_first_decisions, report_review_episodes;
    FOREACH q IN ARRAY report_run_sql('credential_runs', false) || report_check_sql('credential_checks', false) LOOP
        EXECUTE q;
    END LOOP;
    ANALYZE report_counts, report_first_decisions, report_review_episodes;
END $$;

SELECT report_rebuild();

-- Board certifications out of the providers' JSON, kept by row triggers
-- that fire only when a record's certifications change (expanding the JSON
-- of every provider on each report cost 280 ms at 100,000 providers).
CREATE TABLE report_board_certifications (
    provider_id text NOT NULL REFERENCES providers (id) ON DELETE CASCADE,
    ordinal    int NOT NULL,
    board       text NOT NULL,
    specialty   text NOT NULL,
    expires_on  date,
    PRIMARY KEY (provider_id, ordinal)
);
CREATE INDEX report_board_certifications_expiry_idx ON report_board_certifications (expires_on);

-- A date the API let through is YYYY-MM-DD; anything else is no date
-- rather than a failed provider write.
CREATE FUNCTION report_date(s text) RETURNS date
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN CASE WHEN s ~ '^\d{4}-\d{2}-\d{2}$' THEN s::date END;
EXCEPTION WHEN others THEN
    RETURN NULL;
END $$;

CREATE FUNCTION report_certifications_of(certs jsonb)
RETURNS TABLE (ordinal int, board text, specialty text, expires_on date)
LANGUAGE sql IMMUTABLE AS $$
    SELECT c.ordinal::int, coalesce(c.value->>'board', ''), coalesce(c.value->>'specialty', ''),
           report_date(c.value->>'expires_on')
    FROM jsonb_array_elements(CASE WHEN jsonb_typeof(certs) = 'array' THEN certs ELSE '[]' END)
         WITH ORDINALITY AS c (value, ordinal)
$$;

CREATE FUNCTION report_board_certifications_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        DELETE FROM report_board_certifications WHERE provider_id = OLD.id;
    END IF;
    INSERT INTO report_board_certifications (provider_id, ordinal, board, specialty, expires_on)
    SELECT NEW.id, c.* FROM report_certifications_of(NEW.board_certifications) c;
    RETURN NULL;
END $$;
CREATE TRIGGER report_board_certifications_inserted AFTER INSERT ON providers
    FOR EACH ROW WHEN (NEW.board_certifications <> '[]') EXECUTE FUNCTION report_board_certifications_changed();
CREATE TRIGGER report_board_certifications_updated AFTER UPDATE OF board_certifications ON providers
    FOR EACH ROW WHEN (OLD.board_certifications IS DISTINCT FROM NEW.board_certifications)
    EXECUTE FUNCTION report_board_certifications_changed();
INSERT INTO report_board_certifications (provider_id, ordinal, board, specialty, expires_on)
SELECT p.id, c.* FROM providers p CROSS JOIN LATERAL report_certifications_of(p.board_certifications) c
WHERE p.board_certifications <> '[]';

-- Indexes the reports read through.
CREATE INDEX providers_last_verified_idx ON providers (last_verified_at);
CREATE INDEX providers_exclusion_flagged_idx ON providers (exclusion_flagged_at) WHERE exclusion_flagged_at IS NOT NULL;
CREATE INDEX providers_recredential_due_idx ON providers (report_recredential_due_on(approved_at));

-- ---------------------------------------------------------------------------
-- The views. Times are timestamptz; dates are calendar dates as the sources
-- give them (license and certification expiries carry no zone).

CREATE VIEW reporting.providers AS
SELECT p.id AS provider_id, p.npi, p.first_name, p.last_name, p.specialty, p.decision,
       p.created_at AS submitted_at, p.last_verified_at, p.approved_at, p.exclusion_flagged_at,
       report_recredential_due_on(p.approved_at) AS recredential_due_on
FROM providers p;

CREATE VIEW reporting.licenses AS
SELECT l.provider_id, l.state, l.number, l.type, l.expires_on
FROM provider_licenses l;

CREATE VIEW reporting.board_certifications AS
SELECT c.provider_id, c.ordinal, c.board, c.specialty, c.expires_on
FROM report_board_certifications c;

CREATE VIEW reporting.runs AS
SELECT r.id AS run_id, r.provider_id, r.batch_id, r.decision, r.started_at, r.finished_at
FROM credential_runs r;

-- Counts are additive rows: a key (bucket_width, bucket_start, ...) may have
-- several rows, and its count is their sum.
CREATE VIEW reporting.decision_counts AS
SELECT c.width AS bucket_width, c.bucket AS bucket_start, c.outcome AS decision, c.n AS runs
FROM report_counts c WHERE c.kind = 'run';

CREATE VIEW reporting.check_counts AS
SELECT c.width AS bucket_width, c.bucket AS bucket_start, c."check", c.source, c.outcome, c.reason, c.n AS checks
FROM report_counts c WHERE c.kind = 'check';

CREATE VIEW reporting.first_decisions AS
SELECT f.provider_id, f.submitted_at, f.decided_at, f.decision, f.run_id
FROM report_first_decisions f;

CREATE VIEW reporting.review_episodes AS
SELECT e.provider_id, e.opened_at, e.resolved_at, e.resolution, e.opened_run_id, e.resolved_run_id
FROM report_review_episodes e;

CREATE VIEW reporting.batches AS
SELECT b.id AS batch_id, b.source, b.total, b.duplicates, b.created_at, b.started_at, b.finished_at, b.canceled_at
FROM batches b;

CREATE VIEW reporting.batch_outcomes AS
SELECT i.batch_id, i.state, count(*)::bigint AS items, min(i.started_at) AS first_started_at, max(i.finished_at) AS last_finished_at
FROM batch_items i
GROUP BY i.batch_id, i.state;

CREATE VIEW reporting.exclusion_imports AS
SELECT s.id AS import_id, s.source, s.status, s.version, s.file_date, s.row_count, s.started_at, s.finished_at, s.activated_at
FROM source_imports s
WHERE s.source IN ('leie', 'sam');

CREATE VIEW reporting.exclusion_matches AS
SELECT (a.after->>'import_id')::bigint AS import_id, a.after->>'source' AS source, a.provider_id, a.at AS flagged_at
FROM audit_log a
WHERE a.event = 'provider.exclusion_flagged';

CREATE VIEW reporting.audit_events AS
SELECT a.id, a.at, a.event
FROM audit_log a;

COMMENT ON VIEW reporting.policy IS 'The time limits the credential service applies: verification_max_age (stale after), recredential_after (due after approval).';
COMMENT ON VIEW reporting.providers IS 'One row per provider record. submitted_at is the record''s creation; recredential_due_on is 36 months after the approval''s UTC date.';
COMMENT ON VIEW reporting.licenses IS 'State licenses as the provider record claims them.';
COMMENT ON VIEW reporting.board_certifications IS 'Board certifications as the provider record claims them (ordinal: 1-based place in the record); expires_on NULL when not given.';
COMMENT ON VIEW reporting.runs IS 'Every credentialing run (one decision each), never updated.';
COMMENT ON VIEW reporting.decision_counts IS 'Runs by decision whose finished_at is in [bucket_start, bucket_start + bucket_width), for widths 15 minutes, 1 hour and 1 day aligned on UTC. Rows are additive: sum runs per key.';
COMMENT ON VIEW reporting.check_counts IS 'Checks by check, source, outcome and reason (the detail with identifiers as #; empty for pass) whose run finished in the bucket, widths as decision_counts. Rows are additive.';
COMMENT ON VIEW reporting.first_decisions IS 'Per provider, the first approved or denied run at or after submission.';
COMMENT ON VIEW reporting.review_episodes IS 'Spans a provider spent in needs_review: opened by a needs_review run, resolved (approved or denied) by a later run; resolved_at NULL while open.';
COMMENT ON VIEW reporting.batches IS 'Durable batches as submitted; total counts distinct providers.';
COMMENT ON VIEW reporting.batch_outcomes IS 'Items per batch per state, with the first item start and last item finish.';
COMMENT ON VIEW reporting.exclusion_imports IS 'Every LEIE and SAM import attempt; activated ones re-screened every provider.';
COMMENT ON VIEW reporting.exclusion_matches IS 'Providers newly flagged excluded by the re-screen after an import.';
COMMENT ON VIEW reporting.audit_events IS 'The audit log''s times and event names (who and what stay in the credential service).';
