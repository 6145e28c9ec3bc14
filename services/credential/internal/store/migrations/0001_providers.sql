-- Providers, their state licenses, and the append-only audit log.
-- Never store an SSN: there is deliberately no column for one.

CREATE TABLE providers (
    id                   text PRIMARY KEY,
    npi                  text NOT NULL UNIQUE CHECK (npi ~ '^[12][0-9]{9}$'),
    first_name           text NOT NULL,
    middle_name          text NOT NULL DEFAULT '',
    last_name            text NOT NULL,
    suffix               text NOT NULL DEFAULT '',
    date_of_birth        date,
    specialty            text NOT NULL DEFAULT '',
    taxonomy_code        text NOT NULL DEFAULT '',
    dea_number           text NOT NULL DEFAULT '',
    board_certifications jsonb NOT NULL DEFAULT '[]',
    -- Set by the verification pipeline; NULL until the first run.
    decision             text CHECK (decision IN ('approved','denied','needs_review','incomplete')),
    last_verified_at     timestamptz,
    approved_at          timestamptz,
    -- Continuous monitoring raises this when an exclusion import matches.
    exclusion_flagged_at timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX providers_last_name_idx ON providers (lower(last_name), id);
CREATE INDEX providers_specialty_idx ON providers (lower(specialty));
CREATE INDEX providers_decision_idx ON providers (decision);

CREATE TABLE provider_licenses (
    provider_id  text NOT NULL REFERENCES providers (id) ON DELETE CASCADE,
    state        text NOT NULL CHECK (state ~ '^[A-Z]{2}$'),
    number       text NOT NULL,
    type         text NOT NULL DEFAULT '',
    expires_on   date,
    PRIMARY KEY (provider_id, state, number)
);
CREATE INDEX provider_licenses_state_idx ON provider_licenses (state);
CREATE INDEX provider_licenses_expiry_idx ON provider_licenses (expires_on);

CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    event       text NOT NULL,
    provider_id text,
    entity      text NOT NULL,
    entity_id   text NOT NULL,
    before      jsonb,
    after       jsonb,
    request_id  text NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_provider_idx ON audit_log (provider_id, id);
CREATE INDEX audit_log_at_idx ON audit_log (at);
CREATE INDEX audit_log_event_idx ON audit_log (event, id);
CREATE INDEX audit_log_actor_idx ON audit_log (actor, id);

-- Append-only: an auditor must be able to trust that nothing was rewritten.
CREATE FUNCTION audit_log_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END $$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_immutable();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_immutable();
