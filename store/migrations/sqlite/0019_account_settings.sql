-- A user's own vacation reply and forwarding (the account page, the admin UI/API/CLI), named as
-- mailu names them. Delivery runs the Sieve script generated from them before the user's own
-- active script. One row per user that ever saved them; no row means both are off.
CREATE TABLE account_settings (
    user_id             INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    forward_enabled     INTEGER NOT NULL DEFAULT 0,
    forward_destination TEXT NOT NULL DEFAULT '',
    forward_keep        INTEGER NOT NULL DEFAULT 1,
    reply_enabled       INTEGER NOT NULL DEFAULT 0,
    reply_subject       TEXT NOT NULL DEFAULT '',
    reply_body          TEXT NOT NULL DEFAULT '',
    reply_startdate     TEXT,
    reply_enddate       TEXT,
    updated_at          INTEGER NOT NULL
);
