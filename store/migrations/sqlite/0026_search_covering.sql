-- SEARCH SUBJECT/FROM/TO/CC/BCC without reading table rows: a mailbox's messages with their blob
-- hashes, in hash order, and the header texts of each blob, both whole in an index. The join of
-- the two then reads index pages only, in the order they are stored (a blob_index row also holds
-- the header block, about a page per message; reading it for every message of a large mailbox
-- took most of a search's time).
CREATE INDEX messages_mailbox_blob ON messages(mailbox_id, blob_hash, uid);
CREATE INDEX blob_index_fields ON blob_index(hash, subject, from_text, to_text, cc_text, bcc_text);
