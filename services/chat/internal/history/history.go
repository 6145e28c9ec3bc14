// Package history keeps chat conversations in the chat schema, so a
// follow-up question carries the turns before it. A conversation is only
// visible to the API key that held it.
package history

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/provcred/chat/internal/llm"
)

// Schema is the chat service's own schema.
const Schema = "chat"

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the embedded migration files.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the embed pattern guarantees the folder
	}
	return sub
}

// Store reads and writes conversation turns.
type Store struct{ Pool *pgxpool.Pool }

// Recent returns up to n latest turns of the conversation held by actor,
// oldest first.
func (s *Store) Recent(ctx context.Context, conversationID, actor string, n int) ([]llm.Message, error) {
	rows, err := s.Pool.Query(ctx, `SELECT role, content FROM (
			SELECT id, role, content FROM chat_messages
			WHERE conversation_id = $1 AND actor = $2 ORDER BY id DESC LIMIT $3) t
		ORDER BY id`, conversationID, actor, n)
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (llm.Message, error) {
		var m llm.Message
		err := r.Scan(&m.Role, &m.Content)
		return m, err
	})
}

// Append stores a question and its answer as two turns, together.
func (s *Store) Append(ctx context.Context, conversationID, actor, question, answer string) error {
	_, err := s.Pool.Exec(ctx, `INSERT INTO chat_messages (conversation_id, actor, role, content)
		VALUES ($1, $2, 'user', $3), ($1, $2, 'assistant', $4)`, conversationID, actor, question, answer)
	if err != nil {
		return fmt.Errorf("write history: %w", err)
	}
	return nil
}
