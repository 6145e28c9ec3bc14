// Package reqtext refuses requests whose text parts cannot be stored: the
// path, query parameters and the headers the service writes to the database
// must be valid UTF-8 without NUL characters. PostgreSQL rejects such text
// (SQLSTATE 22021) wherever it is compared or stored, which would otherwise
// surface as a 500 from whichever handler touched it first.
package reqtext

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/provcred/platform/apierr"
	"github.com/provcred/platform/page"
	"github.com/provcred/platform/server"
	"github.com/provcred/platform/text"
)

// StoredHeaders are the request headers handlers pass to the database
// (request id and actor into the audit log, idempotency key and file name
// into their tables).
var StoredHeaders = []string{server.HeaderRequestID, server.HeaderActor, server.HeaderRole, "Idempotency-Key", "X-File-Name"}

// Guard is a middleware answering 400 bad_request, naming the offending
// part but not echoing its value, when a path, query parameter or stored
// header is not valid UTF-8 or holds a NUL.
func Guard(c *fiber.Ctx) error {
	if err := Check(c); err != nil {
		return err
	}
	return c.Next()
}

// Check applies Guard's rules to one request.
func Check(c *fiber.Ctx) error {
	if !storable([]byte(c.Path())) {
		return apierr.BadRequest("bad_request", "the path must be valid UTF-8 without NUL characters")
	}
	var bad string
	c.Context().QueryArgs().VisitAll(func(k, v []byte) {
		if bad == "" && (!storable(k) || !storable(v)) {
			bad = string(bytes.ToValidUTF8(bytes.ReplaceAll(k, []byte{0}, nil), []byte("\ufffd")))
		}
	})
	if bad != "" {
		return apierr.BadRequest("bad_request", fmt.Sprintf("query parameter %q must be valid UTF-8 without NUL characters", text.Clip(bad, 40)))
	}
	for _, h := range StoredHeaders {
		if !storable(c.Request().Header.Peek(h)) {
			return apierr.BadRequest("bad_request", "header "+h+" must be valid UTF-8 without NUL characters")
		}
	}
	return nil
}

func storable(b []byte) bool { return utf8.Valid(b) && bytes.IndexByte(b, 0) < 0 }

// DecodeCursor is page.Decode (which also refuses a cursor holding a NUL,
// which would otherwise reach PostgreSQL and fail there).
func DecodeCursor(c *fiber.Ctx, key any) (bool, error) {
	return page.Decode(c, key)
}
