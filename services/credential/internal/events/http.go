package events

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/provcred/platform/apierr"
	"github.com/provcred/platform/page"
	"github.com/provcred/platform/text"
)

// Handler serves GET /events: published events, oldest first, for systems
// that pull instead of receiving webhooks.
type Handler struct {
	Pool  *pgxpool.Pool
	Links Links
}

// Routes registers the endpoint.
func (h *Handler) Routes(r fiber.Router) { r.Get("/events", h.list) }

// Filter narrows List.
type Filter struct {
	Types      []string
	ProviderID string
	// After is the published_seq of the last event the client has seen.
	After int64
}

type cursor struct {
	Seq int64 `json:"s"`
}

// ParseFilter reads ?type= (comma-separated, repeatable types) and
// ?provider_id=; errors are 400 invalid_parameter naming the parameter.
func ParseFilter(types []string, providerID string) (Filter, error) {
	var f Filter
	for _, t := range types {
		for _, one := range strings.Split(t, ",") {
			one = strings.TrimSpace(one)
			if one == "" {
				continue
			}
			if !Known(one) {
				return f, invalidParam("type", fmt.Sprintf("type: %q is not an event type (%s)", text.Clip(one, 60), strings.Join(Types, ", ")))
			}
			f.Types = append(f.Types, one)
		}
	}
	if len(providerID) > 200 || !utf8.ValidString(providerID) || strings.ContainsRune(providerID, 0) {
		return f, invalidParam("provider_id", "provider_id: must be at most 200 characters of text")
	}
	f.ProviderID = providerID
	return f, nil
}

func invalidParam(field, detail string) error {
	return &apierr.Error{Status: fiber.StatusBadRequest, Code: "invalid_parameter", Detail: detail, Field: field}
}

// Page is GET /events' answer. next_cursor is always set once any event
// was seen, so a client polls with it and gets only what was published since.
type Page struct {
	Items      []Envelope `json:"items"`
	NextCursor string     `json:"next_cursor,omitempty"`
}

func (h *Handler) list(c *fiber.Ctx) error {
	limit, err := page.Limit(c)
	if err != nil {
		return err
	}
	var types []string
	for _, v := range c.Context().QueryArgs().PeekMulti("type") {
		types = append(types, string(v))
	}
	f, err := ParseFilter(types, c.Query("provider_id"))
	if err != nil {
		return err
	}
	var cur cursor
	ok, err := page.Decode(c, &cur)
	if err != nil {
		return err
	}
	if ok && cur.Seq < 0 {
		return apierr.BadRequest("invalid_cursor", "cursor is not one this API returned")
	}
	f.After = cur.Seq
	rows, err := List(c.UserContext(), h.Pool, f, limit)
	if err != nil {
		return err
	}
	out := Page{Items: make([]Envelope, 0, len(rows))}
	for _, r := range rows {
		out.Items = append(out.Items, r.Envelope(h.Links))
	}
	switch {
	case len(rows) > 0:
		out.NextCursor = page.Encode(cursor{Seq: *rows[len(rows)-1].PublishedSeq})
	case ok:
		out.NextCursor = page.Encode(cur) // nothing new: poll again from the same place
	}
	return c.JSON(out)
}

// List returns up to limit published events after f.After, oldest first.
func List(ctx context.Context, pool *pgxpool.Pool, f Filter, limit int) ([]Row, error) {
	args := []any{f.After, limit}
	where := []string{"published_seq > $1"}
	if len(f.Types) > 0 {
		args = append(args, f.Types)
		where = append(where, fmt.Sprintf("type = ANY($%d)", len(args)))
	}
	if f.ProviderID != "" {
		args = append(args, f.ProviderID)
		where = append(where, fmt.Sprintf("provider_id = $%d", len(args)))
	}
	rows, err := pool.Query(ctx, `SELECT seq, id, type, occurred_at, provider_id, link, data, published_seq
		FROM events WHERE `+strings.Join(where, " AND ")+` ORDER BY published_seq LIMIT $2`, args...)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	defer rows.Close()
	var out []Row
	for rows.Next() {
		var r Row
		if err := rows.Scan(&r.Seq, &r.ID, &r.Type, &r.OccurredAt, &r.ProviderID, &r.Link, &r.Data, &r.PublishedSeq); err != nil {
			return nil, fmt.Errorf("list events: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	return out, nil
}
