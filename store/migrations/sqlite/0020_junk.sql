-- The learning junk filter: per-user token statistics trained from the user's own moves and
-- $Junk/$NotJunk keywords, how many messages were trained as each class, and what each message
-- (by its bytes' hash) was trained as, so moving it back and forth retrains instead of counting
-- it twice.
CREATE TABLE junk_tokens (
    user_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token    TEXT NOT NULL,
    spam     INTEGER NOT NULL,
    ham      INTEGER NOT NULL,
    seen_at  INTEGER NOT NULL,
    PRIMARY KEY (user_id, token)
);

CREATE TABLE junk_totals (
    user_id  INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    spam     INTEGER NOT NULL,
    ham      INTEGER NOT NULL
);

CREATE TABLE junk_trained (
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    blob_hash  TEXT NOT NULL,
    spam       INTEGER NOT NULL,
    PRIMARY KEY (user_id, blob_hash)
);
