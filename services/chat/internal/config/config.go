// Package config is the chat service's typed configuration.
package config

import (
	"fmt"
	"net/url"
	"time"

	"github.com/provcred/platform/config"
)

// Config of the chat service.
type Config struct {
	config.Base
	// LLMBaseURL is an OpenAI-compatible API root, e.g. https://api.openai.com/v1.
	// Empty: chat answers 503 llm_not_configured.
	LLMBaseURL string `env:"LLM_BASE_URL"`
	// LLMAPIKey is sent as a bearer token (from a Kubernetes Secret).
	LLMAPIKey string `env:"LLM_API_KEY"`
	LLMModel  string `env:"LLM_MODEL" envDefault:"gpt-4o-mini"`
	// LLMTimeout bounds one completion call.
	LLMTimeout time.Duration `env:"LLM_TIMEOUT" envDefault:"60s"`
	// MaxConcurrentLLMRequests per replica; callers past it wait LLMQueueWait, then 503.
	MaxConcurrentLLMRequests int           `env:"MAX_CONCURRENT_LLM_REQUESTS" envDefault:"5"`
	LLMQueueWait             time.Duration `env:"LLM_QUEUE_WAIT" envDefault:"10s"`
	// MaxMessageChars bounds a user message.
	MaxMessageChars int `env:"CHAT_MAX_MESSAGE_CHARS" envDefault:"4000"`
}

// Validate checks the settings.
func (c Config) Validate() error {
	if err := c.Base.Validate(); err != nil {
		return err
	}
	if c.LLMBaseURL != "" {
		u, err := url.Parse(c.LLMBaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("LLM_BASE_URL: must be an http(s) URL, got %q", c.LLMBaseURL)
		}
	}
	if c.MaxConcurrentLLMRequests < 1 {
		return fmt.Errorf("MAX_CONCURRENT_LLM_REQUESTS: must be at least 1, got %d", c.MaxConcurrentLLMRequests)
	}
	if c.MaxMessageChars < 1 {
		return fmt.Errorf("CHAT_MAX_MESSAGE_CHARS: must be at least 1, got %d", c.MaxMessageChars)
	}
	return config.Positive("LLM_TIMEOUT", c.LLMTimeout, "LLM_QUEUE_WAIT", c.LLMQueueWait)
}

// Configured reports whether an LLM is set up.
func (c Config) Configured() bool { return c.LLMBaseURL != "" }

// Public is the configuration shown in /health/concurrency (never the key).
func (c Config) Public() map[string]any {
	return map[string]any{
		"llm_configured": c.Configured(), "llm_model": c.LLMModel, "llm_timeout": c.LLMTimeout.String(),
		"max_concurrent_llm_requests": c.MaxConcurrentLLMRequests, "llm_queue_wait": c.LLMQueueWait.String(),
	}
}
