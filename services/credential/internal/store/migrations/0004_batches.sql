-- Durable batch credentialing. River's own tables (river_job, river_queue,
-- ...) are created in this same schema by rivermigrate (batch.Migrate), run
-- right after these files; nothing here references them, so the order holds.
--
-- A batch and all its items (and River jobs) are inserted in one
-- transaction. batch_items is the record of what happened to each provider;
-- River's job rows are the work queue and are pruned by River after a day.

CREATE TABLE batches (
    id              text PRIMARY KEY,
    actor           text NOT NULL,
    request_id      text NOT NULL DEFAULT '',
    -- Idempotency-Key header, scoped to the actor; request_hash detects the
    -- same key reused with a different body (409).
    idempotency_key text,
    request_hash    text NOT NULL DEFAULT '',
    source          text NOT NULL CHECK (source IN ('ids', 'roster')),
    total           integer NOT NULL CHECK (total >= 0),
    duplicates      integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- The first item a worker picked up.
    started_at      timestamptz,
    -- Set once no item is queued or running.
    finished_at     timestamptz,
    canceled_at     timestamptz,
    canceled_by     text
);
CREATE UNIQUE INDEX batches_idempotency_idx ON batches (actor, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX batches_created_idx ON batches (created_at DESC, id DESC);

CREATE TABLE batch_items (
    batch_id    text NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
    -- Position in the submission, for stable pagination.
    ord         integer NOT NULL,
    provider_id text NOT NULL,
    state       text NOT NULL CHECK (state IN ('queued', 'running', 'approved', 'denied', 'needs_review',
                    'incomplete', 'unknown_provider', 'canceled', 'failed')),
    -- River job working this item (NULL for unknown_provider).
    job_id      bigint,
    -- The credential run that produced the final state.
    run_id      text,
    attempts    integer NOT NULL DEFAULT 0,
    -- Why the last attempt did not finish (no PII: source names, error kinds).
    last_error  text NOT NULL DEFAULT '',
    started_at  timestamptz,
    finished_at timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (batch_id, provider_id),
    UNIQUE (batch_id, ord)
);
-- Progress counts (GROUP BY state) and the ?state= filter read this index.
CREATE INDEX batch_items_state_idx ON batch_items (batch_id, state, ord);
CREATE INDEX batch_items_provider_idx ON batch_items (provider_id);
