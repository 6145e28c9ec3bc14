// Command chat serves the credentialing chat assistant.
package main

import (
	"context"
	"time"

	"github.com/provcred/chat/internal/chat"
	chatcfg "github.com/provcred/chat/internal/config"
	"github.com/provcred/chat/internal/history"
	"github.com/provcred/platform/config"
	"github.com/provcred/platform/semaphore"
	"github.com/provcred/platform/server"
	"github.com/provcred/platform/service"
)

func main() { service.Main("chat", run) }

func run(ctx context.Context) error {
	cfg := config.MustLoad[chatcfg.Config]()
	deps, err := service.Init(ctx, "chat", cfg.Base, &service.Database{Config: cfg.Database,
		Schema: history.Schema, SearchPath: history.Schema, Migrations: history.Migrations(), MaxConns: cfg.PoolSize(0)})
	if err != nil {
		return err
	}
	h, err := chat.New(cfg, deps.Pool, deps.Metrics, deps.Log, deps.Internal)
	if err != nil {
		return err
	}
	srv := server.New(server.Options{
		Service: "chat", Logger: deps.Log, Metrics: deps.Metrics, Tracer: deps.Tracer,
		BodyLimit: cfg.BodyLimitBytes, ShutdownTimeout: cfg.ShutdownTimeout, ReadTimeout: cfg.ReadTimeout,
		// A turn has its own bound; the request's must exceed it plus the queue wait.
		RequestTimeout: cfg.LLMQueueWait + cfg.TurnTimeout + cfg.RequestTimeout,
		Semaphores:     []*semaphore.Semaphore{h.Sem},
		Checks:         []server.Check{deps.DBCheck()},
		Internal:       deps.Internal,
		Config:         cfg.Public(),
		Info: func(context.Context) map[string]any {
			return map[string]any{"llm_configured": cfg.Configured()}
		},
	})
	h.Routes(srv.App)
	purger := &history.Purger{Store: h.History, Retention: cfg.Retention, Interval: cfg.PurgeInterval, Log: deps.Log,
		Purged: deps.Metrics.CounterVec("chat_history_purged_total", "Conversation turns deleted after CHAT_RETENTION.").WithLabelValues()}
	purgeCtx, stopPurge := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); purger.Run(purgeCtx) }()
	return deps.Serve(ctx, srv, cfg.HTTPAddr, func(context.Context) error {
		stopPurge()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
		return nil
	})
}
