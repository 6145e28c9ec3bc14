// Package domain is the vocabulary the services share below their HTTP
// edge: the errors a store returns (not found, a typed conflict) and the
// decisions and check outcomes of a credentialing run. Stores return these;
// the server's error handler (platform/server, via apierr.From) is the one
// place that turns them into {"code","detail"} answers.
package domain

import "errors"

// ErrNotFound is what a store returns for a record that does not exist;
// errors.Is(err, ErrNotFound) holds for every NotFound error.
var ErrNotFound = errors.New("not found")

// NotFoundError says which record was missing, in words a client may read.
type NotFoundError struct{ Detail string }

func (e *NotFoundError) Error() string        { return e.Detail }
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// NotFound is a not-found error whose detail a client may read
// ("provider p1 does not exist").
func NotFound(detail string) error { return &NotFoundError{Detail: detail} }

// ConflictError is a write refused because it clashes with stored state.
// Code is the stable API code (npi_exists, provider_exists, conflict…).
type ConflictError struct {
	Code   string
	Detail string
}

func (e *ConflictError) Error() string { return e.Code + ": " + e.Detail }

// Conflict builds a ConflictError.
func Conflict(code, detail string) error { return &ConflictError{Code: code, Detail: detail} }
