package batch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5"

	"github.com/provcred/credential/internal/providers"
	"github.com/provcred/credential/internal/reqtext"
	"github.com/provcred/credential/internal/roster"
	"github.com/provcred/platform/apierr"
	"github.com/provcred/platform/page"
	"github.com/provcred/platform/server"
)

// HeaderIdempotencyKey makes a submission safe to retry.
const HeaderIdempotencyKey = "Idempotency-Key"

// Routes registers the batch endpoints.
func (s *Service) Routes(r fiber.Router) {
	r.Post("/batch-credential", s.handleSubmit)
	r.Get("/results/batch/:batch_id", s.handleProgress)
	r.Delete("/batch/:batch_id", s.handleCancel)
	r.Get("/batches", s.handleList)
}

func (s *Service) handleSubmit(c *fiber.Ctx) error {
	ctx := c.UserContext()
	wait, err := ParseWait(c.Query("wait"), s.o.Config.BatchWaitMax)
	if err != nil {
		return err
	}
	limit := page.MaxLimit
	if c.Query("limit") != "" {
		if limit, err = page.Limit(c); err != nil {
			return err
		}
	}
	key := strings.TrimSpace(c.Get(HeaderIdempotencyKey))
	if len(key) > 255 || strings.ContainsFunc(key, unicode.IsControl) || !utf8.ValidString(key) {
		return apierr.Invalid(HeaderIdempotencyKey, "must be 1 to 255 printable characters")
	}
	sub := Submission{IdempotencyKey: key, Actor: server.Actor(c), RequestID: server.RequestID(c)}

	ctype := strings.ToLower(c.Get(fiber.HeaderContentType))
	switch {
	case strings.HasPrefix(ctype, "text/csv") || strings.HasPrefix(ctype, "application/csv"):
		out, err := s.submitRoster(c, sub)
		if err != nil {
			return err
		}
		return s.answer(c, out, wait, limit)
	case ctype == "" || strings.HasPrefix(ctype, "application/json") || strings.HasPrefix(ctype, "application/x-www-form-urlencoded"):
		// curl's default form type is a common slip; the body tells.
	default:
		return apierr.New(fiber.StatusUnsupportedMediaType, "unsupported_media_type",
			`send {"provider_ids":[...]} as application/json, or a roster as text/csv`)
	}
	body, err := s.readBody(c)
	if err != nil {
		return err
	}
	ids, dups, err := ParseIDs(body, s.o.MaxProviders)
	if err != nil {
		return err
	}
	sub.IDs, sub.Duplicates, sub.Source, sub.Hash = ids, dups, "ids", HashIDs("ids", ids)
	out, err := s.Submit(ctx, sub)
	if err != nil {
		return err
	}
	return s.answer(c, out, wait, limit)
}

// readBody reads the JSON body, streamed or not, up to RosterMaxBytes.
func (s *Service) readBody(c *fiber.Ctx) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(server.BodyStream(c), s.o.RosterMaxBytes+1))
	if err != nil {
		return nil, apierr.BadRequest("bad_request", "could not read the request body")
	}
	if int64(len(body)) > s.o.RosterMaxBytes {
		return nil, apierr.Newf(fiber.StatusRequestEntityTooLarge, "body_too_large", "the body is larger than %d bytes", s.o.RosterMaxBytes)
	}
	return body, nil
}

// submitRoster upserts the roster's providers, then batches them. A retry
// with the same Idempotency-Key is answered before anything is written.
func (s *Service) submitRoster(c *fiber.Ctx, sub Submission) (*Submitted, error) {
	if s.o.Providers == nil {
		return nil, apierr.New(fiber.StatusUnsupportedMediaType, "unsupported_media_type", "roster submissions are not enabled")
	}
	ctx := c.UserContext()
	if s.o.Files != nil {
		if err := s.o.Files.Acquire(ctx); err != nil {
			return nil, apierr.Unavailable("file_operations_busy", "too many file operations are running; retry shortly")
		}
		defer s.o.Files.Release()
	}
	res, err := roster.ParseRequest(c, s.o.MaxProviders, s.o.RosterMaxBytes)
	if err != nil {
		return nil, err
	}
	canon, err := json.Marshal(res.Providers)
	if err != nil {
		return nil, fmt.Errorf("hash roster: %w", err)
	}
	sum := sha256.Sum256(canon)
	sub.Source, sub.Hash = "roster", hex.EncodeToString(sum[:])
	if sub.IdempotencyKey != "" {
		if out, err := s.replay(ctx, sub); out != nil || err != nil {
			return out, err
		}
	}
	up, err := s.o.Providers.Upsert(ctx, providers.ActorOf(c), res.Providers)
	if err != nil {
		return nil, err
	}
	seen := make(map[string]struct{}, len(up.IDs))
	for _, id := range up.IDs {
		if _, ok := seen[id]; ok {
			sub.Duplicates++
			continue
		}
		seen[id] = struct{}{}
		sub.IDs = append(sub.IDs, id)
	}
	return s.Submit(ctx, sub)
}

// answer writes the submission result: 200 with the results when the batch
// finished within ?wait, else 202 with its progress so far.
func (s *Service) answer(c *fiber.Ctx, out *Submitted, wait time.Duration, limit int) error {
	ctx := c.UserContext()
	if wait > 0 {
		s.await(ctx, out.BatchID, wait)
	}
	// The progress read must not fail because ?wait used up the request's time.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	q := ItemQuery{}
	if wait > 0 {
		q.Limit = limit
	}
	p, err := s.Progress(rctx, out.BatchID, q)
	if err != nil {
		return err
	}
	p.UnknownIDs, p.Replayed = out.UnknownIDs, out.Replayed
	c.Set(fiber.HeaderLocation, p.StatusURL)
	if out.Replayed {
		c.Set("Idempotent-Replayed", "true")
	}
	code := fiber.StatusAccepted
	if p.Status == StatusFinished || p.Status == StatusCanceled || (out.Replayed && wait == 0) {
		code = fiber.StatusOK
	}
	return c.Status(code).JSON(p)
}

// await polls until the batch has no open item, wait passes, or the
// request's own deadline is a second away.
func (s *Service) await(ctx context.Context, id string, wait time.Duration) {
	deadline := time.Now().Add(wait)
	if dl, ok := ctx.Deadline(); ok && dl.Add(-time.Second).Before(deadline) {
		deadline = dl.Add(-time.Second)
	}
	every := 50 * time.Millisecond
	for time.Now().Before(deadline) {
		var open bool
		err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM batch_items WHERE batch_id = $1 AND state IN ('queued', 'running'))`, id).Scan(&open)
		if err != nil || !open {
			return
		}
		t := time.NewTimer(min(every, time.Until(deadline)))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		every = min(every*2, 500*time.Millisecond)
	}
}

func (s *Service) handleProgress(c *fiber.Ctx) error {
	limit, err := page.Limit(c)
	if err != nil {
		return err
	}
	q := ItemQuery{Limit: limit, State: c.Query("state")}
	if q.State != "" && !ValidState(q.State) {
		return apierr.Invalid("state", "must be one of "+strings.Join(States, ", "))
	}
	var after int
	if ok, err := page.Decode(c, &after); err != nil {
		return err
	} else if ok {
		q.AfterOrd = &after
	}
	p, err := s.Progress(c.UserContext(), c.Params("batch_id"), q)
	if err != nil {
		return err
	}
	return c.JSON(p)
}

// Canceled is DELETE /batch/{id}'s answer.
type Canceled struct {
	ItemsCanceled int `json:"items_canceled"`
	*Progress
}

func (s *Service) handleCancel(c *fiber.Ctx) error {
	id := c.Params("batch_id")
	n, err := s.Cancel(c.UserContext(), id, server.Actor(c), server.RequestID(c))
	if err != nil {
		return err
	}
	p, err := s.Progress(c.UserContext(), id, ItemQuery{})
	if err != nil {
		return err
	}
	return c.JSON(Canceled{ItemsCanceled: n, Progress: p})
}

// Summary is one batch in GET /batches.
type Summary struct {
	BatchID    string     `json:"batch_id"`
	Status     string     `json:"status"`
	StatusURL  string     `json:"status_url"`
	Source     string     `json:"source"`
	Actor      string     `json:"actor"`
	Total      int        `json:"total"`
	CreatedAt  time.Time  `json:"created_at"`
	StartedAt  *time.Time `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
	CanceledAt *time.Time `json:"canceled_at,omitempty"`
}

type listCursor struct {
	At time.Time `json:"t"`
	ID string    `json:"i"`
}

// handleList serves GET /batches, newest first (?actor= narrows).
func (s *Service) handleList(c *fiber.Ctx) error {
	limit, err := page.Limit(c)
	if err != nil {
		return err
	}
	var cur listCursor
	ok, err := reqtext.DecodeCursor(c, &cur)
	if err != nil {
		return err
	}
	args := []any{limit + 1}
	where := []string{"true"}
	if ok {
		args = append(args, cur.At, cur.ID)
		where = append(where, "(created_at, id) < ($2, $3)")
	}
	if a := c.Query("actor"); a != "" {
		args = append(args, a)
		where = append(where, fmt.Sprintf("actor = $%d", len(args)))
	}
	rows, err := s.pool.Query(c.UserContext(), `SELECT id, source, actor, total, created_at, started_at, finished_at, canceled_at
		FROM batches WHERE `+strings.Join(where, " AND ")+` ORDER BY created_at DESC, id DESC LIMIT $1`, args...)
	if err != nil {
		return fmt.Errorf("list batches: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Summary, error) {
		var b Summary
		err := r.Scan(&b.BatchID, &b.Source, &b.Actor, &b.Total, &b.CreatedAt, &b.StartedAt, &b.FinishedAt, &b.CanceledAt)
		b.StatusURL = StatusURL(b.BatchID)
		switch {
		case b.FinishedAt != nil && b.CanceledAt != nil:
			b.Status = StatusCanceled
		case b.FinishedAt != nil:
			b.Status = StatusFinished
		case b.StartedAt != nil:
			b.Status = StatusRunning
		default:
			b.Status = StatusQueued
		}
		return b, err
	})
	if err != nil {
		return fmt.Errorf("list batches: %w", err)
	}
	return c.JSON(page.Build(list, limit, func(b Summary) any { return listCursor{At: b.CreatedAt, ID: b.BatchID} }))
}

func encodeCursor(ord int) string { return page.Encode(ord) }
