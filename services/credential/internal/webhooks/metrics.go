package webhooks

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/provcred/credential/internal/events"
	"github.com/provcred/platform/metrics"
)

// Delivery outcomes of webhook_deliveries_total: how each attempt ended.
const (
	OutcomeDelivered = "delivered" // 2xx
	OutcomeRetry     = "retry"     // failed; River retries it later
	OutcomeFailed    = "failed"    // failed on its last attempt: given up
	OutcomeCanceled  = "canceled"  // the endpoint was disabled or deleted first
)

var outcomes = []string{OutcomeDelivered, OutcomeRetry, OutcomeFailed, OutcomeCanceled}

type deliveryMetrics struct {
	events     *prometheus.CounterVec // events_total{type}
	deliveries *prometheus.CounterVec // webhook_deliveries_total{outcome}
	attempts   prometheus.Histogram   // webhook_delivery_attempts
}

func newMetrics(reg *metrics.Registry) *deliveryMetrics {
	m := &deliveryMetrics{
		events: reg.CounterVec("events_total", "Events published by type (once each, when the relay publishes it).", "type"),
		deliveries: reg.CounterVec("webhook_deliveries_total",
			"Webhook delivery attempts by how they ended: delivered, retry, failed (given up), canceled.", "outcome"),
		attempts: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "webhook_delivery_attempts",
			Help:    "Attempts a webhook delivery took, observed when it was delivered or given up.",
			Buckets: []float64{1, 2, 3, 5, 8, 13, 21, 34, 55}}),
	}
	reg.Registerer.MustRegister(m.attempts)
	// Every series exists from the start, so dashboards and alerts see 0,
	// not "no data", before the first event.
	for _, t := range events.Types {
		m.events.WithLabelValues(t)
	}
	for _, o := range outcomes {
		m.deliveries.WithLabelValues(o)
	}
	return m
}
