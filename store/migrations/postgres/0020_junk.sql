-- The learning junk filter: per-user token statistics trained from the user's own moves and
-- $Junk/$NotJunk keywords, how many messages were trained as each class, and what each message
-- (by its bytes' hash) was trained as, so moving it back and forth retrains instead of counting
-- it twice.
CREATE TABLE junk_tokens (
    user_id  BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token    TEXT NOT NULL,
    spam     BIGINT NOT NULL,
    ham      BIGINT NOT NULL,
    seen_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, token)
);

CREATE TABLE junk_totals (
    user_id  BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    spam     BIGINT NOT NULL,
    ham      BIGINT NOT NULL
);

CREATE TABLE junk_trained (
    user_id    BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    blob_hash  TEXT NOT NULL,
    spam       BIGINT NOT NULL,
    PRIMARY KEY (user_id, blob_hash)
);
