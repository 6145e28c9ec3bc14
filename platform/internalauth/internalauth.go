// Package internalauth signs the calls the gateway (and chat, on its
// caller's behalf) makes to the services, and verifies them there.
//
// The gateway is the only place an API key is checked; a service believes
// the actor, role and request id it is told only when they come with an
// HMAC-SHA256 signature made with a secret shared by the platform's
// processes (INTERNAL_AUTH_KEYS). The signature covers, besides those
// three, the method, the request target (path and query, as sent on the
// wire) and a timestamp, so it cannot be moved to another route, given to
// another actor, or replayed once MaxSkew has passed.
//
//	X-Internal-Timestamp: 1765123456
//	X-Internal-Signature: v1,<key id>,<base64url HMAC-SHA256 of the canonical string>
//
// Up to two keys are configured for rotation: the first signs, either
// verifies. The signature is not encryption and does not cover the body:
// it proves who sent a call, not that nobody saw it.
package internalauth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Header names.
const (
	HeaderSignature = "X-Internal-Signature"
	HeaderTimestamp = "X-Internal-Timestamp"
	// HeaderRefused marks a refusal (401 Code), so the gateway can tell a
	// service refusing its signature from any other 401.
	HeaderRefused = "X-Internal-Auth"
)

// Code is the error code of a refused internal call (401). Only a caller
// that bypasses the gateway can see it.
const Code = "unauthenticated_internal"

const (
	// MaxMaxSkew bounds the setting: a longer window is a longer replay window.
	MaxMaxSkew = 5 * time.Minute
	// MinSecretLen is the shortest secret accepted, in bytes.
	MinSecretLen = 32
	// MaxKeys is how many keys may be configured at once (rotation: the
	// new and the old).
	MaxKeys = 2
	version = "v1"
)

var kidPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,32}$`)

// Key is one shared secret with its id (named in every signature, so the
// verifier knows which of its keys to try).
type Key struct {
	ID     string
	secret []byte
}

// NewKey checks and builds a key.
func NewKey(id string, secret []byte) (Key, error) {
	if !kidPattern.MatchString(id) {
		return Key{}, fmt.Errorf("key id %q: want 1-32 letters, digits, '.', '_' or '-'", id)
	}
	if len(secret) < MinSecretLen {
		return Key{}, fmt.Errorf("key %q: secret is %d bytes, want at least %d", id, len(secret), MinSecretLen)
	}
	return Key{ID: id, secret: append([]byte(nil), secret...)}, nil
}

// ParseKeys reads "<id>:<secret>" entries separated by commas or newlines
// (blank lines and lines starting with # are skipped). The first entry is
// the signing key. A secret is kept as written (base64 text is fine) and
// may hold no comma or white space. Errors never quote a secret.
func ParseKeys(s string) ([]Key, error) {
	var keys []Key
	seen := map[string]bool{}
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		for _, entry := range strings.Split(line, ",") {
			entry = strings.TrimSpace(entry)
			if entry == "" {
				continue
			}
			id, secret, ok := strings.Cut(entry, ":")
			if !ok {
				return nil, fmt.Errorf("entry %d: want <id>:<secret>", len(keys)+1)
			}
			if strings.ContainsAny(secret, " \t\r") {
				return nil, fmt.Errorf("key %q: the secret holds white space", id)
			}
			k, err := NewKey(id, []byte(secret))
			if err != nil {
				return nil, err
			}
			if seen[id] {
				return nil, fmt.Errorf("key id %q appears twice", id)
			}
			seen[id] = true
			keys = append(keys, k)
		}
	}
	switch {
	case len(keys) == 0:
		return nil, errors.New("no key")
	case len(keys) > MaxKeys:
		return nil, fmt.Errorf("%d keys, at most %d (the signing key and the one being retired)", len(keys), MaxKeys)
	}
	return keys, nil
}

// Identity is what a signed call tells the service: who the gateway
// authenticated, with which role, under which request id.
type Identity struct {
	Actor, Role, RequestID string
}

// Keyring signs and verifies. Its keys can be replaced while it is in use
// (Reload), so a rotated Secret takes effect without a restart.
type Keyring struct {
	keys    atomic.Pointer[[]Key]
	maxSkew time.Duration
	// loaded is the keys file as Load read it (Watch compares with it).
	loaded []byte
	// Now is the clock (tests move it).
	Now func() time.Time
}

// NewKeyring builds a keyring; maxSkew (INTERNAL_AUTH_MAX_SKEW) is how far
// a signature's timestamp may be from the verifier's clock, either way.
func NewKeyring(keys []Key, maxSkew time.Duration) (*Keyring, error) {
	if maxSkew <= 0 || maxSkew > MaxMaxSkew {
		return nil, fmt.Errorf("max skew %s: want more than 0 and at most %s", maxSkew, MaxMaxSkew)
	}
	k := &Keyring{maxSkew: maxSkew, Now: time.Now}
	if err := k.SetKeys(keys); err != nil {
		return nil, err
	}
	return k, nil
}

// SetKeys replaces the keys (the first signs).
func (k *Keyring) SetKeys(keys []Key) error {
	if len(keys) == 0 || len(keys) > MaxKeys {
		return fmt.Errorf("want 1 to %d keys, got %d", MaxKeys, len(keys))
	}
	cp := append([]Key(nil), keys...)
	k.keys.Store(&cp)
	return nil
}

// KeyIDs lists the configured key ids, the signing one first (for logs:
// never the secrets).
func (k *Keyring) KeyIDs() []string {
	var ids []string
	for _, key := range *k.keys.Load() {
		ids = append(ids, key.ID)
	}
	return ids
}

// MaxSkew is the accepted distance between a signature's time and now.
func (k *Keyring) MaxSkew() time.Duration { return k.maxSkew }

// canonical is the signed string. Header values cannot hold a newline, and
// Sign refuses one anywhere, so fields cannot run into each other.
func canonical(kid, ts, method, target string, id Identity) string {
	return strings.Join([]string{"provcred-internal", version, kid, ts, method, target, id.Actor, id.Role, id.RequestID}, "\n")
}

func mac(secret []byte, s string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(s))
	return m.Sum(nil)
}

// Sign returns the X-Internal-Timestamp and X-Internal-Signature values
// for a call of method on target (the request target as sent: path and
// query) carrying id.
func (k *Keyring) Sign(method, target string, id Identity) (timestamp, signature string, err error) {
	for _, f := range []string{method, target, id.Actor, id.Role, id.RequestID} {
		if strings.ContainsAny(f, "\r\n") {
			return "", "", errors.New("internalauth: a signed field holds a line break")
		}
	}
	key := (*k.keys.Load())[0]
	ts := strconv.FormatInt(k.Now().Unix(), 10)
	sum := mac(key.secret, canonical(key.ID, ts, method, target, id))
	return ts, version + "," + key.ID + "," + base64.RawURLEncoding.EncodeToString(sum), nil
}

// Reasons a call is refused (wrapped in the error Verify returns).
var (
	ErrMissing    = errors.New("the call is not signed")
	ErrMalformed  = errors.New("the signature headers are malformed")
	ErrUnknownKey = errors.New("the signature names a key this service does not hold")
	ErrStale      = errors.New("the signature's timestamp is outside the accepted window")
	ErrForged     = errors.New("the signature does not match the call")
)

// Verify checks a call's signature headers against its method, target and
// the identity headers it carries.
func (k *Keyring) Verify(method, target string, id Identity, timestamp, signature string) error {
	if timestamp == "" && signature == "" {
		return ErrMissing
	}
	parts := strings.Split(signature, ",")
	if len(parts) != 3 || parts[0] != version {
		return ErrMalformed
	}
	sum, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sum) != sha256.Size {
		return ErrMalformed
	}
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil || len(timestamp) > 12 {
		return ErrMalformed
	}
	var key *Key
	for _, kk := range *k.keys.Load() {
		if kk.ID == parts[1] {
			key = &kk
			break
		}
	}
	if key == nil {
		return ErrUnknownKey
	}
	// The MAC first: only a genuine call is told that its time is off (a
	// clock to fix), and a forged one is never told more than that.
	if !hmac.Equal(sum, mac(key.secret, canonical(key.ID, timestamp, method, target, id))) {
		return ErrForged
	}
	if d := k.Now().Sub(time.Unix(sec, 0)); d > k.maxSkew || d < -k.maxSkew {
		return ErrStale
	}
	return nil
}

// SignRequest signs a net/http request for id: it sets the identity
// headers the services read (X-Actor-Id, X-Actor-Role, X-Request-Id) and
// the signature over them. The request's URL must be final.
func (k *Keyring) SignRequest(req *http.Request, id Identity) error {
	ts, sig, err := k.Sign(req.Method, req.URL.RequestURI(), id)
	if err != nil {
		return err
	}
	setIdentity(req.Header, id)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, sig)
	return nil
}

// Identity header names (the platform server reads them; kept here too so
// this package stands alone).
const (
	HeaderActor     = "X-Actor-Id"
	HeaderRole      = "X-Actor-Role"
	HeaderRequestID = "X-Request-Id"
)

func setIdentity(h http.Header, id Identity) {
	h.Del(HeaderActor)
	h.Del(HeaderRole)
	if id.Actor != "" {
		h.Set(HeaderActor, id.Actor)
	}
	if id.Role != "" {
		h.Set(HeaderRole, id.Role)
	}
	if id.RequestID != "" {
		h.Set(HeaderRequestID, id.RequestID)
	}
}

// Transport signs every request it sends for the identity Identity gives
// (tests and tools calling a service directly as the gateway would).
type Transport struct {
	Keyring  *Keyring
	Identity Identity
	// Base is the transport underneath (nil: http.DefaultTransport).
	Base http.RoundTripper
}

// RoundTrip signs a copy of req and sends it.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	id := t.Identity
	if id.RequestID == "" {
		id.RequestID = r.Header.Get(HeaderRequestID)
	}
	if err := t.Keyring.SignRequest(r, id); err != nil {
		return nil, err
	}
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(r)
}

// Settings are the process settings (config.Base holds them).
type Settings struct {
	// Keys is INTERNAL_AUTH_KEYS.
	Keys string
	// KeysFile is INTERNAL_AUTH_KEYS_FILE (a mounted Secret); it is read
	// again when it changes.
	KeysFile string
	// MaxSkew is INTERNAL_AUTH_MAX_SKEW.
	MaxSkew time.Duration
	// InsecureDev is INTERNAL_AUTH_INSECURE_DEV: run without a key, trusting
	// identity headers from anyone who can connect.
	InsecureDev bool
}

// ErrNoKeys is a process started with neither keys nor the dev setting.
var ErrNoKeys = errors.New("INTERNAL_AUTH_KEYS (or INTERNAL_AUTH_KEYS_FILE) is required: the services accept only calls signed with it; " +
	"set INTERNAL_AUTH_INSECURE_DEV=true to run without it on a development machine")

// Check validates the settings' form without reading the file.
func (s Settings) Check() error {
	if s.Keys != "" && s.KeysFile != "" {
		return errors.New("INTERNAL_AUTH_KEYS and INTERNAL_AUTH_KEYS_FILE: set one, not both")
	}
	if s.MaxSkew <= 0 || s.MaxSkew > MaxMaxSkew {
		return fmt.Errorf("INTERNAL_AUTH_MAX_SKEW: want more than 0 and at most %s, got %s", MaxMaxSkew, s.MaxSkew)
	}
	if s.Keys != "" {
		if _, err := ParseKeys(s.Keys); err != nil {
			return fmt.Errorf("INTERNAL_AUTH_KEYS: %w", err)
		}
	}
	return nil
}

// Load builds the keyring the settings describe. It returns (nil, nil)
// only when no key is set and InsecureDev is true; with neither it returns
// ErrNoKeys. Keys win over InsecureDev.
func Load(s Settings) (*Keyring, error) {
	if err := s.Check(); err != nil {
		return nil, err
	}
	raw, name := s.Keys, "INTERNAL_AUTH_KEYS"
	if s.KeysFile != "" {
		b, err := os.ReadFile(s.KeysFile)
		if err != nil {
			return nil, fmt.Errorf("INTERNAL_AUTH_KEYS_FILE: %w", err)
		}
		raw, name = string(b), "INTERNAL_AUTH_KEYS_FILE"
	}
	if raw == "" {
		if s.InsecureDev {
			return nil, nil
		}
		return nil, ErrNoKeys
	}
	keys, err := ParseKeys(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	k, err := NewKeyring(keys, s.MaxSkew)
	if err != nil {
		return nil, err
	}
	if s.KeysFile != "" {
		k.loaded = []byte(raw)
	}
	return k, nil
}

// Generate returns a fresh INTERNAL_AUTH_KEYS entry "<id>:<secret>" with a
// random 32-byte secret (for tools and tests that start the platform).
func Generate(id string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	entry := id + ":" + base64.RawURLEncoding.EncodeToString(b)
	if _, err := ParseKeys(entry); err != nil {
		return "", err
	}
	return entry, nil
}
