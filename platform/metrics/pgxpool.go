package metrics

import (
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// poolCollector reads pgxpool.Stat at scrape time, so it costs nothing between scrapes.
type poolCollector struct {
	name string
	pool *pgxpool.Pool
	d    map[string]*prometheus.Desc
}

var poolMetrics = []struct{ name, help string }{
	{"pgxpool_acquired_conns", "Connections currently acquired."},
	{"pgxpool_idle_conns", "Idle connections."},
	{"pgxpool_total_conns", "Open connections."},
	{"pgxpool_max_conns", "Pool size limit."},
	{"pgxpool_constructing_conns", "Connections being opened."},
	{"pgxpool_acquire_count_total", "Successful acquires."},
	{"pgxpool_acquire_duration_seconds_total", "Time spent acquiring."},
	{"pgxpool_empty_acquire_count_total", "Acquires that had to wait for a connection."},
	{"pgxpool_canceled_acquire_count_total", "Acquires canceled by their context."},
	{"pgxpool_new_conns_count_total", "Connections opened."},
}

// RegisterPool exports pool's statistics as pgxpool_* with a `pool` label.
func (m *Registry) RegisterPool(name string, pool *pgxpool.Pool) {
	c := &poolCollector{name: name, pool: pool, d: map[string]*prometheus.Desc{}}
	for _, pm := range poolMetrics {
		c.d[pm.name] = prometheus.NewDesc(pm.name, pm.help, nil, prometheus.Labels{"pool": name})
	}
	m.Registerer.MustRegister(c)
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.d {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	gauge := func(n string, v float64) { ch <- prometheus.MustNewConstMetric(c.d[n], prometheus.GaugeValue, v) }
	counter := func(n string, v float64) { ch <- prometheus.MustNewConstMetric(c.d[n], prometheus.CounterValue, v) }
	gauge("pgxpool_acquired_conns", float64(s.AcquiredConns()))
	gauge("pgxpool_idle_conns", float64(s.IdleConns()))
	gauge("pgxpool_total_conns", float64(s.TotalConns()))
	gauge("pgxpool_max_conns", float64(s.MaxConns()))
	gauge("pgxpool_constructing_conns", float64(s.ConstructingConns()))
	counter("pgxpool_acquire_count_total", float64(s.AcquireCount()))
	counter("pgxpool_acquire_duration_seconds_total", s.AcquireDuration().Seconds())
	counter("pgxpool_empty_acquire_count_total", float64(s.EmptyAcquireCount()))
	counter("pgxpool_canceled_acquire_count_total", float64(s.CanceledAcquireCount()))
	counter("pgxpool_new_conns_count_total", float64(s.NewConnsCount()))
}
