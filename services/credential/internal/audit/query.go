package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/provcred/platform/apierr"
)

// Record is one stored audit entry as the API shows it.
type Record struct {
	ID         int64           `json:"id"`
	At         time.Time       `json:"at"`
	Actor      string          `json:"actor"`
	Event      string          `json:"event"`
	ProviderID *string         `json:"provider_id"`
	Entity     string          `json:"entity"`
	EntityID   string          `json:"entity_id"`
	Before     json.RawMessage `json:"before"`
	After      json.RawMessage `json:"after"`
	RequestID  string          `json:"request_id,omitempty"`
	// ClientRequestID is the X-Request-Id the client sent, if any (never
	// the key the platform's logs are searched by).
	ClientRequestID string `json:"client_request_id,omitempty"`
}

// Filter narrows Query; empty fields do not filter.
type Filter struct {
	ProviderID string
	Actor      string
	Event      string
	// Since and Until bound the entry time: Since inclusive, Until exclusive.
	Since, Until *time.Time
}

// Query returns up to limit+1 entries, newest first, with id below beforeID
// when it is not 0 (the caller trims the extra row into a cursor).
func Query(ctx context.Context, pool *pgxpool.Pool, f Filter, beforeID int64, limit int) ([]Record, error) {
	var args []any
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	var where []string
	if f.ProviderID != "" {
		where = append(where, "provider_id = "+arg(f.ProviderID))
	}
	if f.Actor != "" {
		where = append(where, "actor = "+arg(f.Actor))
	}
	if f.Event != "" {
		where = append(where, "event = "+arg(f.Event))
	}
	if f.Since != nil {
		where = append(where, "at >= "+arg(*f.Since))
	}
	if f.Until != nil {
		where = append(where, "at < "+arg(*f.Until))
	}
	if beforeID > 0 {
		where = append(where, "id < "+arg(beforeID))
	}
	sql := `SELECT id, at, actor, event, provider_id, entity, entity_id, before, after, request_id, client_request_id FROM audit_log`
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	sql += " ORDER BY id DESC LIMIT " + arg(limit+1)
	rows, err := pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("query audit log: %w", err)
	}
	defer rows.Close()
	out := []Record{}
	for rows.Next() {
		var r Record
		var before, after []byte
		if err := rows.Scan(&r.ID, &r.At, &r.Actor, &r.Event, &r.ProviderID, &r.Entity, &r.EntityID, &before, &after, &r.RequestID, &r.ClientRequestID); err != nil {
			return nil, fmt.Errorf("scan audit entry: %w", err)
		}
		r.Before, r.After = nullable(before), nullable(after)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query audit log: %w", err)
	}
	return out, nil
}

func nullable(b []byte) json.RawMessage {
	if b == nil {
		return json.RawMessage("null")
	}
	return b
}

// ParseTime reads a time filter from a query parameter: RFC 3339
// ("2026-01-02T15:04:05Z") or a date ("2026-01-02", midnight UTC). Empty
// means no filter. Errors are 422s naming the parameter.
func ParseTime(param, s string) (*time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			if t.Year() < 1 || t.Year() > 9999 {
				break
			}
			return &t, nil
		}
	}
	return nil, apierr.Invalid(param, "must be an RFC 3339 time (2026-01-02T15:04:05Z) or a date (2026-01-02)")
}

// ParseFilter validates the /logs query parameters (outside input; fuzzed).
func ParseFilter(provider, actor, event, since, until string) (Filter, error) {
	f := Filter{ProviderID: strings.TrimSpace(provider), Actor: strings.TrimSpace(actor), Event: strings.TrimSpace(event)}
	for name, v := range map[string]string{"provider": f.ProviderID, "actor": f.Actor, "event": f.Event} {
		if len(v) > 200 {
			return f, apierr.Invalid(name, "is longer than 200 characters")
		}
		if strings.ContainsRune(v, 0) {
			return f, apierr.Invalid(name, "must not contain NUL characters")
		}
	}
	var err error
	if f.Since, err = ParseTime("since", since); err != nil {
		return f, err
	}
	if f.Until, err = ParseTime("until", until); err != nil {
		return f, err
	}
	if f.Since != nil && f.Until != nil && !f.Until.After(*f.Since) {
		return f, apierr.Invalid("until", "must be after since")
	}
	return f, nil
}
