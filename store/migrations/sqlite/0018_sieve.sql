-- Sieve scripts (RFC 5228) per user, managed over ManageSieve (RFC 5804), the account page and
-- the admin API; at most one is active and runs at local delivery. Stored here so every node
-- filters with the same scripts.
CREATE TABLE sieve_scripts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    content     TEXT NOT NULL,
    active      INTEGER NOT NULL DEFAULT 0,
    updated_at  INTEGER NOT NULL,
    UNIQUE (user_id, name)
);

-- Vacation responses sent (RFC 5230 §4.2): one row per user and response key (sender plus
-- :handle), so a sender gets one reply per period across nodes and restarts.
CREATE TABLE sieve_vacation_sent (
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    response    TEXT NOT NULL,
    sent_at     INTEGER NOT NULL,
    PRIMARY KEY (user_id, response)
);
