//! The outbound queue worker: delivers due queue entries, retries transient failures with
//! exponential backoff until the entry's lifetime ends, and bounces permanent failures and expired
//! entries to the sender (RFC 5321 §4.5.4.1, RFC 3464). It wakes when the store reports queue
//! changes and otherwise sleeps until the next retry is due.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use postern_store::{Change, QueueEntry, Store, StoreError};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::SmtpConfig;
use crate::dsn::params::{self, Notice as Kind};
use crate::dsn::{self, Action, Notice, Original};
use crate::error::SmtpError;
use crate::message::Message;
use crate::outbound::{Attempt, Outbound, Problem};

struct Worker {
    store: Store,
    /// This node's stable id (kept in its data directory), written into the leases it takes.
    node: String,
    config: SmtpConfig,
    hostname: String,
    outbound: Outbound,
}

/// A running queue worker.
pub struct QueueWorker {
    handle: tokio::task::JoinHandle<()>,
}

impl QueueWorker {
    /// Starts the worker for the node `node` (a stable id: the same after a restart); it first
    /// takes back the leases a crashed run of the same node left, then runs until `shutdown` is
    /// cancelled (deliveries in progress are abandoned and retried after the next start, so a
    /// message may be sent twice but never lost).
    pub fn start(
        config: SmtpConfig,
        hostname: String,
        node: String,
        store: Store,
        shutdown: CancellationToken,
    ) -> Result<QueueWorker, SmtpError> {
        let outbound = Outbound::new(&config, &hostname)?;
        let worker = Arc::new(Worker {
            store,
            node,
            config,
            hostname,
            outbound,
        });
        let handle = tokio::spawn(run(worker, shutdown));
        Ok(QueueWorker { handle })
    }

    /// Completes when the worker has stopped.
    pub async fn wait(self) {
        let _ = self.handle.await;
    }
}

async fn run(worker: Arc<Worker>, shutdown: CancellationToken) {
    let mut changes = worker.store.subscribe();
    let scan = Duration::from_secs(worker.config.queue_scan_secs.max(1));
    let concurrency = worker.config.queue_concurrency.max(1);
    let mut tasks: JoinSet<Option<i64>> = JoinSet::new();
    // Claimed entries whose attempt is running: (entry id, end of its lease) by task.
    let mut in_flight: HashMap<tokio::task::Id, (i64, i64)> = HashMap::new();
    let mut rescan = true;
    let mut next_scan = Instant::now() + scan;
    // Leases this node held when it last stopped without giving them back (kill -9, power loss):
    // none of those attempts runs any more, so they are due now, not in a quarter of an hour.
    match worker
        .store
        .reclaim_queue(&worker.node, postern_store::unix_now())
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            node = worker.node,
            entries = n,
            "took back this node's queue leases"
        ),
        Err(e) => tracing::error!(error = %e, "taking back this node's queue leases failed"),
    }
    // Entries deferred by an earlier run: wake when the first of them is due.
    if let Ok(entries) = worker.store.list_queue().await {
        if let Some(first) = entries.iter().map(|e| e.next_attempt).min() {
            next_scan = next_scan.min(instant_at(first));
        }
    }
    loop {
        if rescan && tasks.len() < concurrency {
            rescan = false;
            let now = postern_store::unix_now();
            let free = (concurrency - tasks.len()) as i64;
            let lease_until = now + LEASE.as_secs() as i64;
            match worker
                .store
                .claim_queue(&worker.node, now, lease_until, free)
                .await
            {
                Ok(claimed) => {
                    // A full batch: more may be due; look again when a slot frees up.
                    rescan = claimed.len() as i64 == free;
                    for entry in claimed {
                        let w = worker.clone();
                        let id = entry.id;
                        let task = tasks.spawn(async move { w.attempt_within_lease(entry).await });
                        in_flight.insert(task.id(), (id, lease_until));
                    }
                }
                Err(e) => tracing::error!(error = %e, "reading the queue failed"),
            }
            next_scan = next_scan.max(Instant::now()).min(Instant::now() + scan);
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                match done {
                    Ok((task, next)) => {
                        in_flight.remove(&task);
                        if let Some(at) = next {
                            next_scan = next_scan.min(instant_at(at));
                        }
                    }
                    Err(e) => {
                        in_flight.remove(&e.id());
                    }
                }
                rescan = true;
            }
            change = changes.recv() => match change {
                Ok(Change::Queue) | Err(RecvError::Lagged(_)) => rescan = true,
                Ok(_) => {}
                Err(RecvError::Closed) => changes = worker.store.subscribe(),
            },
            _ = tokio::time::sleep_until(next_scan) => {
                rescan = true;
                next_scan = Instant::now() + scan;
            }
        }
    }
    tasks.shutdown().await;
    // Attempts cut short by shutdown are due again at once, not when their lease ends: a restarted
    // node (or another one) retries them without waiting a quarter of an hour.
    let now = postern_store::unix_now();
    for (id, lease_until) in in_flight.into_values() {
        if let Err(e) = worker.store.release_queue(id, lease_until, now).await {
            tracing::warn!(id, error = %e, "giving back a queue claim failed");
        }
    }
}

/// The tokio instant of Unix time `at` (now if it is past).
fn instant_at(at: i64) -> Instant {
    let wait = (at - postern_store::unix_now()).max(0) as u64;
    Instant::now() + Duration::from_secs(wait)
}

/// When to try again after a transient failure at `now`: after the backoff `delay`, but no later
/// than the end of the entry's lifetime, so the last attempt is made when the lifetime ends and
/// not one retry before it; `None` once the lifetime is over (bounce, RFC 5321 §4.5.4.1).
fn next_attempt(now: i64, delay: u64, expires_at: i64) -> Option<i64> {
    if now >= expires_at {
        return None;
    }
    Some(
        now.saturating_add(i64::try_from(delay).unwrap_or(i64::MAX))
            .min(expires_at),
    )
}

/// How long a claimed entry is reserved for one worker (RFC 5321 §4.5.4.1 asks for retries, not
/// parallel attempts): an attempt is cut off before this, and the entry of a worker that died is
/// due again after it.
const LEASE: Duration = Duration::from_secs(900);

impl Worker {
    /// [`Worker::attempt`], given up (and retried later) if it would outlast the lease.
    async fn attempt_within_lease(&self, entry: QueueEntry) -> Option<i64> {
        let id = entry.id;
        let limit = LEASE - Duration::from_secs(60);
        match tokio::time::timeout(limit, self.attempt(entry)).await {
            Ok(next) => next,
            Err(_) => {
                tracing::warn!(id, "delivery attempt took too long; retrying later");
                let next = postern_store::unix_now() + 60;
                if let Err(e) = self
                    .store
                    .defer_queue(id, "delivery attempt timed out", next)
                    .await
                {
                    tracing::error!(id, error = %e, "deferring a queue entry failed");
                }
                Some(next)
            }
        }
    }

    /// One delivery attempt of one entry; returns when the entry is next due, if it stays queued.
    async fn attempt(&self, entry: QueueEntry) -> Option<i64> {
        // A large message comes out of the store one chunk at a time into a spool file, which is
        // sent (and read for reports) through a map, never copied whole onto the heap.
        let spool_dir = self.config.spool_dir.as_deref();
        let raw = match self.store.queue_message(entry.id, spool_dir).await {
            Ok(stored) => Message::map(stored).map_err(StoreError::from),
            Err(e) => Err(e),
        };
        let raw = match raw {
            Ok(raw) => raw,
            Err(StoreError::NotFound(_)) => return None,
            Err(e) => {
                tracing::error!(id = entry.id, error = %e, "reading a queued message failed");
                return Some(postern_store::unix_now() + 60);
            }
        };
        let attempt = self
            .outbound
            .deliver(&entry.sender, &entry.recipient, &raw, &entry.dsn)
            .await;
        let now = postern_store::unix_now();
        match attempt {
            Attempt::Delivered { host, dsn_passed } => {
                // The remote server has the message: record that before anything else, since
                // until then a crash means sending it again.
                self.remove(entry.id).await;
                tracing::info!(
                    id = entry.id,
                    recipient = entry.recipient,
                    host,
                    dsn_passed,
                    "delivered"
                );
                metrics::counter!("postern_smtp_outbound_total", "result" => "delivered")
                    .increment(1);
                // A next hop without DSN will not report the delivery: say it was relayed
                // (RFC 3461 §4.1, RFC 3464 §2.3.3).
                if !dsn_passed && params::wants(&entry.dsn, Kind::Success) {
                    let notice = Notice {
                        remote_mta: Some(host),
                        ..Notice::new(&entry.recipient, &entry.dsn, Action::Relayed, "2.0.0")
                    };
                    if let Err(e) = self.report(&entry, notice, &raw).await {
                        tracing::error!(id = entry.id, error = %e, "could not send a relay report");
                    }
                }
                None
            }
            Attempt::Permanent(p) => {
                tracing::warn!(
                    id = entry.id,
                    recipient = entry.recipient,
                    error = p.diagnostic,
                    "delivery failed permanently"
                );
                metrics::counter!("postern_smtp_outbound_total", "result" => "bounced")
                    .increment(1);
                self.bounce(&entry, p, &raw).await;
                None
            }
            Attempt::Transient(p) => {
                let delay = self.config.retry_delay(entry.attempts);
                let Some(next) = next_attempt(now, delay, entry.expires_at) else {
                    tracing::warn!(
                        id = entry.id,
                        recipient = entry.recipient,
                        error = p.diagnostic,
                        "queue lifetime over; bouncing"
                    );
                    metrics::counter!("postern_smtp_outbound_total", "result" => "expired")
                        .increment(1);
                    let expired = Problem {
                        status: "4.4.7".into(),
                        diagnostic: format!("delivery time expired; last error: {}", p.diagnostic),
                        ..p
                    };
                    self.bounce(&entry, expired, &raw).await;
                    return None;
                };
                tracing::info!(
                    id = entry.id,
                    recipient = entry.recipient,
                    error = p.diagnostic,
                    retry_in = next - now,
                    "delivery deferred"
                );
                self.warn_of_delay(&entry, &p, &raw, now).await;
                metrics::counter!("postern_smtp_outbound_total", "result" => "deferred")
                    .increment(1);
                match self.store.defer_queue(entry.id, &p.diagnostic, next).await {
                    Ok(()) => Some(next),
                    Err(e) => {
                        tracing::error!(id = entry.id, error = %e, "deferring a queue entry failed");
                        Some(next)
                    }
                }
            }
        }
    }

    /// Bounces the entry to its sender (unless NOTIFY declines it, RFC 3461 §4.1; never for a
    /// bounce) and removes it from the queue.
    async fn bounce(&self, entry: &QueueEntry, p: Problem, raw: &[u8]) {
        if params::wants(&entry.dsn, Kind::Failure) {
            let notice = Notice {
                diagnostic: Some(p.diagnostic),
                remote_mta: p.remote_mta,
                ..Notice::new(&entry.recipient, &entry.dsn, Action::Failed, &p.status)
            };
            if let Err(e) = self.report(entry, notice, raw).await {
                // Keep the entry: the next attempt will try the bounce again.
                tracing::error!(id = entry.id, error = %e, "could not send a bounce");
                let _ = self
                    .store
                    .defer_queue(entry.id, "bounce failed", postern_store::unix_now() + 60)
                    .await;
                return;
            }
        }
        self.remove(entry.id).await;
    }

    /// Tells the sender once that the entry is delayed, when it has waited `delay_warning_secs`
    /// and its NOTIFY allows (RFC 3461 §4.1; RFC 3464 action `delayed`).
    async fn warn_of_delay(&self, entry: &QueueEntry, p: &Problem, raw: &[u8], now: i64) {
        let after = i64::try_from(self.config.delay_warning_secs).unwrap_or(i64::MAX);
        if entry.delay_notified
            || after == 0
            || now.saturating_sub(entry.created_at) < after
            || !params::wants(&entry.dsn, Kind::Delay)
        {
            return;
        }
        let notice = Notice {
            diagnostic: Some(p.diagnostic.clone()),
            remote_mta: p.remote_mta.clone(),
            will_retry_until: Some(entry.expires_at),
            ..Notice::new(&entry.recipient, &entry.dsn, Action::Delayed, &p.status)
        };
        match self.report(entry, notice, raw).await {
            Ok(()) => {
                if let Err(e) = self.store.mark_delay_notified(entry.id).await {
                    tracing::error!(id = entry.id, error = %e, "recording a delay report failed");
                }
            }
            Err(e) => tracing::error!(id = entry.id, error = %e, "could not send a delay report"),
        }
    }

    /// Sends a report about the entry to its sender.
    async fn report(
        &self,
        entry: &QueueEntry,
        notice: Notice,
        raw: &[u8],
    ) -> Result<(), StoreError> {
        let expires_at = postern_store::unix_now() + self.config.queue_lifetime_secs as i64;
        let original = Original::new(&entry.sender, raw, entry.created_at, &entry.dsn);
        dsn::send(
            &self.store,
            &self.hostname,
            expires_at,
            &original,
            &[notice],
        )
        .await
    }

    async fn remove(&self, id: i64) {
        match self.store.remove_queue(id).await {
            Ok(()) | Err(StoreError::NotFound(_)) => {}
            Err(e) => tracing::error!(id, error = %e, "removing a queue entry failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::next_attempt;

    #[test]
    fn the_last_retry_is_at_the_end_of_the_lifetime() {
        // Lifetime 0..60, retries every 40 s: 0, 40, 60, then the bounce.
        assert_eq!(next_attempt(0, 40, 60), Some(40));
        assert_eq!(next_attempt(40, 40, 60), Some(60));
        assert_eq!(next_attempt(60, 40, 60), None);
        assert_eq!(next_attempt(61, 40, 60), None);
        assert_eq!(next_attempt(0, u64::MAX, 60), Some(60));
    }
}
