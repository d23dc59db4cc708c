-- PostgreSQL's migration 0035 adds a function that stores the local copies of accepted messages
-- in one round trip. SQLite runs in the process (no round trips), so its copies are stored one
-- statement at a time as before and nothing changes here; the migration keeps both backends at
-- the same schema version, which a restore compares with the backup's.
SELECT 1;
