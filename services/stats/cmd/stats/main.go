// Command stats serves the /stats/* reports over the credentialing data,
// read from the credential service's reporting views on a read replica.
package main

import (
	"context"
	_ "time/tzdata" // ?tz= names resolve in a distroless image, which has no zoneinfo

	"github.com/provcred/platform/config"
	"github.com/provcred/platform/server"
	"github.com/provcred/platform/service"
	"github.com/provcred/stats/internal/cache"
	statscfg "github.com/provcred/stats/internal/config"
	"github.com/provcred/stats/internal/replica"
	"github.com/provcred/stats/internal/reports"
)

func main() { service.Main("stats", run) }

func run(ctx context.Context) error {
	cfg := config.MustLoad[statscfg.Config]()
	deps, err := service.Init(ctx, "stats", cfg.Base, &service.Database{Config: cfg.Database,
		Schema: cfg.ReportingSchema, SearchPath: cfg.ReportingSchema, URL: cfg.ReplicaURL, MaxConns: cfg.PoolSize(0),
	})
	if err != nil {
		return err
	}
	reader := replica.New(deps.Pool, cfg.StatementTimeout, deps.Metrics)
	srv := server.New(server.Options{
		Service: "stats", Logger: deps.Log, Metrics: deps.Metrics, Tracer: deps.Tracer,
		BodyLimit: cfg.BodyLimitBytes, ShutdownTimeout: cfg.ShutdownTimeout, RequestTimeout: cfg.RequestTimeout,
		ReadTimeout: cfg.ReadTimeout,
		Checks:      []server.Check{deps.DBCheck()}, Config: cfg.Public(), Info: reader.Info,
		Internal: deps.Internal,
	})
	(&reports.Handler{Reader: reader, Cache: cache.New(cache.Options{
		TTL: cfg.CacheTTL, MaxEntries: cfg.CacheMaxEntries, MaxSize: reports.MaxCacheRows,
		LoadTimeout: cfg.StatementTimeout + cfg.StatementTimeout/2,
	}, deps.Metrics), VerificationMaxAge: cfg.VerificationMaxAge}).Routes(srv.App)
	return deps.Serve(ctx, srv, cfg.HTTPAddr)
}
