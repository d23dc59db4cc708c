//! Header blocks for a header-only FETCH (Thunderbird's `BODY.PEEK[HEADER.FIELDS (...)]` over a
//! whole mailbox): the stored `blob_index.header` of a batch of messages, read in one row.
//!
//! A batch is up to a thousand messages. Read as a thousand rows, most of the time went not into
//! the database but into handing the rows over: on SQLite sqlx's worker thread sends every row
//! through a channel to the session (a thread wake-up per row) and each row is copied into an
//! `AnyRow` with its column names. The query therefore aggregates the batch in the database into
//! three columns: the UIDs and the header lengths as comma-separated text and the header blocks
//! concatenated, in the same order.
//!
//! A batch names UIDs between its lowest and highest; when they are sparse in that range (a
//! client asking for `1,100000`), the query also gets the list itself (`$4`, a JSON array), so
//! that it never reads the blocks of messages nobody asked for.

use sqlx::pool::PoolConnection;
use sqlx::Any;

use crate::db::{get, Backend, Store};
use crate::error::{Result, StoreError};
use crate::mailboxes::Mailbox;

/// The batch as one row on SQLite: `group_concat` is binary-safe (it appends each value's bytes),
/// and the cast keeps the concatenation a blob. A blob not indexed yet has no header: its length
/// is -1 (`group_concat` skips the NULL itself). The three aggregates take the rows in one pass,
/// so their orders agree; no `ORDER BY` (it would sort the header blocks in a temporary b-tree):
/// the reader sorts by UID. SQLite joins by nested loops, each message's blob_index row found
/// through the index on its hash.
const SQLITE: &str = "SELECT group_concat(m.uid, ',') AS uids, \
     group_concat(coalesce(length(i.header), -1), ',') AS lens, \
     CAST(group_concat(i.header, '') AS BLOB) AS headers \
     FROM messages m LEFT JOIN blob_index i ON i.hash = m.blob_hash \
     WHERE m.mailbox_id = $1 AND m.uid >= $2 AND m.uid <= $3 \
     AND ($4 IS NULL OR m.uid IN (SELECT value FROM json_each($4)))";

/// The same on PostgreSQL (`length` of a bytea is its octet count). Each header block is looked
/// up by its hash in a subquery, not a join: for a batch of a thousand messages PostgreSQL
/// otherwise hashes a scan of every blob_index row, once per batch. `OFFSET 0` keeps the inner
/// query whole: pulled up, its subquery would run twice per message, once for each aggregate
/// that uses `h`.
const POSTGRES: &str = "SELECT string_agg(uid::text, ',') AS uids, \
     string_agg(coalesce(length(h), -1)::text, ',') AS lens, \
     string_agg(h, ''::bytea) AS headers \
     FROM (SELECT m.uid AS uid, (SELECT i.header FROM blob_index i WHERE i.hash = m.blob_hash) AS h \
     FROM messages m WHERE m.mailbox_id = $1 AND m.uid >= $2 AND m.uid <= $3 \
     AND ($4 IS NULL OR m.uid IN (SELECT value::bigint FROM json_array_elements_text($4::json))) \
     OFFSET 0) AS batch";

impl Store {
    /// The header blocks (bytes up to and including the blank line after the header) of the
    /// messages of `mailbox` with the given UIDs, in UID order; UIDs that do not exist are skipped.
    /// A blob not indexed yet is indexed now.
    pub async fn message_headers(
        &self,
        mailbox: &Mailbox,
        uids: &[i64],
    ) -> Result<Vec<(i64, Vec<u8>)>> {
        let mut sorted = uids.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let (Some(&lo), Some(&hi)) = (sorted.first(), sorted.last()) else {
            return Ok(Vec::new());
        };
        let sql = match self.backend {
            Backend::Sqlite => SQLITE,
            Backend::Postgres => POSTGRES,
        };
        // Up to twice as many messages as asked for are read by range; sparser sets are listed.
        let listed = (hi.saturating_sub(lo) as u64 >= 2 * sorted.len() as u64).then(|| {
            let list: Vec<String> = sorted.iter().map(i64::to_string).collect();
            format!("[{}]", list.join(","))
        });
        let query = sqlx::query(sql)
            .bind(mailbox.id)
            .bind(lo)
            .bind(hi)
            .bind(listed);
        let row = match self.backend {
            Backend::Sqlite => {
                let mut mapped = Mapped::new(self.pool.acquire().await?).await?;
                let row = query.fetch_one(&mut *mapped.conn).await;
                mapped.unmap().await?;
                row?
            }
            Backend::Postgres => query.fetch_one(&self.pool).await?,
        };
        let (Some(uid_list), Some(len_list)) = (
            get::<Option<String>>(&row, "uids")?,
            get::<Option<String>>(&row, "lens")?,
        ) else {
            return Ok(Vec::new());
        };
        let headers = get::<Option<Vec<u8>>>(&row, "headers")?.unwrap_or_default();
        drop(row);
        let mut out = Vec::with_capacity(sorted.len());
        let mut at = 0usize;
        for (uid, len) in uid_list.split(',').zip(len_list.split(',')) {
            let (uid, len) = (number(uid)?, number(len)?);
            let stored = usize::try_from(len).ok().map(|len| {
                let block = headers.get(at..at + len).map(<[u8]>::to_vec);
                at += len;
                block
            });
            if sorted.binary_search(&uid).is_err() {
                continue;
            }
            let header = match stored {
                Some(Some(block)) => block,
                Some(None) => return Err(malformed("the header blocks are cut short".into())),
                None => match self.blob_hash(mailbox, uid).await? {
                    Some(hash) => self.index_blob(&hash).await?,
                    // Expunged meanwhile: nothing to return.
                    None => continue,
                },
            };
            out.push((uid, header));
        }
        // Already in UID order when the database reads the messages in index order.
        out.sort_by_key(|&(uid, _)| uid);
        Ok(out)
    }
}

/// One number of an aggregated list.
fn number(text: &str) -> Result<i64> {
    text.parse()
        .map_err(|_| malformed(format!("{text:?} is not a number")))
}

/// A batch row that does not decode as the query builds it.
fn malformed(why: String) -> StoreError {
    StoreError::Db(sqlx::Error::Decode(format!("header batch: {why}").into()))
}

/// How much of the SQLite file is mapped while one batch is read: all of it, up to SQLite's
/// compile-time limit (`SQLITE_MAX_MMAP_SIZE`), to which the pragma's value is clamped.
const MAP_BYTES: i64 = 1 << 40;

/// A pooled SQLite connection reading through a memory map (`PRAGMA mmap_size`) for the length of
/// one query. Without it every database page the batch touches is a `pread` into the
/// connection's page cache (about a quarter of the reading thread's time); mapped all the time,
/// every page any command has read would count in the server's RSS (FETCH BODY[] of a large
/// mailbox then exceeds the issue-12 memory bound), so the map is dropped after each batch.
struct Mapped {
    conn: PoolConnection<Any>,
    mapped: bool,
}

impl Mapped {
    async fn new(mut conn: PoolConnection<Any>) -> Result<Mapped> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "PRAGMA mmap_size = {MAP_BYTES}"
        )))
        .execute(&mut *conn)
        .await?;
        Ok(Mapped { conn, mapped: true })
    }

    async fn unmap(&mut self) -> Result<()> {
        sqlx::query("PRAGMA mmap_size = 0")
            .execute(&mut *self.conn)
            .await?;
        self.mapped = false;
        Ok(())
    }
}

impl Drop for Mapped {
    /// A read cancelled (the session went away) or failed with the map in place: the connection
    /// is closed rather than returned to the pool mapped.
    fn drop(&mut self) {
        if self.mapped {
            self.conn.close_on_drop();
        }
    }
}
