-- What the sender asked of delivery status notifications (RFC 3461) for each queued recipient:
-- NOTIFY and ORCPT given with its RCPT, RET and ENVID with MAIL; NULL when not given. The delay
-- notice is sent once per entry: delay_notified records that it went out.
ALTER TABLE queue ADD COLUMN dsn_notify TEXT;
ALTER TABLE queue ADD COLUMN dsn_orcpt TEXT;
ALTER TABLE queue ADD COLUMN dsn_ret TEXT;
ALTER TABLE queue ADD COLUMN dsn_envid TEXT;
ALTER TABLE queue ADD COLUMN delay_notified BIGINT NOT NULL DEFAULT 0;
