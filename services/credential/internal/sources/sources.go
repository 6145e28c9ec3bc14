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

// Kinds of source file. A full list replaces the active version; a delta
// (an LEIE monthly supplement, an NPPES weekly increment) is applied to it,
// making a new version that differs from it by the delta's rows.
const (
	KindFull       = "full"
	KindSupplement = "supplement"
	KindIncrement  = "increment"
)

// Delta is implemented by the formats of sources whose publisher also sends
// changes between full lists, with the full list's header.
type Delta interface {
	// DeltaKind is the kind of the source's delta files (KindSupplement or KindIncrement).
	DeltaKind() string
	// KindOf reads a file's kind from its published name (the base name, any
	// case): KindFull, DeltaKind(), or "" when the name says neither.
	KindOf(name string) string
	// Key is an SQL expression over alias.* (a row of the source's table)
	// naming what a delta row stands for: rows of the active version with
	// the same key are replaced by it, or removed (Removal).
	Key(alias string) string
	// Removal is an SQL condition over alias.*, true for a delta row that
	// removes the rows with its key and is not itself a listing (an LEIE
	// reinstatement); "false" when delta rows only add and replace.
	Removal(alias string) string
	// Contradiction returns a query over the loaded version table (written
	// %[1]s) selecting (line, reason) of the first row that shows the file is
	// not of kind, given the name it came with: a reinstatement in an
	// exclusion supplement, a full list in which every row is a
	// reinstatement. "" when there is nothing to check.
	Contradiction(kind, name string) string
}

// KindsOf lists the kinds of file f accepts: KindFull, and its delta kind.
func KindsOf(f Format) []string {
	if d, ok := f.(Delta); ok {
		return []string{KindFull, d.DeltaKind()}
	}
	return []string{KindFull}
}

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
	// Kind is the kind of file that made the version (KindFull, or the delta
	// applied to the previous version).
	Kind string `json:"kind"`
}

// ActiveVersion returns the active version of source, or ErrNoVersion.
func ActiveVersion(ctx context.Context, db database.Querier, source string) (Version, error) {
	v := Version{Source: source}
	err := db.QueryRow(ctx, `SELECT import_id, file_date, activated_at, row_count, sha256, kind
		FROM source_versions WHERE source = $1`, source).
		Scan(&v.ImportID, &v.FileDate, &v.ActivatedAt, &v.Rows, &v.SHA256, &v.Kind)
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
