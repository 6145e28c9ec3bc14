-- The X-Request-Id a client chose, kept apart from request_id, which the
-- gateway now always makes itself (at random): a client can no longer pick
-- the id the audit log and every log line are keyed by, and what it sent
-- is still there to correlate with its own records.
ALTER TABLE audit_log ADD COLUMN client_request_id text NOT NULL DEFAULT '';
