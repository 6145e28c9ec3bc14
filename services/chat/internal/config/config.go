// Package config is the chat service's typed configuration.
package config

import (
	"fmt"
	"net/url"
	"time"

	"github.com/provcred/platform/breaker"
	"github.com/provcred/platform/config"
)

// Config of the chat service.
type Config struct {
	config.Base
	config.Database
	// LLMBaseURL is an OpenAI-compatible API root, e.g. https://api.openai.com/v1,
	// http://127.0.0.1:8000/v1 (vLLM), http://127.0.0.1:11434/v1 (Ollama),
	// http://127.0.0.1:8080/v1 (llama.cpp's server). Empty: chat answers 503
	// llm_not_configured.
	LLMBaseURL string `env:"LLM_BASE_URL" secret:"true"`
	// LLMAPIKey is sent as a bearer token (from a Kubernetes Secret); local
	// servers take none.
	LLMAPIKey string `env:"LLM_API_KEY" secret:"true"`
	LLMModel  string `env:"LLM_MODEL" envDefault:"gpt-4o-mini"`
	// LLMTimeout bounds one completion call, streamed answer included: a
	// model that stalls mid-answer is cut here.
	LLMTimeout time.Duration `env:"LLM_TIMEOUT" envDefault:"60s" min:">0"`
	// LLMMaxTokens caps one answer (sent as max_tokens, which every
	// compatible server reads); 0 leaves it to the server.
	LLMMaxTokens int `env:"LLM_MAX_TOKENS" envDefault:"1024" min:"0"`
	// LLMBreakerFailures in a row (5xx, 429, timeouts) open the LLM breaker
	// for LLMBreakerOpen.
	LLMBreakerFailures uint32        `env:"LLM_BREAKER_FAILURES" envDefault:"5" min:"1"`
	LLMBreakerOpen     time.Duration `env:"LLM_BREAKER_OPEN_TIMEOUT" envDefault:"10s" min:">0"`
	// MaxConcurrentLLMRequests per replica; callers past it wait LLMQueueWait, then 503.
	MaxConcurrentLLMRequests int           `env:"MAX_CONCURRENT_LLM_REQUESTS" envDefault:"5" min:"1"`
	LLMQueueWait             time.Duration `env:"LLM_QUEUE_WAIT" envDefault:"10s" min:">0"`
	// MaxMessageChars bounds a user message.
	MaxMessageChars int `env:"CHAT_MAX_MESSAGE_CHARS" envDefault:"4000" min:"1"`
	// TurnTimeout bounds one question: every LLM call and tool call of it.
	TurnTimeout time.Duration `env:"CHAT_TURN_TIMEOUT" envDefault:"120s" min:">0"`
	// MaxToolRounds is how many times per question the model may call tools
	// before it must answer.
	MaxToolRounds int `env:"CHAT_MAX_TOOL_ROUNDS" envDefault:"4" min:"0"`
	// HistoryTokens is the approximate token budget (4 characters a token)
	// of earlier turns sent with a follow-up; older turns are left out.
	HistoryTokens int `env:"CHAT_HISTORY_TOKENS" envDefault:"3000" min:"0"`
	// Retention: conversation turns older than this are deleted by a job
	// running every PurgeInterval.
	Retention     time.Duration `env:"CHAT_RETENTION" envDefault:"720h" min:">0"`
	PurgeInterval time.Duration `env:"CHAT_PURGE_INTERVAL" envDefault:"1h" min:">0"`
	// SharePII sends dates of birth, DEA numbers, addresses and phone numbers
	// to the model; by default they are removed from what tools return.
	SharePII bool `env:"CHAT_SHARE_PII" envDefault:"false"`
	// SSEKeepAlive is how long an event stream may be idle before it gets a
	// comment line. A write is how a client that went away is noticed (two
	// writes after it left, per hop: gateway, then chat), so this bounds how
	// long its LLM call and slot outlive it.
	SSEKeepAlive time.Duration `env:"CHAT_SSE_KEEPALIVE" envDefault:"100ms" min:">0"`

	// CredentialURL and StatsURL are the services the tools read from.
	CredentialURL string `env:"CREDENTIAL_URL" envDefault:"http://127.0.0.1:8001"`
	StatsURL      string `env:"STATS_URL" envDefault:"http://127.0.0.1:8002"`
	// ToolTimeout bounds one tool call; ToolMaxResultBytes bounds what one
	// tool call hands the model (lists are shortened to fit).
	ToolTimeout        time.Duration `env:"CHAT_TOOL_TIMEOUT" envDefault:"5s" min:">0"`
	ToolMaxResultBytes int           `env:"CHAT_TOOL_MAX_RESULT_BYTES" envDefault:"16384" min:"1024"`
	// ToolBreakerFailures in a row open a tool upstream's breaker for ToolBreakerOpen.
	ToolBreakerFailures uint32        `env:"CHAT_TOOL_BREAKER_FAILURES" envDefault:"5" min:"1"`
	ToolBreakerOpen     time.Duration `env:"CHAT_TOOL_BREAKER_OPEN_TIMEOUT" envDefault:"10s" min:">0"`
}

// Validate checks the settings.
func (c Config) Validate() error {
	if err := c.Base.Validate(); err != nil {
		return err
	}
	if err := c.Database.Validate(); err != nil {
		return err
	}
	for _, u := range []struct{ name, val string }{
		{"LLM_BASE_URL", c.LLMBaseURL}, {"CREDENTIAL_URL", c.CredentialURL}, {"STATS_URL", c.StatsURL},
	} {
		if u.val == "" && u.name == "LLM_BASE_URL" {
			continue
		}
		if err := httpURL(u.name, u.val); err != nil {
			return err
		}
	}
	return config.Bounds(c)
}

// httpURL checks an http(s) URL without echoing credentials it may hold.
func httpURL(name, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s: must be an http(s) URL", name)
	}
	return nil
}

// Configured reports whether an LLM is set up.
func (c Config) Configured() bool { return c.LLMBaseURL != "" }

// Public is the configuration shown in /health/concurrency: the settings
// (config.Public: never the key, nor the LLM URL, which may carry one) and
// whether an LLM is configured.
func (c Config) Public() map[string]any {
	out := config.Public(c)
	out["llm_configured"] = c.Configured()
	return out
}

// LLMBreaker is the language model's breaker (LLM_BREAKER_*); half-open
// lets one probe through.
func (c Config) LLMBreaker() breaker.Settings {
	return breaker.Settings{ConsecutiveFailures: c.LLMBreakerFailures, OpenTimeout: c.LLMBreakerOpen, HalfOpenRequests: 1}
}

// ToolBreaker is each tool upstream's breaker (CHAT_TOOL_BREAKER_*).
func (c Config) ToolBreaker() breaker.Settings {
	return breaker.Settings{ConsecutiveFailures: c.ToolBreakerFailures, OpenTimeout: c.ToolBreakerOpen, HalfOpenRequests: 1}
}
