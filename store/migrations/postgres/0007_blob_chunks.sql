-- Large messages are stored in chunks instead of one `blobs.data` value, so that neither writing
-- nor reading them needs the whole message in one buffer: `chunked = 1` means `data` is empty and
-- the bytes are the `blob_chunks` rows of that hash in `seq` order. (SQLite's 0006 is its change
-- log, which PostgreSQL does not need; both dialects continue at 0007.)
ALTER TABLE blobs ADD COLUMN chunked BIGINT NOT NULL DEFAULT 0;

CREATE TABLE blob_chunks (
    hash  TEXT NOT NULL,
    seq   BIGINT NOT NULL,
    data  BYTEA NOT NULL,
    PRIMARY KEY (hash, seq)
);
