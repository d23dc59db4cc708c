//! Per-user mailboxes (IMAP folders) with the counters IMAP needs: UIDVALIDITY, UIDNEXT and
//! HIGHESTMODSEQ (RFC 3501 §2.3.1.1, RFC 7162 §3.1.1).

use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};

use crate::changes::{Change, MailboxEvent};
use crate::db::{get, Store};
use crate::error::{unique_as_exists, Result, StoreError};

/// Mailboxes every new user gets: INBOX and the RFC 6154 special-use folders clients look for.
pub const DEFAULT_MAILBOXES: [(&str, Option<&str>); 6] = [
    ("INBOX", None),
    ("Sent", Some("\\Sent")),
    ("Drafts", Some("\\Drafts")),
    ("Trash", Some("\\Trash")),
    ("Junk", Some("\\Junk")),
    ("Archive", Some("\\Archive")),
];

/// A user's mailbox. Obtained only through a user-scoped lookup, so holding one proves ownership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// Row id.
    pub id: i64,
    /// Owner.
    pub user_id: i64,
    /// Full name with `/` as hierarchy separator; `INBOX` is always spelled so.
    pub name: String,
    /// RFC 6154 special-use attribute such as `\Sent`.
    pub special_use: Option<String>,
    /// Whether the mailbox is subscribed (LSUB, LIST (SUBSCRIBED)).
    pub subscribed: bool,
    /// UIDVALIDITY: fixed for the mailbox's life, different for a re-created mailbox of the same name.
    pub uidvalidity: i64,
    /// The UID the next message will get.
    pub uidnext: i64,
    /// Highest MODSEQ of any change in the mailbox.
    pub highestmodseq: i64,
}

fn mailbox_from_row(r: &AnyRow) -> Result<Mailbox> {
    Ok(Mailbox {
        id: get(r, "id")?,
        user_id: get(r, "user_id")?,
        name: get(r, "name")?,
        special_use: get(r, "special_use")?,
        subscribed: get::<i64>(r, "subscribed")? != 0,
        uidvalidity: get(r, "uidvalidity")?,
        uidnext: get(r, "uidnext")?,
        highestmodseq: get(r, "highestmodseq")?,
    })
}

/// Most hierarchy levels a mailbox name may have (`a/b/c` has 3), like Dovecot's
/// `mailbox_list_depth`-style limits: deeper names only serve to make CREATE and LIST expensive.
pub const MAX_MAILBOX_DEPTH: usize = 32;

/// Longest mailbox name, in bytes of UTF-8.
pub const MAX_MAILBOX_NAME_BYTES: usize = 1000;

/// Canonical form of a mailbox name: `INBOX` is case-insensitive (RFC 3501 §5.1), other names are
/// kept as given; empty names, empty levels, control characters, names over
/// [`MAX_MAILBOX_NAME_BYTES`] and names deeper than [`MAX_MAILBOX_DEPTH`] are refused.
fn canonical_name(name: &str) -> Result<String> {
    if name.eq_ignore_ascii_case("INBOX") {
        return Ok("INBOX".to_owned());
    }
    let bad = name.is_empty()
        || name.len() > MAX_MAILBOX_NAME_BYTES
        || name.split('/').count() > MAX_MAILBOX_DEPTH
        || name.split('/').any(str::is_empty)
        || name.chars().any(char::is_control);
    if bad {
        return Err(StoreError::invalid("mailbox name", format!("{name:?}")));
    }
    Ok(name.to_owned())
}

/// Inserts a mailbox with a fresh random UIDVALIDITY.
pub(crate) async fn insert_mailbox(
    tx: &mut Transaction<'static, Any>,
    user_id: i64,
    name: &str,
    special_use: Option<&str>,
) -> Result<i64> {
    let uidvalidity = i64::from(rand::random_range(1..=u32::MAX));
    let row = sqlx::query(
        "INSERT INTO mailboxes (user_id, name, special_use, uidvalidity) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(user_id)
    .bind(name)
    .bind(special_use)
    .bind(uidvalidity)
    .fetch_one(&mut **tx)
    .await
    .map_err(unique_as_exists(format!("mailbox {name}")))?;
    // A re-created mailbox is subscribed exactly if its name still is (RFC 3501 §6.3.6).
    crate::subscriptions::sync_mirror(tx, user_id, name).await?;
    get(&row, "id")
}

/// The change a new mailbox publishes (IMAP NOTIFY MailboxName, RFC 5465 §5.4).
fn created(user_id: i64, mailbox_id: i64) -> Change {
    Change::Mailbox {
        user_id,
        mailbox_id,
        modseq: 0,
        event: MailboxEvent::Renamed,
    }
}

impl Store {
    /// The user's mailboxes, by name.
    pub async fn list_mailboxes(&self, user_id: i64) -> Result<Vec<Mailbox>> {
        let rows = sqlx::query("SELECT * FROM mailboxes WHERE user_id = $1 ORDER BY name")
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(mailbox_from_row).collect()
    }

    /// The user's mailbox called `name` (`INBOX` in any case), if it exists.
    pub async fn mailbox(&self, user_id: i64, name: &str) -> Result<Option<Mailbox>> {
        let Ok(name) = canonical_name(name) else {
            return Ok(None);
        };
        let row = sqlx::query("SELECT * FROM mailboxes WHERE user_id = $1 AND name = $2")
            .bind(user_id)
            .bind(&name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(mailbox_from_row).transpose()
    }

    /// Creates a mailbox for the user.
    pub async fn create_mailbox(
        &self,
        user_id: i64,
        name: &str,
        special_use: Option<&str>,
    ) -> Result<Mailbox> {
        let name = canonical_name(name)?;
        let mut tx = self.write_tx().await?;
        let id = insert_mailbox(&mut tx, user_id, &name, special_use).await?;
        let row = sqlx::query("SELECT * FROM mailboxes WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let mailbox = mailbox_from_row(&row)?;
        self.commit(tx, vec![created(user_id, id)]).await?;
        Ok(mailbox)
    }

    /// Creates the mailbox `name` and every missing parent level in one transaction (IMAP CREATE,
    /// RFC 3501 §6.3.3: "the server SHOULD create any superior hierarchical names that are needed").
    /// Either all of them exist afterwards or, on any error, none of the new ones does. Fails with
    /// [`StoreError::Exists`] if `name` itself exists and [`StoreError::Invalid`] for a name
    /// [`canonical_name`] refuses (too long, too deep).
    pub async fn create_mailbox_path(&self, user_id: i64, name: &str) -> Result<Mailbox> {
        let name = canonical_name(name)?;
        let mut tx = self.write_tx().await?;
        let mut changes = Vec::new();
        let mut parent = String::new();
        let levels: Vec<&str> = name.split('/').collect();
        let parents = levels.split_last().map_or(&[][..], |(_, parents)| parents);
        for level in parents {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(level);
            let parent = canonical_name(&parent)?;
            let exists = sqlx::query("SELECT id FROM mailboxes WHERE user_id = $1 AND name = $2")
                .bind(user_id)
                .bind(&parent)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            if !exists {
                let id = insert_mailbox(&mut tx, user_id, &parent, None).await?;
                changes.push(created(user_id, id));
            }
        }
        let id = insert_mailbox(&mut tx, user_id, &name, None).await?;
        changes.push(created(user_id, id));
        let row = sqlx::query("SELECT * FROM mailboxes WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let mailbox = mailbox_from_row(&row)?;
        self.commit(tx, changes).await?;
        Ok(mailbox)
    }

    /// The user's mailbox with row id `id`, if it still exists (a session re-reads its selected
    /// mailbox's counters by id so a concurrent RENAME does not lose it).
    pub async fn mailbox_by_id(&self, user_id: i64, id: i64) -> Result<Option<Mailbox>> {
        let row = sqlx::query("SELECT * FROM mailboxes WHERE user_id = $1 AND id = $2")
            .bind(user_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(mailbox_from_row).transpose()
    }

    /// Deletes a mailbox with its messages (IMAP DELETE, RFC 3501 §6.3.4), freeing their quota and
    /// any bytes no longer referenced. INBOX cannot be deleted; inferior mailboxes are kept, and so
    /// is a subscription of the name (RFC 3501 §6.3.6).
    pub async fn delete_mailbox(&self, mailbox: &Mailbox) -> Result<()> {
        if mailbox.name == "INBOX" {
            return Err(StoreError::invalid("mailbox", "INBOX cannot be deleted"));
        }
        let mut tx = self.locked_tx(&[mailbox.user_id]).await?;
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) AS freed FROM messages WHERE mailbox_id = $1",
        )
        .bind(mailbox.id)
        .fetch_one(&mut *tx)
        .await?;
        let freed: i64 = get(&row, "freed")?;
        let hashes: std::collections::BTreeSet<String> =
            sqlx::query("SELECT DISTINCT blob_hash FROM messages WHERE mailbox_id = $1")
                .bind(mailbox.id)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| get(r, "blob_hash"))
                .collect::<Result<_>>()?;
        sqlx::query("DELETE FROM messages WHERE mailbox_id = $1")
            .bind(mailbox.id)
            .execute(&mut *tx)
            .await?;
        let gone = sqlx::query("DELETE FROM mailboxes WHERE id = $1 AND user_id = $2")
            .bind(mailbox.id)
            .bind(mailbox.user_id)
            .execute(&mut *tx)
            .await?;
        if gone.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("mailbox {}", mailbox.name)));
        }
        sqlx::query("UPDATE users SET used_bytes = used_bytes - $1 WHERE id = $2")
            .bind(freed)
            .bind(mailbox.user_id)
            .execute(&mut *tx)
            .await?;
        crate::blobs::delete_blobs_if_unreferenced(&mut tx, self.backend, &hashes).await?;
        let change = Change::Mailbox {
            user_id: mailbox.user_id,
            mailbox_id: mailbox.id,
            modseq: mailbox.highestmodseq,
            event: MailboxEvent::Renamed,
        };
        self.commit(tx, vec![change]).await
    }

    /// Renames a mailbox and its inferiors (IMAP RENAME, RFC 3501 §6.3.5). Renaming INBOX moves all
    /// its messages to a new mailbox of the new name and leaves INBOX empty.
    pub async fn rename_mailbox(&self, user_id: i64, from: &str, to: &str) -> Result<Mailbox> {
        let from = canonical_name(from)?;
        let to = canonical_name(to)?;
        if to == "INBOX" || to.starts_with(&format!("{from}/")) {
            return Err(StoreError::invalid("mailbox name", format!("{to:?}")));
        }
        let source = self
            .mailbox(user_id, &from)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("mailbox {from}")))?;
        if from == "INBOX" {
            let target = self.create_mailbox(user_id, &to, None).await?;
            let uids: Vec<i64> = self
                .list_messages(&source)
                .await?
                .iter()
                .map(|m| m.uid)
                .collect();
            self.move_messages(&source, &uids, &target).await?;
            return Ok(target);
        }
        let mut tx = self.locked_tx(&[user_id]).await?;
        let rows = sqlx::query("SELECT id, name FROM mailboxes WHERE user_id = $1")
            .bind(user_id)
            .fetch_all(&mut *tx)
            .await?;
        let prefix = format!("{from}/");
        let mut changes = Vec::new();
        for r in &rows {
            let name: String = get(r, "name")?;
            let new_name = if name == from {
                to.clone()
            } else if let Some(rest) = name.strip_prefix(&prefix) {
                format!("{to}/{rest}")
            } else {
                continue;
            };
            // Renaming may push inferiors past the depth or length limit: refuse it all.
            let new_name = canonical_name(&new_name)?;
            let id: i64 = get(r, "id")?;
            sqlx::query("UPDATE mailboxes SET name = $1 WHERE id = $2")
                .bind(&new_name)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(unique_as_exists(format!("mailbox {new_name}")))?;
            // The subscription moves with the mailbox, as the mailbox's attribute it was before.
            if crate::subscriptions::delete_subscription(&mut tx, user_id, &name).await? {
                crate::subscriptions::insert_subscription(&mut tx, user_id, &new_name).await?;
            }
            crate::subscriptions::sync_mirror(&mut tx, user_id, &new_name).await?;
            changes.push(Change::Mailbox {
                user_id,
                mailbox_id: id,
                modseq: 0,
                event: MailboxEvent::Renamed,
            });
        }
        let row = sqlx::query("SELECT * FROM mailboxes WHERE id = $1")
            .bind(source.id)
            .fetch_one(&mut *tx)
            .await?;
        let renamed = mailbox_from_row(&row)?;
        self.commit(tx, changes).await?;
        Ok(renamed)
    }

    /// The lowest UID no session has claimed as `\Recent` yet, without claiming anything: what a
    /// read-only selection (EXAMINE, RFC 3501 §6.3.2) reports as recent, like STATUS.
    pub async fn first_recent_uid(&self, mailbox: &Mailbox) -> Result<i64> {
        let row = sqlx::query("SELECT recent_uid FROM mailboxes WHERE id = $1 AND user_id = $2")
            .bind(mailbox.id)
            .bind(mailbox.user_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("mailbox {}", mailbox.name)))?;
        get(&row, "recent_uid")
    }

    /// How many messages of the mailbox no session has claimed as `\Recent` yet (STATUS RECENT).
    pub async fn recent_count(&self, mailbox: &Mailbox) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id \
             WHERE b.id = $1 AND m.uid >= b.recent_uid",
        )
        .bind(mailbox.id)
        .fetch_one(&self.pool)
        .await?;
        get(&row, "n")
    }

    /// Subscribes to or unsubscribes from a mailbox's name (IMAP SUBSCRIBE/UNSUBSCRIBE, RFC 3501
    /// §6.3.6); see [`Store::set_subscription`] for names without a mailbox.
    pub async fn set_subscribed(&self, mailbox: &Mailbox, subscribed: bool) -> Result<()> {
        self.set_subscription(mailbox.user_id, &mailbox.name, subscribed)
            .await
            .map(|_| ())
    }
}
