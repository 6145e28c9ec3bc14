-- Decisions a credentialing specialist would sign (issue #10, docs/verification.md):
-- license numbers compared by a folded key, the statuses a license import did
-- not know, the review queue of possible matches, and the re-screen job's
-- progress on the import record.

-- A license number as it is compared: upper case, letters and digits only,
-- on both sides (the claim and the board's file), so "A 890104", "a890104"
-- and "A-890104" are one license. licenses.NumberKey is the same function in
-- Go (the importer fills the column; the lookup folds the claim).
CREATE FUNCTION license_number_key(n text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT upper(regexp_replace(n, '[^[:alnum:]]', '', 'g'))
$$;

ALTER TABLE license_rows ADD COLUMN number_key text COLLATE "C";
UPDATE license_rows SET number_key = license_number_key(license_number);
ALTER TABLE license_rows ALTER COLUMN number_key SET NOT NULL;
CREATE INDEX license_rows_number_key_idx ON license_rows (state, number_key);
CREATE INDEX license_rows_key_idx ON license_rows (number_key);

-- Every column of 0006's view, then the key.
CREATE OR REPLACE VIEW active_licenses AS
SELECT l.state, l.license_number, l.license_type, l.status, l.issue_date, l.expiry_date,
       l.last_name, l.first_name, l.middle_name, l.last_norm, l.first_norm, l.npi,
       l.import_id, l.line, l.record::jsonb AS record, l.digest, coalesce(l.file_import_id, l.import_id) AS file_import_id,
       l.number_key
FROM license_rows l
WHERE l.import_id IN (SELECT id FROM source_imports WHERE status = 'active' AND source = 'licenses');

ALTER TABLE source_imports
    -- A license roster's status words the status table does not know:
    -- [{"status": "pending board action", "rows": 3, "first_line": 17}].
    ADD COLUMN unknown_statuses jsonb,
    -- The re-screen after an LEIE or SAM activation: a River job inserted
    -- in the activating transaction (monitor.RescreenArgs).
    ADD COLUMN rescreen_status text CHECK (rescreen_status IN ('queued', 'running', 'done', 'failed')),
    ADD COLUMN rescreen_job_id bigint,
    ADD COLUMN rescreen_total bigint,
    ADD COLUMN rescreen_screened bigint,
    ADD COLUMN rescreen_flagged bigint,
    ADD COLUMN rescreen_reviews_opened bigint,
    ADD COLUMN rescreen_reinstated bigint,
    ADD COLUMN rescreen_attempts int,
    ADD COLUMN rescreen_error text,
    ADD COLUMN rescreen_finished_at timestamptz;

-- The review queue: one item per provider and source record (by the row's
-- digest) that a run or a re-screen found to be a possible match. A
-- resolution is remembered per (provider, source, digest): the same record
-- is not raised again; a changed record has a new digest and is.
CREATE TABLE review_items (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    provider_id     text NOT NULL,
    npi             text NOT NULL,
    "check"         text NOT NULL CHECK ("check" IN ('leie', 'sam')),
    -- what matched: name (DOB unknown on a side), name+dob, npi (a waiver)
    match           text NOT NULL,
    reason          text NOT NULL,
    digest          text NOT NULL,
    -- the import whose file holds the row, and its line there
    import_id       bigint,
    line            bigint,
    record          jsonb NOT NULL,
    evidence        jsonb NOT NULL,
    -- the run that raised it, or NULL when the re-screen after import_id did
    run_id          uuid,
    raised_by       text NOT NULL,
    status          text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'cleared', 'confirmed', 'superseded')),
    opened_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    resolved_at     timestamptz,
    resolved_by     text,
    note            text NOT NULL DEFAULT '',
    resolved_run_id uuid
);
-- One open item per record, one resolution per record.
CREATE UNIQUE INDEX review_items_open_idx ON review_items (provider_id, "check", digest) WHERE status = 'open';
CREATE UNIQUE INDEX review_items_resolved_idx ON review_items (provider_id, "check", digest) WHERE status IN ('cleared', 'confirmed');
CREATE INDEX review_items_list_idx ON review_items (status, opened_at DESC, id DESC);
CREATE INDEX review_items_provider_idx ON review_items (provider_id, opened_at DESC);
