package chat

import (
	"log/slog"
	"net/http"

	"github.com/jackc/pgx/v5/pgxpool"

	chatcfg "github.com/provcred/chat/internal/config"
	"github.com/provcred/chat/internal/history"
	"github.com/provcred/chat/internal/llm"
	"github.com/provcred/chat/internal/tools"
	"github.com/provcred/platform/breaker"
	"github.com/provcred/platform/internalauth"
	"github.com/provcred/platform/metrics"
	"github.com/provcred/platform/semaphore"
)

// New builds the handler from the configuration: the llm semaphore, the
// model client and its breaker, the tools and theirs. Without LLM_BASE_URL
// the handler answers 503 llm_not_configured. signer signs the tools'
// calls to the credential and stats services (nil: unsigned, under
// INTERNAL_AUTH_INSECURE_DEV).
func New(cfg chatcfg.Config, pool *pgxpool.Pool, m *metrics.Registry, log *slog.Logger, signer *internalauth.Keyring) (*Handler, error) {
	h := &Handler{History: &history.Store{Pool: pool},
		Sem:             semaphore.New("llm", cfg.MaxConcurrentLLMRequests, cfg.LLMQueueWait, m),
		MaxMessageChars: cfg.MaxMessageChars, HistoryTokens: cfg.HistoryTokens, TurnTimeout: cfg.TurnTimeout,
		KeepAlive: cfg.SSEKeepAlive, RetryAfter: cfg.LLMBreakerOpen, Log: log}
	if !cfg.Configured() {
		return h, nil
	}
	client := llm.New(llm.Options{BaseURL: cfg.LLMBaseURL, APIKey: cfg.LLMAPIKey, Model: cfg.LLMModel,
		Timeout: cfg.LLMTimeout, MaxTokens: cfg.LLMMaxTokens, HTTP: &http.Client{},
		Breaker: breaker.New("llm", cfg.LLMBreaker(), m)})
	toolClient, err := tools.NewClient(tools.ClientOptions{CredentialURL: cfg.CredentialURL, StatsURL: cfg.StatsURL,
		Timeout: cfg.ToolTimeout, Metrics: m, Signer: signer,
		Breaker: cfg.ToolBreaker()})
	if err != nil {
		return nil, err
	}
	kit := tools.NewKit(toolClient, tools.Options{SharePII: cfg.SharePII, MaxResultBytes: cfg.ToolMaxResultBytes, Metrics: m, Log: log})
	h.Engine = NewEngine(client, kit, cfg.MaxToolRounds, m, log)
	return h, nil
}
