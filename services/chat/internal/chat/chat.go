// Package chat serves POST /chat: it validates the question, loads the
// conversation of the asking key, bounds how many LLM calls run at once (a
// semaphore with a bounded wait), and answers from the credentialing
// records through the tools, as JSON or as a server-sent event stream.
package chat

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/provcred/chat/internal/cite"
	"github.com/provcred/chat/internal/history"
	"github.com/provcred/chat/internal/llm"
	"github.com/provcred/chat/internal/tools"
	"github.com/provcred/platform/apierr"
	"github.com/provcred/platform/breaker"
	"github.com/provcred/platform/jsonbody"
	"github.com/provcred/platform/semaphore"
	"github.com/provcred/platform/server"
)

// Request is the body of POST /chat.
type Request struct {
	Message        string `json:"message"`
	ConversationID string `json:"conversation_id"`
}

// Response is the JSON answer (and, without the answer, the done event).
type Response struct {
	ConversationID string          `json:"conversation_id"`
	Answer         string          `json:"answer,omitempty"`
	Model          string          `json:"model"`
	Citations      []cite.Citation `json:"citations"`
	Unverified     []string        `json:"unverified"`
	Usage          llm.Usage       `json:"usage"`
}

// Handler serves /chat. Engine nil means no LLM is configured.
type Handler struct {
	Engine          *Engine
	History         *history.Store
	Sem             *semaphore.Semaphore
	MaxMessageChars int
	// HistoryTokens is the budget of earlier turns sent with a follow-up.
	HistoryTokens int
	// TurnTimeout bounds one question, all its LLM and tool calls.
	TurnTimeout time.Duration
	// KeepAlive is the idle interval of an event stream's comment lines.
	KeepAlive time.Duration
	// RetryAfter is what a busy or broken LLM tells the client to wait.
	RetryAfter time.Duration
	Log        *slog.Logger
}

// Routes registers POST /chat.
func (h *Handler) Routes(r fiber.Router) { r.Post("/chat", h.chat) }

// Parse validates a request body; it is the only parser of outside input here.
func Parse(body []byte, maxChars int) (*Request, error) {
	var req Request
	// One object and nothing after it, no key twice: the platform's strict
	// decoder. Its 400s say what was wrong (a duplicated key by name); every
	// other refusal keeps this service's one answer.
	if err := jsonbody.Decode(body, &req); err != nil {
		if e, ok := apierr.As(err); ok && e.Code == "invalid_json" && strings.HasPrefix(e.Detail, "duplicate key") {
			return nil, e
		}
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

// wantsStream reports whether the client asked for server-sent events.
func wantsStream(c *fiber.Ctx) bool {
	return strings.Contains(strings.ToLower(c.Get(fiber.HeaderAccept)), "text/event-stream")
}

func (h *Handler) chat(c *fiber.Ctx) error {
	req, err := Parse(c.Body(), h.MaxMessageChars)
	if err != nil {
		return err
	}
	if h.Engine == nil {
		return apierr.Unavailable("llm_not_configured", "No LLM is configured for chat (set LLM_BASE_URL).")
	}
	caller := tools.Caller{Actor: server.Actor(c), Role: server.Role(c), RequestID: server.RequestID(c)}
	turn := Turn{Caller: caller, Question: req.Message}
	if req.ConversationID == "" {
		req.ConversationID = uuid.NewString()
	} else {
		turn.History, err = h.History.Recent(c.UserContext(), req.ConversationID, caller.Actor, h.HistoryTokens)
		if err != nil {
			return err
		}
	}
	if err := h.Sem.Acquire(c.UserContext()); err != nil {
		h.Engine.requests.WithLabelValues("rejected").Inc()
		c.Set(fiber.HeaderRetryAfter, seconds(h.RetryAfter))
		return apierr.Unavailable("llm_busy", "All LLM slots are busy. Please try again shortly.")
	}
	if !h.Engine.LLM.Available() {
		h.Sem.Release()
		h.Engine.requests.WithLabelValues("breaker_open").Inc()
		return h.llmError(c, breaker.ErrOpen)
	}
	if wantsStream(c) {
		return h.stream(c, req, turn)
	}
	defer h.Sem.Release()
	ctx, cancel := context.WithTimeout(c.UserContext(), h.TurnTimeout)
	defer cancel()
	ans, err := h.Engine.Answer(ctx, turn, nil)
	if err != nil {
		return h.llmError(c, err)
	}
	h.store(c.UserContext(), req, caller, ans)
	return c.JSON(Response{ConversationID: req.ConversationID, Answer: ans.Text, Model: ans.Model,
		Citations: ans.Citations, Unverified: ans.Unverified, Usage: ans.Usage})
}

// store keeps the turn. The answer is worth more than its record: a failed
// write is logged (never the text), and the client still gets the answer.
func (h *Handler) store(ctx context.Context, req *Request, caller tools.Caller, ans *Answer) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := h.History.Append(ctx, req.ConversationID, caller.Actor, req.Message, ans.Text, ans.Citations); err != nil {
		h.Log.ErrorContext(ctx, "conversation turn not stored", "err", err.Error())
	}
}

// apiError maps a failed turn to the client's error; the cause (status,
// timeout, dial error; never the prompt) is logged for the operator.
func (h *Handler) apiError(ctx context.Context, err error) (*apierr.Error, time.Duration) {
	var se *llm.StatusError
	switch {
	case errors.Is(err, breaker.ErrOpen):
		return apierr.Unavailable("llm_unavailable", "The LLM is failing; chat is paused for a few seconds."), h.RetryAfter
	case errors.As(err, &se) && se.Code == 429:
		wait := max(se.RetryAfter, h.RetryAfter)
		h.Log.WarnContext(ctx, "llm call failed", "err", llm.Describe(err))
		return apierr.Unavailable("llm_unavailable", "The LLM is rate limiting this service. Please try again shortly."), wait
	case errors.Is(err, context.Canceled):
		return apierr.New(499, "canceled", "The client went away."), 0
	case breaker.IsTimeout(err):
		h.Log.WarnContext(ctx, "llm call failed", "err", llm.Describe(err))
		return apierr.New(fiber.StatusGatewayTimeout, "llm_timeout", "The LLM did not answer in time."), 0
	}
	h.Log.WarnContext(ctx, "llm call failed", "err", llm.Describe(err))
	return apierr.New(fiber.StatusBadGateway, "llm_error", "The LLM answered with an error."), 0
}

func (h *Handler) llmError(c *fiber.Ctx, err error) error {
	ae, wait := h.apiError(c.UserContext(), err)
	if wait > 0 {
		c.Set(fiber.HeaderRetryAfter, seconds(wait))
	}
	return ae
}

func seconds(d time.Duration) string {
	return strconv.Itoa(max(1, int((d+time.Second-1)/time.Second)))
}
