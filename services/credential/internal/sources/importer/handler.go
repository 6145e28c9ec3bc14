package importer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/provcred/credential/internal/sources"
	"github.com/provcred/platform/apierr"
	"github.com/provcred/platform/page"
	"github.com/provcred/platform/semaphore"
	"github.com/provcred/platform/server"
	"github.com/provcred/platform/text"
)

// Handler serves the admin import endpoints. Admin-only access is enforced
// by the gateway.
type Handler struct {
	Importer *Importer
	// Files bounds concurrent file operations (semaphore "file",
	// MAX_CONCURRENT_FILE_OPERATIONS), shared with the service's other file endpoints.
	Files *semaphore.Semaphore
	// Timeout bounds one import (IMPORT_TIMEOUT). It replaces the server's
	// per-request timeout, which is sized for API calls: the full NPPES
	// file (~9 GB) takes minutes.
	Timeout time.Duration
}

// NewHandler returns the import endpoints' handler; timeout bounds one
// import (IMPORT_TIMEOUT).
func NewHandler(im *Importer, files *semaphore.Semaphore, timeout time.Duration) *Handler {
	return &Handler{Importer: im, Files: files, Timeout: timeout}
}

// Routes registers:
//
//	POST /admin/imports/:source   raw text/csv body, ?file_name=&file_date=YYYY-MM-DD&kind=&allow_shrink=
//	GET  /admin/imports           ?source=&limit=&cursor=
//	GET  /admin/imports/:id
func (h *Handler) Routes(r fiber.Router) {
	r.Post("/admin/imports/:source", h.upload)
	r.Get("/admin/imports", h.list)
	r.Get("/admin/imports/:id", h.get)
}

func (h *Handler) upload(c *fiber.Ctx) error {
	source := c.Params("source")
	if !sources.Known(source) {
		return apierr.Newf(http.StatusBadRequest, "unknown_source",
			"source %q is not one of %s", text.Clip(source, 40), strings.Join(sources.Names, ", "))
	}
	if !csvMediaType(c.Get(fiber.HeaderContentType)) {
		return apierr.New(http.StatusUnsupportedMediaType, "unsupported_media_type",
			"send the file as the raw body with Content-Type text/csv (or application/csv, text/plain)")
	}
	req := Request{
		Source:    source,
		FileName:  cmp.Or(c.Query("file_name"), c.Get("X-File-Name"), source+".csv"),
		Kind:      c.Query("kind"),
		Actor:     server.Actor(c),
		RequestID: server.RequestID(c),
	}
	if fd := c.Query("file_date"); fd != "" {
		t, err := time.Parse("2006-01-02", fd)
		if err != nil {
			return apierr.Invalid("file_date", "must be YYYY-MM-DD")
		}
		req.FileDate = &t
	}
	if v := c.Query("allow_shrink"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return apierr.Invalid("allow_shrink", "must be true or false")
		}
		req.AllowShrink = b
	}
	if req.Kind != "" && !slices.Contains(sources.KindsOf(h.Importer.Formats[source]), req.Kind) {
		return apierr.Invalid("kind", fmt.Sprintf("must be one of %s for %s",
			strings.Join(sources.KindsOf(h.Importer.Formats[source]), ", "), source))
	}
	// Keep the request's values (request id, trace) but not its deadline.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.UserContext()), h.Timeout)
	defer cancel()
	if err := h.Files.Acquire(ctx); err != nil {
		return apierr.Unavailable("file_operations_busy",
			"Too many file operations are running; retry in a moment.")
	}
	defer h.Files.Release()

	// With StreamRequestBody on, the body is read from the connection as the
	// CSV reader asks for it: memory stays constant whatever the file's size.
	req.Body = server.BodyStream(c)
	rec, err := h.Importer.Import(ctx, req)
	if err != nil {
		var le *sources.LineError
		var se *ShrinkError
		var ke *KindError
		switch {
		case errors.As(err, &le):
			return apierr.New(http.StatusUnprocessableEntity, "import_failed", le.Error())
		case errors.As(err, &se):
			return apierr.Newf(http.StatusConflict, "import_shrink_refused", "import %d refused: %s", rec.ID, se.Error())
		case errors.As(err, &ke):
			return apierr.New(http.StatusUnprocessableEntity, "import_kind_mismatch", ke.Error())
		case errors.Is(err, ErrNoBase):
			return apierr.Newf(http.StatusConflict, "no_active_version", "%s: %s", source, err.Error())
		case errors.Is(err, ErrBusy):
			return apierr.Newf(http.StatusConflict, "import_in_progress",
				"an import of %s is already loading; retry when it is done", source)
		case errors.Is(err, ErrUnknownSource):
			return apierr.Newf(http.StatusBadRequest, "unknown_source", "source %q is unknown", source)
		}
		return err // logged and rendered as 500 internal by the server's error handler
	}
	return c.JSON(rec)
}

// listCursor is the keyset position of GET /admin/imports (newest first).
type listCursor struct {
	ID int64 `json:"i"`
}

func (h *Handler) list(c *fiber.Ctx) error {
	source := c.Query("source")
	if source != "" && !sources.Known(source) {
		return apierr.Newf(http.StatusBadRequest, "unknown_source", "source %q is unknown", text.Clip(source, 40))
	}
	limit, err := page.Limit(c)
	if err != nil {
		return err
	}
	var cur listCursor
	ok, err := page.Decode(c, &cur)
	if err != nil {
		return err
	}
	if ok && cur.ID <= 0 {
		return apierr.BadRequest("invalid_cursor", "cursor is not one this API returned")
	}
	items, err := h.Importer.List(c.UserContext(), source, cur.ID, limit+1)
	if err != nil {
		return err
	}
	return c.JSON(page.Build(items, limit, func(r *Record) any { return listCursor{ID: r.ID} }))
}

func (h *Handler) get(c *fiber.Ctx) error {
	id, err := strconv.ParseInt(c.Params("id"), 10, 64)
	if err != nil || id <= 0 {
		return apierr.NotFound("no such import")
	}
	rec, err := h.Importer.Get(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(rec)
}

// csvMediaType accepts the types a CSV file is sent as (curl's default
// application/x-www-form-urlencoded, a JSON body, a multipart form are not
// the file).
func csvMediaType(ctype string) bool {
	mt, _, err := mime.ParseMediaType(ctype)
	if err != nil {
		return false
	}
	switch mt {
	case "text/csv", "application/csv", "text/plain":
		return true
	}
	return false
}
