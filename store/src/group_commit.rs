//! Group commit of accepted messages. Every message [`Store::accept`] takes from memory is handed
//! to a short-lived committer task; a committer takes all messages waiting at that moment (up to
//! [`MAX_GROUP`] messages and [`MAX_GROUP_BYTES`] bytes) and writes them in one transaction: one
//! BEGIN, one row lock over all their users (in ascending id order, as [`Store::locked_tx`]
//! always takes it), one multi-row blob insert (with their index rows), the local copies in
//! arrival order (so the quota is charged as if they had come one by one; one statement on
//! PostgreSQL), the queue entries, one NOTIFY statement and one COMMIT, whose flush to disk is shared by the whole group. Each caller gets its answer
//! only after that commit, so a `250` still means the message is durable.
//!
//! A message of the group that fails (a database error, a user without INBOX) must not fail the
//! others: when any statement before COMMIT fails, the transaction is rolled back and every
//! message of the group is stored again in its own transaction, each getting its own outcome. A
//! failed COMMIT itself is reported to every caller of the group (its outcome is unknown, and the
//! sender retries after a 4xx; storing again here could store a message twice).
//!
//! The committer is spawned on demand and ends when nothing waits, so no task outlives the work
//! (nor keeps the store's pool open). While it writes a group, the next messages queue up for the
//! next group: the busier the server, the larger the groups.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::futures::Notified;
use tokio::sync::{oneshot, Notify};

use crate::blobs::{put_blobs, BlobSource, NewBlob};
use crate::db::Store;
use crate::delivery::{Accepted, Incoming, LocalCopy};
use crate::error::{Result, StoreError};
use crate::queue::DsnRequest;
use crate::search_index::Analysed;

/// Most messages written in one group transaction.
const MAX_GROUP: usize = 64;

/// Most message bytes written in one group transaction (each is at most
/// [`crate::BLOB_CHUNK_SIZE`]; only messages held in memory are grouped).
const MAX_GROUP_BYTES: usize = 8 * 1024 * 1024;

/// Committers writing groups at once. One: SQLite has one writer at a time anyway, and on
/// PostgreSQL a second committer mostly waits for the first one's user row locks (a server's
/// messages go to a few busy users) while the messages it took could have joined the next group.
const MAX_COMMITTERS: usize = 1;

/// A message waiting for its group: an owned copy of an [`Incoming`] with its parse and hash.
pub(crate) struct Pending {
    /// The raw message.
    pub raw: Vec<u8>,
    /// Its content hash.
    pub hash: String,
    /// Its parse for storage.
    pub parsed: Analysed,
    /// See [`Incoming::internal_date`].
    pub internal_date: i64,
    /// See [`Incoming::local`].
    pub local: Vec<LocalCopy>,
    /// See [`Incoming::sender`].
    pub sender: String,
    /// See [`Incoming::remote`].
    pub remote: Vec<String>,
    /// See [`Incoming::remote_dsn`].
    pub remote_dsn: Vec<DsnRequest>,
    /// See [`Incoming::expires_at`].
    pub expires_at: i64,
}

impl Pending {
    /// An owned copy of `m`, whose bytes are `raw`.
    pub(crate) fn new(m: &Incoming<'_>, raw: &[u8], hash: String, parsed: Analysed) -> Pending {
        Pending {
            raw: raw.to_vec(),
            hash,
            parsed,
            internal_date: m.internal_date,
            local: m.local.to_vec(),
            sender: m.sender.to_owned(),
            remote: m.remote.to_vec(),
            remote_dsn: m.remote_dsn.to_vec(),
            expires_at: m.expires_at,
        }
    }

    /// The message as an [`Incoming`] again.
    pub(crate) fn incoming(&self) -> Incoming<'_> {
        Incoming {
            raw: BlobSource::Bytes(&self.raw),
            internal_date: self.internal_date,
            local: &self.local,
            sender: &self.sender,
            remote: &self.remote,
            remote_dsn: &self.remote_dsn,
            expires_at: self.expires_at,
        }
    }
}

/// A waiting message and where its outcome goes.
struct Job {
    pending: Pending,
    done: oneshot::Sender<Result<Accepted>>,
}

/// The messages waiting for the committer, and whether it runs; shared by every clone of a
/// [`Store`].
#[derive(Default)]
pub(crate) struct GroupCommit {
    state: Mutex<State>,
    /// Woken when the last committer ends (nothing waits any more).
    idle: Notify,
}

#[derive(Default)]
struct State {
    waiting: VecDeque<Job>,
    committers: usize,
}

impl GroupCommit {
    /// Completes when the last committer ends; [`Notified::enable`] it before looking at
    /// [`GroupCommit::busy`] so that an end in between is not missed.
    pub(crate) fn idle(&self) -> Notified<'_> {
        self.idle.notified()
    }

    /// Whether messages are being committed or wait for it.
    pub(crate) fn busy(&self) -> bool {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.committers > 0 || !state.waiting.is_empty()
    }

    /// The next group: the oldest waiting messages within the limits. None if nothing waits, and
    /// then the calling committer has ended (counted under the same lock as the queue, so a
    /// message queued meanwhile starts a new committer).
    fn next_group(&self) -> Option<Vec<Job>> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.waiting.is_empty() {
            state.committers -= 1;
            if state.committers == 0 {
                self.idle.notify_waiters();
            }
            return None;
        }
        let mut group = Vec::new();
        let mut bytes = 0;
        while let Some(job) = state.waiting.front() {
            let len = job.pending.raw.len();
            if !group.is_empty() && (group.len() == MAX_GROUP || bytes + len > MAX_GROUP_BYTES) {
                break;
            }
            bytes += len;
            group.extend(state.waiting.pop_front());
        }
        Some(group)
    }
}

impl Store {
    /// Stores `pending` with the next group of messages and returns its outcome once that group
    /// is committed (see the module documentation).
    pub(crate) async fn accept_grouped(&self, pending: Pending) -> Result<Accepted> {
        let (done, outcome) = oneshot::channel();
        let start = {
            let mut state = self.group.state.lock().unwrap_or_else(|e| e.into_inner());
            state.waiting.push_back(Job { pending, done });
            let start = state.committers < MAX_COMMITTERS;
            if start {
                state.committers += 1;
            }
            start
        };
        if start {
            let store = self.clone();
            tokio::spawn(async move {
                while let Some(group) = store.group.next_group() {
                    store.commit_jobs(group).await;
                }
            });
        }
        outcome
            .await
            .map_err(|_| StoreError::CommitUnknown("the committer stopped".into()))?
    }

    /// Writes one group and answers each of its callers.
    async fn commit_jobs(&self, jobs: Vec<Job>) {
        let (pending, senders): (Vec<Pending>, Vec<_>) =
            jobs.into_iter().map(|j| (j.pending, j.done)).unzip();
        for (outcome, done) in self.store_group(&pending).await.into_iter().zip(senders) {
            // A caller that went away (its client disconnected) needs no answer.
            let _ = done.send(outcome);
        }
    }

    /// Stores `group` in one transaction, or each message in its own if a statement of the group
    /// failed before COMMIT. One outcome per message, in order.
    pub(crate) async fn store_group(&self, group: &[Pending]) -> Vec<Result<Accepted>> {
        if let [one] = group {
            return vec![
                self.accept_parsed(&one.incoming(), &one.hash, &one.parsed)
                    .await,
            ];
        }
        match self.write_group(group).await {
            Ok((tx, accepted, changes)) => {
                let committed = if changes.is_empty() {
                    tx.rollback().await.map_err(StoreError::from)
                } else {
                    self.commit(tx, changes).await
                };
                match committed {
                    Ok(()) => accepted.into_iter().map(Ok).collect(),
                    Err(e) => {
                        tracing::error!(error = %e, messages = group.len(), "group commit failed");
                        let e = e.to_string();
                        group
                            .iter()
                            .map(|_| Err(StoreError::CommitUnknown(e.clone())))
                            .collect()
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, messages = group.len(), "group failed; storing its messages one by one");
                let mut outcomes = Vec::with_capacity(group.len());
                for p in group {
                    outcomes.push(self.accept_parsed(&p.incoming(), &p.hash, &p.parsed).await);
                }
                outcomes
            }
        }
    }

    /// Every statement of a group's transaction but COMMIT: returns the open transaction, the
    /// outcome of each message and the changes to publish.
    async fn write_group(
        &self,
        group: &[Pending],
    ) -> Result<(
        sqlx::Transaction<'static, sqlx::Any>,
        Vec<Accepted>,
        Vec<crate::changes::Change>,
    )> {
        let users: Vec<i64> = group
            .iter()
            .flat_map(|p| p.local.iter().map(|c| c.user_id))
            .collect();
        let mut tx = self.locked_tx(&users).await?;
        let blobs: Vec<NewBlob<'_>> = group
            .iter()
            .map(|p| NewBlob {
                source: BlobSource::Bytes(&p.raw),
                hash: &p.hash,
                analysed: &p.parsed,
            })
            .collect();
        put_blobs(&mut tx, self.backend, &blobs).await?;
        let messages: Vec<_> = group
            .iter()
            .map(|p| (p.incoming(), p.hash.as_str()))
            .collect();
        let mut changes = Vec::new();
        let accepted = self.store_entries(&mut tx, &messages, &mut changes).await?;
        Ok((tx, accepted, changes))
    }
}

#[cfg(all(test, feature = "testing"))]
mod tests;
