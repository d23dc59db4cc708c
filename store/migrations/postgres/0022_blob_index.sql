-- What FETCH of header sections and SEARCH read instead of a message's bytes, one row per stored
-- blob (written with it, deleted with it): the header block (bytes up to and including the blank
-- line), the decoded (RFC 2047), case-folded header texts SEARCH FROM/TO/CC/BCC/SUBJECT match, and
-- the case-folded texts SEARCH TEXT and BODY match: `header_text` (the header block with the
-- decoded fields) and `body_text` (the decoded text parts: base64/QP and charsets decoded, HTML as
-- text). Derived from blobs, so not backed up: a restore rebuilds it.
--
-- pg_trgm is a trusted extension (PostgreSQL 13+): a database owner may create it. Its GIN
-- indexes serve LIKE '%...%', IMAP's substring match (RFC 3501 §6.4.4), rechecked exactly.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE blob_index (
    hash        TEXT PRIMARY KEY REFERENCES blobs(hash) ON DELETE CASCADE,
    header      BYTEA NOT NULL,
    subject     TEXT NOT NULL,
    from_text   TEXT NOT NULL,
    to_text     TEXT NOT NULL,
    cc_text     TEXT NOT NULL,
    bcc_text    TEXT NOT NULL,
    header_text TEXT NOT NULL,
    body_text   TEXT NOT NULL
);
CREATE INDEX blob_index_header_trgm ON blob_index USING gin (header_text gin_trgm_ops);
CREATE INDEX blob_index_body_trgm ON blob_index USING gin (body_text gin_trgm_ops);
