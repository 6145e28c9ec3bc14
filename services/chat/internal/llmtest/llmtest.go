// Package llmtest is a scripted model behind a real OpenAI-compatible HTTP
// server, for tests and benchmarks: POST /v1/chat/completions answered in
// the real wire format (streamed chunks with content and tool-call deltas,
// a usage chunk, data: [DONE]; or one JSON completion), and the failures a
// real server has (429 with Retry-After, 500, a stall mid-stream).
package llmtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Message is a chat message as the client sent it.
type Message struct {
	Role       string     `json:"role"`
	Content    any        `json:"content"`
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
}

// Text is the message's content as a string (content parts joined).
func (m Message) Text() string {
	switch c := m.Content.(type) {
	case string:
		return c
	case []any:
		var b strings.Builder
		for _, p := range c {
			if pm, ok := p.(map[string]any); ok {
				s, _ := pm["text"].(string)
				b.WriteString(s)
			}
		}
		return b.String()
	}
	return ""
}

// ToolCall is a function call, as sent back by the client or scripted.
type ToolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// Call makes a scripted tool call.
func Call(id, name, arguments string) ToolCall {
	tc := ToolCall{ID: id, Type: "function"}
	tc.Function.Name, tc.Function.Arguments = name, arguments
	return tc
}

// Request is what the client sent.
type Request struct {
	Model         string            `json:"model"`
	Messages      []Message         `json:"messages"`
	Tools         []json.RawMessage `json:"tools"`
	ToolChoice    any               `json:"tool_choice"`
	Stream        bool              `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	MaxTokens int         `json:"max_tokens"`
	Header    http.Header `json:"-"`
}

// Last is the last message of the request.
func (r *Request) Last() Message {
	if len(r.Messages) == 0 {
		return Message{}
	}
	return r.Messages[len(r.Messages)-1]
}

// ToolNames lists the tools the client offered.
func (r *Request) ToolNames() []string {
	var out []string
	for _, raw := range r.Tools {
		var t struct {
			Function struct{ Name string } `json:"function"`
		}
		_ = json.Unmarshal(raw, &t)
		out = append(out, t.Function.Name)
	}
	return out
}

// Reply is what the scripted model answers to one request.
type Reply struct {
	// Status other than 0/200 answers an OpenAI error object with it.
	Status int
	// RetryAfter is sent as Retry-After with an error status.
	RetryAfter string
	// Delay passes before the response headers (the model "thinking").
	Delay time.Duration
	// Tokens are streamed as content deltas, TokenDelay apart.
	Tokens     []string
	TokenDelay time.Duration
	// ToolCalls are streamed as tool-call deltas, arguments in pieces.
	ToolCalls []ToolCall
	// Stall stops after the tokens without finishing, holding the
	// connection until the client gives up.
	Stall bool
	// ErrorEvent ends the stream after the tokens with an error object, as
	// OpenAI does when a request fails mid-answer.
	ErrorEvent bool
	// OmitIDs leaves tool-call ids out (some local servers do).
	OmitIDs bool
	// PromptTokens and CompletionTokens go in the usage chunk.
	PromptTokens, CompletionTokens int
}

// Server is the scripted model.
type Server struct {
	// URL is the API root to give the client (…/v1).
	URL string

	srv    *httptest.Server
	script func(req *Request) Reply

	mu       sync.Mutex
	requests []*Request

	inflight, maxInflight atomic.Int64
	canceled              atomic.Int64
	cancelAt              chan time.Time
}

// Start runs a scripted model until t's cleanup (or Close).
func Start(script func(req *Request) Reply) *Server {
	s := &Server{script: script, cancelAt: make(chan time.Time, 1024)}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL + "/v1"
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.CloseClientConnections(); s.srv.Close() }

// SetScript replaces the script.
func (s *Server) SetScript(script func(req *Request) Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = script
}

// Requests returns the requests received so far.
func (s *Server) Requests() []*Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Request(nil), s.requests...)
}

// MaxInFlight is the most requests answered at any moment.
func (s *Server) MaxInFlight() int64 { return s.maxInflight.Load() }

// Canceled counts requests whose client went away before the answer ended.
func (s *Server) Canceled() int64 { return s.canceled.Load() }

// CancelTimes receives the moment each such request was abandoned.
func (s *Server) CancelTimes() <-chan time.Time { return s.cancelAt }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	n := s.inflight.Add(1)
	defer s.inflight.Add(-1)
	for {
		m := s.maxInflight.Load()
		if n <= m || s.maxInflight.CompareAndSwap(m, n) {
			break
		}
	}
	if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
		writeError(w, http.StatusNotFound, "no such endpoint "+r.URL.Path)
		return
	}
	req := &Request{Header: r.Header.Clone()}
	if err := json.NewDecoder(r.Body).Decode(req); err != nil {
		writeError(w, http.StatusBadRequest, "the body is not JSON: "+err.Error())
		return
	}
	s.mu.Lock()
	s.requests = append(s.requests, req)
	script := s.script
	s.mu.Unlock()
	rep := script(req)
	if !s.wait(r, rep.Delay) {
		s.abandoned(r)
		return
	}
	if rep.Status != 0 && rep.Status != http.StatusOK {
		if rep.RetryAfter != "" {
			w.Header().Set("Retry-After", rep.RetryAfter)
		}
		writeError(w, rep.Status, http.StatusText(rep.Status))
		return
	}
	model := req.Model
	if !req.Stream {
		s.complete(w, model, rep)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	id := fmt.Sprintf("chatcmpl-%d", time.Now().UnixNano())
	chunk := func(choices []any, usage any) bool {
		c := map[string]any{"id": id, "object": "chat.completion.chunk", "created": time.Now().Unix(), "model": model,
			"choices": choices}
		if usage != nil {
			c["usage"] = usage
		}
		b, _ := json.Marshal(c)
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return false
		}
		fl.Flush()
		return true
	}
	delta := func(d map[string]any, finish any) []any {
		return []any{map[string]any{"index": 0, "delta": d, "finish_reason": finish, "logprobs": nil}}
	}
	if !chunk(delta(map[string]any{"role": "assistant", "content": ""}, nil), nil) {
		return
	}
	for _, tok := range rep.Tokens {
		if !s.wait(r, rep.TokenDelay) || !chunk(delta(map[string]any{"content": tok}, nil), nil) {
			s.abandoned(r)
			return
		}
	}
	for i, tc := range rep.ToolCalls {
		// The first delta names the call; the arguments follow in pieces,
		// as real servers stream them.
		first := map[string]any{"index": i, "type": "function",
			"function": map[string]any{"name": tc.Function.Name, "arguments": ""}}
		if !rep.OmitIDs {
			first["id"] = tc.ID
		}
		if !chunk(delta(map[string]any{"tool_calls": []any{first}}, nil), nil) {
			s.abandoned(r)
			return
		}
		for _, piece := range pieces(tc.Function.Arguments, 7) {
			d := map[string]any{"index": i, "function": map[string]any{"arguments": piece}}
			if !chunk(delta(map[string]any{"tool_calls": []any{d}}, nil), nil) {
				return
			}
		}
	}
	if rep.ErrorEvent {
		fmt.Fprint(w, "data: {\"error\":{\"message\":\"The server had an error while processing your request.\",\"type\":\"server_error\"}}\n\n")
		fl.Flush()
		return
	}
	if rep.Stall {
		<-r.Context().Done()
		s.abandoned(r)
		return
	}
	finish := "stop"
	if len(rep.ToolCalls) > 0 {
		finish = "tool_calls"
	}
	if !chunk(delta(map[string]any{}, finish), nil) {
		return
	}
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		chunk([]any{}, map[string]any{"prompt_tokens": rep.PromptTokens, "completion_tokens": rep.CompletionTokens,
			"total_tokens": rep.PromptTokens + rep.CompletionTokens})
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
	fl.Flush()
}

// complete answers a non-streamed request with one chat.completion object.
func (s *Server) complete(w http.ResponseWriter, model string, rep Reply) {
	msg := map[string]any{"role": "assistant", "content": strings.Join(rep.Tokens, "")}
	finish := "stop"
	if len(rep.ToolCalls) > 0 {
		msg["tool_calls"], finish = rep.ToolCalls, "tool_calls"
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"id": "chatcmpl-1", "object": "chat.completion", "created": time.Now().Unix(),
		"model": model, "choices": []any{map[string]any{"index": 0, "message": msg, "finish_reason": finish}},
		"usage": map[string]any{"prompt_tokens": rep.PromptTokens, "completion_tokens": rep.CompletionTokens,
			"total_tokens": rep.PromptTokens + rep.CompletionTokens}})
}

// wait sleeps d unless the client goes away first.
func (s *Server) wait(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return r.Context().Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

func (s *Server) abandoned(r *http.Request) {
	if r.Context().Err() == nil {
		return
	}
	s.canceled.Add(1)
	select {
	case s.cancelAt <- time.Now():
	default:
	}
}

func pieces(s string, n int) []string {
	var out []string
	for len(s) > n {
		out = append(out, s[:n])
		s = s[n:]
	}
	if s != "" {
		out = append(out, s)
	}
	return out
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": "server_error", "code": nil, "param": nil}})
}
