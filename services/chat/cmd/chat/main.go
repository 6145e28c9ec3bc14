// Command chat serves the credentialing chat assistant.
package main

import (
	"context"
	"net/http"

	"github.com/provcred/chat/internal/chat"
	chatcfg "github.com/provcred/chat/internal/config"
	"github.com/provcred/chat/internal/history"
	"github.com/provcred/chat/internal/llm"
	"github.com/provcred/platform/breaker"
	"github.com/provcred/platform/config"
	"github.com/provcred/platform/semaphore"
	"github.com/provcred/platform/server"
	"github.com/provcred/platform/service"
)

func main() { service.Main("chat", run) }

func run(ctx context.Context) error {
	cfg := config.MustLoad[chatcfg.Config]()
	deps, err := service.Init(ctx, "chat", cfg.Base, &service.Database{Schema: history.Schema, Migrations: history.Migrations()})
	if err != nil {
		return err
	}
	sem := semaphore.New("llm", cfg.MaxConcurrentLLMRequests, cfg.LLMQueueWait, deps.Metrics)
	var client *llm.Client
	if cfg.Configured() {
		client = &llm.Client{BaseURL: cfg.LLMBaseURL, APIKey: cfg.LLMAPIKey, Model: cfg.LLMModel, Timeout: cfg.LLMTimeout,
			HTTP: &http.Client{}, Breaker: breaker.New("llm", breaker.Settings{}, deps.Metrics)}
	}
	srv := server.New(server.Options{
		Service: "chat", Logger: deps.Log, Metrics: deps.Metrics, Tracer: deps.Tracer,
		BodyLimit: cfg.BodyLimitBytes, ShutdownTimeout: cfg.ShutdownTimeout,
		// LLM calls have their own timeout; the request bound must exceed it plus the queue wait.
		RequestTimeout: cfg.LLMTimeout + cfg.LLMQueueWait + cfg.RequestTimeout,
		Semaphores:     []*semaphore.Semaphore{sem},
		Checks:         []server.Check{deps.DBCheck()},
		Config:         cfg.Public(),
		Info: func(context.Context) map[string]any {
			return map[string]any{"llm_configured": cfg.Configured()}
		},
	})
	chat.NewHandler(client, &history.Store{Pool: deps.Pool}, sem, cfg.MaxMessageChars, deps.Metrics, deps.Log).Routes(srv.App)
	return deps.Serve(ctx, srv, cfg.HTTPAddr)
}
