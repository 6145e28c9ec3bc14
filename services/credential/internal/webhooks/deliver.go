package webhooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/provcred/credential/internal/events"
)

// DeliveryArgs is one delivery's River job.
type DeliveryArgs struct {
	DeliveryID string `json:"delivery_id"`
}

// Kind is River's job kind.
func (DeliveryArgs) Kind() string { return "webhook_delivery" }

type deliveryWorker struct {
	river.WorkerDefaults[DeliveryArgs]
	s *Service
}

// Timeout leaves room past the HTTP attempt for recording its outcome
// (config: BATCH_RESCUE_STUCK_AFTER must exceed it).
func (w *deliveryWorker) Timeout(*river.Job[DeliveryArgs]) time.Duration {
	return w.s.cfg.DeliveryJobTimeout()
}

// NextRetry is exponential backoff with jitter from River's attempt count.
// The jitter is drawn from the job id and attempt, so the time recorded as
// next_attempt_at by Work is the one River schedules.
func (w *deliveryWorker) NextRetry(job *river.Job[DeliveryArgs]) time.Time {
	return w.s.now().Add(w.s.retryDelay(job.ID, job.Attempt))
}

func (s *Service) retryDelay(jobID int64, attempt int) time.Duration {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d/%d", jobID, attempt)
	return s.cfg.RetryDelay(attempt, float64(h.Sum64()>>11)/float64(1<<53))
}

// target is what one attempt needs.
type target struct {
	status    string
	url       string
	secret    string
	webhookID string
	disabled  bool
	event     events.Row
	attempts  int
}

func (s *Service) loadTarget(ctx context.Context, deliveryID string) (*target, error) {
	t := &target{}
	var disabledAt *time.Time
	err := s.pool.QueryRow(ctx, `SELECT d.status, d.attempts, w.id, w.url, w.secret, w.disabled_at,
			e.seq, e.id, e.type, e.occurred_at, e.provider_id, e.link, e.data
		FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id JOIN events e ON e.id = d.event_id
		WHERE d.id = $1`, deliveryID).Scan(&t.status, &t.attempts, &t.webhookID, &t.url, &t.secret, &disabledAt,
		&t.event.Seq, &t.event.ID, &t.event.Type, &t.event.OccurredAt, &t.event.ProviderID, &t.event.Link, &t.event.Data)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load delivery: %w", err)
	}
	t.disabled = disabledAt != nil
	return t, nil
}

// Work makes one attempt. The delivery row decides whether there is work:
// a job run again after a crash finds its delivery final and stops.
func (w *deliveryWorker) Work(ctx context.Context, job *river.Job[DeliveryArgs]) error {
	s := w.s
	t, err := s.loadTarget(ctx, job.Args.DeliveryID)
	if errors.Is(err, ErrNotFound) {
		return nil // the webhook was deleted (its deliveries with it)
	}
	if err != nil {
		return err
	}
	if t.status != DeliveryPending && t.status != DeliveryRetrying {
		return nil
	}
	log := s.log.With("delivery_id", job.Args.DeliveryID, "webhook_id", t.webhookID, "event_id", t.event.ID,
		"attempt", job.Attempt)
	// Writes below must happen even when the job's context has ended.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if t.disabled {
		s.m.deliveries.WithLabelValues(OutcomeCanceled).Inc()
		return s.cancelDelivery(wctx, job.Args.DeliveryID, "the endpoint is disabled")
	}
	body, err := t.event.Body(s.links)
	if err != nil {
		return err
	}
	code, sendErr := s.send(ctx, t.url, t.secret, t.event.ID, body)
	if sendErr != nil && ctx.Err() != nil {
		// The replica is stopping (or River cancelled the job): not the
		// endpoint's failure; River runs the job again.
		return sendErr
	}
	if sendErr == nil && code >= 200 && code < 300 {
		if err := s.recordSuccess(wctx, job.Args.DeliveryID, t.webhookID, code); err != nil {
			return err
		}
		s.m.deliveries.WithLabelValues(OutcomeDelivered).Inc()
		s.m.attempts.Observe(float64(t.attempts + 1))
		return nil
	}
	reason := failureReason(code, sendErr)
	final := job.Attempt >= job.MaxAttempts
	next := s.now().Add(s.retryDelay(job.ID, job.Attempt))
	disabled, err := s.recordFailure(wctx, job.Args.DeliveryID, t.webhookID, code, reason, final, next)
	if err != nil {
		return err
	}
	switch {
	case disabled:
		log.Warn("webhook disabled: it failed every attempt for WEBHOOK_DISABLE_AFTER", "reason", reason)
		s.m.deliveries.WithLabelValues(OutcomeCanceled).Inc()
		return nil
	case final:
		log.Warn("webhook delivery given up", "reason", reason)
		s.m.deliveries.WithLabelValues(OutcomeFailed).Inc()
		s.m.attempts.Observe(float64(t.attempts + 1))
		return river.JobCancel(errors.New(reason))
	default:
		log.Info("webhook delivery attempt failed", "reason", reason, "next_attempt_at", next)
		s.m.deliveries.WithLabelValues(OutcomeRetry).Inc()
		return errors.New(reason)
	}
}

// send POSTs body signed for this attempt; code is 0 when no answer came.
func (s *Service) send(ctx context.Context, url, secret, msgID string, body []byte) (int, error) {
	ts := s.now().Unix()
	sig, err := Sign(secret, msgID, ts, body)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WebhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "provcred-webhooks/1")
	req.Header.Set("webhook-id", msgID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", sig)
	resp, err := s.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	// Drain a little so the connection can be reused; the body is never kept.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}

// failureReason says why an attempt failed, without the response body or
// anything the receiver wrote.
func failureReason(code int, err error) string {
	var ne net.Error
	switch {
	case err == nil:
		return "HTTP " + strconv.Itoa(code)
	case errors.Is(err, ErrRefusedAddress):
		return ErrRefusedAddress.Error()
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return "timeout: no answer within WEBHOOK_TIMEOUT"
	default:
		var op *net.OpError
		if errors.As(err, &op) {
			return "connection failed: " + op.Op + ": " + op.Err.Error()
		}
		return "request failed"
	}
}

func (s *Service) recordSuccess(ctx context.Context, deliveryID, webhookID string, code int) error {
	b := &pgx.Batch{}
	b.Queue(`UPDATE webhook_deliveries SET status = 'delivered', attempts = attempts + 1, last_status_code = $2,
			last_error = '', last_attempt_at = now(), next_attempt_at = NULL, delivered_at = now()
		WHERE id = $1 AND status IN ('pending', 'retrying')`, deliveryID, code)
	b.Queue(`UPDATE webhooks SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL`, webhookID)
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("record delivery: %w", err)
	}
	return nil
}

// recordFailure records a failed attempt and, when the endpoint has now
// failed for WEBHOOK_DISABLE_AFTER, disables it (one transaction).
func (s *Service) recordFailure(ctx context.Context, deliveryID, webhookID string, code int, reason string, final bool,
	next time.Time) (disabled bool, err error) {
	var codeArg any
	if code != 0 {
		codeArg = code
	}
	status, nextArg := DeliveryRetrying, any(next)
	if final {
		status, nextArg = DeliveryFailed, nil
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE webhook_deliveries SET status = $2, attempts = attempts + 1, last_status_code = $3,
				last_error = $4, last_attempt_at = now(), next_attempt_at = $5
			WHERE id = $1 AND status IN ('pending', 'retrying')`, deliveryID, status, codeArg, reason, nextArg); err != nil {
			return fmt.Errorf("record delivery: %w", err)
		}
		var since time.Time
		var off bool
		if err := tx.QueryRow(ctx, `UPDATE webhooks SET failing_since = coalesce(failing_since, now()) WHERE id = $1
			RETURNING failing_since, disabled_at IS NOT NULL`, webhookID).Scan(&since, &off); errors.Is(err, pgx.ErrNoRows) {
			return nil
		} else if err != nil {
			return fmt.Errorf("record endpoint failure: %w", err)
		}
		if off || s.now().Sub(since) < s.cfg.WebhookDisableAfter {
			return nil
		}
		var err error
		disabled, err = s.disable(ctx, tx, webhookID, fmt.Sprintf("every attempt failed since %s (last: %s)",
			since.UTC().Format(time.RFC3339), reason), since)
		return err
	})
	return disabled, err
}

func (s *Service) cancelDelivery(ctx context.Context, deliveryID, reason string) error {
	_, err := s.pool.Exec(ctx, `UPDATE webhook_deliveries SET status = 'canceled', next_attempt_at = NULL,
			last_error = CASE WHEN last_error = '' THEN $2 ELSE last_error END
		WHERE id = $1 AND status IN ('pending', 'retrying')`, deliveryID, reason)
	if err != nil {
		return fmt.Errorf("cancel delivery: %w", err)
	}
	return nil
}
