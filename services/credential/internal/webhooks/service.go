// Package webhooks delivers events to the endpoints admins subscribe:
// POST/GET/DELETE /webhooks, deliveries with replay, a test ping, and
// the relay that publishes the event outbox.
//
// Delivery is at least once. The relay publishes committed events in
// commit order and, in the same transaction, makes one delivery row and one
// River job (queue `webhooks`) per matching subscription; a job signs the
// event the Standard Webhooks way and POSTs it, retrying with exponential
// backoff and jitter (River's attempt count, NextRetry) for at least
// WEBHOOK_RETRY_FOR. A replica killed at any point leaves either
// unpublished events or River jobs, and both are picked up again; a
// receiver may see an event twice and deduplicates on webhook-id (the
// event id). An endpoint that has failed every attempt for
// WEBHOOK_DISABLE_AFTER is disabled, with a webhook.disabled event.
package webhooks

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/provcred/credential/internal/config"
	"github.com/provcred/credential/internal/events"
	"github.com/provcred/platform/metrics"
)

// QueueName is the River queue deliveries run on.
const QueueName = "webhooks"

// Options configure New.
type Options struct {
	Pool    *pgxpool.Pool
	Config  config.Webhooks
	Metrics *metrics.Registry
	Logger  *slog.Logger
	// Resolver checks a new webhook's host (default net.DefaultResolver).
	Resolver Resolver
}

// Service owns subscriptions, the relay and the delivery worker. Its River
// jobs run on the service's one River client (internal/batch): Register
// adds the worker before the client is built, Attach hands the client over.
type Service struct {
	pool   *pgxpool.Pool
	cfg    config.Webhooks
	log    *slog.Logger
	links  events.Links
	guard  Guard
	res    Resolver
	http   *http.Client
	m      *deliveryMetrics
	client *river.Client[pgx.Tx]
	now    func() time.Time

	stopRelay context.CancelFunc
	relayDone chan struct{}
	startOnce sync.Once
}

// New builds the service.
func New(o Options) (*Service, error) {
	if o.Pool == nil || o.Metrics == nil {
		return nil, errors.New("webhooks: Pool and Metrics are required")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	s := &Service{pool: o.Pool, cfg: o.Config, log: o.Logger.With("component", "webhooks"),
		links: events.Links{Base: o.Config.EventLinkBaseURL}, guard: Guard{AllowPrivate: o.Config.WebhookAllowPrivate},
		res: o.Resolver, m: newMetrics(o.Metrics), now: time.Now}
	s.http = newHTTPClient(s.guard, o.Config.WebhookTimeout)
	return s, nil
}

// newHTTPClient is the deliveries' client: guarded dialer, no proxy (a
// proxy would dial the receiver for us, past the guard), no redirects (a
// 3xx is an answer, and a failure), and the whole attempt bounded.
func newHTTPClient(g Guard, timeout time.Duration) *http.Client {
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           g.Dialer(min(timeout, 10*time.Second)).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   min(timeout, 10*time.Second),
		ResponseHeaderTimeout: timeout,
	}
	return &http.Client{Transport: tr, Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// Register adds the delivery worker to workers (before the River client is made).
func (s *Service) Register(workers *river.Workers) {
	river.AddWorker(workers, &deliveryWorker{s: s})
}

// Queues are the River queues this service's jobs need on a working replica.
func (s *Service) Queues() map[string]river.QueueConfig {
	return map[string]river.QueueConfig{QueueName: {MaxWorkers: s.cfg.WebhookMaxConcurrent}}
}

// Attach gives the service the River client it inserts delivery jobs with.
func (s *Service) Attach(client *river.Client[pgx.Tx]) { s.client = client }

// Start runs the relay until Stop.
func (s *Service) Start(ctx context.Context) error {
	if s.client == nil {
		return errors.New("webhooks: Attach a River client before Start")
	}
	s.startOnce.Do(func() {
		rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		s.stopRelay = cancel
		s.relayDone = make(chan struct{})
		go s.relayLoop(rctx)
	})
	return nil
}

// Stop ends the relay (a publication in flight is rolled back and redone
// by the next relay).
func (s *Service) Stop(context.Context) error {
	if s.stopRelay != nil {
		s.stopRelay()
		<-s.relayDone
	}
	return nil
}
