package ratelimit

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/provcred/platform/metrics"
)

// Metrics are the limiter's series (names from the observability contract;
// alerts are written on ratelimit_fallback_active and
// ratelimit_backend_errors_total).
type Metrics struct {
	// Decisions is ratelimit_decisions_total{decision="allowed|limited"},
	// counted by the gateway whatever the backend.
	Decisions *prometheus.CounterVec
	// BackendErrors counts failed calls to the shared backend (Redis).
	BackendErrors prometheus.Counter
	// FallbackActive is 1 while decisions are made without Redis.
	FallbackActive prometheus.Gauge
}

// NewMetrics registers the limiter's series, every one present at 0.
func NewMetrics(m *metrics.Registry) *Metrics {
	d := m.CounterVec("ratelimit_decisions_total", "Rate limit decisions.", "decision")
	d.WithLabelValues("allowed")
	d.WithLabelValues("limited")
	return &Metrics{
		Decisions: d,
		BackendErrors: m.CounterVec("ratelimit_backend_errors_total",
			"Failed calls to the rate limiter's shared backend (Redis): timeouts, connection errors, READONLY.").WithLabelValues(),
		FallbackActive: m.Gauge("ratelimit_fallback_active",
			"1 while the rate limiter decides without Redis (RATE_LIMIT_FAILURE_MODE), 0 on Redis."),
	}
}
