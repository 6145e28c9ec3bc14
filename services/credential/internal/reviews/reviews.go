// Package reviews is the review queue: the possible matches a person must
// judge (an exclusion row matched by name with a date of birth unknown on a
// side, or equal; an LEIE waiver where the provider holds a license). A
// credentialing run that yields them opens one item per source record, in
// the run's own transaction (Open, a results.SaveHook); the re-screen after
// an exclusion import opens them too (Raise). An operator resolves an item
// as cleared (not the same person, or not applicable) or confirmed (a real
// match); the resolution is audited, announced (review.resolved.v1),
// remembered per (provider, check, record digest) — the checks read it
// (exclusions.Lookup), so the same record is not raised again while a
// changed record (a new digest) is — and the provider is run again.
package reviews

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/provcred/credential/internal/audit"
	"github.com/provcred/credential/internal/events"
	"github.com/provcred/credential/internal/results"
	"github.com/provcred/platform/domain"
)

// Item statuses.
const (
	StatusOpen       = "open"
	StatusCleared    = results.ReviewCleared
	StatusConfirmed  = results.ReviewConfirmed
	StatusSuperseded = "superseded"
)

// The conflict codes Resolve returns (as domain.Conflict errors, which the
// server's error handler answers with 409 and the code).
const (
	// CodeNotOpen: the item is not open any more (resolved, or superseded).
	CodeNotOpen = "review_not_open"
	// CodeRecordChanged: the source record the item is about is no longer in
	// the active version (the row changed or left the list); the item is
	// closed as superseded and the next run or re-screen raises the
	// current row, if any.
	CodeRecordChanged = "review_record_changed"
)

func notFound(id string) error { return domain.NotFound("review " + id + " does not exist") }

// Candidate is a source record that may be the provider: what the item shows.
type Candidate struct {
	Source string `json:"source"`
	// ImportID is the import whose file holds the row at Line.
	ImportID int64           `json:"import_id,omitempty"`
	Line     int64           `json:"line,omitempty"`
	Digest   string          `json:"digest"`
	Record   json.RawMessage `json:"record"`
}

// Item is one review item.
type Item struct {
	ID         string    `json:"id"`
	ProviderID string    `json:"provider_id"`
	NPI        string    `json:"npi"`
	Check      string    `json:"check"`
	Match      string    `json:"match"`
	Reason     string    `json:"reason"`
	Status     string    `json:"status"`
	Candidate  Candidate `json:"candidate"`
	// Evidence is the check's finding on the record (results.Item).
	Evidence      json.RawMessage `json:"evidence"`
	RunID         *string         `json:"run_id"`
	RaisedBy      string          `json:"raised_by"`
	OpenedAt      time.Time       `json:"opened_at"`
	ResolvedAt    *time.Time      `json:"resolved_at"`
	ResolvedBy    *string         `json:"resolved_by"`
	Note          string          `json:"note"`
	ResolvedRunID *string         `json:"resolved_run_id"`
}

// Raised is a possible match to open an item for.
type Raised struct {
	ProviderID, NPI, Check, Match, Reason string
	Candidate                             Candidate
	Evidence                              any
	RunID                                 string // "" from a re-screen
	RaisedBy                              string // "run" or "rescreen:<import id>"
}

// Raise opens an item for r in tx, with its review.opened event and audit
// entry, unless one is open for the same (provider, check, digest) already:
// then it reports false. Callers never raise a record a reviewer resolved
// (the checks and the re-screen read the resolutions first).
func Raise(ctx context.Context, tx pgx.Tx, r Raised) (id string, opened bool, err error) {
	ev, err := json.Marshal(r.Evidence)
	if err != nil {
		return "", false, fmt.Errorf("encode review evidence: %w", err)
	}
	record := r.Candidate.Record
	if len(record) == 0 {
		record = json.RawMessage("null")
	}
	var run, importID, line any
	if r.RunID != "" {
		run = r.RunID
	}
	if r.Candidate.ImportID != 0 {
		importID = r.Candidate.ImportID
	}
	if r.Candidate.Line != 0 {
		line = r.Candidate.Line
	}
	err = tx.QueryRow(ctx, `INSERT INTO review_items (provider_id, npi, "check", match, reason, digest, import_id, line,
			record, evidence, run_id, raised_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
		ON CONFLICT (provider_id, "check", digest) WHERE status = 'open' DO NOTHING
		RETURNING id::text`, r.ProviderID, r.NPI, r.Check, r.Match, r.Reason, r.Candidate.Digest, importID, line,
		record, ev, run, r.RaisedBy).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("open review item: %w", err)
	}
	if err := audit.Write(ctx, tx, audit.Entry{Actor: "system", Event: "review.opened", ProviderID: r.ProviderID,
		Entity: "review", EntityID: id, After: map[string]any{"status": StatusOpen, "check": r.Check, "match": r.Match,
			"digest": r.Candidate.Digest, "import_id": importID, "line": line, "run_id": run, "raised_by": r.RaisedBy}}); err != nil {
		return "", false, err
	}
	if err := events.Write(ctx, tx, events.Event{Type: events.ReviewOpened, ProviderID: r.ProviderID,
		Link: "/reviews/" + id, Data: map[string]any{"review_id": id, "check": r.Check, "reason": r.Reason}}); err != nil {
		return "", false, err
	}
	return id, true, nil
}

// Open is the results.SaveHook of the review queue: every record a run's
// leie or sam check left as needs_review gets an open item; the provider's
// open items of those checks that the run no longer raises (the row left
// the list, changed, or the rules now decide it) are closed as superseded.
// A check that was unavailable touches nothing: it saw no rows.
func Open(ctx context.Context, tx pgx.Tx, run *results.Run) error {
	var checked, keep []string
	for _, c := range run.Checks {
		if (c.Check != results.CheckLEIE && c.Check != results.CheckSAM) || c.Outcome == domain.Unavailable {
			continue
		}
		checked = append(checked, c.Check)
		for _, it := range c.Evidence.Items {
			if it.Outcome != domain.Review || it.Digest == "" {
				continue
			}
			keep = append(keep, c.Check+":"+it.Digest)
			importID := int64(0)
			if it.SourceVersion != nil {
				importID = it.SourceVersion.ImportID
			} else if c.Evidence.SourceVersion != nil {
				importID = c.Evidence.SourceVersion.ImportID
			}
			if _, _, err := Raise(ctx, tx, Raised{ProviderID: run.ProviderID, NPI: run.NPI, Check: c.Check, Match: it.Key,
				Reason: it.Detail, RunID: run.ID, RaisedBy: "run",
				Candidate: Candidate{Source: c.Evidence.Source, ImportID: importID, Line: it.Line, Digest: it.Digest, Record: it.MatchedRecord},
				Evidence:  it}); err != nil {
				return err
			}
		}
	}
	if len(checked) == 0 {
		return nil
	}
	if keep == nil {
		keep = []string{}
	}
	_, err := tx.Exec(ctx, `UPDATE review_items SET status = 'superseded', resolved_at = clock_timestamp(),
			resolved_by = 'system', note = 'no longer raised by run ' || $4
		WHERE provider_id = $1 AND status = 'open' AND "check" = ANY($2) AND NOT ("check" || ':' || digest = ANY($3))`,
		run.ProviderID, checked, keep, run.ID)
	if err != nil {
		return fmt.Errorf("supersede review items: %w", err)
	}
	return nil
}

// Store reads and resolves items.
type Store struct {
	Pool *pgxpool.Pool
}

const itemCols = `id::text, provider_id, npi, "check", match, reason, status, import_id, line, digest, record, evidence,
	run_id::text, raised_by, opened_at, resolved_at, resolved_by, note, resolved_run_id::text`

func scanItem(row pgx.Row) (*Item, error) {
	it := &Item{}
	var importID, line *int64
	err := row.Scan(&it.ID, &it.ProviderID, &it.NPI, &it.Check, &it.Match, &it.Reason, &it.Status, &importID, &line,
		&it.Candidate.Digest, &it.Candidate.Record, &it.Evidence, &it.RunID, &it.RaisedBy, &it.OpenedAt, &it.ResolvedAt,
		&it.ResolvedBy, &it.Note, &it.ResolvedRunID)
	if err != nil {
		return nil, err
	}
	it.Candidate.Source = it.Check
	if importID != nil {
		it.Candidate.ImportID = *importID
	}
	if line != nil {
		it.Candidate.Line = *line
	}
	return it, nil
}

// Filter selects items for List.
type Filter struct {
	// Status is open (the default), cleared, confirmed, superseded or all.
	Status     string
	Check      string
	ProviderID string
}

// Cursor is a list position: newest first.
type Cursor struct {
	OpenedAt time.Time `json:"o"`
	ID       string    `json:"i"`
}

// List returns up to limit+1 items matching f after cur, newest first.
func (s *Store) List(ctx context.Context, f Filter, cur *Cursor, limit int) ([]*Item, error) {
	q := `SELECT ` + itemCols + ` FROM review_items WHERE ($1 = 'all' OR status = $1) AND ($2 = '' OR "check" = $2)
		AND ($3 = '' OR provider_id = $3)`
	args := []any{f.Status, f.Check, f.ProviderID}
	if cur != nil {
		q += ` AND (opened_at, id) < ($4, $5::uuid)`
		args = append(args, cur.OpenedAt, cur.ID)
	}
	q += fmt.Sprintf(` ORDER BY opened_at DESC, id DESC LIMIT %d`, limit+1)
	rows, err := s.Pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list review items: %w", err)
	}
	defer rows.Close()
	out := []*Item{}
	for rows.Next() {
		it, err := scanItem(rows)
		if err != nil {
			return nil, fmt.Errorf("scan review item: %w", err)
		}
		out = append(out, it)
	}
	return out, rows.Err()
}

// Get returns one item, or a domain.NotFound error.
func (s *Store) Get(ctx context.Context, id string) (*Item, error) {
	it, err := scanItem(s.Pool.QueryRow(ctx, `SELECT `+itemCols+` FROM review_items WHERE id = $1::uuid`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("review item %s: %w", id, err)
	}
	return it, nil
}

// Resolution is a person's judgement on an item.
type Resolution struct {
	Resolution string // cleared or confirmed
	Note       string
	Actor      string
	RequestID  string
}

// Resolve records res on open item id, with its audit entry (before/after)
// and review.resolved event, in one transaction. It returns a
// domain.NotFound error, or a domain.Conflict with code CodeNotOpen (a
// second resolve; the item is returned) or CodeRecordChanged (the record is
// not in the source's active version any more: the item is closed as
// superseded, audited, and returned). The caller
// re-decides the provider (a new run) and records it with SetResolvedRun.
func (s *Store) Resolve(ctx context.Context, id string, res Resolution) (*Item, error) {
	var out *Item
	var outcome error
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		it, err := scanItem(tx.QueryRow(ctx, `SELECT `+itemCols+` FROM review_items WHERE id = $1::uuid FOR UPDATE`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			outcome = notFound(id)
			return nil
		}
		if err != nil {
			return fmt.Errorf("lock review item: %w", err)
		}
		if it.Status != StatusOpen {
			out, outcome = it, domain.Conflict(CodeNotOpen, "review "+id+" is "+it.Status+", not open; it cannot be resolved again")
			return nil
		}
		var current bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM active_exclusions WHERE source = $1 AND digest = $2)`,
			it.Check, it.Candidate.Digest).Scan(&current); err != nil {
			return fmt.Errorf("find the review's record: %w", err)
		}
		status, note, event := res.Resolution, res.Note, "review.resolved"
		if !current {
			status, note, event = StatusSuperseded, "the source record changed before the resolution; not resolved", "review.superseded"
			outcome = domain.Conflict(CodeRecordChanged, "the "+it.Check+" record of review "+id+
				" is no longer in the active list (it changed or was removed): the item is superseded and the provider was run again")
		}
		var at time.Time
		if err := tx.QueryRow(ctx, `UPDATE review_items SET status = $2, note = $3, resolved_by = $4, resolved_at = clock_timestamp()
			WHERE id = $1::uuid RETURNING resolved_at`, id, status, note, res.Actor).Scan(&at); err != nil {
			return fmt.Errorf("resolve review item: %w", err)
		}
		if err := audit.Write(ctx, tx, audit.Entry{Actor: res.Actor, RequestID: res.RequestID, Event: event,
			ProviderID: it.ProviderID, Entity: "review", EntityID: id,
			Before: map[string]any{"status": it.Status},
			After: map[string]any{"status": status, "note": note, "resolved_at": at, "check": it.Check,
				"digest": it.Candidate.Digest, "requested": res.Resolution}}); err != nil {
			return err
		}
		if outcome == nil {
			if err := events.Write(ctx, tx, events.Event{Type: events.ReviewResolved, ProviderID: it.ProviderID,
				Link: "/reviews/" + id, Data: map[string]any{"review_id": id, "resolution": status}}); err != nil {
				return err
			}
		}
		it.Status, it.Note, it.ResolvedBy, it.ResolvedAt = status, note, &res.Actor, &at
		out = it
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, outcome
}

// SetResolvedRun records the run that re-decided the provider after a resolution.
func (s *Store) SetResolvedRun(ctx context.Context, id, runID string) error {
	if _, err := s.Pool.Exec(ctx, `UPDATE review_items SET resolved_run_id = $2::uuid WHERE id = $1::uuid`, id, runID); err != nil {
		return fmt.Errorf("record the review's run: %w", err)
	}
	return nil
}
