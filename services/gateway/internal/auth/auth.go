// Package auth checks API keys and roles. Keys are configured only as the
// hex SHA-256 of the secret ("id:role:sha256hex"), so a leaked config or
// environment does not leak a usable key; the gateway hashes what the client
// presents and looks the hash up.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/provcred/platform/filewatch"
)

// Role is what a key may do. Roles are ordered: each includes the ones below.
type Role int

// Roles, weakest first.
const (
	RoleNone Role = iota
	RoleReader
	RoleOperator
	RoleAdmin
)

// ParseRole reads "reader", "operator" or "admin".
func ParseRole(s string) (Role, error) {
	switch s {
	case "reader":
		return RoleReader, nil
	case "operator":
		return RoleOperator, nil
	case "admin":
		return RoleAdmin, nil
	}
	return RoleNone, fmt.Errorf("unknown role %q (want reader, operator or admin)", s)
}

func (r Role) String() string {
	switch r {
	case RoleReader:
		return "reader"
	case RoleOperator:
		return "operator"
	case RoleAdmin:
		return "admin"
	}
	return "none"
}

// Key is one configured API key.
type Key struct {
	ID   string
	Role Role
	// Hash is the lowercase hex SHA-256 of the secret.
	Hash string
}

// KeyPrefix starts every generated key, so a key found in a log or a repo
// is recognisable (and greppable by secret scanners).
const KeyPrefix = "pc_"

// ParseKeys reads key entries "id:role:sha256hex" separated by commas or
// newlines; blank lines and text after '#' are ignored. source names the
// variable or file in errors. Errors never echo a hash.
func ParseKeys(s, source string) ([]Key, error) {
	var keys []Key
	lines := strings.Split(s, "\n")
	for ln, line := range lines {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		for _, entry := range strings.Split(line, ",") {
			entry = strings.TrimSpace(entry)
			if entry == "" {
				continue
			}
			k, err := parseEntry(entry)
			if err != nil {
				where := source
				if len(lines) > 1 {
					where = fmt.Sprintf("%s line %d", source, ln+1)
				}
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			keys = append(keys, k)
		}
	}
	return keys, nil
}

func parseEntry(e string) (Key, error) {
	parts := strings.Split(e, ":")
	if len(parts) != 3 {
		return Key{}, errors.New("an API key entry must be id:role:sha256hex")
	}
	id, role, hash := strings.TrimSpace(parts[0]), strings.TrimSpace(parts[1]), strings.ToLower(strings.TrimSpace(parts[2]))
	if !validID(id) {
		return Key{}, fmt.Errorf("key id %q: want 1-64 characters of A-Z a-z 0-9 _ . -", id)
	}
	r, err := ParseRole(role)
	if err != nil {
		return Key{}, fmt.Errorf("key %q: %w", id, err)
	}
	if len(hash) != 64 {
		return Key{}, fmt.Errorf("key %q: the hash must be 64 hex characters (SHA-256), got %d characters", id, len(hash))
	}
	if _, err := hex.DecodeString(hash); err != nil {
		return Key{}, fmt.Errorf("key %q: the hash is not hexadecimal", id)
	}
	return Key{ID: id, Role: r, Hash: hash}, nil
}

func validID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '.', c == '-':
		default:
			return false
		}
	}
	return true
}

// CheckUnique fails when two entries share an id or a hash: either would
// make the audit trail's actor ambiguous.
func CheckUnique(keys []Key) error {
	ids := map[string]bool{}
	hashes := map[string]string{}
	for _, k := range keys {
		if ids[k.ID] {
			return fmt.Errorf("key id %q is configured twice", k.ID)
		}
		ids[k.ID] = true
		if other, ok := hashes[k.Hash]; ok {
			return fmt.Errorf("keys %q and %q have the same secret", other, k.ID)
		}
		hashes[k.Hash] = k.ID
	}
	return nil
}

// Store looks presented keys up by hash. Its keys can be replaced while it
// serves (API_KEYS_FILE reloads).
type Store struct {
	byHash atomic.Pointer[map[string]Key]
}

// NewStore indexes keys.
func NewStore(keys []Key) *Store {
	s := &Store{}
	s.Replace(keys)
	return s
}

// Replace puts keys in force at once, for every lookup after it.
func (s *Store) Replace(keys []Key) {
	m := make(map[string]Key, len(keys))
	for _, k := range keys {
		m[k.Hash] = k
	}
	s.byHash.Store(&m)
}

// Len is the number of keys in force.
func (s *Store) Len() int { return len(*s.byHash.Load()) }

// Lookup returns the key whose secret is presented. The comparison is a map
// lookup on the secret's SHA-256, so its timing says nothing about the
// stored hashes.
func (s *Store) Lookup(secret string) (Key, bool) {
	if secret == "" {
		return Key{}, false
	}
	k, ok := (*s.byHash.Load())[Hash(secret)]
	return k, ok
}

// WatchFile reads path every interval and, when its content changed and
// holds valid keys, puts them in force together with fixed (the API_KEYS
// entries). A Kubernetes Secret mounted as a file is swapped atomically
// (a symlink) when the Secret changes, so a new or revoked key takes effect
// within the kubelet's sync period plus interval, without a restart. A file
// that cannot be read or parsed, or leaves no key at all, keeps the keys in
// force: it is logged at error and counted by failed. Returns when ctx ends.
func (s *Store) WatchFile(ctx context.Context, path string, fixed []Key, interval time.Duration, log *slog.Logger, failed func()) {
	last, _ := os.ReadFile(path) // what the configuration read at start
	filewatch.Poll(ctx, path, interval, last, func(b []byte) error {
		keys, err := ParseKeys(string(b), "API_KEYS_FILE")
		if err != nil {
			return err
		}
		keys = append(append([]Key{}, fixed...), keys...)
		if err := CheckUnique(keys); err != nil {
			return err
		}
		if len(keys) == 0 {
			return errors.New("no API keys left")
		}
		s.Replace(keys)
		log.Info("API_KEYS_FILE reloaded", "file", path, "keys", len(keys))
		return nil
	}, func(err error) {
		failed()
		log.Error("API_KEYS_FILE not reloaded; keeping the keys in force", "file", path, "err", err.Error(), "keys", s.Len())
	})
}

// Hash is the hex SHA-256 of a secret, as configured in API_KEYS.
func Hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// BearerToken extracts the token from an Authorization header value
// ("Bearer <token>", scheme case-insensitive). ok is false when absent or malformed.
func BearerToken(h string) (string, bool) {
	scheme, tok, found := strings.Cut(strings.TrimSpace(h), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	if tok == "" || strings.ContainsAny(tok, " \t") {
		return "", false
	}
	return tok, true
}

// Generate makes a fresh key for id and role: the secret to hand to the
// client (32 random bytes, base64url, "pc_" prefix) and the API_KEYS entry
// to configure.
func Generate(id string, role Role) (secret, entry string, err error) {
	if !validID(id) {
		return "", "", fmt.Errorf("key id %q: want 1-64 characters of A-Z a-z 0-9 _ . -", id)
	}
	if role == RoleNone {
		return "", "", errors.New("a role is required (reader, operator or admin)")
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("random: %w", err)
	}
	secret = KeyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return secret, fmt.Sprintf("%s:%s:%s", id, role, Hash(secret)), nil
}
