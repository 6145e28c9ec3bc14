package apierr_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/provcred/platform/apierr"
	"github.com/provcred/platform/domain"
)

// From is the one place a store's domain error becomes an answer.
func TestFrom(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name         string
		err          error
		ok           bool
		status       int
		code, detail string
	}{
		{"an answer as it is", apierr.Invalid("npi", "bad"), true, 422, "validation_failed", "npi: bad"},
		{"not found, wrapped", fmt.Errorf("load: %w", domain.NotFound("provider p1 does not exist")), true, 404, "not_found", "provider p1 does not exist"},
		{"the bare sentinel", fmt.Errorf("x: %w", domain.ErrNotFound), true, 404, "not_found", "not found"},
		{"a conflict keeps its code", fmt.Errorf("write: %w", domain.Conflict("npi_exists", "another provider already has NPI 1")), true, 409, "npi_exists", "another provider already has NPI 1"},
		{"anything else is not an answer", errors.New("boom"), false, 0, "", ""},
	} {
		e, ok := apierr.From(c.err)
		if ok != c.ok || (ok && (e.Status != c.status || e.Code != c.code || e.Detail != c.detail)) {
			t.Errorf("%s: %+v %v", c.name, e, ok)
		}
	}
	if !errors.Is(domain.NotFound("x"), domain.ErrNotFound) {
		t.Error("a NotFound error is not ErrNotFound")
	}
}
