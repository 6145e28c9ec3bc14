package history

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/provcred/chat/internal/llm"
	"github.com/provcred/platform/database"
	"github.com/provcred/platform/pgtest"
)

func TestFit(t *testing.T) {
	t.Parallel()
	msg := func(role string, n int) llm.Message { return llm.Message{Role: role, Content: strings.Repeat("x", n)} }
	// Newest first: a4 q4 a3 q3 ...; 36 characters are 9+4 = 13 tokens.
	newest := []llm.Message{msg("assistant", 36), msg("user", 36), msg("assistant", 36), msg("user", 36), msg("assistant", 36)}
	tests := []struct {
		budget int
		want   []string
	}{
		{0, nil},
		{12, nil},
		{13, nil}, // only the newest reply fits: never a reply without its question
		{26, []string{"user", "assistant"}},
		{39, []string{"user", "assistant"}}, // the third message is a reply whose question does not fit
		{52, []string{"user", "assistant", "user", "assistant"}},
		{1000, []string{"user", "assistant", "user", "assistant"}}, // the oldest is a reply without its question
	}
	for _, tt := range tests {
		var roles []string
		for _, m := range Fit(newest, tt.budget) {
			roles = append(roles, m.Role)
		}
		if strings.Join(roles, ",") != strings.Join(tt.want, ",") {
			t.Errorf("budget %d: %v, want %v", tt.budget, roles, tt.want)
		}
	}
}

func newStore(t *testing.T) *Store {
	t.Helper()
	pool, _ := pgtest.NewPool(t, Schema)
	if _, err := database.Migrate(context.Background(), pool, Schema, Migrations()); err != nil {
		t.Fatal(err)
	}
	return &Store{Pool: pool}
}

func TestOwnership(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	if err := s.Append(ctx, "c1", "key_a", "q1", "a1", []any{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, "c1", "key_b", "q", "a", []any{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another key appended: %v", err)
	}
	if _, err := s.Recent(ctx, "c1", "key_b", 1000); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another key read: %v", err)
	}
	got, err := s.Recent(ctx, "c1", "key_a", 1000)
	if err != nil || len(got) != 2 || got[0].Content != "q1" || got[1].Content != "a1" {
		t.Fatalf("%v %v", got, err)
	}
}

func TestPurge(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	for _, c := range []string{"old", "mixed", "new"} {
		if err := s.Append(ctx, c, "key_a", "q", "a", []any{}); err != nil {
			t.Fatal(err)
		}
	}
	// "old" was last used 40 days ago; "mixed" has an old turn and a new one.
	_, err := s.Pool.Exec(ctx, `UPDATE chat_messages SET at = now() - interval '40 days' WHERE conversation_id IN ('old', 'mixed');
		UPDATE chat_conversations SET last_at = now() - interval '40 days' WHERE id = 'old'`)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, "mixed", "key_a", "q2", "a2", []any{}); err != nil {
		t.Fatal(err)
	}
	purged := prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
	p := &Purger{Store: s, Retention: 30 * 24 * time.Hour, Interval: time.Hour, Log: slog.New(slog.DiscardHandler), Purged: purged}
	p.Once(ctx)
	if _, err := s.Recent(ctx, "old", "key_a", 1000); !errors.Is(err, ErrNotFound) {
		t.Fatalf("old conversation kept: %v", err)
	}
	mixed, err := s.Recent(ctx, "mixed", "key_a", 1000)
	if err != nil || len(mixed) != 2 || mixed[0].Content != "q2" {
		t.Fatalf("mixed: %v %v", mixed, err)
	}
	if got, err := s.Recent(ctx, "new", "key_a", 1000); err != nil || len(got) != 2 {
		t.Fatalf("new: %v %v", got, err)
	}
	var n int
	_ = s.Pool.QueryRow(ctx, `SELECT count(*) FROM chat_messages`).Scan(&n)
	if n != 4 {
		t.Fatalf("%d turns left, want 4", n)
	}
	// Run on a clock 31 days ahead: everything goes.
	p.Now = func() time.Time { return time.Now().Add(31 * 24 * time.Hour) }
	p.Once(ctx)
	_ = s.Pool.QueryRow(ctx, `SELECT count(*) FROM chat_messages`).Scan(&n)
	var convs int
	_ = s.Pool.QueryRow(ctx, `SELECT count(*) FROM chat_conversations`).Scan(&convs)
	if n != 0 || convs != 0 {
		t.Fatalf("%d turns, %d conversations left", n, convs)
	}
}

// Turns stored before conversations had owners keep working for the key
// that used the id first; another key's turns under the same id are gone.
func TestMigrationBackfillsOwners(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.NewPool(t, Schema)
	ctx := context.Background()
	first, _ := fs.ReadFile(Migrations(), "0001_messages.sql")
	if _, err := database.Migrate(ctx, pool, Schema, fstest.MapFS{"0001_messages.sql": {Data: first}}); err != nil {
		t.Fatal(err)
	}
	_, err := pool.Exec(ctx, `INSERT INTO chat_messages (conversation_id, actor, role, content) VALUES
		('c1', 'key_a', 'user', 'q1'), ('c1', 'key_a', 'assistant', 'a1'),
		('c1', 'key_b', 'user', 'qb'), ('c1', 'key_b', 'assistant', 'ab'),
		('c2', 'key_b', 'user', 'q2'), ('c2', 'key_b', 'assistant', 'a2')`)
	if err != nil {
		t.Fatal(err)
	}
	migrate(t, pool)
	s := &Store{Pool: pool}
	if got, err := s.Recent(ctx, "c1", "key_a", 1000); err != nil || len(got) != 2 || got[0].Content != "q1" {
		t.Fatalf("c1 for key_a: %v %v", got, err)
	}
	if _, err := s.Recent(ctx, "c1", "key_b", 1000); !errors.Is(err, ErrNotFound) {
		t.Fatalf("c1 for key_b: %v", err)
	}
	if got, err := s.Recent(ctx, "c2", "key_b", 1000); err != nil || len(got) != 2 {
		t.Fatalf("c2: %v %v", got, err)
	}
}

func migrate(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	if _, err := database.Migrate(context.Background(), pool, Schema, Migrations()); err != nil {
		t.Fatal(err)
	}
}
