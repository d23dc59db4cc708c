-- What FETCH of header sections and SEARCH read instead of a message's bytes, one row per stored
-- blob (written with it, deleted with it): the header block (bytes up to and including the blank
-- line) and the decoded (RFC 2047), case-folded header texts SEARCH FROM/TO/CC/BCC/SUBJECT match.
-- Derived from blobs, so not backed up: a restore rebuilds it.
CREATE TABLE blob_index (
    id        INTEGER PRIMARY KEY,
    hash      TEXT NOT NULL UNIQUE REFERENCES blobs(hash) ON DELETE CASCADE,
    header    BLOB NOT NULL,
    subject   TEXT NOT NULL,
    from_text TEXT NOT NULL,
    to_text   TEXT NOT NULL,
    cc_text   TEXT NOT NULL,
    bcc_text  TEXT NOT NULL
);

-- The case-folded texts SEARCH TEXT and BODY match, row id = blob_index.id: `header` is the header
-- block with the decoded fields, `body` the decoded text parts (base64/QP and charsets decoded,
-- HTML as text). Trigrams make any substring of three or more characters an index lookup (a
-- phrase of consecutive trigrams), which is exactly IMAP's substring match (RFC 3501 §6.4.4).
CREATE VIRTUAL TABLE blob_text USING fts5(header, body, tokenize = 'trigram case_sensitive 1');

CREATE TRIGGER blob_index_deleted AFTER DELETE ON blob_index BEGIN
    DELETE FROM blob_text WHERE rowid = old.id;
END;
