// Package batch is durable batch credentialing: POST /batch-credential
// records a batch and one River job per provider in one transaction; River
// workers (queue `credential_batch`, MAX_CONCURRENT_BATCH_REQUESTS per
// replica) run the check engine for each provider, snoozing a provider whose
// result is `incomplete` (a source was down) and retrying it later;
// GET /results/batch/{id} reports progress; DELETE /batch/{id} cancels what
// has not run. Every replica on the same database takes jobs, and a replica
// that dies mid-job has its jobs rescued by River and run again; the engine
// is idempotent per (batch, provider), so each provider ends with exactly
// one final result.
//
// batch_items (migration 0004) is the record of each provider's outcome;
// River's river_job rows are only the work queue.
package batch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/provcred/credential/internal/config"
	"github.com/provcred/credential/internal/providers"
	"github.com/provcred/credential/internal/store"
	"github.com/provcred/platform/domain"
	"github.com/provcred/platform/metrics"
	"github.com/provcred/platform/semaphore"
)

// QueueName is the River queue batch jobs run on.
const QueueName = "credential_batch"

// Credentialer runs the checks for one provider of a batch. The check
// engine (internal/checks.Engine) implements it; it must be idempotent per
// (batchID, providerID) once it has a final result, because a job may run
// again after a replica dies mid-job.
type Credentialer interface {
	CredentialForBatch(ctx context.Context, providerID, batchID, actor string) (runID string, decision domain.Decision, err error)
}

// Options configure New. The settings are taken as given (Settings maps
// the service's configuration onto them); New refuses unusable ones.
type Options struct {
	Pool         *pgxpool.Pool
	Credentialer Credentialer
	// Providers upserts roster CSV submissions.
	Providers *providers.Store
	// Semaphore is the service's `batch` semaphore (shown in
	// /health/concurrency; NewSemaphore); each running job holds one permit.
	Semaphore *semaphore.Semaphore
	// Files, when set, bounds roster parsing like other file operations.
	Files   *semaphore.Semaphore
	Metrics *metrics.Registry
	Logger  *slog.Logger
	Config  config.Batch
	// MaxWorkers is MAX_CONCURRENT_BATCH_REQUESTS.
	MaxWorkers int
	// MaxProviders is BATCH_MAX_PROVIDERS.
	MaxProviders int
	// RosterMaxBytes caps a CSV or JSON body (ROSTER_MAX_BYTES).
	RosterMaxBytes int64
	// SoftStopTimeout is how long Stop lets running jobs finish before
	// cancelling them (they are then retried, not counted as attempts);
	// 0 waits for them (River's meaning).
	SoftStopTimeout time.Duration
	// Jobs are other packages' River jobs (webhook deliveries, the daily
	// expirables job): the service has one River client, and theirs run on it.
	Jobs []Jobs
}

// Jobs is a package's River workers, queues and periodic jobs, added to the
// batch service's client. Their queues run on every replica, also one with
// BATCH_WORKERS_ENABLED=false; periodic jobs are inserted by River's elected
// leader only.
type Jobs struct {
	Register func(*river.Workers)
	Queues   map[string]river.QueueConfig
	Periodic []*river.PeriodicJob
}

// Service owns the River client, the workers and the HTTP handlers.
type Service struct {
	o    Options
	pool *pgxpool.Pool
	// queuePool carries River's own traffic (fetch, completion, leader,
	// maintenance) and the items' "running" marks with synchronous_commit
	// off: see New.
	queuePool *pgxpool.Pool
	client    *river.Client[pgx.Tx]
	log       *slog.Logger
	m         *batchMetrics
	running   atomic.Int64

	stopSampler context.CancelFunc
	samplerDone chan struct{}
	startOnce   sync.Once
	started     bool

	// testHookAfterJobs runs inside the submission transaction after the
	// jobs were inserted; tests make it fail to prove the rollback.
	testHookAfterJobs func(ctx context.Context, tx pgx.Tx) error
	// now is the clock (tests).
	now func() time.Time
}

// Settings is the one place the service's batch settings (BATCH_*,
// MAX_CONCURRENT_BATCH_REQUESTS, ROSTER_MAX_BYTES, SHUTDOWN_TIMEOUT) become
// Options; the caller adds the pool, the credentialer, the stores, the
// semaphores, the metrics and the jobs.
func Settings(c config.Config) Options {
	return Options{Config: c.Batch, MaxWorkers: c.MaxConcurrentBatchRequests, MaxProviders: c.BatchMaxProviders,
		RosterMaxBytes: c.RosterMaxBytes, SoftStopTimeout: c.ShutdownTimeout}
}

// NewSemaphore is the service's `batch` semaphore: one permit per worker;
// a job waits up to a minute for one.
func NewSemaphore(maxWorkers int, reg *metrics.Registry) *semaphore.Semaphore {
	return semaphore.New("batch", maxWorkers, time.Minute, reg)
}

// New builds the service; call Start to work jobs and Stop on shutdown.
func New(o Options) (*Service, error) {
	if o.Pool == nil || o.Metrics == nil || o.Semaphore == nil {
		return nil, errors.New("batch: Pool, Metrics and Semaphore are required")
	}
	if o.Credentialer == nil && o.Config.BatchWorkersEnabled {
		return nil, errors.New("batch: a Credentialer is required when workers are enabled")
	}
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("batch: %w", err)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &Service{o: o, pool: o.Pool, log: o.Logger.With("component", "batch"), now: time.Now}
	s.m = newMetrics(o.Metrics)

	// River commits several times per job (fetch, completion) and the item
	// is written twice more (running, final); waiting for each WAL flush
	// costs a worker slot more time than the provider's own checks. These
	// writes can be lost only by a PostgreSQL crash (never by a replica's),
	// and only as a suffix of the WAL: the job is then fetched again or
	// rescued, and the engine returns the stored final result. Submission,
	// cancellation and the engine's runs (the evidence) stay on the service
	// pool, fully durable.
	qcfg := o.Pool.Config()
	qcfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	qcfg.ConnConfig.RuntimeParams["application_name"] = "credential-batch-queue"
	qcfg.MaxConns = int32(o.MaxWorkers + 8 + 2*extraQueues(o.Jobs))
	qcfg.MinConns = 0
	qpool, err := pgxpool.NewWithConfig(context.Background(), qcfg)
	if err != nil {
		return nil, fmt.Errorf("batch: queue pool: %w", err)
	}
	s.queuePool = qpool
	o.Metrics.RegisterPool("batch_queue", qpool)

	workers := river.NewWorkers()
	river.AddWorker(workers, &worker{s: s})
	queues := map[string]river.QueueConfig{}
	var periodic []*river.PeriodicJob
	for _, j := range o.Jobs {
		if j.Register != nil {
			j.Register(workers)
		}
		for name, q := range j.Queues {
			queues[name] = q
		}
		periodic = append(periodic, j.Periodic...)
	}
	cfg := &river.Config{
		Schema:               store.Schema,
		Workers:              workers,
		JobTimeout:           o.Config.BatchJobTimeout,
		RescueStuckJobsAfter: o.Config.BatchRescueStuckAfter,
		SoftStopTimeout:      o.SoftStopTimeout,
		Logger:               s.log,
		// Fetch right after a job frees a slot: per-provider work is short
		// and the ceiling is workers / latency, so a slot idle for River's
		// default 100ms cooldown would cost more than the extra fetches.
		FetchCooldown: 2 * time.Millisecond,
		// Batch records are kept in batch_items; River's rows can go sooner
		// than its 24h default, which keeps its table and indexes small.
		CompletedJobRetentionPeriod: time.Hour,
		PeriodicJobs:                periodic,
	}
	if o.Config.BatchWorkersEnabled {
		queues[QueueName] = river.QueueConfig{MaxWorkers: o.MaxWorkers}
	}
	if len(queues) > 0 {
		cfg.Queues = queues
	}
	client, err := river.NewClient(riverpgxv5.New(qpool), cfg)
	if err != nil {
		qpool.Close()
		return nil, fmt.Errorf("batch: river client: %w", err)
	}
	s.client = client
	return s, nil
}

// validate refuses settings the service cannot run with, naming the
// option (or, for Config, the variable).
func (o Options) validate() error {
	if o.MaxWorkers < 1 {
		return fmt.Errorf("MaxWorkers must be at least 1, got %d", o.MaxWorkers)
	}
	if o.MaxProviders < 1 {
		return fmt.Errorf("MaxProviders must be at least 1, got %d", o.MaxProviders)
	}
	if o.RosterMaxBytes <= 0 {
		return fmt.Errorf("RosterMaxBytes must be positive, got %d", o.RosterMaxBytes)
	}
	if o.SoftStopTimeout < 0 {
		return fmt.Errorf("SoftStopTimeout must not be negative, got %s", o.SoftStopTimeout)
	}
	return o.Config.Validate()
}

// Client is the River client (for tests and tools).
func (s *Service) Client() *river.Client[pgx.Tx] { return s.client }

// Start starts the workers (when enabled, or when other packages' jobs
// have queues) and the queue metrics sampler.
// The client keeps running until Stop, not until ctx ends, so that the HTTP
// server drains first and jobs stop last.
func (s *Service) Start(ctx context.Context) error {
	var err error
	s.startOnce.Do(func() {
		if s.o.Config.BatchWorkersEnabled || extraQueues(s.o.Jobs) > 0 {
			if err = s.client.Start(context.WithoutCancel(ctx)); err != nil {
				err = fmt.Errorf("batch: start river: %w", err)
				return
			}
			s.started = true
		}
		sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		s.stopSampler = cancel
		s.samplerDone = make(chan struct{})
		go s.sample(sctx)
	})
	return err
}

// Stop lets running jobs finish (up to SoftStopTimeout, then cancels them
// so River makes them available again) and stops the sampler. It has the
// closer signature service.Deps.Serve takes.
func (s *Service) Stop(ctx context.Context) error {
	if s.stopSampler != nil {
		s.stopSampler()
		<-s.samplerDone
	}
	defer s.queuePool.Close()
	if !s.started {
		return nil
	}
	if err := s.client.Stop(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("batch: stop river: %w", err)
	}
	return nil
}

func extraQueues(jobs []Jobs) int {
	n := 0
	for _, j := range jobs {
		n += len(j.Queues)
	}
	return n
}

// Running is the number of batch jobs being worked now in this replica
// (for server.Options.ActiveTasks).
func (s *Service) Running() int64 { return s.running.Load() }

// isNotFound reports whether err means the provider does not exist.
func isNotFound(err error) bool { return errors.Is(err, domain.ErrNotFound) }
