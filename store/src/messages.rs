//! Messages in mailboxes: UID and MODSEQ allocation, listing, raw bytes, flag changes, EXPUNGE,
//! COPY/MOVE and `\Recent`. Storing new messages is in `delivery.rs`; their bytes live once in
//! `blobs` (see `blobs.rs`), shared by every mailbox entry and queue entry that references them.

use std::collections::BTreeSet;

use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};

use crate::blobs::{blob_bytes, delete_blobs_if_unreferenced, read_blob};
use crate::changes::{Change, MailboxEvent};
use crate::db::{get, values_rows, Store, ROWS_PER_STATEMENT};
use crate::error::{Result, StoreError};
use crate::mailboxes::Mailbox;
use crate::parsed::ParsedMessage;

/// IMAP system flags and keywords of one message (RFC 3501 §2.3.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    /// Bit set of the `Flags::SEEN` ... `Flags::DRAFT` system flags.
    pub system: i64,
    /// Keywords (user-defined flags), compared case-sensitively as stored.
    pub keywords: BTreeSet<String>,
}

impl Flags {
    /// `\Seen`
    pub const SEEN: i64 = 1;
    /// `\Answered`
    pub const ANSWERED: i64 = 2;
    /// `\Flagged`
    pub const FLAGGED: i64 = 4;
    /// `\Deleted`
    pub const DELETED: i64 = 8;
    /// `\Draft`
    pub const DRAFT: i64 = 16;

    /// Flags with only the given system bits set.
    pub fn system(bits: i64) -> Flags {
        Flags {
            system: bits,
            keywords: BTreeSet::new(),
        }
    }

    pub(crate) fn keywords_text(&self) -> String {
        self.keywords
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub(crate) fn from_columns(system: i64, keywords: &str) -> Flags {
        Flags {
            system,
            keywords: keywords
                .split(' ')
                .filter(|k| !k.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }

    /// These flags after STORE's `op` with `change` (RFC 3501 §6.4.6).
    pub fn apply(&self, op: FlagOp, change: &Flags) -> Flags {
        match op {
            FlagOp::Replace => change.clone(),
            FlagOp::Add => Flags {
                system: self.system | change.system,
                keywords: self.keywords.union(&change.keywords).cloned().collect(),
            },
            FlagOp::Remove => Flags {
                system: self.system & !change.system,
                keywords: self
                    .keywords
                    .difference(&change.keywords)
                    .cloned()
                    .collect(),
            },
        }
    }
}

/// How STORE combines the given flags with the message's (RFC 3501 §6.4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    /// `FLAGS`: replace.
    Replace,
    /// `+FLAGS`: add.
    Add,
    /// `-FLAGS`: remove.
    Remove,
}

/// What IMAP needs to know of a message without reading its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageMeta {
    /// UID within the mailbox.
    pub uid: i64,
    /// Size of the raw message in bytes (RFC822.SIZE).
    pub size: i64,
    /// INTERNALDATE as Unix seconds.
    pub internal_date: i64,
    /// Current flags.
    pub flags: Flags,
    /// MODSEQ of the last change to this message.
    pub modseq: i64,
}

fn meta_from_row(r: &AnyRow) -> Result<MessageMeta> {
    Ok(MessageMeta {
        uid: get(r, "uid")?,
        size: get(r, "size")?,
        internal_date: get(r, "internal_date")?,
        flags: Flags::from_columns(get(r, "flags")?, &get::<String>(r, "keywords")?),
        modseq: get(r, "modseq")?,
    })
}

/// Charges `size` bytes to the user's quota; false if that would exceed it.
pub(crate) async fn charge_quota(
    tx: &mut Transaction<'static, Any>,
    user_id: i64,
    size: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE users SET used_bytes = used_bytes + $1 \
         WHERE id = $2 AND (quota_bytes = 0 OR used_bytes + $1 <= quota_bytes)",
    )
    .bind(size)
    .bind(user_id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Allocates the next `n` UIDs and `n` new MODSEQs in one row update, so concurrent writers
/// serialise on the mailbox row and never share a UID (RFC 3501 §2.3.1.1: UIDs strictly
/// ascending). Returns the first UID and the first MODSEQ.
async fn next_uids(
    tx: &mut Transaction<'static, Any>,
    mailbox_id: i64,
    n: i64,
) -> Result<(i64, i64)> {
    let row = sqlx::query(
        "UPDATE mailboxes SET uidnext = uidnext + $2, highestmodseq = highestmodseq + $2 \
         WHERE id = $1 RETURNING uidnext - $2 AS uid, highestmodseq - $2 + 1 AS modseq",
    )
    .bind(mailbox_id)
    .bind(n)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("mailbox {mailbox_id}")))?;
    Ok((get(&row, "uid")?, get(&row, "modseq")?))
}

/// A new mailbox entry for stored bytes.
pub(crate) struct NewMessage<'a> {
    /// The blob.
    pub hash: &'a str,
    /// Its size.
    pub size: i64,
    /// Flags and keywords it starts with.
    pub flags: &'a Flags,
    /// INTERNALDATE, Unix seconds.
    pub internal_date: i64,
}

/// Inserts one mailbox entry for stored bytes and returns (uid, modseq).
pub(crate) async fn insert_message(
    tx: &mut Transaction<'static, Any>,
    mailbox_id: i64,
    hash: &str,
    size: i64,
    flags: &Flags,
    internal_date: i64,
) -> Result<(i64, i64)> {
    let new = NewMessage {
        hash,
        size,
        flags,
        internal_date,
    };
    let done = insert_messages(tx, mailbox_id, &[new]).await?;
    done.first()
        .copied()
        .ok_or_else(|| StoreError::NotFound(format!("mailbox {mailbox_id}")))
}

/// Inserts mailbox entries in the order given, with ascending UIDs and MODSEQs allocated at
/// once and one multi-row INSERT per [`ROWS_PER_STATEMENT`] entries; returns (uid, modseq) of each.
pub(crate) async fn insert_messages(
    tx: &mut Transaction<'static, Any>,
    mailbox_id: i64,
    new: &[NewMessage<'_>],
) -> Result<Vec<(i64, i64)>> {
    if new.is_empty() {
        return Ok(Vec::new());
    }
    let (uid, modseq) = next_uids(tx, mailbox_id, new.len() as i64).await?;
    let ids: Vec<(i64, i64)> = (0..new.len() as i64)
        .map(|i| (uid + i, modseq + i))
        .collect();
    for (group, ids) in new
        .chunks(ROWS_PER_STATEMENT)
        .zip(ids.chunks(ROWS_PER_STATEMENT))
    {
        let sql = format!(
            "INSERT INTO messages (mailbox_id, uid, blob_hash, size, internal_date, flags, \
             keywords, modseq) VALUES {}",
            values_rows(group.len(), 8, 1)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (m, (uid, modseq)) in group.iter().zip(ids) {
            query = query
                .bind(mailbox_id)
                .bind(*uid)
                .bind(m.hash)
                .bind(m.size)
                .bind(m.internal_date)
                .bind(m.flags.system)
                .bind(m.flags.keywords_text())
                .bind(*modseq);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(ids)
}

impl Store {
    /// The blob hash of message `uid` of `mailbox`, if it still exists.
    pub(crate) async fn blob_hash(&self, mailbox: &Mailbox, uid: i64) -> Result<Option<String>> {
        let row = sqlx::query("SELECT blob_hash FROM messages WHERE mailbox_id = $1 AND uid = $2")
            .bind(mailbox.id)
            .bind(uid)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| get::<String>(&r, "blob_hash")).transpose()
    }

    /// Every message of the mailbox in UID order.
    pub async fn list_messages(&self, mailbox: &Mailbox) -> Result<Vec<MessageMeta>> {
        let rows = sqlx::query(
            "SELECT uid, size, internal_date, flags, keywords, modseq FROM messages WHERE mailbox_id = $1 ORDER BY uid",
        )
        .bind(mailbox.id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(meta_from_row).collect()
    }

    /// The raw bytes of the message with `uid`, if it exists.
    pub async fn message_raw(&self, mailbox: &Mailbox, uid: i64) -> Result<Option<Vec<u8>>> {
        let row = sqlx::query(
            "SELECT b.hash, b.chunked, b.data FROM messages m JOIN blobs b ON b.hash = m.blob_hash \
             WHERE m.mailbox_id = $1 AND m.uid = $2",
        )
        .bind(mailbox.id)
        .bind(uid)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(r) => Ok(Some(blob_bytes(&self.pool, &r, "hash").await?)),
            None => Ok(None),
        }
    }

    /// Changes flags of the messages with the given UIDs (STORE, RFC 3501 §6.4.6). Messages whose
    /// flags really change get one new MODSEQ (RFC 7162 §3.1.3); their new state is returned.
    /// UIDs that do not exist are ignored.
    pub async fn set_flags(
        &self,
        mailbox: &Mailbox,
        uids: &[i64],
        op: FlagOp,
        flags: &Flags,
    ) -> Result<Vec<MessageMeta>> {
        let mut tx = self.locked_tx(&[mailbox.user_id]).await?;
        let mut changed = Vec::new();
        let mut modseq = None;
        for &uid in uids {
            let Some(row) = sqlx::query(
                "SELECT uid, size, internal_date, flags, keywords, modseq FROM messages WHERE mailbox_id = $1 AND uid = $2",
            )
            .bind(mailbox.id)
            .bind(uid)
            .fetch_optional(&mut *tx)
            .await?
            else {
                continue;
            };
            let mut meta = meta_from_row(&row)?;
            let new_flags = meta.flags.apply(op, flags);
            if new_flags == meta.flags {
                continue;
            }
            let m = match modseq {
                Some(m) => m,
                None => {
                    let row = sqlx::query(
                        "UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = $1 RETURNING highestmodseq",
                    )
                    .bind(mailbox.id)
                    .fetch_one(&mut *tx)
                    .await?;
                    *modseq.insert(get(&row, "highestmodseq")?)
                }
            };
            sqlx::query("UPDATE messages SET flags = $1, keywords = $2, modseq = $3 WHERE mailbox_id = $4 AND uid = $5")
                .bind(new_flags.system)
                .bind(new_flags.keywords_text())
                .bind(m)
                .bind(mailbox.id)
                .bind(uid)
                .execute(&mut *tx)
                .await?;
            meta.flags = new_flags;
            meta.modseq = m;
            changed.push(meta);
        }
        let changes = modseq
            .map(|m| Change::Mailbox {
                user_id: mailbox.user_id,
                mailbox_id: mailbox.id,
                modseq: m,
                event: MailboxEvent::Flags,
            })
            .into_iter()
            .collect();
        self.commit(tx, changes).await?;
        Ok(changed)
    }

    /// Removes the messages flagged `\Deleted` (only those among `uids` if given: UID EXPUNGE,
    /// RFC 4315 §2.1) and returns their UIDs in ascending order. Frees their quota and any bytes no
    /// longer referenced.
    pub async fn expunge(&self, mailbox: &Mailbox, uids: Option<&[i64]>) -> Result<Vec<i64>> {
        let mut tx = self.locked_tx(&[mailbox.user_id]).await?;
        let rows = sqlx::query("SELECT uid, size, blob_hash FROM messages WHERE mailbox_id = $1 AND (flags & 8) <> 0 ORDER BY uid")
            .bind(mailbox.id)
            .fetch_all(&mut *tx)
            .await?;
        let mut removed = Vec::new();
        let mut freed = 0i64;
        let mut hashes = BTreeSet::new();
        for r in &rows {
            let uid: i64 = get(r, "uid")?;
            if uids.is_some_and(|set| !set.contains(&uid)) {
                continue;
            }
            sqlx::query("DELETE FROM messages WHERE mailbox_id = $1 AND uid = $2")
                .bind(mailbox.id)
                .bind(uid)
                .execute(&mut *tx)
                .await?;
            freed += get::<i64>(r, "size")?;
            hashes.insert(get::<String>(r, "blob_hash")?);
            removed.push(uid);
        }
        if removed.is_empty() {
            tx.rollback().await?;
            return Ok(removed);
        }
        sqlx::query("UPDATE users SET used_bytes = used_bytes - $1 WHERE id = $2")
            .bind(freed)
            .bind(mailbox.user_id)
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query("UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = $1 RETURNING highestmodseq")
            .bind(mailbox.id)
            .fetch_one(&mut *tx)
            .await?;
        delete_blobs_if_unreferenced(&mut tx, self.backend, &hashes).await?;
        let change = Change::Mailbox {
            user_id: mailbox.user_id,
            mailbox_id: mailbox.id,
            modseq: get(&row, "highestmodseq")?,
            event: MailboxEvent::Expunged,
        };
        self.commit(tx, vec![change]).await?;
        Ok(removed)
    }
}

/// A message's stored parse and, when asked for, its raw bytes.
#[derive(Debug, Clone)]
pub struct MessageDetails {
    /// UID within the mailbox.
    pub uid: i64,
    /// Metadata computed when the bytes were stored.
    pub parsed: ParsedMessage,
    /// The raw message, if requested.
    pub raw: Option<Vec<u8>>,
}

/// How many messages one details query covers.
const DETAILS_CHUNK: usize = 200;

impl Store {
    /// Parsed metadata (and raw bytes if `with_raw`) of the messages with the given UIDs, in UID
    /// order; UIDs that do not exist are skipped. Blobs stored before metadata existed are parsed
    /// once here and the result kept.
    pub async fn message_details(
        &self,
        mailbox: &Mailbox,
        uids: &[i64],
        with_raw: bool,
    ) -> Result<Vec<MessageDetails>> {
        let mut sorted = uids.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let mut out = Vec::with_capacity(sorted.len());
        let sql = if with_raw {
            "SELECT m.uid, m.blob_hash, b.parsed, b.chunked, b.data FROM messages m JOIN blobs b ON b.hash = m.blob_hash \
             WHERE m.mailbox_id = $1 AND m.uid >= $2 AND m.uid <= $3 ORDER BY m.uid"
        } else {
            "SELECT m.uid, m.blob_hash, b.parsed FROM messages m JOIN blobs b ON b.hash = m.blob_hash \
             WHERE m.mailbox_id = $1 AND m.uid >= $2 AND m.uid <= $3 ORDER BY m.uid"
        };
        for chunk in sorted.chunks(DETAILS_CHUNK) {
            let (Some(&lo), Some(&hi)) = (chunk.first(), chunk.last()) else {
                continue;
            };
            let rows = sqlx::query(sql)
                .bind(mailbox.id)
                .bind(lo)
                .bind(hi)
                .fetch_all(&self.pool)
                .await?;
            for r in &rows {
                let uid: i64 = get(r, "uid")?;
                if chunk.binary_search(&uid).is_err() {
                    continue;
                }
                let raw: Option<Vec<u8>> = if with_raw {
                    Some(blob_bytes(&self.pool, r, "blob_hash").await?)
                } else {
                    None
                };
                let parsed = match get::<Option<String>>(r, "parsed")?
                    .and_then(|j| serde_json::from_str(&j).ok())
                {
                    Some(p) => p,
                    None => self.parse_and_keep(&get::<String>(r, "blob_hash")?).await?,
                };
                out.push(MessageDetails { uid, parsed, raw });
            }
        }
        Ok(out)
    }

    /// Parses a blob stored without metadata and stores the result.
    async fn parse_and_keep(&self, hash: &str) -> Result<ParsedMessage> {
        let raw = read_blob(&self.pool, hash).await?;
        let parsed = ParsedMessage::parse(&raw);
        let json = serde_json::to_string(&parsed)
            .map_err(|e| StoreError::invalid("parsed message", e.to_string()))?;
        sqlx::query("UPDATE blobs SET parsed = $1 WHERE hash = $2")
            .bind(json)
            .bind(hash)
            .execute(&self.pool)
            .await?;
        Ok(parsed)
    }

    /// Copies messages to another mailbox of the same user (IMAP COPY, RFC 3501 §6.4.7): the copies
    /// share the stored bytes, keep flags and INTERNALDATE, get new UIDs and are charged to the
    /// quota. Returns (source UID, new UID) pairs in source UID order; missing UIDs are skipped.
    pub async fn copy_messages(
        &self,
        from: &Mailbox,
        uids: &[i64],
        to: &Mailbox,
    ) -> Result<Vec<(i64, i64)>> {
        self.transfer(from, uids, to, false).await
    }

    /// Moves messages to another mailbox of the same user (IMAP MOVE, RFC 6851 §3.1): like
    /// [`Store::copy_messages`] followed by an expunge of the originals, in one transaction.
    pub async fn move_messages(
        &self,
        from: &Mailbox,
        uids: &[i64],
        to: &Mailbox,
    ) -> Result<Vec<(i64, i64)>> {
        self.transfer(from, uids, to, true).await
    }

    async fn transfer(
        &self,
        from: &Mailbox,
        uids: &[i64],
        to: &Mailbox,
        remove: bool,
    ) -> Result<Vec<(i64, i64)>> {
        if from.user_id != to.user_id {
            return Err(StoreError::NotFound(format!("mailbox {}", to.name)));
        }
        let mut sorted = uids.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let mut tx = self.locked_tx(&[from.user_id]).await?;
        let mut pairs = Vec::new();
        let mut total = 0i64;
        let mut last_dest_modseq = None;
        for &uid in &sorted {
            let Some(row) = sqlx::query(
                "SELECT blob_hash, size, internal_date, flags, keywords FROM messages WHERE mailbox_id = $1 AND uid = $2",
            )
            .bind(from.id)
            .bind(uid)
            .fetch_optional(&mut *tx)
            .await?
            else {
                continue;
            };
            let size: i64 = get(&row, "size")?;
            let flags = Flags::from_columns(get(&row, "flags")?, &get::<String>(&row, "keywords")?);
            let (new_uid, modseq) = insert_message(
                &mut tx,
                to.id,
                &get::<String>(&row, "blob_hash")?,
                size,
                &flags,
                get(&row, "internal_date")?,
            )
            .await?;
            if remove {
                sqlx::query("DELETE FROM messages WHERE mailbox_id = $1 AND uid = $2")
                    .bind(from.id)
                    .bind(uid)
                    .execute(&mut *tx)
                    .await?;
            }
            total += size;
            last_dest_modseq = Some(modseq);
            pairs.push((uid, new_uid));
        }
        let Some(dest_modseq) = last_dest_modseq else {
            tx.rollback().await?;
            return Ok(pairs);
        };
        if !remove && !charge_quota(&mut tx, to.user_id, total).await? {
            return Err(StoreError::OverQuota(format!("user {}", to.user_id)));
        }
        let mut changes = vec![Change::Mailbox {
            user_id: to.user_id,
            mailbox_id: to.id,
            modseq: dest_modseq,
            event: MailboxEvent::Appended,
        }];
        if remove {
            let row = sqlx::query(
                "UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = $1 RETURNING highestmodseq",
            )
            .bind(from.id)
            .fetch_one(&mut *tx)
            .await?;
            changes.push(Change::Mailbox {
                user_id: from.user_id,
                mailbox_id: from.id,
                modseq: get(&row, "highestmodseq")?,
                event: MailboxEvent::Expunged,
            });
        }
        self.commit(tx, changes).await?;
        Ok(pairs)
    }

    /// Claims the messages no session has seen yet for the caller (`\Recent`, RFC 3501 §2.3.2):
    /// returns the UIDs that are recent for this session and in no other (empty if none). A
    /// message appended after the claim is outside the range, left for the next claim.
    pub async fn claim_recent(&self, mailbox: &Mailbox) -> Result<std::ops::Range<i64>> {
        loop {
            let row = sqlx::query("SELECT recent_uid, uidnext FROM mailboxes WHERE id = $1")
                .bind(mailbox.id)
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("mailbox {}", mailbox.name)))?;
            let (old, next): (i64, i64) = (get(&row, "recent_uid")?, get(&row, "uidnext")?);
            if old >= next {
                return Ok(next..next);
            }
            let done = sqlx::query(
                "UPDATE mailboxes SET recent_uid = $1 WHERE id = $2 AND recent_uid = $3",
            )
            .bind(next)
            .bind(mailbox.id)
            .bind(old)
            .execute(&self.pool)
            .await?;
            if done.rows_affected() == 1 {
                return Ok(old..next);
            }
        }
    }
}
