-- Blobs whose search text (SQLite: their blob_text row; PostgreSQL: blob_index.body_text) is not
-- written yet. An SMTP delivery stores the blob and its blob_index row (header block and header
-- fields) but leaves the full-text index of the body, the costly part for a large message, to a
-- background indexer after the 250; SEARCH indexes the pending blobs of its mailbox before it
-- reads the index, so it never misses a match. Derived, so not backed up.
CREATE TABLE blob_text_pending (
    hash TEXT PRIMARY KEY REFERENCES blobs(hash) ON DELETE CASCADE
);
