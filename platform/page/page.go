// Package page implements the opaque cursor pagination every list endpoint
// uses: `?limit=N&cursor=C` in, `{"items":[...],"next_cursor":"..."}` out.
//
// A cursor is the last row's sort key as JSON, sealed with AES-256-GCM under
// a key derived from CURSOR_SECRET (SetSecret): a client can neither read it
// (the /providers key holds a last name, which must not sit in URLs, browser
// history and ingress logs) nor forge or alter one (a position the API never
// issued is 400 invalid_cursor). The nonce is synthetic (an HMAC of the
// plaintext), so one position always gives the same cursor.
package page

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"sync/atomic"

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

// MinSecretLen is the shortest CURSOR_SECRET SetSecret takes.
const MinSecretLen = 32

// sealer is the cursor key: AES-GCM for the payload, HMAC for the nonce.
type sealer struct {
	aead  cipher.AEAD
	nonce []byte // HMAC-SHA256 key of the synthetic nonce
}

var current atomic.Pointer[sealer]

// aad binds a sealed payload to its purpose (and format version).
var aad = []byte("provcred page cursor v1")

func init() {
	// Until SetSecret is called (tests, or a service without
	// CURSOR_SECRET): a random key, so cursors hold only in this process.
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic(err)
	}
	current.Store(newSealer(k))
}

// SetSecret derives the cursor key from secret (at least MinSecretLen
// bytes). Every replica of every service must use the same secret for a
// cursor to survive a restart or land on another replica.
func SetSecret(secret string) error {
	if len(secret) < MinSecretLen {
		return errors.New("CURSOR_SECRET: must be at least 32 bytes (e.g. openssl rand -base64 32)")
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("provcred page cursor key"))
	current.Store(newSealer(m.Sum(nil)))
	return nil
}

func newSealer(key []byte) *sealer {
	block, err := aes.NewCipher(key[:32])
	if err != nil {
		panic(err) // 32 bytes is always a valid AES key
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte("nonce"))
	return &sealer{aead: aead, nonce: m.Sum(nil)}
}

// Encode makes a cursor from a sort key.
func Encode(key any) string {
	b, _ := json.Marshal(key)
	s := current.Load()
	m := hmac.New(sha256.New, s.nonce)
	m.Write(b)
	nonce := m.Sum(nil)[:s.aead.NonceSize()]
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, b, aad))
}

// Decode reads ?cursor into key; it reports false when there is none.
func Decode(c *fiber.Ctx, key any) (bool, error) {
	s := c.Query("cursor")
	if s == "" {
		return false, nil
	}
	return true, DecodeString(s, key)
}

var errInvalid = apierr.BadRequest("invalid_cursor", "cursor is not one this API returned")

// DecodeString reads a cursor made by Encode into key. A cursor made under
// another key (a forged or altered one, or one from before CURSOR_SECRET
// changed) is 400 invalid_cursor.
func DecodeString(str string, key any) error {
	raw, err := base64.RawURLEncoding.DecodeString(str)
	s := current.Load()
	n := s.aead.NonceSize()
	if err != nil || len(raw) < n+s.aead.Overhead() {
		return errInvalid
	}
	b, err := s.aead.Open(nil, raw[:n], raw[n:], aad)
	// A NUL never comes from a row (PostgreSQL text refuses it), so a
	// cursor holding one is not ours whatever its seal says.
	if err != nil || bytes.Contains(b, []byte(`\u0000`)) || json.Unmarshal(b, key) != nil {
		return errInvalid
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
