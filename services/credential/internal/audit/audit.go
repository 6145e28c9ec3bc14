// Package audit writes the append-only audit log: every state change, with
// who (the API key id the gateway passes on), what, when, before and after.
// Entries are written in the same transaction as the change they describe,
// so there is never a change without its entry or an entry without its change.
package audit

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/provcred/platform/database"
	"github.com/provcred/platform/logging"
)

// Entry is one audit record. Before and After are marshalled to JSON; nil
// stays NULL (a create has no before, a delete no after).
type Entry struct {
	Actor      string
	Event      string // e.g. provider.created, credential.completed, import.activated
	ProviderID string // empty when the entry is not about one provider
	Entity     string // provider, credential_run, import, batch
	EntityID   string
	Before     any
	After      any
	RequestID  string
}

// Write appends e using db, normally the transaction that made the change.
func Write(ctx context.Context, db database.Execer, e Entry) error {
	before, err := marshal(e.Before)
	if err != nil {
		return fmt.Errorf("audit before: %w", err)
	}
	after, err := marshal(e.After)
	if err != nil {
		return fmt.Errorf("audit after: %w", err)
	}
	var provider *string
	if e.ProviderID != "" {
		provider = &e.ProviderID
	}
	actor := e.Actor
	if actor == "" {
		actor = "system"
	}
	// The client's own id rides in the request's context (platform/server),
	// so every writer records it without passing it along.
	_, err = db.Exec(ctx, `INSERT INTO audit_log (actor, event, provider_id, entity, entity_id, before, after, request_id, client_request_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, actor, e.Event, provider, e.Entity, e.EntityID, before, after, e.RequestID,
		logging.ClientRequestID(ctx))
	if err != nil {
		return fmt.Errorf("write audit entry %s: %w", e.Event, err)
	}
	return nil
}

func marshal(v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	return json.Marshal(v)
}
