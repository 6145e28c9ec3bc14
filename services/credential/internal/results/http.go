package results

import (
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/provcred/credential/internal/audit"
	"github.com/provcred/platform/apierr"
	"github.com/provcred/platform/domain"
	"github.com/provcred/platform/page"
)

// Handler serves the /results endpoints.
type Handler struct {
	Store *Store
}

// Routes registers the endpoints.
func (h *Handler) Routes(r fiber.Router) {
	r.Get("/results", h.list)
	r.Get("/results/run/:run_id", h.run)
	r.Get("/results/:provider_id", h.provider)
}

// ListQuery is GET /results' parsed query.
type ListQuery struct {
	Filter Filter
	Limit  int
	After  *Cursor
}

// ParseFilter validates GET /results' filters (outside input; fuzzed).
func ParseFilter(decision, providerID, since string) (Filter, error) {
	f := Filter{Decision: domain.Decision(strings.TrimSpace(decision)), ProviderID: strings.TrimSpace(providerID)}
	if f.Decision != "" && !f.Decision.Valid() {
		return f, apierr.Invalid("decision", "must be approved, denied, needs_review or incomplete")
	}
	if len(f.ProviderID) > 200 {
		return f, apierr.Invalid("provider_id", "is longer than 200 characters")
	}
	t, err := audit.ParseTime("since", since)
	if err != nil {
		return f, err
	}
	f.Since = t
	return f, nil
}

func (h *Handler) list(c *fiber.Ctx) error {
	limit, err := page.Limit(c)
	if err != nil {
		return err
	}
	f, err := ParseFilter(c.Query("decision"), c.Query("provider_id"), c.Query("since"))
	if err != nil {
		return err
	}
	after, err := cursor(c)
	if err != nil {
		return err
	}
	runs, err := h.Store.List(c.UserContext(), f, after, limit)
	if err != nil {
		return err
	}
	return c.JSON(page.Build(runs, limit, runKey))
}

func runKey(r *Run) any { return Cursor{FinishedAt: r.FinishedAt, ID: r.ID} }

func cursor(c *fiber.Ctx) (*Cursor, error) {
	var cur Cursor
	ok, err := page.Decode(c, &cur)
	if err != nil || !ok {
		return nil, err
	}
	if !uuidLike(cur.ID) {
		return nil, apierr.BadRequest("invalid_cursor", "cursor is not one this API returned")
	}
	return &cur, nil
}

// uuidLike keeps a forged cursor from reaching PostgreSQL as a bad uuid (a
// 500); only the hyphenated form this API writes is accepted.
func uuidLike(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && len(s) == 36
}

// ProviderResults is GET /results/:provider_id's body.
type ProviderResults struct {
	ProviderID string `json:"provider_id"`
	Latest     *Run   `json:"latest"`
	History    []*Run `json:"history"`
	NextCursor string `json:"next_cursor,omitempty"`
}

func (h *Handler) provider(c *fiber.Ctx) error {
	id := c.Params("provider_id")
	limit, err := page.Limit(c)
	if err != nil {
		return err
	}
	after, err := cursor(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	latest, err := h.Store.Latest(ctx, id)
	if err != nil {
		return err
	}
	if latest == nil {
		// History outlives the provider, so a 404 only when neither exists.
		ok, err := h.Store.ProviderExists(ctx, id)
		if err != nil {
			return err
		}
		if !ok {
			return apierr.NotFound("provider " + id + " does not exist and has no results")
		}
	}
	runs, err := h.Store.History(ctx, id, after, limit)
	if err != nil {
		return err
	}
	p := page.Build(runs, limit, runKey)
	return c.JSON(ProviderResults{ProviderID: id, Latest: latest, History: p.Items, NextCursor: p.NextCursor})
}

func (h *Handler) run(c *fiber.Ctx) error {
	id := c.Params("run_id")
	if !uuidLike(id) {
		return apierr.NotFound("run " + id + " does not exist")
	}
	r, err := h.Store.Get(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(r)
}
