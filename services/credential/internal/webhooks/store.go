package webhooks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/provcred/credential/internal/audit"
	"github.com/provcred/credential/internal/events"
	"github.com/provcred/platform/database"
	"github.com/provcred/platform/domain"
)

// Domain errors; the server's error handler (apierr.From) answers them.
var (
	// ErrNotFound matches every not-found error of the package.
	ErrNotFound = domain.ErrNotFound
	// ErrDisabled: the endpoint is disabled; enable it first (409 webhook_disabled).
	ErrDisabled = domain.Conflict(CodeDisabled, "the webhook is disabled; POST /webhooks/{id}/enable first")
)

func webhookNotFound(id string) error { return domain.NotFound("webhook " + id + " does not exist") }

func deliveryNotFound(webhookID, id string) error {
	return domain.NotFound("delivery " + id + " of webhook " + webhookID + " does not exist")
}

// Webhook is one subscription. Secret is set only in the answer to its creation.
type Webhook struct {
	ID             string     `json:"id"`
	URL            string     `json:"url"`
	Description    string     `json:"description"`
	EventTypes     []string   `json:"event_types"`
	Secret         string     `json:"secret,omitempty"`
	Status         string     `json:"status"`
	CreatedBy      string     `json:"created_by"`
	CreatedAt      time.Time  `json:"created_at"`
	FailingSince   *time.Time `json:"failing_since"`
	DisabledAt     *time.Time `json:"disabled_at"`
	DisabledReason string     `json:"disabled_reason"`
}

// Webhook statuses.
const (
	StatusEnabled  = "enabled"
	StatusDisabled = "disabled"
)

// Delivery is one event's delivery to one webhook.
type Delivery struct {
	ID             string     `json:"id"`
	WebhookID      string     `json:"webhook_id"`
	EventID        string     `json:"event_id"`
	EventType      string     `json:"event_type"`
	ReplayOf       *string    `json:"replay_of"`
	Status         string     `json:"status"`
	Attempts       int        `json:"attempts"`
	LastStatusCode *int       `json:"last_status_code"`
	LastError      string     `json:"last_error"`
	LastAttemptAt  *time.Time `json:"last_attempt_at"`
	NextAttemptAt  *time.Time `json:"next_attempt_at"`
	DeliveredAt    *time.Time `json:"delivered_at"`
	CreatedAt      time.Time  `json:"created_at"`
}

// Delivery statuses.
const (
	DeliveryPending   = "pending"
	DeliveryRetrying  = "retrying"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
	DeliveryCanceled  = "canceled"
)

// DeliveryStatuses lists every delivery status (the ?status= filter).
var DeliveryStatuses = []string{DeliveryPending, DeliveryRetrying, DeliveryDelivered, DeliveryFailed, DeliveryCanceled}

func newID(prefix string) string {
	u := uuid.New()
	const hex = "0123456789abcdef"
	b := make([]byte, 0, len(prefix)+32)
	b = append(b, prefix...)
	for _, c := range u {
		b = append(b, hex[c>>4], hex[c&15])
	}
	return string(b)
}

const webhookCols = `id, url, description, event_types, created_by, created_at, failing_since, disabled_at, disabled_reason`

func scanWebhook(row pgx.Row) (*Webhook, error) {
	w := &Webhook{}
	if err := row.Scan(&w.ID, &w.URL, &w.Description, &w.EventTypes, &w.CreatedBy, &w.CreatedAt, &w.FailingSince,
		&w.DisabledAt, &w.DisabledReason); err != nil {
		return nil, err
	}
	if w.EventTypes == nil {
		w.EventTypes = []string{}
	}
	w.Status = StatusEnabled
	if w.DisabledAt != nil {
		w.Status = StatusDisabled
	}
	return w, nil
}

// Create stores a subscription with a new secret (returned once, in the
// answer) and its audit entry. req must be validated.
func (s *Service) Create(ctx context.Context, req CreateRequest, actor, requestID string) (*Webhook, error) {
	secret, err := NewSecret()
	if err != nil {
		return nil, err
	}
	var w *Webhook
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		w, err = scanWebhook(tx.QueryRow(ctx, `INSERT INTO webhooks (id, url, description, event_types, secret, created_by)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING `+webhookCols,
			newID("wh_"), req.URL, req.Description, req.EventTypes, secret, actor))
		if err != nil {
			return fmt.Errorf("create webhook: %w", err)
		}
		// The audit entry names the endpoint, never its secret.
		return audit.Write(ctx, tx, audit.Entry{Actor: actor, RequestID: requestID, Event: "webhook.created",
			Entity: "webhook", EntityID: w.ID, After: map[string]any{"url": w.URL, "event_types": w.EventTypes,
				"description": w.Description}})
	})
	if err != nil {
		return nil, err
	}
	w.Secret = secret
	return w, nil
}

// Get returns one webhook (without its secret).
func (s *Service) Get(ctx context.Context, id string) (*Webhook, error) {
	w, err := scanWebhook(s.pool.QueryRow(ctx, `SELECT `+webhookCols+` FROM webhooks WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, webhookNotFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("get webhook: %w", err)
	}
	return w, nil
}

// WebhookCursor is the keyset position in the oldest-first list.
type WebhookCursor struct {
	CreatedAt time.Time `json:"c"`
	ID        string    `json:"i"`
}

// List returns up to limit+1 webhooks after the cursor, oldest first.
func (s *Service) List(ctx context.Context, after *WebhookCursor, limit int) ([]*Webhook, error) {
	var rows pgx.Rows
	var err error
	if after == nil {
		rows, err = s.pool.Query(ctx, `SELECT `+webhookCols+` FROM webhooks ORDER BY created_at, id LIMIT $1`, limit+1)
	} else {
		rows, err = s.pool.Query(ctx, `SELECT `+webhookCols+` FROM webhooks WHERE (created_at, id) > ($1, $2)
			ORDER BY created_at, id LIMIT $3`, after.CreatedAt, after.ID, limit+1)
	}
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Webhook, error) { return scanWebhook(r) })
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	return out, nil
}

// Delete removes a webhook and its deliveries (their River jobs find
// nothing and end).
func (s *Service) Delete(ctx context.Context, id, actor, requestID string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		w, err := scanWebhook(tx.QueryRow(ctx, `DELETE FROM webhooks WHERE id = $1 RETURNING `+webhookCols, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return webhookNotFound(id)
		}
		if err != nil {
			return fmt.Errorf("delete webhook: %w", err)
		}
		return audit.Write(ctx, tx, audit.Entry{Actor: actor, RequestID: requestID, Event: "webhook.deleted",
			Entity: "webhook", EntityID: id, Before: map[string]any{"url": w.URL, "event_types": w.EventTypes}})
	})
}

// Enable turns a disabled webhook back on (deliveries canceled when it was
// disabled stay canceled; replay them if needed).
func (s *Service) Enable(ctx context.Context, id, actor, requestID string) (*Webhook, error) {
	var w *Webhook
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var before *time.Time
		if err := tx.QueryRow(ctx, `SELECT disabled_at FROM webhooks WHERE id = $1 FOR UPDATE`, id).Scan(&before); errors.Is(err, pgx.ErrNoRows) {
			return webhookNotFound(id)
		} else if err != nil {
			return fmt.Errorf("enable webhook: %w", err)
		}
		var err error
		w, err = scanWebhook(tx.QueryRow(ctx, `UPDATE webhooks SET disabled_at = NULL, disabled_reason = '', failing_since = NULL
			WHERE id = $1 RETURNING `+webhookCols, id))
		if err != nil {
			return fmt.Errorf("enable webhook: %w", err)
		}
		if before == nil {
			return nil // already enabled: nothing changed, nothing to audit
		}
		return audit.Write(ctx, tx, audit.Entry{Actor: actor, RequestID: requestID, Event: "webhook.enabled",
			Entity: "webhook", EntityID: id, Before: map[string]any{"disabled_at": before}})
	})
	return w, err
}

// disable turns the webhook off in tx, cancels its open deliveries and
// raises webhook.disabled; false when it was already disabled.
func (s *Service) disable(ctx context.Context, tx pgx.Tx, id, reason string, failingSince time.Time) (bool, error) {
	tag, err := tx.Exec(ctx, `UPDATE webhooks SET disabled_at = now(), disabled_reason = $2 WHERE id = $1 AND disabled_at IS NULL`, id, reason)
	if err != nil {
		return false, fmt.Errorf("disable webhook: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return false, nil
	}
	if _, err := tx.Exec(ctx, `UPDATE webhook_deliveries SET status = 'canceled', next_attempt_at = NULL,
			last_error = CASE WHEN last_error = '' THEN 'the endpoint was disabled' ELSE last_error END
		WHERE webhook_id = $1 AND status IN ('pending', 'retrying')`, id); err != nil {
		return false, fmt.Errorf("cancel deliveries: %w", err)
	}
	data := map[string]any{"webhook_id": id, "reason": reason, "failing_since": failingSince.UTC()}
	if err := events.Write(ctx, tx, events.Event{Type: events.WebhookDisabled, Link: "/webhooks/" + id, Data: data}); err != nil {
		return false, err
	}
	return true, audit.Write(ctx, tx, audit.Entry{Actor: "system", Event: "webhook.disabled", Entity: "webhook",
		EntityID: id, After: data})
}

const deliveryCols = `d.id, d.webhook_id, d.event_id, e.type, d.replay_of, d.status, d.attempts, d.last_status_code,
	d.last_error, d.last_attempt_at, d.next_attempt_at, d.delivered_at, d.created_at`

func scanDelivery(row pgx.Row) (*Delivery, error) {
	d := &Delivery{}
	err := row.Scan(&d.ID, &d.WebhookID, &d.EventID, &d.EventType, &d.ReplayOf, &d.Status, &d.Attempts, &d.LastStatusCode,
		&d.LastError, &d.LastAttemptAt, &d.NextAttemptAt, &d.DeliveredAt, &d.CreatedAt)
	return d, err
}

// DeliveryCursor is the keyset position in the newest-first list.
type DeliveryCursor struct {
	CreatedAt time.Time `json:"c"`
	ID        string    `json:"i"`
}

// Deliveries returns up to limit+1 of the webhook's deliveries, newest
// first, optionally in one status; ErrNotFound when the webhook does not exist.
func (s *Service) Deliveries(ctx context.Context, webhookID, status string, after *DeliveryCursor, limit int) ([]*Delivery, error) {
	if _, err := s.Get(ctx, webhookID); err != nil {
		return nil, err
	}
	args := []any{webhookID, limit + 1}
	where := "d.webhook_id = $1"
	if status != "" {
		args = append(args, status)
		where += fmt.Sprintf(" AND d.status = $%d", len(args))
	}
	if after != nil {
		args = append(args, after.CreatedAt, after.ID)
		where += fmt.Sprintf(" AND (d.created_at, d.id) < ($%d, $%d)", len(args)-1, len(args))
	}
	rows, err := s.pool.Query(ctx, `SELECT `+deliveryCols+` FROM webhook_deliveries d JOIN events e ON e.id = d.event_id
		WHERE `+where+` ORDER BY d.created_at DESC, d.id DESC LIMIT $2`, args...)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Delivery, error) { return scanDelivery(r) })
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	return out, nil
}

// GetDelivery returns one delivery of the webhook.
func (s *Service) GetDelivery(ctx context.Context, db database.Querier, webhookID, id string) (*Delivery, error) {
	d, err := scanDelivery(db.QueryRow(ctx, `SELECT `+deliveryCols+` FROM webhook_deliveries d JOIN events e ON e.id = d.event_id
		WHERE d.webhook_id = $1 AND d.id = $2`, webhookID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, deliveryNotFound(webhookID, id)
	}
	if err != nil {
		return nil, fmt.Errorf("get delivery: %w", err)
	}
	return d, nil
}

// enabledForUpdate locks the webhook in tx and fails with ErrNotFound or
// ErrDisabled when it cannot take a delivery.
func enabledForUpdate(ctx context.Context, tx pgx.Tx, id string) error {
	var disabled *time.Time
	err := tx.QueryRow(ctx, `SELECT disabled_at FROM webhooks WHERE id = $1 FOR SHARE`, id).Scan(&disabled)
	if errors.Is(err, pgx.ErrNoRows) {
		return webhookNotFound(id)
	}
	if err != nil {
		return fmt.Errorf("read webhook: %w", err)
	}
	if disabled != nil {
		return ErrDisabled
	}
	return nil
}

// Replay delivers the event of an earlier delivery again, as a new
// delivery (same event id, so a receiver that deduplicates will skip it).
func (s *Service) Replay(ctx context.Context, webhookID, deliveryID, actor, requestID string) (*Delivery, error) {
	var out *Delivery
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := enabledForUpdate(ctx, tx, webhookID); err != nil {
			return err
		}
		orig, err := s.GetDelivery(ctx, tx, webhookID, deliveryID)
		if err != nil {
			return err
		}
		id := newID("dlv_")
		if _, err := tx.Exec(ctx, `INSERT INTO webhook_deliveries (id, webhook_id, event_id, replay_of) VALUES ($1, $2, $3, $4)`,
			id, webhookID, orig.EventID, orig.ID); err != nil {
			return fmt.Errorf("replay delivery: %w", err)
		}
		if err := s.insertJobs(ctx, tx, []string{id}); err != nil {
			return err
		}
		if out, err = s.GetDelivery(ctx, tx, webhookID, id); err != nil {
			return err
		}
		return audit.Write(ctx, tx, audit.Entry{Actor: actor, RequestID: requestID, Event: "webhook.delivery_replayed",
			Entity: "webhook", EntityID: webhookID, After: map[string]any{"delivery_id": id, "replay_of": orig.ID,
				"event_id": orig.EventID}})
	})
	return out, err
}

// Test sends the webhook a webhook.test ping (an event of its own, listed
// nowhere else) as a normal delivery: signed, retried, recorded.
func (s *Service) Test(ctx context.Context, webhookID string) (*Delivery, error) {
	var out *Delivery
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := enabledForUpdate(ctx, tx, webhookID); err != nil {
			return err
		}
		eventID, id := newID("evt_"), newID("dlv_")
		if _, err := tx.Exec(ctx, `INSERT INTO events (id, type, link, data, broadcast, published_at)
			VALUES ($1, $2, $3, jsonb_build_object('webhook_id', $4::text), false, now())`,
			eventID, events.WebhookTest, "/webhooks/"+webhookID, webhookID); err != nil {
			return fmt.Errorf("test event: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO webhook_deliveries (id, webhook_id, event_id) VALUES ($1, $2, $3)`,
			id, webhookID, eventID); err != nil {
			return fmt.Errorf("test delivery: %w", err)
		}
		if err := s.insertJobs(ctx, tx, []string{id}); err != nil {
			return err
		}
		var err error
		out, err = s.GetDelivery(ctx, tx, webhookID, id)
		return err
	})
	return out, err
}
