// Package openapi serves the gateway's API description: the embedded
// OpenAPI 3.1 document at /openapi.json, Swagger UI with "try it out" at
// /docs and a Redoc reference at /redoc. Every asset is embedded (vendored
// from npm by `make docs-assets`): the pages load nothing from elsewhere.
package openapi

import (
	"embed"
	"io/fs"
	"mime"
	"path"

	"github.com/gofiber/fiber/v2"
)

//go:embed openapi.json
var spec []byte

//go:embed docs.html
var docsPage []byte

//go:embed redoc.html
var redocPage []byte

//go:embed assets
var assets embed.FS

// Spec returns the embedded OpenAPI document.
func Spec() []byte { return spec }

// Content-Security-Policy of the pages: scripts only from here (no inline
// script), requests only to this origin (try it out calls the API on the
// same gateway). Both UIs set inline styles (React style attributes, Redoc's
// styled-components), and draw icons as data: images; Redoc's search runs
// in a blob: worker.
const (
	docsCSP  = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; font-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	redocCSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; font-src 'self' data:; worker-src 'self' blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

// Handler serves the document, the pages and their assets.
type Handler struct{}

// New returns the handler.
func New() *Handler { return &Handler{} }

// Routes registers GET /openapi.json, /docs, /redoc and /docs/assets/*.
func (h *Handler) Routes(r fiber.Router) {
	r.Get("/openapi.json", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		c.Set(fiber.HeaderCacheControl, "public, max-age=300")
		return c.Send(spec)
	})
	page := func(body []byte, csp string) fiber.Handler {
		return func(c *fiber.Ctx) error {
			c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
			c.Set("Content-Security-Policy", csp)
			c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
			c.Set("Referrer-Policy", "no-referrer")
			return c.Send(body)
		}
	}
	r.Get("/docs", page(docsPage, docsCSP))
	r.Get("/redoc", page(redocPage, redocCSP))
	sub, _ := fs.Sub(assets, "assets")
	r.Get("/docs/assets/*", func(c *fiber.Ctx) error {
		name := c.Params("*")
		b, err := fs.ReadFile(sub, name)
		if err != nil || !fs.ValidPath(name) {
			return fiber.ErrNotFound
		}
		ct := mime.TypeByExtension(path.Ext(name))
		if ct == "" {
			ct = fiber.MIMETextPlainCharsetUTF8
		}
		c.Set(fiber.HeaderContentType, ct)
		c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
		c.Set(fiber.HeaderCacheControl, "public, max-age=3600")
		return c.Send(b)
	})
}
