// Package page implements the opaque cursor pagination every list endpoint
// uses: `?limit=N&cursor=C` in, `{"items":[...],"next_cursor":"..."}` out.
// A cursor is the last row's sort key, base64url-encoded JSON; clients must
// treat it as opaque.
package page

import (
	"encoding/base64"
	"encoding/json"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/provcred/platform/apierr"
)

// Defaults for Limit.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// Page is a list response.
type Page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// Limit reads ?limit (1..MaxLimit, default DefaultLimit).
func Limit(c *fiber.Ctx) (int, error) {
	s := c.Query("limit")
	if s == "" {
		return DefaultLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxLimit {
		return 0, apierr.Invalid("limit", "must be a whole number from 1 to "+strconv.Itoa(MaxLimit))
	}
	return n, nil
}

// Encode makes a cursor from a sort key.
func Encode(key any) string {
	b, _ := json.Marshal(key)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Decode reads ?cursor into key; it reports false when there is none.
func Decode(c *fiber.Ctx, key any) (bool, error) {
	s := c.Query("cursor")
	if s == "" {
		return false, nil
	}
	return true, DecodeString(s, key)
}

// DecodeString reads a cursor made by Encode into key.
func DecodeString(s string, key any) error {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || json.Unmarshal(b, key) != nil {
		return apierr.BadRequest("invalid_cursor", "cursor is not one this API returned")
	}
	return nil
}

// Build trims a result fetched with limit+1 rows into a page, making the
// cursor from the last kept item.
func Build[T any](rows []T, limit int, key func(T) any) Page[T] {
	p := Page[T]{Items: rows}
	if rows == nil {
		p.Items = []T{}
	}
	if len(rows) > limit {
		p.Items = rows[:limit]
		p.NextCursor = Encode(key(rows[limit-1]))
	}
	return p
}
