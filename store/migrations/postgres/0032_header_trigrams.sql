-- SQLite's migration 0032 adds a trigram index of the header texts for SEARCH SUBJECT/FROM/TO/
-- CC/BCC. PostgreSQL has had one since migration 0026 (blob_index_fields_trgm), so nothing
-- changes here; the migration keeps both backends at the same schema version, which a restore
-- compares with the backup's.
SELECT 1;
