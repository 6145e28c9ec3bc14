// Package sources holds what the verification data sources share: the
// source names, the active-version API the check engine uses for evidence,
// and the row-level building blocks of the streaming importers (header
// lookup by name, date formats, the raw-row record and digest, line errors).
//
// Each source's file format lives in its own package (leie, sam, nppes,
// licenses); sources/importer loads a file as one atomic version.
package sources

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/provcred/platform/database"
)

// Source names, as used in URLs, the source_imports table and evidence.
const (
	LEIE     = "leie"
	SAM      = "sam"
	NPPES    = "nppes"
	Licenses = "licenses"
)

// Names lists every importable source.
var Names = []string{LEIE, SAM, NPPES, Licenses}

// Known reports whether s names an importable source.
func Known(s string) bool {
	for _, n := range Names {
		if n == s {
			return true
		}
	}
	return false
}

// IsExclusion reports whether s is an exclusion list (its imports trigger re-screening).
func IsExclusion(s string) bool { return s == LEIE || s == SAM }

// ErrNoVersion is returned by ActiveVersion when a source was never imported.
var ErrNoVersion = errors.New("source has no active version")

// Version identifies the active import of a source, for evidence.
type Version struct {
	Source      string     `json:"source"`
	ImportID    int64      `json:"import_id"`
	FileDate    *time.Time `json:"file_date,omitempty"`
	ActivatedAt time.Time  `json:"activated_at"`
	Rows        int64      `json:"rows"`
	SHA256      string     `json:"sha256"`
}

// ActiveVersion returns the active version of source, or ErrNoVersion.
func ActiveVersion(ctx context.Context, db database.Querier, source string) (Version, error) {
	v := Version{Source: source}
	err := db.QueryRow(ctx, `SELECT import_id, file_date, activated_at, row_count, sha256
		FROM source_versions WHERE source = $1`, source).
		Scan(&v.ImportID, &v.FileDate, &v.ActivatedAt, &v.Rows, &v.SHA256)
	if errors.Is(err, pgx.ErrNoRows) {
		return v, fmt.Errorf("%s: %w", source, ErrNoVersion)
	}
	if err != nil {
		return v, fmt.Errorf("active version of %s: %w", source, err)
	}
	return v, nil
}

// LineError says why a file was rejected and where: Line is the 1-based
// physical line of the file where the offending record starts (the header is
// line 1).
type LineError struct {
	Line   int64
	Reason string
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Reason) }
