//! The persistent outbound queue: one row per (message, remote recipient), retried by the delivery
//! worker until delivered, permanently refused, or expired (RFC 5321 §4.5.4.1).

use std::path::Path;

use sqlx::any::AnyRow;

use crate::blobs::{blob_spooled, delete_blobs_if_unreferenced, StoredBytes};
use crate::changes::Change;
use crate::db::{get, Store};
use crate::error::{Result, StoreError};

/// One queued delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    /// Row id.
    pub id: i64,
    /// Envelope sender (empty for a bounce).
    pub sender: String,
    /// Remote recipient.
    pub recipient: String,
    /// Delivery attempts made so far.
    pub attempts: i64,
    /// Earliest time of the next attempt, Unix seconds.
    pub next_attempt: i64,
    /// After this the entry bounces, Unix seconds.
    pub expires_at: i64,
    /// Reply or error of the last failed attempt.
    pub last_error: Option<String>,
    /// When it was queued, Unix seconds.
    pub created_at: i64,
    /// Message size in bytes.
    pub size: i64,
    /// What the sender asked of delivery status notifications for this recipient.
    pub dsn: DsnRequest,
    /// Whether the sender was told once that delivery is delayed (RFC 3464 action `delayed`).
    pub delay_notified: bool,
}

/// The delivery status notification parameters of one queued recipient (RFC 3461 §4), as the
/// sender gave them: `None` where a parameter was not given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DsnRequest {
    /// NOTIFY (§4.1): `NEVER`, or a comma-separated list of `SUCCESS`, `FAILURE`, `DELAY`.
    pub notify: Option<String>,
    /// ORCPT (§4.2): the original recipient, an `rfc822` address, xtext-decoded.
    pub orcpt: Option<String>,
    /// RET (§4.3): `FULL` or `HDRS`.
    pub ret: Option<String>,
    /// ENVID (§4.4): the sender's envelope identifier, xtext-decoded.
    pub envid: Option<String>,
}

fn entry_from_row(r: &AnyRow) -> Result<QueueEntry> {
    Ok(QueueEntry {
        id: get(r, "id")?,
        sender: get(r, "sender")?,
        recipient: get(r, "recipient")?,
        attempts: get(r, "attempts")?,
        next_attempt: get(r, "next_attempt")?,
        expires_at: get(r, "expires_at")?,
        last_error: get(r, "last_error")?,
        created_at: get(r, "created_at")?,
        size: get(r, "size")?,
        dsn: DsnRequest {
            notify: get(r, "dsn_notify")?,
            orcpt: get(r, "dsn_orcpt")?,
            ret: get(r, "dsn_ret")?,
            envid: get(r, "dsn_envid")?,
        },
        delay_notified: get::<i64>(r, "delay_notified")? != 0,
    })
}

/// A static SELECT of queue entries with their message size, followed by `$tail`.
macro_rules! select_queue {
    ($tail:literal) => {
        concat!(
            "SELECT q.id, q.sender, q.recipient, q.attempts, q.next_attempt, q.expires_at, q.last_error, ",
            "q.created_at, q.dsn_notify, q.dsn_orcpt, q.dsn_ret, q.dsn_envid, q.delay_notified, ",
            "b.size FROM queue q JOIN blobs b ON b.hash = q.blob_hash ",
            $tail
        )
    };
}

impl Store {
    /// Every queue entry, oldest first.
    pub async fn list_queue(&self) -> Result<Vec<QueueEntry>> {
        let rows = sqlx::query(select_queue!("ORDER BY q.id"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(entry_from_row).collect()
    }

    /// Claims up to `limit` entries due at `now` for one delivery attempt each by `node`: their
    /// next attempt moves to `lease_until`, so that no other worker (on this node or another node
    /// sharing the database) takes them meanwhile; a worker that dies leaves them due again at
    /// `lease_until`, or at once when its node starts again ([`Store::reclaim_queue`]). Each row
    /// is claimed by a conditional UPDATE, so two concurrent claimers never get the same entry.
    pub async fn claim_queue(
        &self,
        node: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<QueueEntry>> {
        let mut tx = self.write_tx().await?;
        let rows = sqlx::query(select_queue!(
            "WHERE q.next_attempt <= $1 ORDER BY q.next_attempt, q.id LIMIT $2"
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in &rows {
            let entry = entry_from_row(row)?;
            let done = sqlx::query(
                "UPDATE queue SET next_attempt = $1, lease_node = $2 WHERE id = $3 AND next_attempt <= $4",
            )
            .bind(lease_until)
            .bind(node)
            .bind(entry.id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 1 {
                claimed.push(entry);
            }
        }
        self.commit(tx, vec![]).await?;
        Ok(claimed)
    }

    /// Gives back a claim whose attempt was abandoned (the worker is shutting down): the entry
    /// is due again at `now` instead of at the end of its lease, unless someone changed it since.
    pub async fn release_queue(&self, id: i64, lease_until: i64, now: i64) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE queue SET next_attempt = $1, lease_node = NULL WHERE id = $2 AND next_attempt = $3",
        )
            .bind(now)
            .bind(id)
            .bind(lease_until)
            .execute(&mut *tx)
            .await?;
        self.commit(tx, vec![]).await
    }

    /// Takes back every lease `node` holds (the node starts again after a crash: none of its
    /// attempts is running any more): those entries are due at `now` instead of when their
    /// leases end. Leases of other nodes still wait for their end. Returns how many it took back.
    pub async fn reclaim_queue(&self, node: &str, now: i64) -> Result<u64> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE queue SET next_attempt = $1, lease_node = NULL WHERE lease_node = $2",
        )
        .bind(now)
        .bind(node)
        .execute(&mut *tx)
        .await?;
        let changes = if done.rows_affected() > 0 {
            vec![Change::Queue]
        } else {
            vec![]
        };
        self.commit(tx, changes).await?;
        Ok(done.rows_affected())
    }

    /// The raw message of a queue entry; a large one in a spool file in `dir` (the system's
    /// temporary directory if `None`), copied there one chunk at a time.
    pub async fn queue_message(&self, id: i64, dir: Option<&Path>) -> Result<StoredBytes> {
        let row = sqlx::query(
            "SELECT b.hash, b.chunked, b.data FROM queue q JOIN blobs b ON b.hash = q.blob_hash WHERE q.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("queue entry {id}")))?;
        blob_spooled(&self.pool, &row, "hash", dir).await
    }

    /// Records a failed attempt and when to try again.
    pub async fn defer_queue(&self, id: i64, error: &str, next_attempt: i64) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE queue SET attempts = attempts + 1, last_error = $1, next_attempt = $2, lease_node = NULL WHERE id = $3",
        )
        .bind(error)
        .bind(next_attempt)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("queue entry {id}")));
        }
        self.commit(tx, vec![]).await
    }

    /// Records that the sender of an entry was told its delivery is delayed (sent once per
    /// entry); nothing to do if the entry is gone meanwhile.
    pub async fn mark_delay_notified(&self, id: i64) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("UPDATE queue SET delay_notified = 1 WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        self.commit(tx, vec![]).await
    }

    /// Makes an entry due now (`postern queue retry`).
    pub async fn retry_queue(&self, id: i64) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let done =
            sqlx::query("UPDATE queue SET next_attempt = $1, lease_node = NULL WHERE id = $2")
                .bind(crate::unix_now())
                .bind(id)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("queue entry {id}")));
        }
        self.commit(tx, vec![Change::Queue]).await
    }

    /// Removes an entry (delivered, bounced, or deleted by the operator) and its bytes if unshared.
    pub async fn remove_queue(&self, id: i64) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query("DELETE FROM queue WHERE id = $1 RETURNING blob_hash")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("queue entry {id}")))?;
        let hash: String = get(&row, "blob_hash")?;
        delete_blobs_if_unreferenced(&mut tx, self.backend, &[hash].into_iter().collect()).await?;
        self.commit(tx, vec![Change::Queue]).await
    }
}
