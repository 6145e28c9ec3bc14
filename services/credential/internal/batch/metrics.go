package batch

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/provcred/credential/internal/store"
	"github.com/provcred/platform/metrics"
)

type batchMetrics struct {
	queueDepth *prometheus.GaugeVec
	oldestAge  *prometheus.GaugeVec
	items      *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	running    prometheus.Gauge
	snoozes    prometheus.Counter
}

func newMetrics(r *metrics.Registry) *batchMetrics {
	return &batchMetrics{
		queueDepth: r.GaugeVec("credential_batch_queue_depth",
			"Batch jobs waiting to run (River states available, scheduled, retryable), sampled from the job table.", "queue"),
		oldestAge: r.GaugeVec("credential_batch_oldest_job_age_seconds",
			"Age of the oldest batch job that is ready to run but waiting for a worker.", "queue"),
		items: r.CounterVec("credential_batch_items_total",
			"Batch items finished, by outcome (a decision, unknown_provider, failed, canceled).", "outcome"),
		duration: r.HistogramVec("credential_batch_job_duration_seconds",
			"Time one batch job took, by result (a decision, snoozed, error).",
			[]float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}, "result"),
		running: r.Gauge("credential_batch_jobs_running", "Batch jobs being worked now in this replica."),
		snoozes: r.CounterVec("credential_batch_snoozes_total",
			"Batch jobs snoozed because a source was unavailable (result incomplete).").WithLabelValues(),
	}
}

// sample refreshes the queue gauges every BatchMetricsInterval until ctx
// ends. Each replica samples (one cheap indexed count); dashboards take max.
func (s *Service) sample(ctx context.Context) {
	defer close(s.samplerDone)
	t := time.NewTicker(s.o.Config.BatchMetricsInterval)
	defer t.Stop()
	for {
		if err := s.SampleQueue(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("batch queue sample failed", "err", err.Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// SampleQueue reads the queue depth and the oldest ready job's age from
// River's job table into the gauges. The filter on (state, queue) is served
// by River's fetch index, so it stays cheap with millions of finished rows.
func (s *Service) SampleQueue(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var depth int64
	var age float64
	err := s.pool.QueryRow(ctx, `SELECT count(*),
			COALESCE(EXTRACT(EPOCH FROM now() - min(scheduled_at) FILTER (WHERE state = 'available')), 0)::float8
		FROM `+s.riverTable("river_job")+`
		WHERE state IN ('available', 'scheduled', 'retryable') AND queue = $1`, QueueName).Scan(&depth, &age)
	if err != nil {
		return fmt.Errorf("sample queue: %w", err)
	}
	s.m.queueDepth.WithLabelValues(QueueName).Set(float64(depth))
	s.m.oldestAge.WithLabelValues(QueueName).Set(max(age, 0))
	return nil
}

func (s *Service) riverTable(name string) string {
	return pgx.Identifier{store.Schema, name}.Sanitize()
}
