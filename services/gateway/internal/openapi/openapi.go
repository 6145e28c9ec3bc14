// Package openapi serves the gateway's API description: the embedded
// OpenAPI 3.1 document at /openapi.json and a self-contained browsable page
// at /docs (no CDN: the page and its script are served from here).
package openapi

import (
	_ "embed"

	"github.com/gofiber/fiber/v2"
)

//go:embed openapi.json
var spec []byte

//go:embed docs.html
var page []byte

// Spec returns the embedded OpenAPI document.
func Spec() []byte { return spec }

// Handler serves the document and the page.
type Handler struct{}

// New returns the handler.
func New() *Handler { return &Handler{} }

// Routes registers GET /openapi.json and GET /docs.
func (h *Handler) Routes(r fiber.Router) {
	r.Get("/openapi.json", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, "application/json")
		c.Set(fiber.HeaderCacheControl, "public, max-age=300")
		return c.Send(spec)
	})
	r.Get("/docs", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
		// The page only loads its own inline script and /openapi.json.
		c.Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'")
		return c.Send(page)
	})
}
