-- PostgreSQL's migration 0036 compresses message bytes and index texts with LZ4 in TOAST. SQLite
-- stores values uncompressed, so nothing changes here; the migration keeps both backends at the
-- same schema version, which a restore compares with the backup's.
SELECT 1;
