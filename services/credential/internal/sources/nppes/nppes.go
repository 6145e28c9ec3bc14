// Package nppes reads the NPPES (National Plan and Provider Enumeration
// System) in both of its modes: the bulk dissemination CSV, imported into
// nppes_rows with its ~330 columns found by header name, and the live NPI
// Registry API v2.1. Both give a *Record, so the check engine treats them
// alike through the Lookup interface.
package nppes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/provcred/credential/internal/sources"
	"github.com/provcred/platform/database"
)

// ErrNotFound is returned by a Lookup when the registry has no such NPI.
var ErrNotFound = errors.New("nppes: NPI not found")

// NotFound is the live registry's answer that it has no such NPI: it is
// ErrNotFound, and the answer is evidence like any other (its digest, when
// it was given).
type NotFound struct {
	// Digest is the SHA-256 (hex) of the response body.
	Digest    string
	FetchedAt time.Time
}

func (e *NotFound) Error() string { return ErrNotFound.Error() }

// Unwrap makes errors.Is(err, ErrNotFound) hold.
func (e *NotFound) Unwrap() error { return ErrNotFound }

// Lookup finds one NPI in the NPPES. raw is what the answer was read from
// (the API's response body, or the bulk row's record), for the evidence digest.
type Lookup interface {
	Lookup(ctx context.Context, npi string) (rec *Record, raw []byte, err error)
}

// Taxonomy is one of a provider's taxonomy codes with the license it was
// enumerated with.
type Taxonomy struct {
	Code    string `json:"code"`
	Desc    string `json:"desc,omitempty"`
	Primary bool   `json:"primary"`
	State   string `json:"state,omitempty"`
	License string `json:"license,omitempty"`
}

// Record is one NPI as the NPPES holds it.
type Record struct {
	NPI string `json:"npi"`
	// EntityType is "1" (individual, NPI-1), "2" (organization, NPI-2), or ""
	// (the bulk file blanks it for deactivated NPIs).
	EntityType       string `json:"entity_type"`
	LastName         string `json:"last_name"`
	FirstName        string `json:"first_name"`
	MiddleName       string `json:"middle_name"`
	NameSuffix       string `json:"name_suffix"`
	Credential       string `json:"credential"`
	OrganizationName string `json:"organization_name,omitempty"`
	Gender           string `json:"gender,omitempty"`
	// Status is "A" when active, "D" when deactivated (the API's basic.status;
	// derived from the dates for the bulk file).
	Status           string     `json:"status"`
	EnumerationDate  *time.Time `json:"enumeration_date,omitempty"`
	DeactivationDate *time.Time `json:"deactivation_date,omitempty"`
	ReactivationDate *time.Time `json:"reactivation_date,omitempty"`
	// Created and LastUpdated are the API's created_epoch and
	// last_updated_epoch.
	Created         *time.Time `json:"created,omitempty"`
	LastUpdated     *time.Time `json:"last_updated,omitempty"`
	PrimaryTaxonomy string     `json:"primary_taxonomy"`
	Taxonomies      []Taxonomy `json:"taxonomies"`
	// State is the business practice location's state.
	State string `json:"state"`
	// Source is "nppes" (bulk table) or "nppes_api".
	Source string `json:"source"`
	// ImportID is the bulk version the row came from (0 for the API).
	ImportID int64 `json:"import_id,omitempty"`
	// Digest is the SHA-256 of the raw answer: the bulk row's digest
	// (sources.Encoder) or the API response body's.
	Digest    string    `json:"digest"`
	FetchedAt time.Time `json:"fetched_at"`
}

// Active reports whether the NPI is active: not deactivated, or reactivated
// on or after its deactivation.
func (r *Record) Active() bool {
	if r.Status != "" && r.Status != "A" {
		return false
	}
	if r.DeactivationDate == nil {
		return true
	}
	return r.ReactivationDate != nil && !r.ReactivationDate.Before(*r.DeactivationDate)
}

// Individual reports whether the NPI is an individual's (NPI-1).
func (r *Record) Individual() bool { return r.EntityType == "1" }

// Table looks NPIs up in the active bulk version (view active_nppes).
type Table struct {
	DB database.Querier
}

// Lookup implements Lookup on the imported bulk file.
func (t Table) Lookup(ctx context.Context, npi string) (*Record, []byte, error) {
	var (
		r   = &Record{Source: sources.NPPES}
		et  *string
		tax []byte
		raw []byte
		at  time.Time
	)
	err := t.DB.QueryRow(ctx, `SELECT n.npi, n.entity_type, n.last_name, n.first_name, n.middle_name, n.name_suffix,
			n.credential, n.organization_name, n.enumeration_date, n.deactivation_date, n.reactivation_date,
			n.primary_taxonomy, n.taxonomies, n.state, n.import_id, n.record::text, n.digest, v.activated_at
		FROM active_nppes n JOIN source_versions v ON v.import_id = n.import_id
		WHERE n.npi = $1`, npi).Scan(&r.NPI, &et, &r.LastName, &r.FirstName, &r.MiddleName, &r.NameSuffix,
		&r.Credential, &r.OrganizationName, &r.EnumerationDate, &r.DeactivationDate, &r.ReactivationDate,
		&r.PrimaryTaxonomy, &tax, &r.State, &r.ImportID, &raw, &r.Digest, &at)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, ErrNotFound
	}
	if err != nil {
		return nil, nil, fmt.Errorf("nppes table lookup: %w", err)
	}
	if et != nil {
		r.EntityType = *et
	}
	if err := json.Unmarshal(tax, &r.Taxonomies); err != nil {
		return nil, nil, fmt.Errorf("nppes table lookup: taxonomies: %w", err)
	}
	r.Status = "A"
	if !r.Active() {
		r.Status = "D"
	}
	r.FetchedAt = at // the version's activation: when this answer became the source's
	return r, raw, nil
}
