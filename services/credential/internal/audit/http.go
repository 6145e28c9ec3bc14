package audit

import (
	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/provcred/platform/apierr"
	"github.com/provcred/platform/page"
)

// Handler serves the audit log: GET /logs (filters provider, actor, event,
// since, until; cursor pagination, newest first) and GET /logs/:provider_id.
type Handler struct {
	Pool *pgxpool.Pool
}

// Routes registers the endpoints.
func (h *Handler) Routes(r fiber.Router) {
	r.Get("/logs", h.list)
	r.Get("/logs/:provider_id", h.list)
}

type logCursor struct {
	ID int64 `json:"i"`
}

func (h *Handler) list(c *fiber.Ctx) error {
	limit, err := page.Limit(c)
	if err != nil {
		return err
	}
	provider := c.Query("provider")
	if p := c.Params("provider_id"); p != "" {
		provider = p
	}
	f, err := ParseFilter(provider, c.Query("actor"), c.Query("event"), c.Query("since"), c.Query("until"))
	if err != nil {
		return err
	}
	var cur logCursor
	ok, err := page.Decode(c, &cur)
	if err != nil {
		return err
	}
	if ok && cur.ID <= 0 {
		return apierr.BadRequest("invalid_cursor", "cursor is not one this API returned")
	}
	rows, err := Query(c.UserContext(), h.Pool, f, cur.ID, limit)
	if err != nil {
		return err
	}
	return c.JSON(page.Build(rows, limit, func(r Record) any { return logCursor{ID: r.ID} }))
}
