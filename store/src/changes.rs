//! The change bus: every committed change that another session or node must react to (IMAP IDLE,
//! DNS record updates, the admin dashboard) is published here, so nothing needs to poll.

use tokio::sync::broadcast;

use crate::error::Result;

/// How many events a slow subscriber may fall behind before it starts losing the oldest.
const BUS_CAPACITY: usize = 4096;

/// The NOTIFY channel used on PostgreSQL.
const PG_CHANNEL: &str = "postern_changes";

/// What happened to a mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailboxEvent {
    /// Messages were delivered, appended or copied into it.
    Appended,
    /// Flags of messages changed.
    Flags,
    /// Messages were expunged.
    Expunged,
    /// The mailbox was created, renamed or deleted.
    Renamed,
}

/// One committed change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A mailbox's contents changed; `modseq` is its HIGHESTMODSEQ after the change.
    Mailbox {
        /// Owner of the mailbox.
        user_id: i64,
        /// The mailbox.
        mailbox_id: i64,
        /// HIGHESTMODSEQ after the change (RFC 7162 §3.1.1).
        modseq: i64,
        /// What changed.
        event: MailboxEvent,
    },
    /// A user's subscription list changed (IMAP NOTIFY SubscriptionChange, RFC 5465 §5.5).
    Subscriptions {
        /// The user.
        user_id: i64,
    },
    /// Managed DNS records of a view changed.
    Dns {
        /// The view's name.
        view: String,
    },
    /// The outbound queue gained entries or was edited.
    Queue,
    /// Hosted mail domains or their DKIM keys changed (the DNS re-publishes mail records).
    MailDomains,
    /// A zone's DNSSEC keys changed (the DNS re-signs).
    DnssecKeys,
}

impl Change {
    /// Text form carried in a PostgreSQL NOTIFY payload.
    pub(crate) fn encode(&self) -> String {
        match self {
            Change::Mailbox {
                user_id,
                mailbox_id,
                modseq,
                event,
            } => {
                let e = match event {
                    MailboxEvent::Appended => 'a',
                    MailboxEvent::Flags => 'f',
                    MailboxEvent::Expunged => 'x',
                    MailboxEvent::Renamed => 'r',
                };
                format!("m {user_id} {mailbox_id} {modseq} {e}")
            }
            Change::Subscriptions { user_id } => format!("s {user_id}"),
            Change::Dns { view } => format!("d {view}"),
            Change::Queue => "q".to_owned(),
            Change::MailDomains => "md".to_owned(),
            Change::DnssecKeys => "dk".to_owned(),
        }
    }

    /// Parses [`Change::encode`]'s form; `None` for anything else (e.g. a newer node's event kind).
    pub(crate) fn decode(s: &str) -> Option<Change> {
        let mut parts = s.splitn(5, ' ');
        match parts.next()? {
            "m" => {
                let user_id = parts.next()?.parse().ok()?;
                let mailbox_id = parts.next()?.parse().ok()?;
                let modseq = parts.next()?.parse().ok()?;
                let event = match parts.next()? {
                    "a" => MailboxEvent::Appended,
                    "f" => MailboxEvent::Flags,
                    "x" => MailboxEvent::Expunged,
                    "r" => MailboxEvent::Renamed,
                    _ => return None,
                };
                Some(Change::Mailbox {
                    user_id,
                    mailbox_id,
                    modseq,
                    event,
                })
            }
            "s" => Some(Change::Subscriptions {
                user_id: parts.next()?.parse().ok()?,
            }),
            "d" => Some(Change::Dns {
                view: s.get(2..)?.to_owned(),
            }),
            "q" => Some(Change::Queue),
            "md" => Some(Change::MailDomains),
            "dk" => Some(Change::DnssecKeys),
            _ => None,
        }
    }
}

/// The in-process side of the bus; on PostgreSQL a listener task feeds it from NOTIFY, on
/// SQLite a file watcher feeds it from the `change_log` rows other processes wrote.
#[derive(Clone)]
pub(crate) struct Changes {
    tx: broadcast::Sender<Change>,
    /// Tags this process's `change_log` rows (SQLite), so the watcher skips its own.
    pub(crate) origin: String,
    /// SQLite: the file written after every commit with changes (see [`Changes::ring`]).
    doorbell: Option<std::sync::Arc<std::fs::File>>,
}

/// Suffix of the doorbell file next to the SQLite database (`postern.db-changes`).
const DOORBELL_SUFFIX: &str = "-changes";

/// How long `change_log` rows are kept (every watching process reads them well within this).
const CHANGE_LOG_KEEP_SECS: i64 = 300;

impl Changes {
    /// A bus with no outside feed.
    fn in_process() -> Changes {
        Changes {
            tx: broadcast::channel(BUS_CAPACITY).0,
            origin: hex::encode(rand::random::<[u8; 8]>()),
            doorbell: None,
        }
    }

    /// A bus that also carries changes other processes commit to the same SQLite file: an inotify
    /// watch on the database's directory wakes a reader of new `change_log` rows (no polling).
    ///
    /// The wake-up must come *after* the commit is visible. SQLite's own file writes do not
    /// guarantee that: a WAL commit `write(2)`s its frames to `-wal` (inotify events), then
    /// fsyncs (`synchronous=FULL`), and only then publishes the commit in the `-shm` wal-index,
    /// which is shared memory and raises no event. A watcher woken by the frame writes could read
    /// `change_log` before the commit was visible, find nothing, and get no further event: the
    /// change stayed unseen until some later write (the cause of the flaky "change in time"
    /// tests). So every committing handle also writes one byte to a doorbell file
    /// (`<db>-changes`) after the commit returned ([`Changes::ring`]); its event wakes the
    /// watcher when the rows can be read. A failed read is retried instead of waiting for the
    /// next event.
    pub(crate) async fn sqlite(
        pool: sqlx::AnyPool,
        db_file: Option<std::path::PathBuf>,
    ) -> Result<Changes> {
        use notify::Watcher;
        let mut changes = Changes::in_process();
        let Some(db_file) = db_file else {
            return Ok(changes);
        };
        let (Some(dir), Some(stem)) = (
            db_file.parent().map(std::path::Path::to_path_buf),
            db_file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned()),
        ) else {
            return Ok(changes);
        };
        let bell_path = dir.join(format!("{stem}{DOORBELL_SUFFIX}"));
        match std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&bell_path)
        {
            Ok(f) => changes.doorbell = Some(std::sync::Arc::new(f)),
            // Other processes then learn of this one's changes only from SQLite's own writes,
            // which may come too early (see above).
            Err(e) => tracing::warn!(
                path = %bell_path.display(),
                error = %e,
                "cannot open the change doorbell; other processes may see changes late"
            ),
        }
        let (wake, mut woken) = tokio::sync::mpsc::unbounded_channel();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let ours = event.is_ok_and(|e| {
                    e.paths.iter().any(|p| {
                        p.file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with(&stem))
                    })
                });
                if ours {
                    let _ = wake.send(());
                }
            })
            .map_err(|e| {
                crate::StoreError::invalid(
                    "database path",
                    format!("cannot watch {}: {e}", dir.display()),
                )
            })?;
        watcher
            .watch(&dir, notify::RecursiveMode::NonRecursive)
            .map_err(|e| {
                crate::StoreError::invalid(
                    "database path",
                    format!("cannot watch {}: {e}", dir.display()),
                )
            })?;
        let row = sqlx::query("SELECT COALESCE(MAX(id), 0) AS id FROM change_log")
            .fetch_one(&pool)
            .await?;
        let mut last: i64 = crate::db::get(&row, "id")?;
        let bus = changes.tx.downgrade();
        let origin = changes.origin.clone();
        tokio::spawn(async move {
            let _watcher = watcher;
            let mut passes = 0u32;
            let mut retry = false;
            loop {
                if !retry {
                    if woken.recv().await.is_none() {
                        break;
                    }
                    // One commit raises several events: let them arrive, then read once.
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    while woken.try_recv().is_ok() {}
                }
                retry = false;
                let Some(bus) = bus.upgrade() else { break };
                let rows = match sqlx::query(
                    "SELECT id, origin, payload FROM change_log WHERE id > $1 ORDER BY id",
                )
                .bind(last)
                .fetch_all(&pool)
                .await
                {
                    Ok(rows) => rows,
                    Err(e) => {
                        // No later event may come: read again soon instead of waiting for one.
                        tracing::warn!(error = %e, "reading changes of other processes failed; retrying");
                        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                        retry = true;
                        continue;
                    }
                };
                for r in &rows {
                    let (Ok(id), Ok(from), Ok(payload)) = (
                        crate::db::get::<i64>(r, "id"),
                        crate::db::get::<String>(r, "origin"),
                        crate::db::get::<String>(r, "payload"),
                    ) else {
                        continue;
                    };
                    last = id;
                    if from != origin {
                        if let Some(change) = Change::decode(&payload) {
                            let _ = bus.send(change);
                        }
                    }
                }
                passes = passes.wrapping_add(1);
                if passes.is_multiple_of(256) {
                    let _ = sqlx::query("DELETE FROM change_log WHERE created_at < $1")
                        .bind(crate::unix_now() - CHANGE_LOG_KEEP_SECS)
                        .execute(&pool)
                        .await;
                }
            }
        });
        Ok(changes)
    }

    /// A bus fed by `LISTEN postern_changes`, so changes committed by any node reach every node.
    /// The listener reconnects by itself after a connection loss.
    pub(crate) async fn postgres(url: &str) -> Result<Changes> {
        let changes = Changes::in_process();
        let mut listener = sqlx::postgres::PgListener::connect(url).await?;
        listener.listen(PG_CHANNEL).await?;
        let tx = changes.tx.downgrade();
        tokio::spawn(async move {
            loop {
                let notification = match listener.recv().await {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::warn!(error = %e, "change listener lost its connection; retrying");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        continue;
                    }
                };
                let Some(tx) = tx.upgrade() else { break };
                match Change::decode(notification.payload()) {
                    Some(change) => {
                        let _ = tx.send(change);
                    }
                    None => tracing::debug!(payload = notification.payload(), "ignored change"),
                }
            }
        });
        Ok(changes)
    }

    /// SQLite: tells the watchers of other processes that a commit with changes is now visible,
    /// by writing one byte to the doorbell file (an inotify `IN_MODIFY` for them). Call after the
    /// commit returned.
    pub(crate) fn ring(&self) {
        use std::os::unix::fs::FileExt;
        if let Some(bell) = &self.doorbell {
            if let Err(e) = bell.write_at(&[0], 0) {
                tracing::debug!(error = %e, "cannot ring the change doorbell");
            }
        }
    }

    pub(crate) fn publish(&self, change: Change) {
        // No subscriber is not an error: nobody is watching.
        let _ = self.tx.send(change);
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trip() {
        let all = [
            Change::Mailbox {
                user_id: 3,
                mailbox_id: 9,
                modseq: 42,
                event: MailboxEvent::Expunged,
            },
            Change::Subscriptions { user_id: 7 },
            Change::Dns {
                view: "internal view".into(),
            },
            Change::Queue,
            Change::MailDomains,
            Change::DnssecKeys,
        ];
        for c in all {
            assert_eq!(Change::decode(&c.encode()), Some(c));
        }
        assert_eq!(Change::decode("m 1 2"), None);
        assert_eq!(Change::decode("z"), None);
    }
}
