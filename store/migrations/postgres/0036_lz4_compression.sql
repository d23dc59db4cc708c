-- Message bytes and their index texts are compressed with LZ4 instead of PostgreSQL's default
-- pglz when they go to TOAST (values over about 2 KB). pglz took about 0.5 ms of the database's
-- CPU per 100 KiB of mail text, inside the group commit's blob insert (so on the path of every
-- 250); LZ4 compresses the same text in a tenth of that, to a similar size, and decompresses
-- faster for FETCH and the indexer. Only values written from now on use LZ4; older ones stay
-- readable as they are. A server without LZ4 (built without it, or before PostgreSQL 14, which
-- has no per-column compression) keeps pglz: the block then changes nothing.
DO $$
BEGIN
    EXECUTE 'ALTER TABLE blobs ALTER COLUMN data SET COMPRESSION lz4';
    EXECUTE 'ALTER TABLE blob_chunks ALTER COLUMN data SET COMPRESSION lz4';
    EXECUTE 'ALTER TABLE blob_index ALTER COLUMN header SET COMPRESSION lz4, '
        'ALTER COLUMN header_text SET COMPRESSION lz4, ALTER COLUMN body_text SET COMPRESSION lz4';
EXCEPTION WHEN syntax_error OR feature_not_supported THEN
    NULL;
END
$$;
