-- SEARCH SUBJECT/FROM/TO/CC/BCC through an index: trigrams of the header texts (one GIN index
-- over the five columns serves `LIKE '%...%'` on any of them, as blob_index_body_trgm does for
-- BODY), so a search reads the rows of the blobs that contain the string instead of every row of
-- blob_index. A mailbox's messages by blob hash, with their UIDs in the index, then tell which of
-- those blobs are in the mailbox without reading the messages table.
CREATE INDEX blob_index_fields_trgm ON blob_index USING gin (
    subject gin_trgm_ops, from_text gin_trgm_ops, to_text gin_trgm_ops,
    cc_text gin_trgm_ops, bcc_text gin_trgm_ops
);
CREATE INDEX messages_mailbox_blob ON messages (mailbox_id, blob_hash) INCLUDE (uid);
