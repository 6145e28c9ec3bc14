// Package apierr defines the JSON error every service answers with:
// {"code":"...","detail":"..."} and an HTTP status. Codes are stable and
// documented in docs/api.md; clients switch on them, so never rename one.
package apierr

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/provcred/platform/domain"
)

// Error is an error that knows how it is shown to an API client.
type Error struct {
	Status int    `json:"-"`
	Code   string `json:"code"`
	Detail string `json:"detail"`
	// Field names the offending input field for validation errors.
	Field string `json:"field,omitempty"`
	// Errors lists item-level problems (e.g. bad roster lines) when there are many.
	Errors any `json:"errors,omitempty"`
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Detail) }

// New builds an Error.
func New(status int, code, detail string) *Error {
	return &Error{Status: status, Code: code, Detail: detail}
}

// Newf builds an Error with a formatted detail.
func Newf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Detail: fmt.Sprintf(format, args...)}
}

// Common constructors, so every service spells the same situation the same way.

func BadRequest(code, detail string) *Error  { return New(http.StatusBadRequest, code, detail) }
func NotFound(detail string) *Error          { return New(http.StatusNotFound, "not_found", detail) }
func Conflict(detail string) *Error          { return New(http.StatusConflict, "conflict", detail) }
func Unavailable(code, detail string) *Error { return New(http.StatusServiceUnavailable, code, detail) }

// Invalid is a 422 naming the field that failed validation.
func Invalid(field, detail string) *Error {
	return &Error{Status: http.StatusUnprocessableEntity, Code: "validation_failed", Detail: field + ": " + detail, Field: field}
}

// Internal hides the cause from the client; the cause is logged by the error handler.
func Internal() *Error {
	return New(http.StatusInternalServerError, "internal", "An internal error occurred.")
}

// As extracts an *Error from err's chain.
func As(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}

// From is the one mapping from an error to its answer: an *Error as it is,
// and the stores' domain errors (domain.NotFound → 404 not_found,
// domain.Conflict → 409 with its code). False for anything else (a 500).
func From(err error) (*Error, bool) {
	if e, ok := As(err); ok {
		return e, true
	}
	var nf *domain.NotFoundError
	if errors.As(err, &nf) {
		return NotFound(nf.Detail), true
	}
	if errors.Is(err, domain.ErrNotFound) {
		return NotFound("not found"), true
	}
	var ce *domain.ConflictError
	if errors.As(err, &ce) {
		return New(http.StatusConflict, ce.Code, ce.Detail), true
	}
	return nil, false
}
