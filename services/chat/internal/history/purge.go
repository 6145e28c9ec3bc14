package history

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// purgeBatch bounds one DELETE, so a large backlog never holds long locks
// or one huge transaction.
const purgeBatch = 5000

// Purge deletes the turns older than before, and the conversations with no
// turn since. It returns how many turns and conversations went.
func (s *Store) Purge(ctx context.Context, before time.Time) (turns, conversations int64, err error) {
	for {
		tag, err := s.Pool.Exec(ctx, `DELETE FROM chat_messages WHERE id IN (
			SELECT id FROM chat_messages WHERE at < $1 LIMIT $2)`, before, purgeBatch)
		if err != nil {
			return turns, conversations, fmt.Errorf("purge turns: %w", err)
		}
		turns += tag.RowsAffected()
		if tag.RowsAffected() < purgeBatch {
			break
		}
	}
	for {
		tag, err := s.Pool.Exec(ctx, `DELETE FROM chat_conversations WHERE id IN (
			SELECT id FROM chat_conversations WHERE last_at < $1 LIMIT $2)`, before, purgeBatch)
		if err != nil {
			return turns, conversations, fmt.Errorf("purge conversations: %w", err)
		}
		conversations += tag.RowsAffected()
		if tag.RowsAffected() < purgeBatch {
			break
		}
	}
	return turns, conversations, nil
}

// Purger runs Purge every Interval, keeping Retention. Every replica may
// run it: the deletes are idempotent and batched.
type Purger struct {
	Store     *Store
	Retention time.Duration
	Interval  time.Duration
	Log       *slog.Logger
	// Purged counts deleted turns (chat_history_purged_total).
	Purged prometheus.Counter
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Run purges at once, then every Interval, until ctx ends.
func (p *Purger) Run(ctx context.Context) {
	t := time.NewTicker(p.Interval)
	defer t.Stop()
	for {
		p.Once(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Once runs one purge and logs what it did (counts only).
func (p *Purger) Once(ctx context.Context) {
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	turns, convs, err := p.Store.Purge(ctx, now().Add(-p.Retention))
	p.Purged.Add(float64(turns))
	if err != nil {
		if ctx.Err() == nil {
			p.Log.ErrorContext(ctx, "chat history purge failed", "err", err.Error())
		}
		return
	}
	if turns > 0 || convs > 0 {
		p.Log.InfoContext(ctx, "chat history purged", "turns", turns, "conversations", convs,
			"retention", p.Retention.String())
	}
}
