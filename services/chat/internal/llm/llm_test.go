package llm_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/provcred/chat/internal/llm"
	"github.com/provcred/chat/internal/llmtest"
	"github.com/provcred/platform/breaker"
	"github.com/provcred/platform/metrics"
)

func client(t *testing.T, script func(*llmtest.Request) llmtest.Reply) (*llm.Client, *llmtest.Server, *metrics.Registry) {
	t.Helper()
	s := llmtest.Start(script)
	t.Cleanup(s.Close)
	m := metrics.New("chat")
	c := llm.New(llm.Options{BaseURL: s.URL, Model: "m", Timeout: time.Second,
		Breaker: breaker.New("llm", breaker.Settings{ConsecutiveFailures: 2, OpenTimeout: time.Minute, HalfOpenRequests: 1}, m)})
	return c, s, m
}

func TestStreamToolCallDeltas(t *testing.T) {
	t.Parallel()
	for _, omitIDs := range []bool{false, true} {
		c, s, _ := client(t, func(*llmtest.Request) llmtest.Reply {
			return llmtest.Reply{Tokens: []string{"Looking ", "it up."}, OmitIDs: omitIDs, PromptTokens: 50, CompletionTokens: 9,
				ToolCalls: []llmtest.ToolCall{
					llmtest.Call("call_a", "get_provider", `{"provider_id":"provider_001"}`),
					llmtest.Call("call_b", "get_latest_result", `{"provider_id":"provider_001"}`),
				}}
		})
		var tokens []string
		rep, err := c.Stream(t.Context(), llm.Request{
			Messages: []llm.Message{{Role: llm.RoleSystem, Content: "s"}, {Role: llm.RoleUser, Content: "q"},
				{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{ID: "x", Name: "get_provider", Arguments: "{}"}}},
				{Role: llm.RoleTool, ToolCallID: "x", Content: `{"data":1}`}},
			Tools: []llm.Tool{{Name: "get_provider", Parameters: map[string]any{"type": "object"}}},
		}, func(s string) { tokens = append(tokens, s) })
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(tokens, "|") != "Looking |it up." || rep.Content != "Looking it up." || rep.FinishReason != "tool_calls" ||
			rep.Usage.PromptTokens != 50 || rep.Usage.CompletionTokens != 9 || rep.Model != "m" {
			t.Fatalf("%+v tokens %v", rep, tokens)
		}
		if len(rep.ToolCalls) != 2 || rep.ToolCalls[0].Name != "get_provider" || rep.ToolCalls[0].Arguments != `{"provider_id":"provider_001"}` ||
			rep.ToolCalls[1].Name != "get_latest_result" || rep.ToolCalls[0].ID == rep.ToolCalls[1].ID || rep.ToolCalls[0].ID == "" {
			t.Fatalf("omitIDs %v: tool calls %+v", omitIDs, rep.ToolCalls)
		}
		if !omitIDs && (rep.ToolCalls[0].ID != "call_a" || rep.ToolCalls[1].ID != "call_b") {
			t.Fatalf("ids %+v", rep.ToolCalls)
		}
		// The conversation went out in the wire format: the assistant's
		// tool call and the tool's answer paired by id.
		req := s.Requests()[0]
		if req.Messages[2].Role != "assistant" || len(req.Messages[2].ToolCalls) != 1 || req.Messages[2].ToolCalls[0].ID != "x" ||
			req.Messages[3].Role != "tool" || req.Messages[3].ToolCallID != "x" || req.ToolChoice != nil {
			t.Fatalf("request %+v", req.Messages)
		}
	}
}

func TestNoToolsAsksForToolChoiceNone(t *testing.T) {
	t.Parallel()
	c, s, _ := client(t, func(*llmtest.Request) llmtest.Reply { return llmtest.Reply{Tokens: []string{"ok"}} })
	if _, err := c.Stream(t.Context(), llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Content: "q"}},
		Tools: []llm.Tool{{Name: "t", Parameters: map[string]any{"type": "object"}}}, NoTools: true}, nil); err != nil {
		t.Fatal(err)
	}
	if s.Requests()[0].ToolChoice != "none" {
		t.Fatalf("tool_choice %v", s.Requests()[0].ToolChoice)
	}
}

func TestFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		reply   llmtest.Reply
		check   func(error) bool
		tripped bool // counts against the model
	}{
		{"429", llmtest.Reply{Status: 429, RetryAfter: "3"}, func(err error) bool {
			var se *llm.StatusError
			return errors.As(err, &se) && se.Code == 429 && se.RetryAfter == 3*time.Second
		}, true},
		{"503", llmtest.Reply{Status: 503}, func(err error) bool {
			var se *llm.StatusError
			return errors.As(err, &se) && se.Code == 503
		}, true},
		{"400", llmtest.Reply{Status: 400}, func(err error) bool {
			var se *breaker.StatusError
			return errors.As(err, &se) && se.Code == 400
		}, false},
		{"error event mid-stream", llmtest.Reply{Tokens: []string{"half"}, ErrorEvent: true}, func(err error) bool {
			return errors.Is(err, llm.ErrBadStream)
		}, true},
		{"stall", llmtest.Reply{Tokens: []string{"half"}, Stall: true}, breaker.IsTimeout, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, _, m := client(t, func(*llmtest.Request) llmtest.Reply { return tt.reply })
			req := llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Content: "q"}}}
			for i := 0; i < 2; i++ {
				_, err := c.Stream(t.Context(), req, nil)
				if !tt.check(err) {
					t.Fatalf("error %v (%T)", err, err)
				}
				if d := llm.Describe(err); strings.Contains(d, "q") && tt.name != "stall" && tt.name != "error event mid-stream" {
					t.Fatalf("Describe %q", d)
				}
			}
			state, _ := m.Value("circuit_breaker_state", "name=llm")
			if tt.tripped != (state == 2) {
				t.Fatalf("breaker state %v after two %s", state, tt.name)
			}
		})
	}
}

func TestCallerCancelIsNotAFailure(t *testing.T) {
	t.Parallel()
	c, s, m := client(t, func(*llmtest.Request) llmtest.Reply { return llmtest.Reply{Tokens: []string{"a"}, Stall: true} })
	for i := 0; i < 3; i++ {
		ctx, cancel := context.WithCancel(t.Context())
		// Cancelled once the answer has begun, so the server is mid-stream.
		_, err := c.Stream(ctx, llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Content: "q"}}}, func(string) { cancel() })
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("%v", err)
		}
	}
	if state, _ := m.Value("circuit_breaker_state", "name=llm"); state != 0 {
		t.Fatalf("breaker state %v", state)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.Canceled() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if s.Canceled() != 3 {
		t.Fatalf("the server saw %d cancels", s.Canceled())
	}
}
