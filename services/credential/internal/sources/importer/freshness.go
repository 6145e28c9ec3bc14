package importer

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/provcred/credential/internal/sources"
)

// freshness exports credential_source_last_import_timestamp_seconds{source}:
// when the active version of each source was activated, read from the
// database at scrape time, so it is right after a restart and on every
// replica, not only on the one that ran the import. A source never imported
// reads 0, so "not imported for 35 days" fires for it too.
type freshness struct {
	db   *pgxpool.Pool
	desc *prometheus.Desc
}

func newFreshness(db *pgxpool.Pool) *freshness {
	return &freshness{db: db, desc: prometheus.NewDesc("credential_source_last_import_timestamp_seconds",
		"Unix time the active version of a source was imported (0: never).", []string{"source"}, nil)}
}

func (f *freshness) Describe(ch chan<- *prometheus.Desc) { ch <- f.desc }

// Collect emits nothing when the database does not answer within 2s: a
// failed scrape of one family would otherwise fail the whole /metrics.
func (f *freshness) Collect(ch chan<- prometheus.Metric) {
	if f.db == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	rows, err := f.db.Query(ctx, `SELECT source, EXTRACT(EPOCH FROM activated_at)::float8 FROM source_versions`)
	if err != nil {
		return
	}
	defer rows.Close()
	at := map[string]float64{}
	for rows.Next() {
		var source string
		var ts *float64
		if err := rows.Scan(&source, &ts); err != nil {
			return
		}
		if ts != nil {
			at[source] = *ts
		}
	}
	if rows.Err() != nil {
		return
	}
	for _, s := range sources.Names {
		ch <- prometheus.MustNewConstMetric(f.desc, prometheus.GaugeValue, at[s], s)
	}
}
