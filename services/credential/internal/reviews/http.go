package reviews

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/provcred/credential/internal/results"
	"github.com/provcred/platform/apierr"
	"github.com/provcred/platform/domain"
	"github.com/provcred/platform/page"
	"github.com/provcred/platform/server"
)

// Credentialer re-decides a provider after a resolution (checks.Engine).
type Credentialer interface {
	Credential(ctx context.Context, providerID string, opts results.RunOptions) (*results.Run, error)
}

// Handler serves GET /reviews, GET /reviews/{id} and POST /reviews/{id}/resolve.
// Roles are the gateway's (routes.Table): reader lists, operator resolves.
type Handler struct {
	Store  *Store
	Engine Credentialer
	Log    *slog.Logger
}

// Routes registers the endpoints.
func (h *Handler) Routes(r fiber.Router) {
	r.Get("/reviews", h.list)
	r.Get("/reviews/:id", h.get)
	r.Post("/reviews/:id/resolve", h.resolve)
}

var statuses = map[string]bool{StatusOpen: true, StatusCleared: true, StatusConfirmed: true, StatusSuperseded: true, "all": true}

// ParseFilter validates GET /reviews' filters.
func ParseFilter(status, check, providerID string) (Filter, error) {
	f := Filter{Status: strings.TrimSpace(status), Check: strings.TrimSpace(check), ProviderID: strings.TrimSpace(providerID)}
	if f.Status == "" {
		f.Status = StatusOpen
	}
	if !statuses[f.Status] {
		return f, apierr.Invalid("status", "must be open, cleared, confirmed, superseded or all")
	}
	if f.Check != "" && f.Check != results.CheckLEIE && f.Check != results.CheckSAM {
		return f, apierr.Invalid("check", "must be leie or sam")
	}
	if len(f.ProviderID) > 200 {
		return f, apierr.Invalid("provider_id", "is longer than 200 characters")
	}
	return f, nil
}

func (h *Handler) list(c *fiber.Ctx) error {
	limit, err := page.Limit(c)
	if err != nil {
		return err
	}
	f, err := ParseFilter(c.Query("status"), c.Query("check"), c.Query("provider_id"))
	if err != nil {
		return err
	}
	var cur Cursor
	ok, err := page.Decode(c, &cur)
	if err != nil {
		return err
	}
	var after *Cursor
	if ok {
		if _, err := uuid.Parse(cur.ID); err != nil || cur.OpenedAt.IsZero() {
			return apierr.BadRequest("invalid_cursor", "cursor is not one this API returned")
		}
		after = &cur
	}
	items, err := h.Store.List(c.UserContext(), f, after, limit)
	if err != nil {
		return err
	}
	return c.JSON(page.Build(items, limit, func(it *Item) any { return Cursor{OpenedAt: it.OpenedAt, ID: it.ID} }))
}

func (h *Handler) item(c *fiber.Ctx) (string, error) {
	id := c.Params("id")
	if _, err := uuid.Parse(id); err != nil {
		return "", notFound(id)
	}
	return id, nil
}

func (h *Handler) get(c *fiber.Ctx) error {
	id, err := h.item(c)
	if err != nil {
		return err
	}
	it, err := h.Store.Get(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(it)
}

// resolveBody is POST /reviews/{id}/resolve's body.
type resolveBody struct {
	Resolution string `json:"resolution"`
	Note       string `json:"note"`
}

// ParseResolve validates a resolve body (outside input).
func ParseResolve(body []byte) (resolveBody, error) {
	var b resolveBody
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return b, apierr.BadRequest("invalid_json", "the body must be a JSON object {\"resolution\", \"note\"}")
	}
	b.Resolution = strings.TrimSpace(b.Resolution)
	if b.Resolution != StatusCleared && b.Resolution != StatusConfirmed {
		return b, apierr.Invalid("resolution", "must be cleared (not the same person, or not applicable) or confirmed (a real match)")
	}
	b.Note = strings.TrimSpace(b.Note)
	if b.Note == "" {
		return b, apierr.Invalid("note", "is required: say what was checked")
	}
	if len(b.Note) > 2000 {
		return b, apierr.Invalid("note", "is longer than 2000 characters")
	}
	return b, nil
}

// resolved is the resolve answer: the item and the run that re-decided the provider.
type resolved struct {
	Review *Item        `json:"review"`
	Run    *results.Run `json:"run"`
}

func (h *Handler) resolve(c *fiber.Ctx) error {
	id, err := h.item(c)
	if err != nil {
		return err
	}
	b, err := ParseResolve(c.Body())
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	actor, req := server.Actor(c), server.RequestID(c)
	it, err := h.Store.Resolve(ctx, id, Resolution{Resolution: b.Resolution, Note: b.Note, Actor: actor, RequestID: req})
	var conflict *domain.ConflictError
	if errors.As(err, &conflict) && conflict.Code == CodeRecordChanged {
		// The item is closed; a new run raises the current row, if it still matches.
		h.rerun(ctx, it, actor, req)
	}
	if err != nil {
		return err
	}
	return c.JSON(resolved{Review: it, Run: h.rerun(ctx, it, actor, req)})
}

// rerun re-decides the provider so the resolution takes effect at once. The
// resolution is committed already: a failed run is logged and the answer's
// run is null (the next run reads the resolution all the same).
func (h *Handler) rerun(ctx context.Context, it *Item, actor, req string) *results.Run {
	if h.Engine == nil {
		return nil
	}
	run, err := h.Engine.Credential(ctx, it.ProviderID, results.RunOptions{Actor: actor, RequestID: req})
	if err != nil {
		if !errors.Is(err, domain.ErrNotFound) {
			h.log().ErrorContext(ctx, "re-deciding after a review failed", "review_id", it.ID, "provider_id", it.ProviderID, "err", err.Error())
		}
		return nil
	}
	if it.Status == StatusCleared || it.Status == StatusConfirmed {
		if err := h.Store.SetResolvedRun(ctx, it.ID, run.ID); err != nil {
			h.log().ErrorContext(ctx, "recording the review's run failed", "review_id", it.ID, "err", err.Error())
		} else {
			it.ResolvedRunID = &run.ID
		}
	}
	return run
}

func (h *Handler) log() *slog.Logger {
	if h.Log == nil {
		return slog.Default()
	}
	return h.Log
}
