// Package history keeps chat conversations in the chat schema, so a
// follow-up question carries the turns before it. A conversation belongs to
// the API key that started it; for any other key it does not exist. Turns
// older than the retention are purged by a periodic job (purge.go).
package history

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"slices"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/provcred/chat/internal/llm"
	"github.com/provcred/platform/database"
	"github.com/provcred/platform/domain"
)

// Schema is the chat service's own schema.
const Schema = "chat"

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the embedded migration files.
func Migrations() fs.FS { return database.Embedded(migrations, "migrations") }

// ErrNotFound matches a conversation that does not exist for this key (it
// never did, it was purged, or another key holds it: the caller cannot
// tell); the error itself is a domain.NotFound naming the conversation.
var ErrNotFound = domain.ErrNotFound

func notFound(id string) error { return domain.NotFound("conversation " + id + " does not exist") }

// Store reads and writes conversation turns.
type Store struct{ Pool *pgxpool.Pool }

// maxTurnsRead bounds how many stored turns are read before the token
// budget is applied.
const maxTurnsRead = 200

// Tokens estimates a text's tokens: about four characters each, plus a
// few for the message's framing. Close enough to keep a budget; exact
// counts depend on the model's tokenizer.
func Tokens(s string) int { return (utf8.RuneCountInString(s)+3)/4 + 4 }

// Recent returns the latest turns of the conversation held by actor, oldest
// first, as many as fit in budget tokens (never a reply without its
// question). ErrNotFound when actor holds no such conversation.
func (s *Store) Recent(ctx context.Context, conversationID, actor string, budget int) ([]llm.Message, error) {
	var owned bool
	err := s.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM chat_conversations WHERE id = $1 AND actor = $2)`,
		conversationID, actor).Scan(&owned)
	if err != nil {
		return nil, fmt.Errorf("read conversation: %w", err)
	}
	if !owned {
		return nil, notFound(conversationID)
	}
	rows, err := s.Pool.Query(ctx, `SELECT role, content FROM chat_messages
		WHERE conversation_id = $1 ORDER BY id DESC LIMIT $2`, conversationID, maxTurnsRead)
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	newest, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (llm.Message, error) {
		var m llm.Message
		err := r.Scan(&m.Role, &m.Content)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	return Fit(newest, budget), nil
}

// Fit keeps the newest messages (given newest first) within budget tokens
// and returns them oldest first, starting with a question.
func Fit(newest []llm.Message, budget int) []llm.Message {
	used, n := 0, 0
	for ; n < len(newest); n++ {
		t := Tokens(newest[n].Content)
		if used+t > budget {
			break
		}
		used += t
	}
	kept := slices.Clone(newest[:n])
	slices.Reverse(kept)
	for len(kept) > 0 && kept[0].Role != llm.RoleUser {
		kept = kept[1:]
	}
	return kept
}

// Append stores a question and its answer as two turns, together, in one
// statement (one round trip); a new conversation is created for actor.
// ErrNotFound when another key holds conversationID.
func (s *Store) Append(ctx context.Context, conversationID, actor, question, answer string, citations any) error {
	cites, err := json.Marshal(citations)
	if err != nil {
		return fmt.Errorf("write history: %w", err)
	}
	// Another key's conversation is neither updated nor returned by the
	// upsert, so no turn is inserted. The commit does not wait for the WAL
	// flush: a turn is convenience, not evidence, and a crash loses at most
	// the last few hundred milliseconds of turns (wal_writer_delay) instead
	// of every answer waiting for a disk flush (most of what chat adds to a
	// model call, docs/benchmarks.md).
	tag, err := s.Pool.Exec(ctx, `WITH async AS (SELECT set_config('synchronous_commit', 'off', true)),
		conv AS (
			INSERT INTO chat_conversations AS c (id, actor) VALUES ($1, $2)
			ON CONFLICT (id) DO UPDATE SET last_at = now() WHERE c.actor = EXCLUDED.actor
			RETURNING id, actor)
		INSERT INTO chat_messages (conversation_id, actor, role, content, citations)
		SELECT conv.id, conv.actor, t.role, t.content, t.citations
		FROM async, conv, (VALUES (1, 'user', $3::text, '[]'::jsonb), (2, 'assistant', $4::text, $5::jsonb)) AS t(ord, role, content, citations)
		ORDER BY t.ord`, conversationID, actor, question, answer, cites)
	if err != nil {
		return fmt.Errorf("write history: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return notFound(conversationID)
	}
	return nil
}
