package batch

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/provcred/platform/apierr"
	"github.com/provcred/platform/jsonbody"
)

// maxIDLength bounds one provider id (ids are `provider_001` style or UUIDs).
const maxIDLength = 200

// ParseIDs reads a `{"provider_ids":[...]}` body strictly: unknown fields,
// non-string or blank ids are 422s naming the field, malformed JSON a 400.
// Ids are trimmed and de-duplicated (first occurrence kept); dups counts
// the repeats. Past maxProviders distinct ids it fails with 413.
func ParseIDs(body []byte, maxProviders int) (ids []string, dups int, err error) {
	var in struct {
		ProviderIDs []json.RawMessage `json:"provider_ids"`
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, 0, apierr.BadRequest("invalid_json", `the body is empty; send {"provider_ids":[...]} or a CSV roster (Content-Type: text/csv)`)
	}
	if err := jsonbody.Decode(body, &in); err != nil {
		// A body of another JSON type (an array of ids) has long been a
		// 422 about provider_ids here; only the body's syntax is a 400.
		if e, ok := apierr.As(err); ok && (e.Field == "provider_ids" || e.Detail == jsonbody.NotAnObject) {
			return nil, 0, apierr.Invalid("provider_ids", "must be a JSON array of provider id strings")
		}
		if e, ok := apierr.As(err); ok && e.Field != "" {
			return nil, 0, apierr.Invalid(e.Field, "is not a known field (send provider_ids)")
		}
		return nil, 0, err
	}
	if len(in.ProviderIDs) == 0 {
		return nil, 0, apierr.Invalid("provider_ids", "must list at least one provider id")
	}
	seen := make(map[string]struct{}, len(in.ProviderIDs))
	ids = make([]string, 0, len(in.ProviderIDs))
	for i, raw := range in.ProviderIDs {
		var id string
		if err := json.Unmarshal(raw, &id); err != nil {
			return nil, 0, apierr.Invalid(fmt.Sprintf("provider_ids[%d]", i), "must be a string")
		}
		id = strings.TrimSpace(id)
		if msg := checkID(id); msg != "" {
			return nil, 0, apierr.Invalid(fmt.Sprintf("provider_ids[%d]", i), msg)
		}
		if _, ok := seen[id]; ok {
			dups++
			continue
		}
		seen[id] = struct{}{}
		ids = append(ids, id)
		if len(ids) > maxProviders {
			return nil, 0, tooLarge(countDistinctFrom(in.ProviderIDs, seen), maxProviders)
		}
	}
	return ids, dups, nil
}

// countDistinctFrom finishes counting distinct ids for the 413 message.
func countDistinctFrom(raws []json.RawMessage, seen map[string]struct{}) int {
	for _, raw := range raws {
		var id string
		if json.Unmarshal(raw, &id) == nil {
			seen[strings.TrimSpace(id)] = struct{}{}
		}
	}
	return len(seen)
}

func checkID(id string) string {
	switch {
	case id == "":
		return "must not be blank"
	case len(id) > maxIDLength:
		return "must be at most " + strconv.Itoa(maxIDLength) + " characters"
	case !utf8.ValidString(id):
		return "must be valid UTF-8"
	}
	for _, r := range id {
		if unicode.IsControl(r) {
			return "must not contain control characters"
		}
	}
	return ""
}

// HashIDs identifies an id submission for Idempotency-Key comparison: the
// same ids in the same order hash the same, whatever the JSON spacing.
func HashIDs(source string, ids []string) string {
	h := sha256.New()
	h.Write([]byte(source))
	for _, id := range ids {
		h.Write([]byte{0})
		h.Write([]byte(id))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ParseWait reads `?wait=`: a Go duration ("30s", "1m") or whole seconds
// ("30"), at least 0; values past limit are cut to limit (BATCH_WAIT_MAX).
func ParseWait(s string, limit time.Duration) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	var d time.Duration
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 || n > int64(24*time.Hour/time.Second) {
			return 0, apierr.Invalid("wait", "must be from 0 to "+limit.String())
		}
		d = time.Duration(n) * time.Second
	} else {
		d, err = time.ParseDuration(s)
		if err != nil {
			return 0, apierr.Invalid("wait", `must be a duration such as "30s" or a number of seconds`)
		}
		if d < 0 {
			return 0, apierr.Invalid("wait", "must not be negative")
		}
	}
	return min(d, limit), nil
}

// ValidState checks a ?state= filter.
func ValidState(st string) bool {
	for _, s := range States {
		if s == st {
			return true
		}
	}
	return false
}
