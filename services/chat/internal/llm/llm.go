// Package llm is a client for any OpenAI-compatible chat completions API
// (POST {base}/chat/completions), behind a breaker and a timeout.
package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/provcred/platform/breaker"
)

// Message is one chat message.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Client calls the completions endpoint.
type Client struct {
	BaseURL string
	APIKey  string
	Model   string
	Timeout time.Duration
	HTTP    *http.Client
	Breaker *breaker.Breaker
}

// Completion is the assistant's answer.
type Completion struct {
	Content string
	Model   string
}

type request struct {
	Model    string    `json:"model"`
	Messages []Message `json:"messages"`
}

type response struct {
	Model   string `json:"model"`
	Choices []struct {
		Message Message `json:"message"`
	} `json:"choices"`
	Error *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// Complete sends messages and returns the first choice.
func (c *Client) Complete(ctx context.Context, msgs []Message) (*Completion, error) {
	body, err := json.Marshal(request{Model: c.Model, Messages: msgs})
	if err != nil {
		return nil, err
	}
	var out *Completion
	err = c.Breaker.Do(ctx, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, c.Timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.BaseURL, "/")+"/chat/completions", bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		if c.APIKey != "" {
			req.Header.Set("Authorization", "Bearer "+c.APIKey)
		}
		resp, err := c.HTTP.Do(req)
		if err != nil {
			return fmt.Errorf("llm request: %w", err)
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
		if err != nil {
			return fmt.Errorf("llm read: %w", err)
		}
		if resp.StatusCode != http.StatusOK {
			return &breaker.StatusError{Code: resp.StatusCode}
		}
		var r response
		if err := json.Unmarshal(raw, &r); err != nil {
			return fmt.Errorf("llm answer is not JSON: %w", err)
		}
		if r.Error != nil {
			return fmt.Errorf("llm error: %s", r.Error.Message)
		}
		if len(r.Choices) == 0 {
			return fmt.Errorf("llm answer has no choices")
		}
		out = &Completion{Content: r.Choices[0].Message.Content, Model: r.Model}
		return nil
	})
	return out, err
}
