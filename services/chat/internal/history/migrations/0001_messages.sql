-- Conversation history: each turn of a conversation, kept so a follow-up
-- question is answered in context. Scoped to the API key that asked.
CREATE TABLE chat_messages (
    id              bigserial PRIMARY KEY,
    conversation_id text NOT NULL,
    actor           text NOT NULL,
    role            text NOT NULL CHECK (role IN ('user', 'assistant')),
    content         text NOT NULL,
    at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX chat_messages_conversation_idx ON chat_messages (conversation_id, actor, id);
