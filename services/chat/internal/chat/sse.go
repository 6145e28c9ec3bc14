package chat

import (
	"bufio"
	"context"
	"encoding/json"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/provcred/platform/apierr"
)

// Server-sent event names of POST /chat with Accept: text/event-stream.
const (
	EventToken    = "token"
	EventCitation = "citation"
	EventDone     = "done"
	EventError    = "error"
)

type event struct {
	name string
	data any
}

// stream answers as server-sent events: token events as the model writes,
// then one citation event per cited record and done (or one error event).
// The turn runs in its own goroutine holding the LLM slot; the response
// writer sends what it produces, flushed event by event, and a comment line
// when idle. A write that fails means the client went away: the turn's
// context is cancelled, which ends the LLM call and frees the slot.
func (h *Handler) stream(c *fiber.Ctx, req *Request, turn Turn) error {
	// The request's context ends when the handler returns, before the body
	// is written; the turn keeps its values (request id, trace) and gets
	// its own bound.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.UserContext()), h.TurnTimeout)
	events := make(chan event, 64)
	send := func(ev event) bool {
		select {
		case events <- ev:
			return true
		case <-ctx.Done():
			return false
		}
	}
	go func() {
		defer close(events)
		defer cancel()
		ans, err := func() (*Answer, error) {
			defer h.Sem.Release()
			return h.Engine.Answer(ctx, turn, func(text string) { send(event{EventToken, map[string]string{"text": text}}) })
		}()
		if err != nil {
			ae, _ := h.apiError(ctx, err)
			send(event{EventError, ae})
			return
		}
		h.store(ctx, req, turn.Caller, ans)
		for _, ct := range ans.Citations {
			send(event{EventCitation, ct})
		}
		send(event{EventDone, Response{ConversationID: req.ConversationID, Model: ans.Model,
			Citations: ans.Citations, Unverified: ans.Unverified, Usage: ans.Usage}})
	}()

	c.Set(fiber.HeaderContentType, "text/event-stream; charset=utf-8")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	// Proxies that buffer (nginx) pass the stream through as it comes.
	c.Set("X-Accel-Buffering", "no")
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		defer cancel()
		// Only an idle stream gets comments: events are writes enough.
		idle := time.NewTimer(h.KeepAlive)
		defer idle.Stop()
		// A first comment sends the headers now, so the client knows the
		// question was taken.
		if writeComment(w) != nil {
			return
		}
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					return
				}
				if writeEvent(w, ev) != nil {
					return
				}
			case <-idle.C:
				if writeComment(w) != nil {
					return
				}
			}
			idle.Reset(h.KeepAlive)
		}
	})
	return nil
}

func writeEvent(w *bufio.Writer, ev event) error {
	data, err := json.Marshal(ev.data)
	if err != nil {
		data, _ = json.Marshal(apierr.Internal())
	}
	w.WriteString("event: " + ev.name + "\ndata: ")
	w.Write(data)
	w.WriteString("\n\n")
	return w.Flush()
}

func writeComment(w *bufio.Writer) error {
	w.WriteString(": keep-alive\n\n")
	return w.Flush()
}
