-- Addresses a user may send as besides their own (+tag) and the aliases that reach them: the
-- submission server accepts them in MAIL FROM and From: (and DKIM-signs for their domain).
CREATE TABLE user_send_as (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    address     TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (user_id, address)
);
