// Command stats serves statistics and reports over the credentialing data,
// read from a read replica.
package main

import (
	"context"

	"github.com/provcred/platform/config"
	"github.com/provcred/platform/server"
	"github.com/provcred/platform/service"
	statscfg "github.com/provcred/stats/internal/config"
	"github.com/provcred/stats/internal/summary"
)

func main() { service.Main("stats", run) }

func run(ctx context.Context) error {
	cfg := config.MustLoad[statscfg.Config]()
	deps, err := service.Init(ctx, "stats", cfg.Base, &service.Database{
		Schema: cfg.CredentialSchema, SearchPath: cfg.CredentialSchema, URL: cfg.ReplicaURL,
	})
	if err != nil {
		return err
	}
	srv := server.New(server.Options{
		Service: "stats", Logger: deps.Log, Metrics: deps.Metrics, Tracer: deps.Tracer,
		BodyLimit: cfg.BodyLimitBytes, ShutdownTimeout: cfg.ShutdownTimeout, RequestTimeout: cfg.RequestTimeout,
		Checks: []server.Check{deps.DBCheck()}, Config: cfg.Public(),
	})
	(&summary.Handler{Pool: deps.Pool}).Routes(srv.App)
	return deps.Serve(ctx, srv, cfg.HTTPAddr)
}
