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
    /// Managed DNS records of a view changed.
    Dns {
        /// The view's name.
        view: String,
    },
    /// The outbound queue gained entries or was edited.
    Queue,
    /// Hosted mail domains or their DKIM keys changed (the DNS re-publishes mail records).
    MailDomains,
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
            Change::Dns { view } => format!("d {view}"),
            Change::Queue => "q".to_owned(),
            Change::MailDomains => "md".to_owned(),
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
            "d" => Some(Change::Dns {
                view: s.get(2..)?.to_owned(),
            }),
            "q" => Some(Change::Queue),
            "md" => Some(Change::MailDomains),
            _ => None,
        }
    }
}

/// The in-process side of the bus; on PostgreSQL a listener task feeds it from NOTIFY.
#[derive(Clone)]
pub(crate) struct Changes {
    tx: broadcast::Sender<Change>,
}

impl Changes {
    /// A bus fed only by this process (SQLite: one process owns the file).
    pub(crate) fn in_process() -> Changes {
        Changes {
            tx: broadcast::channel(BUS_CAPACITY).0,
        }
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
            Change::Dns {
                view: "internal view".into(),
            },
            Change::Queue,
            Change::MailDomains,
        ];
        for c in all {
            assert_eq!(Change::decode(&c.encode()), Some(c));
        }
        assert_eq!(Change::decode("m 1 2"), None);
        assert_eq!(Change::decode("z"), None);
    }
}
