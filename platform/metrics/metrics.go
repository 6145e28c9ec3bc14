// Package metrics holds a service's Prometheus registry and the metric
// families whose names are shared by code, dashboards, alerts and autoscaling
// (see docs/architecture.md, "Observability contract"). Every series carries
// a constant `service` label.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Registry is one service's metrics. It is the only process-wide state a
// service keeps; pass it to whatever records metrics.
type Registry struct {
	reg *prometheus.Registry
	// Registerer adds the service label; services register their own families here.
	Registerer prometheus.Registerer

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	httpInflight prometheus.Gauge

	SemaphoreCapacity *prometheus.GaugeVec
	SemaphoreInUse    *prometheus.GaugeVec
	SemaphoreWaiting  *prometheus.GaugeVec
	SemaphoreRejected *prometheus.CounterVec

	BreakerState       *prometheus.GaugeVec
	BreakerTransitions *prometheus.CounterVec
}

// New builds the registry for service with the shared families registered.
func New(service string) *Registry {
	reg := prometheus.NewRegistry()
	r := prometheus.WrapRegistererWith(prometheus.Labels{"service": service}, reg)
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Registry{reg: reg, Registerer: r}

	m.httpRequests = m.CounterVec("http_server_requests_total", "HTTP requests served.", "route", "method", "code")
	m.httpDuration = m.HistogramVec("http_server_request_duration_seconds", "HTTP request latency.",
		[]float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}, "route", "method")
	m.httpInflight = m.Gauge("http_server_inflight_requests", "HTTP requests being served now.")

	m.SemaphoreCapacity = m.GaugeVec("semaphore_capacity", "Permits a semaphore holds.", "name")
	m.SemaphoreInUse = m.GaugeVec("semaphore_in_use", "Permits taken now.", "name")
	m.SemaphoreWaiting = m.GaugeVec("semaphore_waiting", "Callers waiting for a permit.", "name")
	m.SemaphoreRejected = m.CounterVec("semaphore_rejected_total", "Acquires that gave up (wait bound or cancel).", "name")

	m.BreakerState = m.GaugeVec("circuit_breaker_state", "Breaker state: 0 closed, 1 half-open, 2 open.", "name")
	m.BreakerTransitions = m.CounterVec("circuit_breaker_transitions_total", "Breaker state changes.", "name", "to")
	return m
}

// CounterVec registers and returns a counter family.
func (m *Registry) CounterVec(name, help string, labels ...string) *prometheus.CounterVec {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	m.Registerer.MustRegister(v)
	return v
}

// GaugeVec registers and returns a gauge family.
func (m *Registry) GaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	m.Registerer.MustRegister(v)
	return v
}

// Gauge registers and returns a single gauge.
func (m *Registry) Gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	m.Registerer.MustRegister(g)
	return g
}

// HistogramVec registers and returns a histogram family.
func (m *Registry) HistogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
	m.Registerer.MustRegister(v)
	return v
}

// Gatherer exposes the registry for tests and the /metrics handler.
func (m *Registry) Gatherer() prometheus.Gatherer { return m.reg }

// Handler serves the registry in the Prometheus text format.
func (m *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Middleware records rate, errors and duration per route template, so label
// cardinality stays bounded whatever ids the paths carry.
func (m *Registry) Middleware() fiber.Handler {
	return func(c *fiber.Ctx) error {
		start := time.Now()
		m.httpInflight.Inc()
		defer m.httpInflight.Dec()
		err := c.Next()
		status := c.Response().StatusCode()
		if err != nil {
			// The error handler runs after us; take the status it will write.
			status = fiber.StatusInternalServerError
			if fe, ok := err.(*fiber.Error); ok {
				status = fe.Code
			} else if se, ok := err.(interface{ HTTPStatus() int }); ok {
				status = se.HTTPStatus()
			}
		}
		route := c.Route().Path
		if route == "" || (status == fiber.StatusNotFound && route == "/") {
			route = "unmatched"
		}
		// fasthttp reuses the request's buffers: a label must own its bytes.
		method := utils.CopyString(c.Method())
		m.httpRequests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
		m.httpDuration.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
		return err
	}
}
