package roster

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/provcred/credential/internal/providers"
	"github.com/provcred/platform/apierr"
	"github.com/provcred/platform/semaphore"
	"github.com/provcred/platform/server"
)

// maxErrors bounds the line errors one answer lists.
const maxErrors = 100

// ImportHandler serves POST /providers/import: a roster CSV body, parsed
// and validated whole, then upserted in one transaction. A roster with any
// bad row writes nothing and answers 422 listing the bad lines, so a fixed
// file can simply be sent again.
func ImportHandler(store *providers.Store, files *semaphore.Semaphore, maxProviders int, maxBytes int64) fiber.Handler {
	return func(c *fiber.Ctx) error {
		ctype := strings.ToLower(c.Get(fiber.HeaderContentType))
		if !strings.HasPrefix(ctype, "text/csv") && !strings.HasPrefix(ctype, "application/csv") &&
			!strings.HasPrefix(ctype, fiber.MIMEMultipartForm) {
			return apierr.New(fiber.StatusUnsupportedMediaType, "unsupported_media_type",
				"send the roster as text/csv, or as the file part of multipart/form-data")
		}
		if err := files.Acquire(c.UserContext()); err != nil {
			return apierr.Unavailable("file_operations_busy", "too many file operations are running; retry shortly")
		}
		defer files.Release()
		res, err := ParseRequest(c, maxProviders, maxBytes)
		if err != nil {
			return err
		}
		out, err := store.Upsert(c.UserContext(), providers.ActorOf(c), res.Providers)
		if err != nil {
			return err
		}
		return c.JSON(fiber.Map{"rows": res.Rows, "providers": len(res.Providers), "created": out.Created, "updated": out.Updated, "ids": out.IDs})
	}
}

// ParseRequest parses a roster body (streamed when the server streams it):
// the body itself, or with a multipart/form-data Content-Type its `file`
// part (what an HTML form or the original service's clients send). Every
// problem is a 4xx: 413 past maxBytes, 422 with the bad lines listed.
func ParseRequest(c *fiber.Ctx, maxProviders int, maxBytes int64) (*Result, error) {
	lr := &limitedReader{r: server.BodyStream(c), left: maxBytes}
	src, err := csvPart(c.Get(fiber.HeaderContentType), lr)
	if lr.exceeded {
		return nil, apierr.Newf(fiber.StatusRequestEntityTooLarge, "body_too_large", "the roster is larger than %d bytes", maxBytes)
	}
	if err != nil {
		return nil, err
	}
	res, err := Parse(src, time.Now(), maxProviders, maxErrors)
	if lr.exceeded {
		return nil, apierr.Newf(fiber.StatusRequestEntityTooLarge, "body_too_large", "the roster is larger than %d bytes", maxBytes)
	}
	if le, ok := err.(LineError); ok {
		return nil, &apierr.Error{Status: fiber.StatusUnprocessableEntity, Code: "import_failed", Detail: le.Error()}
	}
	if err != nil {
		return nil, err
	}
	if len(res.Errors) > 0 {
		return nil, &apierr.Error{Status: fiber.StatusUnprocessableEntity, Code: "import_failed", Errors: res.Errors,
			Detail: fmt.Sprintf("%d bad row(s), nothing was written; first: %s", len(res.Errors), res.Errors[0].Error())}
	}
	return res, nil
}

// csvPart returns body itself, or for multipart/form-data its part named
// "file", read as it streams in.
func csvPart(ctype string, body io.Reader) (io.Reader, error) {
	mt, params, err := mime.ParseMediaType(ctype)
	if err != nil || mt != fiber.MIMEMultipartForm {
		return body, nil
	}
	if params["boundary"] == "" {
		return nil, apierr.BadRequest("bad_request", "the multipart/form-data Content-Type has no boundary")
	}
	mr := multipart.NewReader(body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil, &apierr.Error{Status: fiber.StatusUnprocessableEntity, Code: "import_failed",
				Detail: `the multipart body has no "file" part holding the roster CSV`}
		}
		if err != nil {
			return nil, apierr.BadRequest("bad_request", "malformed multipart body: "+err.Error())
		}
		if part.FormName() == "file" {
			return part, nil
		}
	}
}

type limitedReader struct {
	r        io.Reader
	left     int64
	exceeded bool
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		l.exceeded = true
		return 0, io.EOF
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left <= 0 && err == nil {
		// Probe: is there more than the limit?
		var one [1]byte
		if m, _ := l.r.Read(one[:]); m > 0 {
			l.exceeded = true
		}
	}
	return n, err
}
