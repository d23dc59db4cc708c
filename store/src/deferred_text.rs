//! The full-text index of a delivered message's body, written after the `250` (migration 0033).
//!
//! Indexing the body text for SEARCH BODY/TEXT is the costly part of storing a large message
//! (SQLite's FTS5 trigram index takes every character position, PostgreSQL's pg_trgm index every
//! trigram of the text), and it is not part of what a `250` promises: the message itself is
//! committed either way. So [`Store::accept`] stores a message it holds in memory (up to
//! [`crate::BLOB_CHUNK_SIZE`], the messages written in group commits) with its `blob_index` row
//! (header block and header fields, which FETCH and the header keys read) and marks the blob in
//! `blob_text_pending`, in the same transaction; a background indexer then writes the body text
//! (SQLite: the `blob_text` row; PostgreSQL: `blob_index.body_text`), several blobs per
//! transaction, and clears the mark. Like Dovecot's full-text search, which indexes the mail it
//! has not indexed yet when a search comes, SEARCH first indexes the pending blobs of its mailbox
//! ([`Store::index_pending`]), so it never misses a match; a restart finishes the backlog
//! ([`Store::index_backlog`]).
//!
//! The indexer gives way to deliveries: while the group committer ([`crate::group_commit`]) has
//! messages, it writes at most [`BUSY_BATCH`] blobs every [`GIVE_WAY`], so a burst of mail is
//! not slowed down by the indexing of the mail before it; when deliveries pause (the committer
//! wakes it as it goes idle) it indexes in full batches. Like the committer, it is spawned on demand and ends when nothing is pending.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::{Any, Transaction};

use futures_util::TryStreamExt;

use crate::blobs::{blob_bytes, blocking};
use crate::db::{execute_for_values, get, padded_rows, Backend, Store};
use crate::error::Result;
use crate::search_index::{analyse, BodyText};

/// Most blobs one indexing transaction writes.
const BATCH: i64 = 32;

/// Most body text bytes one indexing transaction writes (the texts of a batch are in memory
/// together); a larger text is written alone.
const BATCH_TEXT_BYTES: usize = 4 * 1024 * 1024;

/// Blobs indexed per [`GIVE_WAY`] while deliveries are being committed.
const BUSY_BATCH: i64 = 4;

/// How long the indexer waits for the committer to be idle before it writes a [`BUSY_BATCH`]
/// anyway (so the backlog moves under constant load too).
const GIVE_WAY: Duration = Duration::from_secs(1);

/// Marks `hashes`, blobs whose rows went in within `tx`, as waiting for their body text.
pub(crate) async fn mark_pending(
    tx: &mut Transaction<'static, Any>,
    hashes: &[&str],
) -> Result<()> {
    execute_for_values(
        tx,
        |rows| {
            format!(
                "INSERT INTO blob_text_pending (hash) SELECT v.column1 FROM {rows} \
                 WHERE v.column1 IS NOT NULL ON CONFLICT (hash) DO NOTHING"
            )
        },
        hashes,
    )
    .await
}

/// Whether the background indexer runs, and whether blobs were marked since it last looked;
/// shared by every clone of a [`Store`].
#[derive(Default)]
pub(crate) struct TextIndexer {
    state: Mutex<IndexerState>,
}

#[derive(Default)]
struct IndexerState {
    running: bool,
    marked: bool,
}

impl TextIndexer {
    /// Records that blobs were marked; true if the caller is to start the indexer.
    fn wake(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.marked = true;
        !std::mem::replace(&mut state.running, true)
    }

    /// Whether the indexer is to look again (blobs were marked since it last looked); if not, it
    /// has ended (under the same lock as [`TextIndexer::wake`], so a later mark starts a new one).
    fn again(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.running = std::mem::take(&mut state.marked);
        state.running
    }
}

/// The pending blobs of mailbox `$2`, at most `$1`.
const PENDING_IN_MAILBOX: &str = "SELECT p.hash FROM blob_text_pending p WHERE EXISTS \
     (SELECT 1 FROM messages m WHERE m.mailbox_id = $2 AND m.blob_hash = p.hash) LIMIT $1";

/// Pending blobs, at most `$1`.
const PENDING: &str = "SELECT hash FROM blob_text_pending LIMIT $1";

impl Store {
    /// Starts the background indexer unless it runs (after a delivery marked blobs pending).
    pub(crate) fn index_texts_soon(&self) {
        if !self.texts.wake() {
            return;
        }
        let store = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = store.index_in_background().await {
                    tracing::warn!(error = %e, "indexing delivered messages for SEARCH failed");
                }
                if !store.texts.again() {
                    return;
                }
            }
        });
    }

    /// Indexes every pending blob, giving way to deliveries (see the module documentation).
    async fn index_in_background(&self) -> Result<()> {
        let mut last = Instant::now();
        loop {
            let mut limit = BATCH;
            loop {
                // Armed before the look, so an end of work right after it still wakes this.
                let idle = self.group.idle();
                tokio::pin!(idle);
                idle.as_mut().enable();
                if !self.group.busy() {
                    break;
                }
                let Some(left) = GIVE_WAY.checked_sub(last.elapsed()) else {
                    limit = BUSY_BATCH;
                    break;
                };
                let _ = tokio::time::timeout(left, idle).await;
            }
            let hashes = self.pending(PENDING, None, limit).await?;
            if hashes.is_empty() {
                return Ok(());
            }
            self.index_texts(&hashes).await?;
            last = Instant::now();
        }
    }

    /// Writes the body text of every pending blob (of the messages of `mailbox` if given) and
    /// returns how many it wrote.
    pub(crate) async fn index_pending(&self, mailbox: Option<i64>) -> Result<usize> {
        let pick = if mailbox.is_some() {
            PENDING_IN_MAILBOX
        } else {
            PENDING
        };
        let mut done = 0;
        loop {
            let hashes = self.pending(pick, mailbox, BATCH).await?;
            if hashes.is_empty() {
                return Ok(done);
            }
            done += self.index_texts(&hashes).await?;
        }
    }

    /// Up to `limit` pending blobs `pick` returns.
    async fn pending(
        &self,
        pick: &'static str,
        mailbox: Option<i64>,
        limit: i64,
    ) -> Result<Vec<String>> {
        let mut query = sqlx::query(pick).bind(limit);
        if let Some(id) = mailbox {
            query = query.bind(id);
        }
        query
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| get(r, "hash"))
            .collect()
    }

    /// Writes the body texts of the pending blobs `hashes` (at most [`BATCH`]),
    /// [`BATCH_TEXT_BYTES`] of text per transaction at most, and returns how many it wrote (a
    /// blob indexed meanwhile by another indexer, or expunged, is skipped). The blobs are read
    /// with one query, one row at a time, each parsed as it arrives.
    async fn index_texts(&self, hashes: &[String]) -> Result<usize> {
        let rows = padded_rows(hashes.len());
        let sql = format!(
            "SELECT hash, chunked, data FROM blobs WHERE hash IN ({})",
            (1..=rows)
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for hash in hashes {
            query = query.bind(hash.as_str());
        }
        for _ in hashes.len()..rows {
            query = query.bind(None::<&str>);
        }
        let mut blobs = query.fetch(&self.pool);
        let mut done = 0;
        let mut texts: Vec<(String, String, String)> = Vec::new();
        let mut bytes = 0;
        while let Some(row) = blobs.try_next().await? {
            let hash: String = get(&row, "hash")?;
            let raw = blob_bytes(&self.pool, &row, "hash").await?;
            drop(row);
            let index = blocking(|| analyse(&raw, BodyText::Now))?.index;
            drop(raw);
            let body = index.body_text.unwrap_or_default();
            if !texts.is_empty() && bytes + body.len() > BATCH_TEXT_BYTES {
                done += self.write_texts(&mut std::mem::take(&mut texts)).await?;
                bytes = 0;
            }
            bytes += body.len();
            texts.push((hash, index.header_text, body));
        }
        if !texts.is_empty() {
            done += self.write_texts(&mut texts).await?;
        }
        Ok(done)
    }

    /// Writes `(hash, header text, body text)` of pending blobs in one transaction and returns
    /// how many it wrote. SQLite writes one writer at a time: a blob no longer pending is skipped.
    /// On PostgreSQL the rows are taken in hash order, each `blob_index` row before its pending
    /// mark (the order in which deleting a blob cascades to them, so an expunge and the indexer
    /// never wait for each other in a cycle); two indexers writing the same text write it twice.
    async fn write_texts(&self, texts: &mut [(String, String, String)]) -> Result<usize> {
        texts.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut tx = self.write_tx().await?;
        let mut done = 0;
        for (hash, header, body) in texts.iter() {
            let clear =
                sqlx::query("DELETE FROM blob_text_pending WHERE hash = $1").bind(hash.as_str());
            let written = match self.backend {
                Backend::Sqlite => {
                    if clear.execute(&mut *tx).await?.rows_affected() == 0 {
                        continue;
                    }
                    sqlx::query(
                        "INSERT INTO blob_text (rowid, header, body) SELECT i.id, $2, $3 \
                         FROM blob_index i WHERE i.hash = $1 \
                         AND NOT EXISTS (SELECT 1 FROM blob_text t WHERE t.rowid = i.id)",
                    )
                    .bind(hash.as_str())
                    .bind(header)
                    .bind(body)
                    .execute(&mut *tx)
                    .await?
                }
                Backend::Postgres => {
                    let written =
                        sqlx::query("UPDATE blob_index SET body_text = $2 WHERE hash = $1")
                            .bind(hash.as_str())
                            .bind(body)
                            .execute(&mut *tx)
                            .await?;
                    clear.execute(&mut *tx).await?;
                    written
                }
            };
            done += usize::from(written.rows_affected() > 0);
        }
        tx.commit().await?;
        Ok(done)
    }
}
