-- Conversations belong to the API key that started them: another key gets
-- 404. Turns keep the citations their answer carried. Old turns are
-- purged after CHAT_RETENTION (the index on "at" serves the purge).
CREATE TABLE chat_conversations (
    id         text PRIMARY KEY,
    actor      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX chat_conversations_last_at_idx ON chat_conversations (last_at);

-- Before this migration a conversation id was only scoped by actor, so two
-- keys may share one: the key that used it first keeps it, the other key's
-- turns under that id are dropped (they could never be reached again).
INSERT INTO chat_conversations (id, actor, created_at, last_at)
SELECT DISTINCT ON (conversation_id) conversation_id, actor, min(at) OVER w, max(at) OVER w
FROM chat_messages
WINDOW w AS (PARTITION BY conversation_id, actor)
ORDER BY conversation_id, id;
DELETE FROM chat_messages m USING chat_conversations c
WHERE m.conversation_id = c.id AND m.actor <> c.actor;

ALTER TABLE chat_messages
    ADD COLUMN citations jsonb NOT NULL DEFAULT '[]',
    ADD CONSTRAINT chat_messages_conversation_fk FOREIGN KEY (conversation_id)
        REFERENCES chat_conversations (id) ON DELETE CASCADE;
DROP INDEX chat_messages_conversation_idx;
CREATE INDEX chat_messages_conversation_idx ON chat_messages (conversation_id, id);
CREATE INDEX chat_messages_at_idx ON chat_messages (at);
