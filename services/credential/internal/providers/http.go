package providers

import (
	"io"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/provcred/credential/internal/reqtext"
	"github.com/provcred/platform/apierr"
	"github.com/provcred/platform/domain"
	"github.com/provcred/platform/jsonbody"
	"github.com/provcred/platform/page"
	"github.com/provcred/platform/server"
)

// Handler serves /providers.
type Handler struct {
	Store *Store
	// Import parses and upserts a roster CSV (see package roster); set by main
	// so this package does not depend on the roster format.
	Import fiber.Handler
}

// Routes registers the provider endpoints.
func (h *Handler) Routes(r fiber.Router) {
	r.Get("/providers", h.list)
	r.Post("/providers", h.create)
	if h.Import != nil {
		r.Post("/providers/import", h.Import)
	}
	r.Get("/providers/:id", h.get)
	r.Put("/providers/:id", h.replace)
	r.Delete("/providers/:id", h.delete)
}

// ActorOf reads who is acting from the request.
func ActorOf(c *fiber.Ctx) Actor { return Actor{ID: server.Actor(c), RequestID: server.RequestID(c)} }

// maxJSONBody bounds a provider body: MaxLicenses and MaxBoardCertifications
// fit well inside. It is enforced here because BODY_LIMIT_BYTES is not where
// the server streams bodies: PUT /providers/import (provider "import") and
// any id starting so fall under the /providers/import stream prefix, and
// c.Body() would read such a stream whole, however large.
const maxJSONBody = 1 << 20

// DecodeJSON reads a JSON body strictly with platform/jsonbody (whatever the
// Content-Type says: curl's default form type is a common slip, and the body
// tells): unknown fields are 422s naming the field, an SSN most firmly;
// syntax errors and duplicated keys are 400s.
func DecodeJSON(c *fiber.Ctx, v any) error {
	body, err := io.ReadAll(io.LimitReader(server.BodyStream(c), maxJSONBody+1))
	if err != nil {
		return apierr.BadRequest("bad_request", "could not read the request body")
	}
	if len(body) > maxJSONBody {
		c.Context().SetConnectionClose() // the rest of the body is unread
		return apierr.Newf(fiber.StatusRequestEntityTooLarge, "body_too_large", "the body is larger than %d bytes", maxJSONBody)
	}
	err = jsonbody.Decode(body, v)
	if e, ok := apierr.As(err); ok && e.Field != "" && e.Code == "validation_failed" && strings.HasSuffix(e.Detail, "is not a known field") {
		if f := strings.ToLower(e.Field); strings.Contains(f, "ssn") || strings.Contains(f, "social_security") {
			return apierr.Invalid(e.Field, "is refused: the platform never stores Social Security numbers")
		}
	}
	return err
}

// input reads and validates a provider from the body.
func input(c *fiber.Ctx) (*Provider, error) {
	var p Provider
	if err := DecodeJSON(c, &p); err != nil {
		return nil, err
	}
	p.Normalize()
	if e := p.Validate(time.Now()); e != nil {
		return nil, e
	}
	return &p, nil
}

func (h *Handler) create(c *fiber.Ctx) error {
	p, err := input(c)
	if err != nil {
		return err
	}
	out, err := h.Store.Create(c.UserContext(), ActorOf(c), p)
	if err != nil {
		return err
	}
	c.Location("/providers/" + out.ID)
	return c.Status(fiber.StatusCreated).JSON(out)
}

func (h *Handler) get(c *fiber.Ctx) error {
	p, err := h.Store.Get(c.UserContext(), c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(p)
}

func (h *Handler) replace(c *fiber.Ctx) error {
	p, err := input(c)
	if err != nil {
		return err
	}
	if p.ID != "" && p.ID != c.Params("id") {
		return apierr.Invalid("id", "does not match the id in the path")
	}
	out, err := h.Store.Replace(c.UserContext(), ActorOf(c), c.Params("id"), p)
	if err != nil {
		return err
	}
	return c.JSON(out)
}

func (h *Handler) delete(c *fiber.Ctx) error {
	if err := h.Store.Delete(c.UserContext(), ActorOf(c), c.Params("id")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (h *Handler) list(c *fiber.Ctx) error {
	limit, err := page.Limit(c)
	if err != nil {
		return err
	}
	f := Filter{State: strings.ToUpper(c.Query("state")), Specialty: c.Query("specialty"), Decision: c.Query("decision"), Q: strings.TrimSpace(c.Query("q"))}
	if f.State != "" && !States[f.State] {
		return apierr.Invalid("state", "must be a two-letter US state or territory code")
	}
	if d := domain.Decision(f.Decision); d != "" && d != "none" && !d.Valid() {
		return apierr.Invalid("decision", "must be approved, denied, needs_review, incomplete or none")
	}
	var cur ListCursor
	ok, err := reqtext.DecodeCursor(c, &cur)
	if err != nil {
		return err
	}
	var after *ListCursor
	if ok {
		after = &cur
	}
	rows, err := h.Store.List(c.UserContext(), f, after, limit)
	if err != nil {
		return err
	}
	return c.JSON(page.Build(rows, limit, func(p *Provider) any {
		return ListCursor{LastName: strings.ToLower(p.LastName), ID: p.ID}
	}))
}
