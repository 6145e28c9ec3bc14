// Package chat serves POST /chat: it validates the question, bounds how
// many LLM calls run at once (a semaphore with a bounded wait), and calls
// the configured OpenAI-compatible LLM through a breaker.
package chat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/provcred/chat/internal/history"
	"github.com/provcred/chat/internal/llm"
	"github.com/provcred/platform/apierr"
	"github.com/provcred/platform/breaker"
	"github.com/provcred/platform/metrics"
	"github.com/provcred/platform/semaphore"
	"github.com/provcred/platform/server"
)

// systemPrompt keeps the model honest about what it can see: grounding in
// the credentialing records is on the roadmap (README), not here yet.
const systemPrompt = "You are the assistant of a healthcare provider-credentialing platform. " +
	"You explain credentialing concepts (NPI, NPPES, OIG LEIE and SAM exclusions, state licenses, " +
	"recredentialing). You have no access to this organisation's provider records: if asked about a " +
	"specific provider or result, say that you cannot see records and point to GET /results/{provider_id}."

// Request is the body of POST /chat.
type Request struct {
	Message        string `json:"message"`
	ConversationID string `json:"conversation_id"`
}

// Response is the answer.
type Response struct {
	ConversationID string   `json:"conversation_id"`
	Answer         string   `json:"answer"`
	Model          string   `json:"model"`
	Citations      []string `json:"citations"`
}

// historyTurns is how many earlier turns go with a follow-up question.
const historyTurns = 10

// Handler serves /chat. LLM nil means no LLM is configured.
type Handler struct {
	LLM             *llm.Client
	History         *history.Store
	Sem             *semaphore.Semaphore
	MaxMessageChars int
	Log             *slog.Logger

	requests *prometheus.CounterVec
	duration prometheus.Observer
}

// NewHandler builds the handler and its metrics.
func NewHandler(client *llm.Client, hist *history.Store, sem *semaphore.Semaphore, maxChars int, m *metrics.Registry, log *slog.Logger) *Handler {
	return &Handler{
		LLM: client, History: hist, Sem: sem, MaxMessageChars: maxChars, Log: log,
		requests: m.CounterVec("chat_llm_requests_total", "LLM calls by outcome.", "outcome"),
		duration: m.HistogramVec("chat_llm_duration_seconds", "LLM call latency.", prometheus.ExponentialBuckets(0.1, 2, 10)).WithLabelValues(),
	}
}

// Routes registers POST /chat.
func (h *Handler) Routes(r fiber.Router) { r.Post("/chat", h.chat) }

// Parse validates a request body; it is the only parser of outside input here.
func Parse(body []byte, maxChars int) (*Request, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var req Request
	// One object and nothing after it: trailing text means a broken client.
	if err := dec.Decode(&req); err != nil || dec.Decode(&struct{}{}) != io.EOF {
		return nil, apierr.BadRequest("invalid_json", "the body must be a JSON object {\"message\": \"...\", \"conversation_id\": \"...\"}")
	}
	// Both strings are stored in PostgreSQL text columns, which refuse NUL;
	// the JSON decoder has already made them valid UTF-8.
	req.Message = strings.TrimSpace(req.Message)
	switch {
	case req.Message == "":
		return nil, apierr.Invalid("message", "is required")
	case strings.ContainsRune(req.Message, 0):
		return nil, apierr.Invalid("message", "must not contain NUL characters")
	case utf8.RuneCountInString(req.Message) > maxChars:
		return nil, apierr.Invalid("message", "is too long")
	case len(req.ConversationID) > 100:
		return nil, apierr.Invalid("conversation_id", "must be at most 100 characters")
	case strings.IndexFunc(req.ConversationID, unicode.IsControl) >= 0:
		return nil, apierr.Invalid("conversation_id", "must not contain control characters")
	}
	return &req, nil
}

func (h *Handler) chat(c *fiber.Ctx) error {
	req, err := Parse(c.Body(), h.MaxMessageChars)
	if err != nil {
		return err
	}
	if h.LLM == nil {
		h.requests.WithLabelValues("not_configured").Inc()
		return apierr.Unavailable("llm_not_configured", "No LLM is configured for chat (set LLM_BASE_URL).")
	}
	actor := server.Actor(c)
	msgs := []llm.Message{{Role: "system", Content: systemPrompt}}
	if req.ConversationID == "" {
		req.ConversationID = uuid.NewString()
	} else {
		earlier, err := h.History.Recent(c.UserContext(), req.ConversationID, actor, historyTurns)
		if err != nil {
			return err
		}
		msgs = append(msgs, earlier...)
	}
	msgs = append(msgs, llm.Message{Role: "user", Content: req.Message})
	if err := h.Sem.Acquire(c.UserContext()); err != nil {
		h.requests.WithLabelValues("rejected").Inc()
		c.Set(fiber.HeaderRetryAfter, "5")
		return apierr.Unavailable("llm_busy", "All LLM slots are busy. Please try again shortly.")
	}
	defer h.Sem.Release()
	start := time.Now()
	out, err := h.LLM.Complete(c.UserContext(), msgs)
	h.duration.Observe(time.Since(start).Seconds())
	if err != nil {
		// The client gets a stable code; the cause (status, timeout, dial
		// error; never the prompt) is for the operator.
		h.Log.WarnContext(c.UserContext(), "llm call failed", "err", err.Error())
		return h.llmError(err)
	}
	h.requests.WithLabelValues("ok").Inc()
	// The answer is worth more than its record: a failed write is logged,
	// and the client still gets the answer (without that turn's memory).
	if err := h.History.Append(c.UserContext(), req.ConversationID, actor, req.Message, out.Content); err != nil {
		h.Log.ErrorContext(c.UserContext(), "conversation turn not stored", "conversation_id", req.ConversationID, "err", err.Error())
	}
	return c.JSON(Response{ConversationID: req.ConversationID, Answer: out.Content, Model: out.Model, Citations: []string{}})
}

func (h *Handler) llmError(err error) error {
	switch {
	case errors.Is(err, breaker.ErrOpen):
		h.requests.WithLabelValues("breaker_open").Inc()
		return apierr.Unavailable("llm_unavailable", "The LLM is failing; chat is paused for a few seconds.")
	case breaker.IsTimeout(err) || errors.Is(err, context.DeadlineExceeded):
		h.requests.WithLabelValues("timeout").Inc()
		return apierr.New(fiber.StatusGatewayTimeout, "llm_timeout", "The LLM did not answer in time.")
	default:
		h.requests.WithLabelValues("error").Inc()
		return apierr.New(fiber.StatusBadGateway, "llm_error", "The LLM answered with an error.")
	}
}
