package checks

import (
	"github.com/gofiber/fiber/v2"

	"github.com/provcred/credential/internal/results"
	"github.com/provcred/platform/server"
)

// Handler serves POST /credential/:provider_id: run every check now, store
// the run and answer it (an unknown provider is a 404 from its store's
// domain.NotFound).
type Handler struct{ Engine *Engine }

// Routes registers the endpoint.
func (h *Handler) Routes(r fiber.Router) {
	r.Post("/credential/:provider_id", h.credential)
}

func (h *Handler) credential(c *fiber.Ctx) error {
	run, err := h.Engine.Credential(c.UserContext(), c.Params("provider_id"),
		results.RunOptions{Actor: server.Actor(c), RequestID: server.RequestID(c)})
	if err != nil {
		return err
	}
	return c.JSON(run)
}
