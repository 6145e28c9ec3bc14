package chat

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/provcred/chat/internal/cite"
	"github.com/provcred/chat/internal/llm"
	"github.com/provcred/chat/internal/tools"
	"github.com/provcred/platform/breaker"
	"github.com/provcred/platform/metrics"
)

// Engine answers one question: it calls the model with the caller's tools,
// runs the tool calls the model makes (at most MaxToolRounds rounds), and
// checks the answer's citations against what the tools returned.
type Engine struct {
	LLM           *llm.Client
	Tools         *tools.Kit
	MaxToolRounds int
	Log           *slog.Logger

	requests   *prometheus.CounterVec
	duration   prometheus.Observer
	tokens     *prometheus.CounterVec
	unverified prometheus.Counter
}

// NewEngine builds the engine and its metrics.
func NewEngine(client *llm.Client, kit *tools.Kit, maxToolRounds int, m *metrics.Registry, log *slog.Logger) *Engine {
	e := &Engine{LLM: client, Tools: kit, MaxToolRounds: maxToolRounds, Log: log,
		requests: m.CounterVec("chat_llm_requests_total", "LLM calls by outcome.", "outcome"),
		duration: m.HistogramVec("chat_llm_duration_seconds", "LLM call latency, streamed answer included.",
			prometheus.ExponentialBuckets(0.1, 2, 10)).WithLabelValues(),
		tokens:     m.CounterVec("chat_llm_tokens_total", "Tokens the LLM server reported, by kind (prompt, completion).", "kind"),
		unverified: m.CounterVec("chat_unverified_ids_total", "Identifiers in answers that no tool of the turn returned.").WithLabelValues(),
	}
	for _, o := range []string{"ok", "error", "timeout", "breaker_open", "rate_limited", "canceled", "rejected", "not_configured"} {
		e.requests.WithLabelValues(o)
	}
	return e
}

// Turn is one question with what it is asked in.
type Turn struct {
	Caller   tools.Caller
	History  []llm.Message
	Question string
}

// Answer is the grounded answer.
type Answer struct {
	Text       string
	Model      string
	Citations  []cite.Citation
	Unverified []string
	Usage      llm.Usage
}

// errToolRounds is a model that still calls tools after its last round.
var errToolRounds = errors.New("the model kept calling tools past CHAT_MAX_TOOL_ROUNDS")

// Answer runs the turn. onToken gets the answer text as the model writes it.
func (e *Engine) Answer(ctx context.Context, t Turn, onToken func(string)) (*Answer, error) {
	ledger := cite.NewLedger()
	set := e.Tools.For(t.Caller, ledger)
	defs := set.Defs()
	prompt := systemPrompt
	if len(defs) == 0 {
		prompt = noToolsPrompt
	}
	msgs := make([]llm.Message, 0, len(t.History)+8)
	msgs = append(msgs, llm.Message{Role: llm.RoleSystem, Content: prompt})
	msgs = append(msgs, t.History...)
	msgs = append(msgs, llm.Message{Role: llm.RoleUser, Content: t.Question})

	out := &Answer{Model: e.LLM.Model()}
	var text []byte
	for round := 0; ; round++ {
		last := round >= e.MaxToolRounds
		req := llm.Request{Messages: msgs, Tools: defs, NoTools: last}
		start := time.Now()
		reply, err := e.LLM.Stream(ctx, req, onToken)
		e.duration.Observe(time.Since(start).Seconds())
		e.requests.WithLabelValues(outcome(err)).Inc()
		if err != nil {
			return nil, err
		}
		if reply.Model != "" {
			out.Model = reply.Model
		}
		out.Usage.PromptTokens += reply.Usage.PromptTokens
		out.Usage.CompletionTokens += reply.Usage.CompletionTokens
		e.tokens.WithLabelValues("prompt").Add(float64(reply.Usage.PromptTokens))
		e.tokens.WithLabelValues("completion").Add(float64(reply.Usage.CompletionTokens))
		text = append(text, reply.Content...)
		if len(reply.ToolCalls) == 0 {
			break
		}
		if last || len(defs) == 0 {
			return nil, errToolRounds
		}
		msgs = append(msgs, llm.Message{Role: llm.RoleAssistant, Content: reply.Content, ToolCalls: reply.ToolCalls})
		for _, tc := range reply.ToolCalls {
			result := set.Call(ctx, tc.Name, tc.Arguments)
			msgs = append(msgs, llm.Message{Role: llm.RoleTool, Content: result, ToolCallID: tc.ID})
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	out.Text = string(text)
	out.Citations, out.Unverified = ledger.Check(out.Text)
	if len(out.Unverified) > 0 {
		e.unverified.Add(float64(len(out.Unverified)))
		// Counts only: the ids may name people.
		e.Log.WarnContext(ctx, "answer names identifiers no tool returned", "count", len(out.Unverified))
	}
	return out, nil
}

// outcome is the chat_llm_requests_total label of one call.
func outcome(err error) string {
	var se *llm.StatusError
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, breaker.ErrOpen):
		return "breaker_open"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.As(err, &se) && se.Code == 429:
		return "rate_limited"
	case breaker.IsTimeout(err):
		return "timeout"
	}
	return "error"
}
