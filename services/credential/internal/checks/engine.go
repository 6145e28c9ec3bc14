// Package checks is the verification engine and its one entry point,
// POST /credential/:provider_id (http.go): for one provider it runs the five
// checks (NPI format, NPPES, OIG LEIE, SAM.gov, state licenses)
// concurrently, each behind its own semaphore (and, for remote sources, its
// own circuit breaker), turns their outcomes into a decision with Decide,
// and stores the run with its evidence through the results store it is
// given.
//
// Rules and their reasons are documented in docs/verification.md; each
// check lives in its own file, the decision in decide.go.
package checks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/provcred/credential/internal/config"
	"github.com/provcred/credential/internal/providers"
	"github.com/provcred/credential/internal/results"
	"github.com/provcred/credential/internal/sources"
	"github.com/provcred/credential/internal/sources/licenses"
	"github.com/provcred/credential/internal/sources/nppes"
	"github.com/provcred/platform/breaker"
	"github.com/provcred/platform/domain"
	"github.com/provcred/platform/metrics"
	"github.com/provcred/platform/semaphore"
)

// RunOptions say who asked for a run (see results.RunOptions).
type RunOptions = results.RunOptions

// Options configure New. The settings are taken as given (Settings maps
// the service's configuration onto them); only Log, HTTP and Now have
// defaults.
type Options struct {
	// DB is where the imported sources are looked up.
	DB *pgxpool.Pool
	// Runs stores the runs; Providers loads the provider to check.
	Runs      *results.Store
	Providers *providers.Store
	Metrics   *metrics.Registry
	Log       *slog.Logger
	// NPPES is the registry lookup: nil means the imported bulk table
	// (nppes.Table); main passes the live API client (nppes.NewClient) in API mode.
	NPPES nppes.Lookup
	// LicenseEndpoints maps a state to its verification endpoint; states not
	// listed are looked up in the imported license roster.
	LicenseEndpoints map[string]string
	// LicenseStatuses classifies board status words (LICENSE_STATUS_WORDS);
	// the zero value is the default table.
	LicenseStatuses licenses.StatusTable
	// LicenseTimeout bounds one state endpoint call.
	LicenseTimeout time.Duration
	// SourceTimeout bounds one check's database queries.
	SourceTimeout time.Duration
	// NPPESDeadline bounds a whole API lookup, retries included.
	NPPESDeadline time.Duration
	// Concurrency is each check's semaphore capacity.
	Concurrency int
	// MaxWait bounds the wait for a check's permit.
	MaxWait time.Duration
	// Breaker tunes the per-state license endpoint breakers.
	Breaker breaker.Settings
	// HTTP is the client for license endpoints. Default: a plain client (each call has its own timeout).
	HTTP *http.Client
	// Now is the clock (tests pin it). Default time.Now.
	Now func() time.Time
}

// Settings is the one place the service's check settings (CHECK_*,
// SOURCE_QUERY_TIMEOUT, LICENSE_VERIFY_TIMEOUT, NPPES_*, BREAKER_*) become
// Options; the caller adds the stores, the sources and the endpoints.
func Settings(c config.Checks) Options {
	statuses, _ := c.LicenseStatuses() // validated when the config loaded; the zero table is the default one
	return Options{LicenseTimeout: c.LicenseVerifyTimeout, SourceTimeout: c.SourceQueryTimeout,
		// A whole registry lookup: every attempt plus backoff.
		NPPESDeadline: time.Duration(c.NPPESRetries+1)*c.NPPESTimeout + 5*time.Second,
		Concurrency:   c.CheckConcurrency, MaxWait: c.CheckMaxWait, Breaker: c.Breaker(), LicenseStatuses: statuses}
}

// Engine runs and stores credentialing runs.
type Engine struct {
	db       *pgxpool.Pool
	log      *slog.Logger
	store    *results.Store
	provider *providers.Store
	nppes    nppes.Lookup
	nppesAPI bool
	licenses map[string]*licenses.Endpoint
	http     *http.Client
	o        Options
	sems     map[string]*semaphore.Semaphore
	now      func() time.Time

	verifications *prometheus.CounterVec
	checksTotal   *prometheus.CounterVec
	sourceSeconds *prometheus.HistogramVec
}

// New builds an engine, registering its semaphores (check_<name>), the
// license endpoint breakers (license_<state>) and its metrics in o.Metrics.
func New(o Options) *Engine {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	e := &Engine{
		db: o.DB, log: o.Log, store: o.Runs, provider: o.Providers,
		nppes: o.NPPES, http: o.HTTP, o: o, now: o.Now,
		sems:     map[string]*semaphore.Semaphore{},
		licenses: map[string]*licenses.Endpoint{},
	}
	if e.nppes == nil {
		e.nppes = nppes.Table{DB: o.DB}
	} else if _, ok := e.nppes.(nppes.Table); !ok {
		e.nppesAPI = true
	}
	for _, name := range results.CheckNames {
		e.sems[name] = semaphore.New("check_"+name, o.Concurrency, o.MaxWait, o.Metrics)
	}
	states := make([]string, 0, len(o.LicenseEndpoints))
	for s := range o.LicenseEndpoints {
		states = append(states, s)
	}
	sort.Strings(states)
	for _, s := range states {
		e.licenses[s] = &licenses.Endpoint{State: s, URL: o.LicenseEndpoints[s], HTTP: o.HTTP,
			Timeout: o.LicenseTimeout, Now: o.Now, Breaker: breaker.New("license_"+s, o.Breaker, o.Metrics)}
	}
	e.verifications = o.Metrics.CounterVec("credential_verifications_total", "Credentialing runs by decision.", "decision")
	e.checksTotal = o.Metrics.CounterVec("credential_checks_total", "Checks run by check and outcome.", "check", "outcome")
	e.sourceSeconds = o.Metrics.HistogramVec("credential_source_duration_seconds", "Time spent asking one verification source.",
		[]float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}, "source")
	for _, d := range domain.Decisions {
		e.verifications.WithLabelValues(string(d))
	}
	return e
}

// Semaphores returns the per-check semaphores, for /health/concurrency.
func (e *Engine) Semaphores() []*semaphore.Semaphore {
	out := make([]*semaphore.Semaphore, 0, len(results.CheckNames))
	for _, n := range results.CheckNames {
		out = append(out, e.sems[n])
	}
	return out
}

// Credential runs every check for the provider now and stores the run.
// An unknown provider is a domain.NotFound error.
func (e *Engine) Credential(ctx context.Context, providerID string, opts RunOptions) (*results.Run, error) {
	p, err := e.loadProvider(ctx, providerID)
	if err != nil {
		return nil, err
	}
	run := e.Run(ctx, p, opts)
	if err := e.store.Save(ctx, run); err != nil {
		return nil, err
	}
	e.count(run)
	e.log.InfoContext(ctx, "provider credentialed", "provider_id", run.ProviderID, "run_id", run.ID,
		"decision", run.Decision, "batch_id", opts.BatchID)
	return run, nil
}

// CredentialForBatch credentials the provider as an item of a batch. It is
// idempotent per (batchID, providerID): when the batch already holds a
// final (not incomplete) run for the provider, that run is returned without
// running the checks again, so a retried job never stores a second result.
// An incomplete run is stored and returned; the caller retries it later.
func (e *Engine) CredentialForBatch(ctx context.Context, providerID, batchID, actor string) (runID string, decision domain.Decision, err error) {
	if _, err := uuid.Parse(batchID); err != nil {
		return "", "", fmt.Errorf("batch id %q is not a UUID: %w", batchID, err)
	}
	if r, err := e.store.BatchFinal(ctx, batchID, providerID); err != nil || r != nil {
		if r != nil {
			return r.ID, r.Decision, nil
		}
		return "", "", err
	}
	run, err := e.Credential(ctx, providerID, RunOptions{Actor: actor, BatchID: batchID})
	if errors.Is(err, results.ErrBatchResultExists) {
		// Another worker stored the batch's final result meanwhile: that one counts.
		r, err := e.store.BatchFinal(ctx, batchID, providerID)
		if err != nil || r == nil {
			return "", "", fmt.Errorf("batch result of %s: %w", providerID, errors.Join(err, results.ErrBatchResultExists))
		}
		return r.ID, r.Decision, nil
	}
	if err != nil {
		return "", "", err
	}
	return run.ID, run.Decision, nil
}

func (e *Engine) loadProvider(ctx context.Context, id string) (*providers.Provider, error) {
	p, err := e.provider.Get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("load provider: %w", err)
	}
	return p, nil
}

// checkFunc runs one check; it must not return before its context ends.
type checkFunc func(ctx context.Context, p *providers.Provider, at time.Time) results.Check

// Run runs the five checks concurrently for p and decides, without storing.
func (e *Engine) Run(ctx context.Context, p *providers.Provider, opts RunOptions) *results.Run {
	started := e.now().UTC().Truncate(time.Microsecond)
	fns := map[string]checkFunc{
		results.CheckNPIFormat: e.checkNPIFormat,
		results.CheckNPPES:     e.checkNPPES,
		results.CheckLEIE: func(ctx context.Context, p *providers.Provider, at time.Time) results.Check {
			return e.checkExclusion(ctx, results.CheckLEIE, sources.LEIE, p, at)
		},
		results.CheckSAM: func(ctx context.Context, p *providers.Provider, at time.Time) results.Check {
			return e.checkExclusion(ctx, results.CheckSAM, sources.SAM, p, at)
		},
		results.CheckLicense: e.checkLicenses,
	}
	out := make([]results.Check, len(results.CheckNames))
	var wg sync.WaitGroup
	for i, name := range results.CheckNames {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = e.guarded(ctx, name, fns[name], p, started)
		}()
	}
	wg.Wait()
	decision, reasons := Decide(out)
	run := &results.Run{
		ID: uuid.NewString(), ProviderID: p.ID, NPI: p.NPI, Decision: decision, Reasons: reasons, Checks: out,
		Actor: opts.Actor, RequestID: opts.RequestID, StartedAt: started,
		FinishedAt: e.now().UTC().Truncate(time.Microsecond),
	}
	if run.Actor == "" {
		run.Actor = "system"
	}
	if opts.BatchID != "" {
		b := opts.BatchID
		run.BatchID = &b
	}
	return run
}

// guarded runs one check under its semaphore: a check that cannot get a
// permit in time, or panics, is unavailable rather than failing the run.
func (e *Engine) guarded(ctx context.Context, name string, fn checkFunc, p *providers.Provider, at time.Time) (c results.Check) {
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			e.log.ErrorContext(ctx, "check panicked", "check", name, "provider_id", p.ID, "panic", fmt.Sprint(r))
			c = unavailable(name, "internal error in the check", results.Evidence{Source: name, CheckedAt: at})
		}
		c.Check = name
		c.DurationMS = float64(time.Since(start).Microseconds()) / 1000
	}()
	sem := e.sems[name]
	if err := sem.Acquire(ctx); err != nil {
		return unavailable(name, "too many "+name+" checks in flight; try again later", results.Evidence{Source: name, CheckedAt: at})
	}
	defer sem.Release()
	return fn(ctx, p, at)
}

// observe records one source call's duration.
func (e *Engine) observe(source string, start time.Time) {
	e.sourceSeconds.WithLabelValues(source).Observe(time.Since(start).Seconds())
}

func (e *Engine) count(r *results.Run) {
	e.verifications.WithLabelValues(string(r.Decision)).Inc()
	for _, c := range r.Checks {
		e.checksTotal.WithLabelValues(c.Check, string(c.Outcome)).Inc()
	}
}

func unavailable(check, detail string, ev results.Evidence) results.Check {
	return results.Check{Check: check, Outcome: domain.Unavailable, Detail: detail, Evidence: ev}
}

// today is the calendar date of t in UTC, the zone every imported date is in.
func today(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}
