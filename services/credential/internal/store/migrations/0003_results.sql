-- Credentialing runs and their checks: the evidence an auditor asks for.
--
-- provider_id deliberately has no foreign key to providers: a run is
-- evidence of what was decided and why, and must outlive a deleted provider.

CREATE TABLE credential_runs (
    id           uuid PRIMARY KEY,
    provider_id  text NOT NULL,
    -- The NPI as it was when checked (a provider's NPI may be corrected later).
    npi          text NOT NULL,
    batch_id     uuid,
    decision     text NOT NULL CHECK (decision IN ('approved', 'denied', 'needs_review', 'incomplete')),
    -- [{"check","outcome","detail"}]: why the decision is what it is.
    reasons      jsonb NOT NULL DEFAULT '[]',
    actor        text NOT NULL,
    request_id   text NOT NULL DEFAULT '',
    -- Exactly one run per provider is the latest; kept by the writer under a
    -- per-provider advisory lock, enforced by the unique index below.
    latest       boolean NOT NULL DEFAULT false,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz NOT NULL
);
-- History of one provider, newest first.
CREATE INDEX credential_runs_provider_idx ON credential_runs (provider_id, finished_at DESC, id DESC);
-- GET /results: the latest run per provider, newest first.
CREATE UNIQUE INDEX credential_runs_latest_idx ON credential_runs (provider_id) WHERE latest;
CREATE INDEX credential_runs_latest_time_idx ON credential_runs (finished_at DESC, id DESC) WHERE latest;
-- A batch never stores two final results for one provider; incomplete runs
-- may repeat (they are retried).
CREATE UNIQUE INDEX credential_runs_batch_final_idx ON credential_runs (batch_id, provider_id)
    WHERE batch_id IS NOT NULL AND decision <> 'incomplete';
CREATE INDEX credential_runs_batch_idx ON credential_runs (batch_id) WHERE batch_id IS NOT NULL;
CREATE INDEX credential_runs_finished_idx ON credential_runs (finished_at);

CREATE TABLE credential_checks (
    run_id      uuid NOT NULL REFERENCES credential_runs (id) ON DELETE CASCADE,
    "check"     text NOT NULL CHECK ("check" IN ('npi_format', 'nppes', 'leie', 'sam', 'license')),
    outcome     text NOT NULL CHECK (outcome IN ('pass', 'fail', 'needs_review', 'unavailable')),
    detail      text NOT NULL DEFAULT '',
    -- {source, source_version | fetched_at, matched_record, digest, checked_at, ...}
    evidence    jsonb NOT NULL DEFAULT '{}',
    duration_ms double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, "check")
);
CREATE INDEX credential_checks_outcome_idx ON credential_checks ("check", outcome);
