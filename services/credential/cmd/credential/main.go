// Command credential serves providers, source imports, verification,
// results, the audit log and durable batch credentialing.
// `credential migrate` applies the schema (its own and River's) and exits.
package main

import (
	"context"
	"time"

	"github.com/provcred/credential/internal/audit"
	"github.com/provcred/credential/internal/batch"
	"github.com/provcred/credential/internal/checks"
	"github.com/provcred/credential/internal/config"
	"github.com/provcred/credential/internal/events"
	"github.com/provcred/credential/internal/expirables"
	"github.com/provcred/credential/internal/monitor"
	"github.com/provcred/credential/internal/providers"
	"github.com/provcred/credential/internal/reqtext"
	"github.com/provcred/credential/internal/results"
	"github.com/provcred/credential/internal/reviews"
	"github.com/provcred/credential/internal/roster"
	"github.com/provcred/credential/internal/sources/importer"
	"github.com/provcred/credential/internal/sources/nppes"
	"github.com/provcred/credential/internal/store"
	"github.com/provcred/credential/internal/webhooks"
	platformcfg "github.com/provcred/platform/config"
	"github.com/provcred/platform/semaphore"
	"github.com/provcred/platform/server"
	"github.com/provcred/platform/service"
)

func main() {
	service.Main("credential", run)
}

func run(ctx context.Context) error {
	cfg := platformcfg.MustLoad[config.Config]()
	deps, err := service.Init(ctx, "credential", cfg.Base, &service.Database{Config: cfg.Database,
		Schema: store.Schema, SearchPath: store.Schema, Migrations: store.Migrations(), Extra: store.MigrateRiver,
		// A credentialing in flight holds up to four connections while its
		// checks run.
		MaxConns: cfg.PoolSize(int32(4 * cfg.MaxConcurrentBatchRequests)),
	})
	if err != nil {
		return err
	}
	licenseEndpoints, err := cfg.LicenseEndpoints()
	if err != nil {
		return err // validated at load; kept for the type
	}
	licenseStatuses, err := cfg.LicenseStatuses()
	if err != nil {
		return err // validated at load
	}

	// Concurrency limits shown in /health/concurrency.
	files := semaphore.New("file", cfg.MaxConcurrentFileOperations, 5*time.Second, deps.Metrics)
	batchSem := batch.NewSemaphore(cfg.MaxConcurrentBatchRequests, deps.Metrics)
	sems := []*semaphore.Semaphore{batchSem, files}

	// Sources: the NPI registry is the imported bulk table unless the live API is chosen.
	var registry nppes.Lookup
	if cfg.NPPESMode == "api" {
		client, err := nppes.NewClient(cfg.NPPESAPIURL, deps.Metrics, nppes.Settings(cfg))
		if err != nil {
			return err
		}
		registry = client
		sems = append(sems, client.Sem)
	}

	// The stores, built once and passed to whatever reads or writes them.
	providerStore := providers.NewStore(deps.Pool)
	providerStore.StaleAfter = cfg.VerificationMaxAge // the one setting: providers' verification_stale and verification.stale events
	runs := results.NewStore(deps.Pool)
	// A run's possible matches open review items in the run's transaction.
	runs.OnSave(reviews.Open)
	opts := checks.Settings(cfg.Checks)
	opts.DB, opts.Runs, opts.Providers, opts.Metrics, opts.Log = deps.Pool, runs, providerStore, deps.Metrics, deps.Log
	opts.NPPES, opts.LicenseEndpoints = registry, licenseEndpoints
	engine := checks.New(opts)
	sems = append(sems, engine.Semaphores()...)

	// Continuous monitoring: every exclusion import re-screens all providers,
	// as a River job inserted in the transaction that activates the version.
	imports := importer.New(deps.Pool, deps.Log).WithMetrics(deps.Metrics)
	mon := monitor.New(deps.Pool, deps.Metrics, deps.Log)
	mon.JobTimeout = cfg.RescreenJobTimeout
	imports.OnActivate = mon.Enqueue
	imports.ShrinkRatio = cfg.ImportShrinkMinRatio
	imports.LicenseStatuses = licenseStatuses
	// Imports a crash left 'loading' are failed now ('interrupted'); one
	// another replica is loading holds its lock and is left alone.
	if _, err := imports.Reconcile(ctx); err != nil {
		return err
	}

	// Events and webhooks; the daily expirables job. Their River jobs run on
	// the batch service's client (one River client per replica).
	hooks, err := webhooks.New(webhooks.Options{Pool: deps.Pool, Config: cfg.Webhooks, Metrics: deps.Metrics, Logger: deps.Log})
	if err != nil {
		return err
	}
	daily := expirables.New(deps.Pool, cfg.Webhooks, deps.Metrics, deps.Log)

	bo := batch.Settings(cfg)
	bo.Pool, bo.Credentialer, bo.Providers, bo.Semaphore, bo.Files = deps.Pool, engine, providerStore, batchSem, files
	bo.Metrics, bo.Logger = deps.Metrics, deps.Log
	bo.Jobs = []batch.Jobs{
		{Register: hooks.Register, Queues: hooks.Queues()},
		{Register: daily.Register, Queues: daily.Queues(), Periodic: daily.Periodic()},
		{Register: mon.Register, Queues: mon.Queues()},
	}
	batches, err := batch.New(bo)
	if err != nil {
		return err
	}
	hooks.Attach(batches.Client())
	mon.Attach(batches.Client())

	srv := server.New(server.Options{
		Service: "credential", Logger: deps.Log, Metrics: deps.Metrics, Tracer: deps.Tracer,
		BodyLimit: cfg.BodyLimitBytes, ShutdownTimeout: cfg.ShutdownTimeout, RequestTimeout: cfg.RequestTimeout,
		ReadTimeout: cfg.ReadTimeout, StreamReadTimeout: cfg.ImportTimeout,
		StreamPaths: []string{"/providers/import", "/admin/imports", "/batch-credential"},
		Semaphores:  sems,
		Checks:      []server.Check{deps.DBCheck()},
		Config:      cfg.Public(),
		ActiveTasks: batches.Running,
		Internal:    deps.Internal,
	})
	// Before any route: text PostgreSQL cannot store is a 400, not a 500.
	srv.App.Use(reqtext.Guard)
	(&providers.Handler{
		Store:  providerStore,
		Import: roster.ImportHandler(providerStore, files, cfg.BatchMaxProviders, cfg.RosterMaxBytes),
	}).Routes(srv.App)
	importer.NewHandler(imports, files, cfg.ImportTimeout).Routes(srv.App)
	(&checks.Handler{Engine: engine}).Routes(srv.App)
	(&results.Handler{Store: runs}).Routes(srv.App)
	(&audit.Handler{Pool: deps.Pool}).Routes(srv.App)
	(&reviews.Handler{Store: &reviews.Store{Pool: deps.Pool}, Engine: engine, Log: deps.Log}).Routes(srv.App)
	batches.Routes(srv.App)
	hooks.Routes(srv.App)
	(&events.Handler{Pool: deps.Pool, Links: events.Links{Base: cfg.EventLinkBaseURL}}).Routes(srv.App)

	if err := batches.Start(ctx); err != nil {
		return err
	}
	if err := hooks.Start(ctx); err != nil {
		return err
	}
	return deps.Serve(ctx, srv, cfg.HTTPAddr, hooks.Stop, batches.Stop)
}
