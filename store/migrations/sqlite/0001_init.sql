-- Postern schema, SQLite dialect. Booleans are INTEGER 0/1 (the sqlx Any driver rejects BOOLEAN).
-- Times are Unix seconds (INTEGER). Addresses and domain names are stored lower-case.

CREATE TABLE domains (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE users (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    domain_id      INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    local_part     TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    quota_bytes    INTEGER NOT NULL DEFAULT 0,
    used_bytes     INTEGER NOT NULL DEFAULT 0,
    disabled       INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    UNIQUE (domain_id, local_part)
);

-- local_part '' is the domain's catch-all.
CREATE TABLE aliases (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    domain_id    INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    local_part   TEXT NOT NULL,
    destination  TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    UNIQUE (domain_id, local_part, destination)
);

CREATE TABLE mailboxes (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id        INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    special_use    TEXT,
    subscribed     INTEGER NOT NULL DEFAULT 1,
    uidvalidity    INTEGER NOT NULL,
    uidnext        INTEGER NOT NULL DEFAULT 1,
    highestmodseq  INTEGER NOT NULL DEFAULT 1,
    UNIQUE (user_id, name)
);

-- Raw message bytes, stored once per distinct content (RFC 5322 message as received).
CREATE TABLE blobs (
    hash  TEXT PRIMARY KEY,
    size  INTEGER NOT NULL,
    data  BLOB NOT NULL
);

CREATE TABLE messages (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox_id     INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    uid            INTEGER NOT NULL,
    blob_hash      TEXT NOT NULL REFERENCES blobs(hash),
    size           INTEGER NOT NULL,
    internal_date  INTEGER NOT NULL,
    flags          INTEGER NOT NULL DEFAULT 0,
    keywords       TEXT NOT NULL DEFAULT '',
    modseq         INTEGER NOT NULL,
    UNIQUE (mailbox_id, uid)
);
CREATE INDEX messages_blob ON messages(blob_hash);

CREATE TABLE queue (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    blob_hash     TEXT NOT NULL REFERENCES blobs(hash),
    sender        TEXT NOT NULL,
    recipient     TEXT NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_attempt  INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    last_error    TEXT,
    created_at    INTEGER NOT NULL
);
CREATE INDEX queue_due ON queue(next_attempt);
CREATE INDEX queue_blob ON queue(blob_hash);

CREATE TABLE dns_records (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    view        TEXT NOT NULL,
    name        TEXT NOT NULL,
    rtype       TEXT NOT NULL,
    ttl         INTEGER NOT NULL,
    data        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (view, name, rtype, data)
);

-- Bumped on every change to a view's managed records; the DNS adds it to the zone serial.
CREATE TABLE dns_generations (
    view        TEXT PRIMARY KEY,
    generation  INTEGER NOT NULL
);

CREATE TABLE admins (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    username       TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    created_at     INTEGER NOT NULL
);

-- Browser sessions and API bearer tokens; only a SHA-256 of the secret is stored.
CREATE TABLE admin_sessions (
    token_hash  TEXT PRIMARY KEY,
    admin_id    INTEGER NOT NULL REFERENCES admins(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    label       TEXT NOT NULL DEFAULT '',
    csrf_token  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER
);
