-- What `postern import` last saw of an imported message at its source, so a re-run can carry
-- flags changed there over: the message's UID here and its source flags (system bits and
-- space-separated keywords). NULL for messages imported before this migration.
ALTER TABLE imported_messages ADD COLUMN uid BIGINT;
ALTER TABLE imported_messages ADD COLUMN source_flags BIGINT;
ALTER TABLE imported_messages ADD COLUMN source_keywords TEXT;
