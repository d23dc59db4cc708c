-- API token scopes and use: `admin` (everything), `read` (GET requests of the API only) or
-- `metrics` (only /metrics); browser sessions keep `admin`. last_used_at is updated at most once a
-- minute per token.
ALTER TABLE admin_sessions ADD COLUMN scope TEXT NOT NULL DEFAULT 'admin';
ALTER TABLE admin_sessions ADD COLUMN last_used_at BIGINT;
