// Command credential serves providers, verification, results, the audit
// log and batch credentialing. `credential migrate` applies the schema and exits.
package main

import (
	"context"
	"time"

	"github.com/provcred/credential/internal/config"
	"github.com/provcred/credential/internal/providers"
	"github.com/provcred/credential/internal/roster"
	"github.com/provcred/credential/internal/store"
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
	deps, err := service.Init(ctx, "credential", cfg.Base, &service.Database{Schema: store.Schema, Migrations: store.Migrations()})
	if err != nil {
		return err
	}

	files := semaphore.New("file", cfg.MaxConcurrentFileOperations, 5*time.Second, deps.Metrics)
	batch := semaphore.New("batch", cfg.MaxConcurrentBatchRequests, time.Minute, deps.Metrics)

	providerStore := providers.NewStore(deps.Pool)

	srv := server.New(server.Options{
		Service: "credential", Logger: deps.Log, Metrics: deps.Metrics, Tracer: deps.Tracer,
		BodyLimit: cfg.BodyLimitBytes, ShutdownTimeout: cfg.ShutdownTimeout, RequestTimeout: cfg.RequestTimeout,
		StreamPaths: []string{"/providers/import", "/admin/imports"},
		Semaphores:  []*semaphore.Semaphore{batch, files},
		Checks:      []server.Check{deps.DBCheck()},
		Config:      cfg.Public(),
	})
	(&providers.Handler{
		Store:  providerStore,
		Import: roster.ImportHandler(providerStore, files, cfg.BatchMaxProviders, cfg.RosterMaxBytes),
	}).Routes(srv.App)

	return deps.Serve(ctx, srv, cfg.HTTPAddr)
}
