-- IMAP support: parsed metadata stored once per blob (ENVELOPE, BODYSTRUCTURE, search fields as
-- JSON, computed at delivery/APPEND), and the first UID no session has seen yet (\Recent, RFC 3501
-- §2.3.2).
ALTER TABLE blobs ADD COLUMN parsed TEXT;
ALTER TABLE mailboxes ADD COLUMN recent_uid BIGINT NOT NULL DEFAULT 1;
CREATE INDEX messages_mailbox_modseq ON messages(mailbox_id, modseq);
