//! Stored message bytes. Raw bytes live once in `blobs`, keyed by SHA-256, and are shared by every
//! mailbox entry (alias fan-out, COPY) and queue entry that references them. A blob larger than
//! [`BLOB_CHUNK_SIZE`] is stored as `blob_chunks` rows of at most that size (`blobs.chunked = 1`,
//! `blobs.data` empty), so that neither the INSERT nor a read ever binds one huge value; smaller
//! blobs stay inline in `blobs.data`. Everything that reads, writes or deletes blob bytes goes
//! through this module.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::path::Path;

use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::{Any, AnyPool, Transaction};

use crate::db::{get, values_rows, Backend, ROWS_PER_STATEMENT};
use crate::error::{Result, StoreError};
use crate::search_index::{
    insert_blobs_indexed, insert_indexes, Analysed, IndexEntry, IndexedBlob,
};
use crate::spool::{Spool, SpoolFile};

/// The conflict clause of every blob insert (PostgreSQL and SQLite): a never-true `DO UPDATE`
/// that still locks an existing row on PostgreSQL (INSERT "ON CONFLICT"), so another user's
/// expunge cannot delete the blob before the inserting transaction's message row references it.
/// `RETURNING hash` names the rows that went in.
pub(crate) const LOCK_KNOWN_BLOB: &str =
    "ON CONFLICT (hash) DO UPDATE SET size = blobs.size WHERE 1 = 0 RETURNING hash";

/// Size of one `blob_chunks` row; blobs larger than this are stored in chunks.
pub const BLOB_CHUNK_SIZE: usize = 1024 * 1024;

/// The key of stored bytes: lowercase hex SHA-256 (a [`Spool`] computes the same as it is
/// written).
///
/// [`Spool`]: crate::Spool
pub(crate) fn content_hash(raw: &[u8]) -> String {
    hex::encode(Sha256::digest(raw))
}

/// Where the bytes of a message to store are.
#[derive(Debug, Clone, Copy)]
pub enum BlobSource<'a> {
    /// In memory.
    Bytes(&'a [u8]),
    /// In a spool file, read one chunk at a time.
    File(&'a SpoolFile),
}

impl BlobSource<'_> {
    /// Its length in bytes.
    pub fn len(&self) -> usize {
        match self {
            BlobSource::Bytes(raw) => raw.len(),
            BlobSource::File(file) => usize::try_from(file.len).unwrap_or(usize::MAX),
        }
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes `start..end`, borrowed from memory or read from the file into `buf`.
    fn range<'b>(&'b self, start: usize, end: usize, buf: &'b mut Vec<u8>) -> Result<&'b [u8]> {
        match self {
            BlobSource::Bytes(raw) => Ok(&raw[start..end]),
            BlobSource::File(file) => {
                buf.resize(end - start, 0);
                blocking(|| file.read_at(buf, start as u64))?;
                Ok(buf)
            }
        }
    }
}

/// Runs short blocking work (a parse of a large message, a read from the page cache) without
/// stalling the other tasks of this worker on a multi-threaded runtime.
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Bytes to store: where they are, their [`content_hash`], and their parse.
#[derive(Clone, Copy)]
pub(crate) struct NewBlob<'a> {
    /// The bytes.
    pub source: BlobSource<'a>,
    /// Their hash.
    pub hash: &'a str,
    /// Their parsed metadata and index row.
    pub analysed: &'a Analysed,
}

/// Stores the bytes of `source` under `hash` (their [`content_hash`]) with their parsed
/// metadata and index row, unless identical bytes are stored already. Large blobs are written
/// chunk by chunk, so at most one chunk is in a buffer at a time.
pub(crate) async fn put_blob(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    source: BlobSource<'_>,
    hash: &str,
    analysed: &Analysed,
) -> Result<()> {
    let blob = NewBlob {
        source,
        hash,
        analysed,
    };
    put_blobs(tx, backend, &[blob]).await
}

/// [`put_blob`] for several blobs, with one multi-row INSERT per [`ROWS_PER_STATEMENT`] blobs
/// (an import stores its messages in batches: one round trip per statement, not per message).
/// The inline bytes of one statement's blobs are in memory together; large blobs' chunks are
/// written one at a time after it.
pub(crate) async fn put_blobs(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    blobs: &[NewBlob<'_>],
) -> Result<()> {
    let mut unique: Vec<&NewBlob<'_>> = Vec::with_capacity(blobs.len());
    let mut seen = BTreeSet::new();
    for blob in blobs {
        if seen.insert(blob.hash) {
            unique.push(blob);
        }
    }
    unique.sort_by_key(|blob| blob.hash);
    for group in unique.chunks(ROWS_PER_STATEMENT) {
        let mut inline = Vec::with_capacity(group.len());
        for blob in group {
            let size = blob.source.len();
            inline.push(match blob.source {
                _ if size > BLOB_CHUNK_SIZE => Cow::Borrowed(&[][..]),
                BlobSource::Bytes(raw) => Cow::Borrowed(raw),
                BlobSource::File(_) => {
                    let mut buf = Vec::new();
                    blob.source.range(0, size, &mut buf)?;
                    Cow::Owned(buf)
                }
            });
        }
        if backend == Backend::Postgres {
            // The blobs with their index rows in one round trip, same rules as below.
            let rows: Vec<IndexedBlob<'_>> = group
                .iter()
                .zip(&inline)
                .map(|(blob, data)| {
                    let size = blob.source.len();
                    (
                        blob.hash,
                        size as i64,
                        data.as_ref(),
                        blob.analysed.json.as_str(),
                        i64::from(size > BLOB_CHUNK_SIZE),
                        &blob.analysed.index,
                    )
                })
                .collect();
            let inserted = insert_blobs_indexed(tx, &rows).await?;
            drop(rows);
            drop(inline);
            for blob in group.iter().filter(|b| inserted.contains(b.hash)) {
                if blob.source.len() > BLOB_CHUNK_SIZE {
                    write_chunks(tx, blob).await?;
                }
            }
            continue;
        }
        // Identical bytes stored before, or by a concurrent writer (PostgreSQL waits for its
        // commit), are left alone: only the writer whose row went in writes the index and chunks.
        // No lookup comes first: one statement less per delivery, and a repeated message is rare.
        // The never-true DO UPDATE still locks an existing row (PostgreSQL, INSERT "ON CONFLICT"),
        // so another user's expunge cannot delete it before the caller's message row references
        // it: that expunge skips the locked row ([`delete_blobs_if_unreferenced`]), and one that
        // locked it first makes this wait and insert anew. Rows go in hash order, so two batches
        // sharing blobs lock them in the same order.
        let sql = format!(
            "INSERT INTO blobs (hash, size, data, parsed, chunked) VALUES {} {LOCK_KNOWN_BLOB}",
            values_rows(group.len(), 5, 1)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (blob, data) in group.iter().zip(&inline) {
            let size = blob.source.len();
            query = query
                .bind(blob.hash)
                .bind(size as i64)
                .bind(data.as_ref())
                .bind(&blob.analysed.json)
                .bind(i64::from(size > BLOB_CHUNK_SIZE));
        }
        let inserted: BTreeSet<String> = query
            .fetch_all(&mut **tx)
            .await?
            .iter()
            .map(|row| get::<String>(row, "hash"))
            .collect::<Result<_>>()?;
        drop(inline);
        let new: Vec<&&NewBlob<'_>> = group.iter().filter(|b| inserted.contains(b.hash)).collect();
        let entries: Vec<(&str, &IndexEntry)> =
            new.iter().map(|b| (b.hash, &b.analysed.index)).collect();
        insert_indexes(tx, backend, &entries).await?;
        for blob in new.iter().filter(|b| b.source.len() > BLOB_CHUNK_SIZE) {
            write_chunks(tx, blob).await?;
        }
    }
    Ok(())
}

/// Writes the `blob_chunks` rows of a large blob, one chunk in a buffer at a time.
async fn write_chunks(tx: &mut Transaction<'static, Any>, blob: &NewBlob<'_>) -> Result<()> {
    let size = blob.source.len();
    let mut buf = Vec::new();
    for (seq, start) in (0..size).step_by(BLOB_CHUNK_SIZE).enumerate() {
        let end = (start + BLOB_CHUNK_SIZE).min(size);
        let chunk = blob.source.range(start, end, &mut buf)?;
        sqlx::query("INSERT INTO blob_chunks (hash, seq, data) VALUES ($1, $2, $3)")
            .bind(blob.hash)
            .bind(seq as i64)
            .bind(chunk)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// The bytes of a blob from a row that has its `hash`, `chunked` and `data` columns (selected as
/// `b.hash, b.chunked, b.data` or under these names): the inline data, or the chunks reassembled.
pub(crate) async fn blob_bytes(pool: &AnyPool, row: &AnyRow, hash_col: &str) -> Result<Vec<u8>> {
    if get::<i64>(row, "chunked")? == 0 {
        return get(row, "data");
    }
    read_chunks(pool, &get::<String>(row, hash_col)?).await
}

/// The bytes of the blob `hash`.
pub(crate) async fn read_blob(pool: &AnyPool, hash: &str) -> Result<Vec<u8>> {
    let row = sqlx::query("SELECT hash, chunked, data FROM blobs WHERE hash = $1")
        .bind(hash)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("blob {hash}")))?;
    blob_bytes(pool, &row, "hash").await
}

/// Reassembles a chunked blob, one chunk per query so that the rows are never all in memory
/// next to the result.
async fn read_chunks(pool: &AnyPool, hash: &str) -> Result<Vec<u8>> {
    let size = blob_size(pool, hash).await?;
    let mut out = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    let mut seq = 0;
    while let Some(chunk) = read_chunk(pool, hash, seq).await? {
        out.extend_from_slice(&chunk);
        seq += 1;
    }
    check_size(hash, out.len() as u64, size)?;
    Ok(out)
}

/// The bytes of a stored message handed out to be sent: a small one in memory, a chunked one
/// copied into a spool file one chunk at a time (so at most one chunk is on the heap).
#[derive(Debug)]
pub enum StoredBytes {
    /// An inline blob's bytes.
    Memory(Vec<u8>),
    /// A chunked blob's bytes, in a nameless spool file.
    File(SpoolFile),
}

impl StoredBytes {
    /// Where its bytes are.
    pub fn source(&self) -> BlobSource<'_> {
        match self {
            StoredBytes::Memory(bytes) => BlobSource::Bytes(bytes),
            StoredBytes::File(file) => BlobSource::File(file),
        }
    }
}

/// The bytes of the blob of `row` (see [`blob_bytes`]); a chunked blob goes into a new spool file
/// in `dir`.
pub(crate) async fn blob_spooled(
    pool: &AnyPool,
    row: &AnyRow,
    hash_col: &str,
    dir: Option<&Path>,
) -> Result<StoredBytes> {
    if get::<i64>(row, "chunked")? == 0 {
        return Ok(StoredBytes::Memory(get(row, "data")?));
    }
    let hash = get::<String>(row, hash_col)?;
    let size = blob_size(pool, &hash).await?;
    let mut spool = Spool::create(dir).await?;
    let mut seq = 0;
    while let Some(chunk) = read_chunk(pool, &hash, seq).await? {
        spool.write(&chunk).await?;
        seq += 1;
    }
    check_size(&hash, spool.len(), size)?;
    Ok(StoredBytes::File(spool.finish().await?))
}

/// The size of the blob `hash` (0 if it is gone).
async fn blob_size(pool: &AnyPool, hash: &str) -> Result<i64> {
    Ok(sqlx::query("SELECT size FROM blobs WHERE hash = $1")
        .bind(hash)
        .fetch_optional(pool)
        .await?
        .map(|r| get(&r, "size"))
        .transpose()?
        .unwrap_or(0))
}

/// Chunk `seq` of the blob `hash`, `None` past its last.
async fn read_chunk(pool: &AnyPool, hash: &str, seq: i64) -> Result<Option<Vec<u8>>> {
    sqlx::query("SELECT data FROM blob_chunks WHERE hash = $1 AND seq = $2")
        .bind(hash)
        .bind(seq)
        .fetch_optional(pool)
        .await?
        .map(|row| get(&row, "data"))
        .transpose()
}

/// Fails unless the `read` bytes of blob `hash` are its whole `size`.
fn check_size(hash: &str, read: u64, size: i64) -> Result<()> {
    if read as i64 != size {
        return Err(StoreError::invalid(
            "stored message",
            format!("blob {hash} has {read} of {size} bytes"),
        ));
    }
    Ok(())
}

/// Deletes stored bytes no message or queue entry references any more, chunks included.
/// Blobs being referenced by another transaction are skipped, as in [`delete_blobs_if_unreferenced`].
pub(crate) async fn delete_unreferenced_blobs(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
) -> Result<()> {
    let sql = match backend {
        Backend::Sqlite => {
            "DELETE FROM blobs WHERE hash IN (SELECT b.hash FROM blobs b \
             WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.blob_hash = b.hash) \
             AND NOT EXISTS (SELECT 1 FROM queue q WHERE q.blob_hash = b.hash))"
        }
        Backend::Postgres => {
            "DELETE FROM blobs WHERE hash IN (SELECT b.hash FROM blobs b \
             WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.blob_hash = b.hash) \
             AND NOT EXISTS (SELECT 1 FROM queue q WHERE q.blob_hash = b.hash) FOR UPDATE SKIP LOCKED)"
        }
    };
    sqlx::query(sql).execute(&mut **tx).await?;
    sqlx::query(
        "DELETE FROM blob_chunks WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.hash = blob_chunks.hash)",
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Deletes the given blobs, chunks included, if no message or queue entry references them any more.
/// On PostgreSQL a blob another transaction holds (storing a new reference to it: [`put_blob`]'s
/// lock, or a foreign-key check) is skipped, not waited for: that transaction is about to
/// reference it, and deleting it would fail this one on the foreign key.
pub(crate) async fn delete_blobs_if_unreferenced(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    hashes: &BTreeSet<String>,
) -> Result<()> {
    let sql = match backend {
        Backend::Sqlite => {
            "DELETE FROM blobs WHERE hash = $1 AND NOT EXISTS (SELECT 1 FROM messages WHERE blob_hash = $1) \
             AND NOT EXISTS (SELECT 1 FROM queue WHERE blob_hash = $1)"
        }
        Backend::Postgres => {
            "DELETE FROM blobs WHERE hash IN (SELECT hash FROM blobs WHERE hash = $1 FOR UPDATE SKIP LOCKED) \
             AND NOT EXISTS (SELECT 1 FROM messages WHERE blob_hash = $1) \
             AND NOT EXISTS (SELECT 1 FROM queue WHERE blob_hash = $1)"
        }
    };
    for hash in hashes {
        // A reference committed after this statement's snapshot but before its row lock is seen
        // only by the foreign-key check: the blob is in use, so keep it (PostgreSQL).
        if backend == Backend::Postgres {
            sqlx::query("SAVEPOINT blob_gc").execute(&mut **tx).await?;
        }
        let deleted = match sqlx::query(sql).bind(hash).execute(&mut **tx).await {
            Ok(done) => done.rows_affected(),
            Err(sqlx::Error::Database(e))
                if backend == Backend::Postgres && e.code().as_deref() == Some("23503") =>
            {
                sqlx::query("ROLLBACK TO SAVEPOINT blob_gc")
                    .execute(&mut **tx)
                    .await?;
                0
            }
            Err(e) => return Err(e.into()),
        };
        if backend == Backend::Postgres {
            sqlx::query("RELEASE SAVEPOINT blob_gc")
                .execute(&mut **tx)
                .await?;
        }
        if deleted > 0 {
            sqlx::query("DELETE FROM blob_chunks WHERE hash = $1")
                .bind(hash)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}
