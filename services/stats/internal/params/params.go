// Package params reads and validates a report's query parameters. Every
// problem is a 400 invalid_parameter naming the parameter, so a client (or a
// person at a spreadsheet) knows what to fix; a name the report does not
// take is refused rather than ignored, so a typo never silently changes
// the answer.
package params

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/provcred/platform/apierr"
	"github.com/provcred/platform/page"
	"github.com/provcred/platform/text"
)

// MaxRange is the longest from..to a report covers.
const MaxRangeYears = 2

// Invalid is the 400 every bad parameter gets.
func Invalid(field, detail string) *apierr.Error {
	return &apierr.Error{Status: http.StatusBadRequest, Code: "invalid_parameter", Detail: field + ": " + detail, Field: field}
}

// Query is a request's parameters, each given at most once.
type Query struct {
	vals map[string]string
}

// Parse reads c's query string, refusing names not in allowed and names
// given twice.
func Parse(c *fiber.Ctx, allowed ...string) (*Query, error) {
	q := &Query{vals: map[string]string{}}
	ok := map[string]bool{}
	for _, a := range allowed {
		ok[a] = true
	}
	var err error
	c.Context().QueryArgs().VisitAll(func(k, v []byte) {
		if err != nil {
			return
		}
		name := string(k)
		switch {
		case !utf8.ValidString(name) || len(name) > 64:
			err = Invalid("query", "parameter names must be short UTF-8 text")
		case !ok[name]:
			sorted := append([]string(nil), allowed...)
			sort.Strings(sorted)
			err = Invalid(name, "unknown parameter; this report takes "+strings.Join(sorted, ", "))
		case q.has(name):
			err = Invalid(name, "given more than once")
		case !utf8.Valid(v):
			err = Invalid(name, "must be UTF-8 text")
		default:
			q.vals[name] = string(v)
		}
	})
	if err != nil {
		return nil, err
	}
	return q, nil
}

// FromValues builds a Query from already split values (tests, tools).
func FromValues(vals map[string]string) *Query { return &Query{vals: vals} }

func (q *Query) has(name string) bool { _, ok := q.vals[name]; return ok }

// Get returns the raw value ("" when absent).
func (q *Query) Get(name string) string { return q.vals[name] }

// Enum reads name as one of values (def when absent).
func (q *Query) Enum(name, def string, values ...string) (string, error) {
	v, ok := q.vals[name]
	if !ok {
		return def, nil
	}
	for _, a := range values {
		if v == a {
			return v, nil
		}
	}
	return "", Invalid(name, fmt.Sprintf("must be one of %s, got %q", strings.Join(values, ", "), text.Clip(v, 40)))
}

// Int reads name as a whole number in [min, max] (def when absent).
func (q *Query) Int(name string, def, min, max int) (int, error) {
	v, ok := q.vals[name]
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		return 0, Invalid(name, fmt.Sprintf("must be a whole number from %d to %d, got %q", min, max, text.Clip(v, 40)))
	}
	return n, nil
}

// Bool reads name as true or false (def when absent).
func (q *Query) Bool(name string, def bool) (bool, error) {
	v, err := q.Enum(name, strconv.FormatBool(def), "true", "false")
	return v == "true", err
}

// Limit reads ?limit with the bounds of every list endpoint (platform/page).
func (q *Query) Limit() (int, error) {
	return q.Int("limit", page.DefaultLimit, 1, page.MaxLimit)
}

// Format reads ?format: json (default) or csv.
func (q *Query) Format() (string, error) { return q.Enum("format", "json", "json", "csv") }

// Location reads ?tz, an IANA time zone name (default UTC). Days, weeks,
// months and "today" are taken in it.
func (q *Query) Location() (*time.Location, error) {
	v, ok := q.vals["tz"]
	if !ok || v == "UTC" {
		return time.UTC, nil
	}
	// "Local" would be the server's zone; names are short and never paths.
	if v == "" || v == "Local" || len(v) > 64 || strings.Contains(v, "..") || strings.HasPrefix(v, "/") {
		return nil, Invalid("tz", fmt.Sprintf("must be an IANA time zone name such as America/New_York, got %q", text.Clip(v, 40)))
	}
	loc, err := time.LoadLocation(v)
	if err != nil {
		return nil, Invalid("tz", fmt.Sprintf("unknown time zone %q; use an IANA name such as America/New_York", text.Clip(v, 40)))
	}
	return loc, nil
}

// Date reads name as YYYY-MM-DD (ok false when absent).
func (q *Query) Date(name string) (Date, bool, error) {
	v, ok := q.vals[name]
	if !ok {
		return Date{}, false, nil
	}
	t, err := time.Parse(time.DateOnly, v)
	if err != nil || t.Year() < 1972 || t.Year() > 2199 {
		return Date{}, false, Invalid(name, fmt.Sprintf("must be a date YYYY-MM-DD from 1972 to 2199, got %q", text.Clip(v, 40)))
	}
	return Date{t}, true, nil
}
