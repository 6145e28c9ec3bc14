package results

import (
	"context"
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/provcred/credential/internal/audit"
	"github.com/provcred/platform/apierr"
	"github.com/provcred/platform/page"
	"github.com/provcred/platform/server"
)

// ErrProviderNotFound is returned by a Credentialer for an unknown provider
// (checks.ErrProviderNotFound is the same value).
var ErrProviderNotFound = errors.New("provider not found")

// Credentialer runs the checks for one provider and stores the run
// (implemented by checks.Engine).
type Credentialer interface {
	Credential(ctx context.Context, providerID string, opts RunOptions) (*Run, error)
}

// Handler serves POST /credential/:provider_id and the /results endpoints.
type Handler struct {
	Store  *Store
	Engine Credentialer
}

// Routes registers the endpoints.
func (h *Handler) Routes(r fiber.Router) {
	r.Post("/credential/:provider_id", h.credential)
	r.Get("/results", h.list)
	r.Get("/results/run/:run_id", h.run)
	r.Get("/results/:provider_id", h.provider)
}

func (h *Handler) credential(c *fiber.Ctx) error {
	id := c.Params("provider_id")
	run, err := h.Engine.Credential(c.UserContext(), id, RunOptions{Actor: server.Actor(c), RequestID: server.RequestID(c)})
	if errors.Is(err, ErrProviderNotFound) {
		return apierr.NotFound("provider " + id + " does not exist")
	}
	if err != nil {
		return err
	}
	return c.JSON(run)
}

// ListQuery is GET /results' parsed query.
type ListQuery struct {
	Filter Filter
	Limit  int
	After  *Cursor
}

var validDecisions = map[string]bool{"": true, Approved: true, Denied: true, DecisionReview: true, DecisionIncomplete: true}

// ParseFilter validates GET /results' filters (outside input; fuzzed).
func ParseFilter(decision, providerID, since string) (Filter, error) {
	f := Filter{Decision: strings.TrimSpace(decision), ProviderID: strings.TrimSpace(providerID)}
	if !validDecisions[f.Decision] {
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

// uuidLike keeps a forged cursor from reaching PostgreSQL as a bad uuid (a 500).
func uuidLike(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if r != '-' {
				return false
			}
		case (r >= '0' && r <= '9') || (r >= 'a' && r <= 'f') || (r >= 'A' && r <= 'F'):
		default:
			return false
		}
	}
	return true
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
	if r == nil {
		return apierr.NotFound("run " + id + " does not exist")
	}
	return c.JSON(r)
}
