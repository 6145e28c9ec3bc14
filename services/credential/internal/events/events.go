// Package events is the platform's event outbox: what happened, written in
// the same transaction as the change that caused it (Write), published in
// commit order by the webhook relay (internal/webhooks), delivered to
// subscriptions and listed by GET /events.
//
// An event carries a versioned type (name.vN), a stable id (evt_...), the
// provider it is about (when there is one), a link to the API resource and
// a small data object. Payloads never hold a provider's name or date of
// birth: receivers follow the link, with a key whose role may read it.
package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/provcred/platform/database"
)

// Event types. A change to a payload that could break a receiver is a new
// version (.v2) published next to the old one, never an edit of v1.
const (
	VerificationCompleted   = "verification.completed.v1"
	ProviderDecisionChanged = "provider.decision_changed.v1"
	ExclusionMatchFound     = "exclusion.match_found.v1"
	ReviewOpened            = "review.opened.v1"
	ReviewResolved          = "review.resolved.v1"
	LicenseExpiring         = "license.expiring.v1"
	LicenseExpired          = "license.expired.v1"
	RecredentialingDue      = "recredentialing.due.v1"
	VerificationStale       = "verification.stale.v1"
	BatchCompleted          = "batch.completed.v1"
	ImportActivated         = "import.activated.v1"
	WebhookDisabled         = "webhook.disabled.v1"
	// WebhookTest is POST /webhooks/{id}/test's ping: sent to that endpoint
	// only, never listed or subscribed to.
	WebhookTest = "webhook.test.v1"
)

// Types are the event types a subscription may name and GET /events lists,
// in documentation order.
var Types = []string{VerificationCompleted, ProviderDecisionChanged, ExclusionMatchFound, ReviewOpened,
	ReviewResolved, LicenseExpiring, LicenseExpired, RecredentialingDue, VerificationStale, BatchCompleted,
	ImportActivated, WebhookDisabled}

// Known reports whether t is one of Types.
func Known(t string) bool { return slices.Contains(Types, t) }

// Event is one thing that happened, as a writer gives it.
type Event struct {
	// ID is optional: the database makes one (evt_<32 hex>) when empty.
	ID         string
	Type       string
	ProviderID string
	// Link is the API path of the resource (e.g. /results/run/<id>).
	Link string
	// Data is marshalled to a JSON object; no names or dates of birth.
	Data any
}

// ErrInvalid wraps a refused event (a writer's bug, not client input).
var ErrInvalid = errors.New("invalid event")

// Write appends e to the outbox using db, which must be the transaction
// that makes the change e describes (a pgx.Tx, or a queued batch like the
// audit log's): the event exists exactly when the change does.
func Write(ctx context.Context, db database.Execer, e Event) error {
	if !Known(e.Type) {
		return fmt.Errorf("%w: unknown type %q", ErrInvalid, e.Type)
	}
	if e.Link != "" && !strings.HasPrefix(e.Link, "/") {
		return fmt.Errorf("%w: link %q is not an API path", ErrInvalid, e.Link)
	}
	data := []byte("{}")
	if e.Data != nil {
		b, err := json.Marshal(e.Data)
		if err != nil {
			return fmt.Errorf("%w: %s data: %w", ErrInvalid, e.Type, err)
		}
		if len(b) == 0 || b[0] != '{' {
			return fmt.Errorf("%w: %s data must be a JSON object", ErrInvalid, e.Type)
		}
		data = b
	}
	var provider, id any
	if e.ProviderID != "" {
		provider = e.ProviderID
	}
	if e.ID != "" {
		id = e.ID
	}
	_, err := db.Exec(ctx, `INSERT INTO events (id, type, provider_id, link, data)
		VALUES (COALESCE($1::text, 'evt_' || replace(gen_random_uuid()::text, '-', '')), $2, $3, $4, $5)`,
		id, e.Type, provider, e.Link, data)
	if err != nil {
		return fmt.Errorf("write event %s: %w", e.Type, err)
	}
	return nil
}

// Envelope is an event as receivers see it: the webhook body and an item
// of GET /events (Standard Webhooks' type/timestamp/data, plus id, the
// provider and the link).
type Envelope struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Timestamp  time.Time       `json:"timestamp"`
	ProviderID *string         `json:"provider_id"`
	Link       string          `json:"link"`
	Data       json.RawMessage `json:"data"`
}

// Links turns stored API paths into the links receivers get: absolute when
// EVENT_LINK_BASE_URL is set (the public gateway URL), else the path.
type Links struct{ Base string }

// Of returns the link for path.
func (l Links) Of(path string) string {
	if path == "" || l.Base == "" {
		return path
	}
	return strings.TrimRight(l.Base, "/") + path
}

// Row is an event as stored.
type Row struct {
	Seq          int64
	ID           string
	Type         string
	OccurredAt   time.Time
	ProviderID   *string
	Link         string
	Data         []byte
	PublishedSeq *int64
}

// Envelope renders r with links from l. The body is the same bytes on every
// attempt of a delivery (the signature covers it).
func (r Row) Envelope(l Links) Envelope {
	data := json.RawMessage(r.Data)
	if len(data) == 0 {
		data = json.RawMessage("{}")
	}
	return Envelope{ID: r.ID, Type: r.Type, Timestamp: r.OccurredAt.UTC(), ProviderID: r.ProviderID,
		Link: l.Of(r.Link), Data: data}
}

// Body is the JSON body of r's deliveries.
func (r Row) Body(l Links) ([]byte, error) {
	b, err := json.Marshal(r.Envelope(l))
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", r.ID, err)
	}
	return b, nil
}
