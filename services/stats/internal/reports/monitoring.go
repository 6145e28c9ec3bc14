package reports

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/provcred/stats/internal/params"
	"github.com/provcred/stats/internal/sheet"
)

// ImportStats is one exclusion list import and what its re-screen found.
type ImportStats struct {
	ImportID    int64        `json:"import_id"`
	Source      string       `json:"source"`
	Status      string       `json:"status"`
	Version     *int64       `json:"version"`
	FileDate    *params.Date `json:"file_date"`
	Rows        int64        `json:"rows"`
	StartedAt   time.Time    `json:"started_at"`
	FinishedAt  *time.Time   `json:"finished_at"`
	ActivatedAt *time.Time   `json:"activated_at"`
	// NewMatches: providers the re-screen after this import newly flagged excluded.
	NewMatches int64 `json:"new_matches"`
}

// SourceState is where an exclusion list stands now.
type SourceState struct {
	Source          string     `json:"source"`
	ActiveImportID  *int64     `json:"active_import_id"`
	ActiveVersion   *int64     `json:"active_version"`
	LastActivatedAt *time.Time `json:"last_activated_at"`
	// DaysSinceActivation: lists are to be monitored at least monthly.
	DaysSinceActivation *int `json:"days_since_activation"`
}

// Monitoring is GET /stats/monitoring: every LEIE and SAM import started in
// the range, newest first, with the new matches its re-screen found.
type Monitoring struct {
	Meta
	span
	Source  string        `json:"source,omitempty"`
	Sources []SourceState `json:"sources"`
	Totals  struct {
		Imports    int64 `json:"imports"`
		Activated  int64 `json:"activated"`
		Failed     int64 `json:"failed"`
		NewMatches int64 `json:"new_matches"`
	} `json:"totals"`
	// FlaggedNow: providers flagged excluded now, by any import.
	FlaggedNow int64         `json:"flagged_now"`
	Imports    []ImportStats `json:"imports"`
}

type monitoringParams struct {
	span
	Source string `json:"source"`
}

var monitoringReport = report[monitoringParams]{
	name:   "monitoring",
	params: append([]string{"source"}, spanParams...),
	parse: func(q *params.Query, now time.Time) (monitoringParams, error) {
		s, err := readSpan(q, now, 365)
		if err != nil {
			return monitoringParams{}, err
		}
		src, err := q.Enum("source", "", "leie", "sam")
		return monitoringParams{span: s, Source: src}, err
	},
	run: runMonitoring,
}

func runMonitoring(ctx context.Context, tx pgx.Tx, p monitoringParams, now time.Time) (result, error) {
	out := &Monitoring{span: p.span, Source: p.Source, Imports: []ImportStats{}}
	for _, s := range []string{"leie", "sam"} {
		if p.Source == "" || p.Source == s {
			out.Sources = append(out.Sources, SourceState{Source: s})
		}
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT i.import_id, i.source, i.status, i.version, i.file_date, i.row_count, i.started_at, i.finished_at,
			i.activated_at, coalesce(m.n, 0)
		FROM exclusion_imports i
		LEFT JOIN (SELECT import_id, count(*) AS n FROM exclusion_matches GROUP BY 1) m ON m.import_id = i.import_id
		WHERE i.started_at >= $1 AND i.started_at < $2 AND ($3 = '' OR i.source = $3)
		ORDER BY i.started_at DESC, i.import_id DESC`, p.r.Start, p.r.End, p.Source).Query(func(rows pgx.Rows) error {
		var s ImportStats
		var fileDate *time.Time
		_, err := pgx.ForEachRow(rows, []any{&s.ImportID, &s.Source, &s.Status, &s.Version, &fileDate, &s.Rows, &s.StartedAt,
			&s.FinishedAt, &s.ActivatedAt, &s.NewMatches}, func() error {
			if fileDate != nil {
				d := params.DateOf(fileDate.UTC())
				s.FileDate = &d
			}
			out.Imports = append(out.Imports, s)
			out.Totals.Imports++
			out.Totals.NewMatches += s.NewMatches
			switch {
			case s.ActivatedAt != nil:
				out.Totals.Activated++
			case s.Status == "failed":
				out.Totals.Failed++
			}
			s, fileDate = ImportStats{}, nil
			return nil
		})
		return err
	})
	b.Queue(`SELECT source, import_id, version, activated_at FROM exclusion_imports WHERE status = 'active'`).
		Query(func(rows pgx.Rows) error {
			var src string
			var id, version *int64
			var at *time.Time
			_, err := pgx.ForEachRow(rows, []any{&src, &id, &version, &at}, func() error {
				for i := range out.Sources {
					if s := &out.Sources[i]; s.Source == src {
						s.ActiveImportID, s.ActiveVersion, s.LastActivatedAt = id, version, at
						if at != nil {
							d := int(now.Sub(*at).Hours() / 24)
							s.DaysSinceActivation = &d
						}
					}
				}
				id, version, at = nil, nil, nil
				return nil
			})
			return err
		})
	b.Queue(`SELECT count(*) FROM providers WHERE exclusion_flagged_at IS NOT NULL`).QueryRow(func(row pgx.Row) error {
		return row.Scan(&out.FlaggedNow)
	})
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("monitoring: %w", err)
	}
	return out, nil
}

func (m *Monitoring) table() sheet.Table {
	t := sheet.Table{Header: []string{"import_id", "source", "status", "version", "file_date", "rows", "started_at",
		"finished_at", "activated_at", "new_matches"}}
	for _, s := range m.Imports {
		var fd any
		if s.FileDate != nil {
			fd = *s.FileDate
		}
		t.Add(s.ImportID, s.Source, s.Status, s.Version, fd, s.Rows, s.StartedAt, s.FinishedAt, s.ActivatedAt, s.NewMatches)
	}
	return t
}
