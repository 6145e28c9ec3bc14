// Package llm talks to any OpenAI-compatible chat completions API (OpenAI,
// vLLM, Ollama, llama.cpp's server) through the official OpenAI Go SDK:
// streamed completions with tools, behind a breaker and a per-call timeout.
//
// The SDK's own retries are off: a retry would hold an LLM slot for the
// caller's whole wait, and the breaker must see every failure.
package llm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/param"
	"github.com/openai/openai-go/v3/packages/ssestream"
	"github.com/openai/openai-go/v3/shared"

	"github.com/provcred/platform/breaker"
)

// Roles of a message.
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
	RoleTool      = "tool"
)

// Message is one chat message. ToolCalls are an assistant's; ToolCallID
// names the call a tool message answers.
type Message struct {
	Role       string
	Content    string
	ToolCalls  []ToolCall
	ToolCallID string
}

// ToolCall is one function call the model asked for.
type ToolCall struct {
	ID        string
	Name      string
	Arguments string
}

// Tool is a function the model may call; Parameters is its JSON Schema.
type Tool struct {
	Name        string
	Description string
	Parameters  map[string]any
}

// Request is one completion call.
type Request struct {
	Messages []Message
	Tools    []Tool
	// NoTools asks for an answer without further tool calls (the last round).
	NoTools bool
}

// Usage is the token count the server reported (zero when it did not).
type Usage struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
}

// Reply is the model's streamed answer, put together.
type Reply struct {
	Content      string
	ToolCalls    []ToolCall
	Model        string
	FinishReason string
	Usage        Usage
}

// Limits on what one streamed answer may hold, so a runaway server cannot
// grow the process without bound.
const (
	maxContentBytes   = 256 << 10
	maxToolCalls      = 16
	maxArgumentsBytes = 32 << 10
)

// StatusError is an answer the breaker holds against the model: 429 (it is
// saturated) or 5xx. Other 4xx answers are *breaker.StatusError, which the
// breaker treats as the request's fault.
type StatusError struct {
	Code int
	// RetryAfter is the server's Retry-After, when it sent one.
	RetryAfter time.Duration
}

func (e *StatusError) Error() string { return fmt.Sprintf("model answered HTTP %d", e.Code) }

// ErrBadStream is a stream the client could not make sense of (an error
// event, a broken chunk, limits exceeded, no end).
var ErrBadStream = errors.New("malformed completion stream")

// Options configure a Client.
type Options struct {
	BaseURL string
	APIKey  string
	Model   string
	// Timeout bounds one call, streamed answer included.
	Timeout time.Duration
	// MaxTokens caps the answer (0: the server's default).
	MaxTokens int
	// HTTP is the transport (nil: a fresh http.Client).
	HTTP    *http.Client
	Breaker *breaker.Breaker
}

// Client calls the completions endpoint.
type Client struct {
	svc       openai.ChatCompletionService
	model     string
	timeout   time.Duration
	maxTokens int
	breaker   *breaker.Breaker
}

// New builds a client. It reads no OPENAI_* environment: the service's
// configuration is the only source.
func New(o Options) *Client {
	hc := o.HTTP
	if hc == nil {
		hc = &http.Client{}
	}
	opts := []option.RequestOption{
		option.WithBaseURL(strings.TrimRight(o.BaseURL, "/") + "/"),
		option.WithHTTPClient(hc),
		option.WithMaxRetries(0),
	}
	if o.APIKey != "" {
		opts = append(opts, option.WithAPIKey(o.APIKey))
	}
	return &Client{svc: openai.NewChatCompletionService(opts...), model: o.Model, timeout: o.Timeout,
		maxTokens: o.MaxTokens, breaker: o.Breaker}
}

// Model is the configured model name.
func (c *Client) Model() string { return c.model }

// Stream makes one streamed completion call. onToken gets each piece of
// answer text as it arrives (nil: none); the whole reply is returned at the
// end. The call runs through the breaker and under the client's timeout.
func (c *Client) Stream(ctx context.Context, req Request, onToken func(string)) (*Reply, error) {
	params := c.params(req)
	var out *Reply
	err := c.breaker.Do(ctx, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, c.timeout)
		defer cancel()
		var raw *http.Response
		stream := c.svc.NewStreaming(ctx, params, option.WithResponseInto(&raw))
		defer stream.Close()
		r, err := collect(stream, onToken)
		if err != nil {
			return classify(err, raw)
		}
		out = r
		return nil
	})
	return out, err
}

func (c *Client) params(req Request) openai.ChatCompletionNewParams {
	p := openai.ChatCompletionNewParams{
		Model:         shared.ChatModel(c.model),
		Messages:      make([]openai.ChatCompletionMessageParamUnion, 0, len(req.Messages)),
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: param.NewOpt(true)},
	}
	if c.maxTokens > 0 {
		p.MaxTokens = param.NewOpt(int64(c.maxTokens))
	}
	for _, m := range req.Messages {
		p.Messages = append(p.Messages, toParam(m))
	}
	for _, t := range req.Tools {
		p.Tools = append(p.Tools, openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
			Name: t.Name, Description: param.NewOpt(t.Description), Parameters: shared.FunctionParameters(t.Parameters),
		}))
	}
	if len(req.Tools) > 0 && req.NoTools {
		p.ToolChoice = openai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: param.NewOpt("none")}
	}
	return p
}

func toParam(m Message) openai.ChatCompletionMessageParamUnion {
	switch m.Role {
	case RoleSystem:
		return openai.SystemMessage(m.Content)
	case RoleTool:
		return openai.ToolMessage(m.Content, m.ToolCallID)
	case RoleAssistant:
		a := openai.ChatCompletionAssistantMessageParam{}
		if m.Content != "" || len(m.ToolCalls) == 0 {
			a.Content.OfString = param.NewOpt(m.Content)
		}
		for _, tc := range m.ToolCalls {
			a.ToolCalls = append(a.ToolCalls, openai.ChatCompletionMessageToolCallUnionParam{
				OfFunction: &openai.ChatCompletionMessageFunctionToolCallParam{ID: tc.ID,
					Function: openai.ChatCompletionMessageFunctionToolCallFunctionParam{Name: tc.Name, Arguments: tc.Arguments}},
			})
		}
		return openai.ChatCompletionMessageParamUnion{OfAssistant: &a}
	default:
		return openai.UserMessage(m.Content)
	}
}

// collect reads the chunks: text deltas go to onToken, tool-call deltas are
// joined by their index (id and name arrive first, arguments in pieces).
func collect(stream *ssestream.Stream[openai.ChatCompletionChunk], onToken func(string)) (*Reply, error) {
	r := &Reply{}
	var content strings.Builder
	calls := map[int64]*ToolCall{}
	var order []int64
	for stream.Next() {
		ch := stream.Current()
		if ch.Model != "" {
			r.Model = ch.Model
		}
		if ch.Usage.PromptTokens > 0 || ch.Usage.CompletionTokens > 0 {
			r.Usage = Usage{PromptTokens: ch.Usage.PromptTokens, CompletionTokens: ch.Usage.CompletionTokens}
		}
		for _, choice := range ch.Choices {
			if choice.Index != 0 {
				continue // one answer is asked for; ignore any other
			}
			if choice.FinishReason != "" {
				r.FinishReason = choice.FinishReason
			}
			if d := choice.Delta.Content; d != "" {
				if content.Len()+len(d) > maxContentBytes {
					return nil, fmt.Errorf("%w: answer longer than %d bytes", ErrBadStream, maxContentBytes)
				}
				content.WriteString(d)
				if onToken != nil {
					onToken(d)
				}
			}
			for _, d := range choice.Delta.ToolCalls {
				tc, ok := calls[d.Index]
				if !ok {
					if len(calls) == maxToolCalls {
						return nil, fmt.Errorf("%w: more than %d tool calls", ErrBadStream, maxToolCalls)
					}
					tc = &ToolCall{}
					calls[d.Index] = tc
					order = append(order, d.Index)
				}
				if d.ID != "" {
					tc.ID = d.ID
				}
				tc.Name += d.Function.Name
				tc.Arguments += d.Function.Arguments
				if len(tc.Arguments) > maxArgumentsBytes || len(tc.Name) > 64 {
					return nil, fmt.Errorf("%w: tool call too large", ErrBadStream)
				}
			}
		}
	}
	if err := stream.Err(); err != nil {
		return nil, err
	}
	if r.FinishReason == "" {
		return nil, fmt.Errorf("%w: the stream ended without a finish reason", ErrBadStream)
	}
	r.Content = content.String()
	for i, idx := range order {
		tc := calls[idx]
		if tc.ID == "" {
			// Some servers leave ids out; the conversation still needs one
			// to pair each tool answer with its call.
			tc.ID = "call_" + strconv.Itoa(i)
		}
		r.ToolCalls = append(r.ToolCalls, *tc)
	}
	return r, nil
}

// classify turns a failed call into what the breaker and the handler need.
func classify(err error, raw *http.Response) error {
	var ae *openai.Error
	if errors.As(err, &ae) {
		code := ae.StatusCode
		if code == http.StatusTooManyRequests || code >= 500 {
			se := &StatusError{Code: code}
			if ae.Response != nil {
				se.RetryAfter = retryAfter(ae.Response.Header.Get("Retry-After"))
			}
			return se
		}
		return &breaker.StatusError{Code: code}
	}
	var se *ssestream.StreamError
	if errors.As(err, &se) {
		return fmt.Errorf("%w: the server sent an error event", ErrBadStream)
	}
	if errors.Is(err, ErrBadStream) || errors.Is(err, context.Canceled) || breaker.IsTimeout(err) {
		return err
	}
	if raw != nil && raw.StatusCode == http.StatusOK && !errors.Is(err, context.DeadlineExceeded) {
		// The answer started and then broke (a dropped connection, a chunk
		// that is not JSON).
		return fmt.Errorf("%w: %w", ErrBadStream, err)
	}
	return fmt.Errorf("llm request: %w", err)
}

func retryAfter(v string) time.Duration {
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

// Describe says why a call failed in words safe for a log line: a status,
// a timeout, a connection error. Never the prompt, never the server's text
// (which may quote it).
func Describe(err error) string {
	var se *StatusError
	var bse *breaker.StatusError
	switch {
	case errors.As(err, &se):
		return se.Error()
	case errors.As(err, &bse):
		return fmt.Sprintf("model answered HTTP %d", bse.Code)
	case errors.Is(err, breaker.ErrOpen):
		return "breaker open"
	case breaker.IsTimeout(err):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled by the client"
	case errors.Is(err, ErrBadStream):
		return err.Error()
	}
	return err.Error()
}

// Available reports whether the breaker lets calls through now (an open
// breaker answers at once, before a stream is started).
func (c *Client) Available() bool { return c.breaker.State() != "open" }
