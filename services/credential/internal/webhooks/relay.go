package webhooks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
)

// relayBatch is how many events one publication takes.
const relayBatch = 500

// relayLockKey serializes publication across replicas (pg_try_advisory_xact_lock).
const relayLockKey = "credential:events-relay"

func (s *Service) relayLoop(ctx context.Context) {
	defer close(s.relayDone)
	t := time.NewTicker(s.cfg.WebhookRelayInterval)
	defer t.Stop()
	for {
		for {
			n, err := s.Relay(ctx)
			if err != nil && ctx.Err() == nil {
				s.log.Error("event relay failed", "err", err.Error())
			}
			if err != nil || n < relayBatch {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

type pending struct {
	seq       int64
	eventType string
}

// Relay publishes up to relayBatch committed events, oldest first, in one
// transaction: numbers them (published_seq continues the last number: the
// advisory lock held to commit makes numbers follow commit order, so GET
// /events never shows a later number before an earlier one), makes a
// delivery per matching enabled webhook (created no later than the event)
// and a River job per delivery. It returns how many events it published; 0
// also when another replica holds the lock.
func (s *Service) Relay(ctx context.Context) (int, error) {
	var published []pending
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		published = published[:0]
		var locked bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))`, relayLockKey).Scan(&locked); err != nil {
			return fmt.Errorf("relay lock: %w", err)
		}
		if !locked {
			return nil
		}
		rows, err := tx.Query(ctx, `WITH next AS (
				SELECT seq, type, row_number() OVER (ORDER BY seq) AS rn FROM events
				WHERE published_at IS NULL AND broadcast ORDER BY seq LIMIT $1),
			base AS (SELECT coalesce(max(published_seq), 0) AS n FROM events)
			UPDATE events e SET published_seq = base.n + next.rn, published_at = now()
			FROM next, base WHERE e.seq = next.seq
			RETURNING e.seq, e.type`, relayBatch)
		if err != nil {
			return fmt.Errorf("publish events: %w", err)
		}
		published, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (pending, error) {
			var p pending
			return p, r.Scan(&p.seq, &p.eventType)
		})
		if err != nil {
			return fmt.Errorf("publish events: %w", err)
		}
		if len(published) == 0 {
			return nil
		}
		seqs := make([]int64, len(published))
		for i, p := range published {
			seqs[i] = p.seq
		}
		rows, err = tx.Query(ctx, `INSERT INTO webhook_deliveries (id, webhook_id, event_id)
			SELECT 'dlv_' || replace(gen_random_uuid()::text, '-', ''), w.id, e.id
			FROM events e JOIN webhooks w ON w.disabled_at IS NULL AND w.created_at <= e.occurred_at
				AND (cardinality(w.event_types) = 0 OR e.type = ANY (w.event_types))
			WHERE e.seq = ANY ($1)
			ORDER BY e.seq, w.id
			ON CONFLICT DO NOTHING
			RETURNING id`, seqs)
		if err != nil {
			return fmt.Errorf("make deliveries: %w", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("make deliveries: %w", err)
		}
		return s.insertJobs(ctx, tx, ids)
	})
	if err != nil {
		return 0, err
	}
	for _, p := range published {
		s.m.events.WithLabelValues(p.eventType).Inc()
	}
	return len(published), nil
}

// insertJobs queues one delivery job per id in tx.
func (s *Service) insertJobs(ctx context.Context, tx pgx.Tx, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	if s.client == nil {
		return errors.New("webhooks: no River client attached")
	}
	params := make([]river.InsertManyParams, len(ids))
	for i, id := range ids {
		params[i] = river.InsertManyParams{Args: DeliveryArgs{DeliveryID: id},
			InsertOpts: &river.InsertOpts{Queue: QueueName, MaxAttempts: s.cfg.MaxAttempts()}}
	}
	if _, err := s.client.InsertManyTx(ctx, tx, params); err != nil {
		return fmt.Errorf("queue deliveries: %w", err)
	}
	return nil
}
