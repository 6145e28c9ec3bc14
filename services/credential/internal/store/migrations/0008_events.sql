-- Events, webhooks and expirables (docs/api.md "Events and webhooks").
--
-- events is a transactional outbox: a change and the event it causes are
-- written in one transaction (internal/events.Write, or set-based SQL that
-- inserts here in the same statement as the change). The relay
-- (internal/webhooks) later publishes each event: it numbers it
-- (published_seq, in commit order, under one advisory lock, so a client
-- paging GET /events never skips one that committed late), makes one
-- webhook_deliveries row per matching subscription and one River job per
-- delivery, all in one transaction. A crash anywhere leaves either the
-- unpublished event (published again) or the River jobs (worked again).
--
-- Payloads never hold a provider's name or date of birth: the provider id,
-- identifiers that are public (license numbers, import ids) and decisions.

CREATE TABLE events (
    seq           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The stable id receivers deduplicate on (webhook-id).
    id            text NOT NULL UNIQUE DEFAULT 'evt_' || replace(gen_random_uuid()::text, '-', ''),
    -- Versioned: name.v<N>; a payload change that breaks receivers is a new version.
    type          text NOT NULL CHECK (type ~ '^[a-z_]+(\.[a-z_]+)+\.v[0-9]+$'),
    occurred_at   timestamptz NOT NULL DEFAULT now(),
    provider_id   text,
    -- API path of the thing the event is about (/results/run/..., /providers/...).
    link          text NOT NULL DEFAULT '',
    data          jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(data) = 'object'),
    -- false for a webhook's test ping: neither listed nor fanned out.
    broadcast     boolean NOT NULL DEFAULT true,
    -- Set by the relay.
    published_seq bigint UNIQUE,
    published_at  timestamptz
);
CREATE INDEX events_unpublished_idx ON events (seq) WHERE published_at IS NULL;
CREATE INDEX events_type_idx ON events (type, published_seq) WHERE published_seq IS NOT NULL;
CREATE INDEX events_provider_idx ON events (provider_id, published_seq) WHERE published_seq IS NOT NULL;
CREATE INDEX events_occurred_idx ON events (occurred_at);

CREATE TABLE webhooks (
    id              text PRIMARY KEY,
    url             text NOT NULL,
    description     text NOT NULL DEFAULT '',
    -- Empty: every event type.
    event_types     text[] NOT NULL DEFAULT '{}',
    -- whsec_<base64>: the HMAC key must be usable to sign, so it is kept, not hashed.
    secret          text NOT NULL,
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- First failed attempt since the last success; past WEBHOOK_DISABLE_AFTER
    -- the endpoint is disabled.
    failing_since   timestamptz,
    disabled_at     timestamptz,
    disabled_reason text NOT NULL DEFAULT ''
);
CREATE INDEX webhooks_created_idx ON webhooks (created_at, id);

CREATE TABLE webhook_deliveries (
    id               text PRIMARY KEY,
    webhook_id       text NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id         text NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    -- A replay is a new delivery of the same event.
    replay_of        text,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'retrying', 'delivered', 'failed', 'canceled')),
    attempts         integer NOT NULL DEFAULT 0,
    last_status_code integer,
    -- Why the last attempt failed (timeout, refused address, HTTP status); never the response body.
    last_error       text NOT NULL DEFAULT '',
    last_attempt_at  timestamptz,
    next_attempt_at  timestamptz,
    delivered_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now()
);
-- The relay never makes two deliveries of one event to one endpoint.
CREATE UNIQUE INDEX webhook_deliveries_once_idx ON webhook_deliveries (webhook_id, event_id) WHERE replay_of IS NULL;
CREATE INDEX webhook_deliveries_list_idx ON webhook_deliveries (webhook_id, created_at DESC, id DESC);
CREATE INDEX webhook_deliveries_open_idx ON webhook_deliveries (webhook_id) WHERE status IN ('pending', 'retrying');
CREATE INDEX webhook_deliveries_event_idx ON webhook_deliveries (event_id);

-- One row per expirable window crossed: the daily job inserts here and
-- raises an event only for rows it inserted, so a window never fires twice.
-- due_on is part of the key: a renewed license (a new expiry) starts over.
CREATE TABLE expirable_notices (
    kind        text NOT NULL CHECK (kind IN ('license', 'board_certification', 'recredentialing', 'verification')),
    provider_id text NOT NULL,
    -- Which license or certification (STATE:NUMBER, ordinal:board); '' for the provider.
    subject     text NOT NULL,
    due_on      date NOT NULL,
    window_days integer NOT NULL,
    raised_on   date NOT NULL,
    PRIMARY KEY (kind, provider_id, subject, due_on, window_days)
);
CREATE INDEX expirable_notices_provider_idx ON expirable_notices (provider_id);

-- batch.completed: raised by the write that closes the batch, whichever
-- path closes it (the last item's worker, a cancel, the lazy close of a
-- progress read, or a batch with nothing to run), in that write's transaction.
CREATE FUNCTION events_batch_completed() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO events (type, link, data)
    SELECT 'batch.completed.v1', '/results/batch/' || NEW.id,
        jsonb_build_object('batch_id', NEW.id, 'source', NEW.source, 'total', NEW.total,
            'canceled', NEW.canceled_at IS NOT NULL, 'created_at', NEW.created_at, 'finished_at', NEW.finished_at,
            'counts', coalesce((SELECT jsonb_object_agg(c.state, c.n)
                FROM (SELECT state, count(*) AS n FROM batch_items WHERE batch_id = NEW.id GROUP BY state) c), '{}'));
    RETURN NULL;
END $$;
CREATE TRIGGER batches_completed_event AFTER UPDATE OF finished_at ON batches
    FOR EACH ROW WHEN (OLD.finished_at IS NULL AND NEW.finished_at IS NOT NULL)
    EXECUTE FUNCTION events_batch_completed();
