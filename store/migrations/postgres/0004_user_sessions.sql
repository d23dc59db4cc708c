-- Self-service sessions of mail users (the admin UI's "change my password" page). Only a SHA-256 of
-- the secret is stored.
CREATE TABLE user_sessions (
    token_hash  TEXT PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
