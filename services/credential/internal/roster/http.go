package roster

import (
	"fmt"
	"io"
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
		ctype := c.Get(fiber.HeaderContentType)
		if !strings.HasPrefix(ctype, "text/csv") && !strings.HasPrefix(ctype, "application/csv") {
			return apierr.New(fiber.StatusUnsupportedMediaType, "unsupported_media_type", "send the roster as text/csv")
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

// ParseRequest parses a roster body (streamed when the server streams it),
// turning every problem into a 4xx: 413 past maxBytes, 422 with the bad
// lines listed.
func ParseRequest(c *fiber.Ctx, maxProviders int, maxBytes int64) (*Result, error) {
	lr := &limitedReader{r: server.BodyStream(c), left: maxBytes}
	res, err := Parse(lr, time.Now(), maxProviders, maxErrors)
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
