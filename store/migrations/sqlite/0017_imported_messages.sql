-- Messages brought in by `postern import`: one row per source message identity (its SHA-256 and
-- occurrence number within the source folder), so a second or resumed run skips what is there.
CREATE TABLE imported_messages (
    mailbox_id  INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    source_key  TEXT NOT NULL,
    PRIMARY KEY (mailbox_id, source_key)
);
