package webhooks

import (
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/provcred/credential/internal/events"
	"github.com/provcred/credential/internal/providers"
	"github.com/provcred/platform/apierr"
	"github.com/provcred/platform/page"
	"github.com/provcred/platform/server"
)

// Error codes of this package (docs/api.md).
const (
	CodeURLRefused = "webhook_url_refused"
	CodeDisabled   = "webhook_disabled"
)

// Routes registers the admin endpoints (the gateway requires admin).
func (s *Service) Routes(r fiber.Router) {
	r.Post("/webhooks", s.handleCreate)
	r.Get("/webhooks", s.handleList)
	r.Get("/webhooks/:id", s.handleGet)
	r.Delete("/webhooks/:id", s.handleDelete)
	r.Post("/webhooks/:id/enable", s.handleEnable)
	r.Post("/webhooks/:id/test", s.handleTest)
	r.Get("/webhooks/:id/deliveries", s.handleDeliveries)
	r.Post("/webhooks/:id/deliveries/:delivery_id/replay", s.handleReplay)
}

// CreateRequest is POST /webhooks' body.
type CreateRequest struct {
	URL         string   `json:"url"`
	EventTypes  []string `json:"event_types"`
	Description string   `json:"description"`
}

// Limits of a subscription.
const (
	maxURLLength         = 2048
	maxDescriptionLength = 500
)

// Validate normalizes and checks req (not the host's addresses: see
// Guard.CheckHost); errors are 422 naming the field.
func (req *CreateRequest) Validate() (*url.URL, error) {
	req.URL = strings.TrimSpace(req.URL)
	if req.URL == "" {
		return nil, apierr.Invalid("url", "is required")
	}
	if len(req.URL) > maxURLLength || !utf8.ValidString(req.URL) || strings.ContainsFunc(req.URL, unicode.IsControl) {
		return nil, apierr.Invalid("url", "must be an http or https URL of at most 2048 characters")
	}
	u, err := url.Parse(req.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" || u.Opaque != "" {
		return nil, apierr.Invalid("url", "must be an absolute http or https URL")
	}
	if u.User != nil {
		return nil, apierr.Invalid("url", "must not hold credentials; deliveries are signed instead")
	}
	if u.Fragment != "" {
		return nil, apierr.Invalid("url", "must not have a #fragment")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, apierr.Invalid("url", "has an invalid port")
		}
	}
	req.Description = strings.TrimSpace(req.Description)
	if utf8.RuneCountInString(req.Description) > maxDescriptionLength || !utf8.ValidString(req.Description) ||
		strings.ContainsRune(req.Description, 0) {
		return nil, apierr.Invalid("description", "must be text of at most 500 characters")
	}
	types := []string{}
	for i, t := range req.EventTypes {
		t = strings.TrimSpace(t)
		if !events.Known(t) {
			return nil, apierr.Invalid("event_types", "event_types["+itoa(i)+"] is not an event type; one of "+
				strings.Join(events.Types, ", "))
		}
		if !slices.Contains(types, t) {
			types = append(types, t)
		}
	}
	slices.Sort(types)
	req.EventTypes = types
	return u, nil
}

func itoa(i int) string { return strconv.Itoa(i) }

func (s *Service) handleCreate(c *fiber.Ctx) error {
	var req CreateRequest
	if err := providers.DecodeJSON(c, &req); err != nil {
		return err
	}
	u, err := req.Validate()
	if err != nil {
		return err
	}
	if err := s.guard.CheckHost(c.UserContext(), s.res, u); err != nil {
		if errors.Is(err, ErrRefusedAddress) {
			return &apierr.Error{Status: fiber.StatusUnprocessableEntity, Code: CodeURLRefused, Field: "url",
				Detail: "url: the host is or resolves to a private, loopback or link-local address (WEBHOOK_ALLOW_PRIVATE is off)"}
		}
		return apierr.Invalid("url", err.Error())
	}
	w, err := s.Create(c.UserContext(), req, server.Actor(c), server.RequestID(c))
	if err != nil {
		return err
	}
	c.Location("/webhooks/" + w.ID)
	return c.Status(fiber.StatusCreated).JSON(w)
}

func (s *Service) handleList(c *fiber.Ctx) error {
	limit, err := page.Limit(c)
	if err != nil {
		return err
	}
	var cur WebhookCursor
	ok, err := page.Decode(c, &cur)
	if err != nil {
		return err
	}
	var after *WebhookCursor
	if ok {
		after = &cur
	}
	rows, err := s.List(c.UserContext(), after, limit)
	if err != nil {
		return err
	}
	return c.JSON(page.Build(rows, limit, func(w *Webhook) any { return WebhookCursor{CreatedAt: w.CreatedAt, ID: w.ID} }))
}

func (s *Service) handleGet(c *fiber.Ctx) error {
	w, err := s.Get(c.UserContext(), c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(w)
}

func (s *Service) handleDelete(c *fiber.Ctx) error {
	if err := s.Delete(c.UserContext(), c.Params("id"), server.Actor(c), server.RequestID(c)); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Service) handleEnable(c *fiber.Ctx) error {
	w, err := s.Enable(c.UserContext(), c.Params("id"), server.Actor(c), server.RequestID(c))
	if err != nil {
		return err
	}
	return c.JSON(w)
}

func (s *Service) handleTest(c *fiber.Ctx) error {
	d, err := s.Test(c.UserContext(), c.Params("id"))
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(d)
}

func (s *Service) handleDeliveries(c *fiber.Ctx) error {
	limit, err := page.Limit(c)
	if err != nil {
		return err
	}
	status := c.Query("status")
	if status != "" && !slices.Contains(DeliveryStatuses, status) {
		return &apierr.Error{Status: fiber.StatusBadRequest, Code: "invalid_parameter", Field: "status",
			Detail: "status: must be one of " + strings.Join(DeliveryStatuses, ", ")}
	}
	var cur DeliveryCursor
	ok, err := page.Decode(c, &cur)
	if err != nil {
		return err
	}
	var after *DeliveryCursor
	if ok {
		after = &cur
	}
	rows, err := s.Deliveries(c.UserContext(), c.Params("id"), status, after, limit)
	if err != nil {
		return err
	}
	return c.JSON(page.Build(rows, limit, func(d *Delivery) any { return DeliveryCursor{CreatedAt: d.CreatedAt, ID: d.ID} }))
}

func (s *Service) handleReplay(c *fiber.Ctx) error {
	d, err := s.Replay(c.UserContext(), c.Params("id"), c.Params("delivery_id"), server.Actor(c), server.RequestID(c))
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(d)
}
