//! Storing new messages: SMTP acceptance (local copies and queue entries in one transaction) and
//! IMAP APPEND, from memory or from a spool file. Each parses the message before its write
//! transaction starts and commits before it returns.

use std::collections::BTreeSet;

use sqlx::{Any, Transaction};

use crate::blobs::{blocking, content_hash, put_blob, BlobSource, BLOB_CHUNK_SIZE};
use crate::changes::{Change, MailboxEvent};
use crate::db::{get, Backend, Store};
use crate::error::{Result, StoreError};
use crate::group_commit::Pending;
use crate::mailboxes::Mailbox;
use crate::messages::{charge_quota, insert_message, Flags};
use crate::queue::DsnRequest;
use crate::search_index::{analyse, Analysed, BodyText};
use crate::spool::{Spool, SpoolFile};

/// Parses a message for storage beside its bytes (metadata and index row, see [`analyse`]; its
/// body text now or later, `text`). Done before the write transaction starts, so the database
/// lock is not held while parsing.
pub(crate) async fn parse_for_storage(raw: &[u8], text: BodyText) -> Result<Analysed> {
    parse_with(raw.len(), || analyse(raw, text)).await
}

/// Like [`parse_for_storage`] for a spool file, which is memory-mapped for the parse only.
pub(crate) async fn parse_spooled(file: &SpoolFile, text: BodyText) -> Result<Analysed> {
    let len = usize::try_from(file.len).unwrap_or(usize::MAX);
    parse_with(len, || {
        let map = file.map()?;
        analyse(map.as_deref().unwrap_or_default(), text)
    })
    .await
}

/// Runs `parse` for a message of `len` bytes.
///
/// mail-parser decodes every leaf body (base64 attachments, charset conversion) onto the heap
/// while it parses, so parsing a large message costs about its decoded size in transient memory.
/// Large messages are therefore parsed one at a time process-wide, which bounds that cost to one
/// message however many clients append at once; on a multi-threaded runtime the parse runs with
/// `block_in_place`, so the other tasks of that worker move elsewhere meanwhile.
async fn parse_with(len: usize, parse: impl FnOnce() -> Result<Analysed>) -> Result<Analysed> {
    static LARGE_PARSES: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);
    if len <= BLOB_CHUNK_SIZE {
        return parse();
    }
    let _one_at_a_time = LARGE_PARSES
        .acquire()
        .await
        .map_err(|_| StoreError::invalid("parsed message", "parser closed"))?;
    blocking(parse)
}

/// The result of delivering to one local user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Stored: in which mailbox, under which UID.
    Delivered {
        /// The user.
        user_id: i64,
        /// The mailbox it went to.
        mailbox_id: i64,
        /// Its UID there.
        uid: i64,
    },
    /// Not stored: the user's quota is full.
    OverQuota {
        /// The user.
        user_id: i64,
    },
}

/// One local user's copy of an incoming message: the folder it goes to and its flags, as
/// decided per user at delivery (a Sieve `fileinto` and imap4flags, RFC 5228 §4.1 and RFC 5232;
/// the junk verdict). A user may get several copies (Sieve `fileinto :copy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalCopy {
    /// The user.
    pub user_id: i64,
    /// Folder for the copy; INBOX for a user who has no folder of that name.
    pub folder: String,
    /// Flags and keywords the copy starts with.
    pub flags: Flags,
}

impl LocalCopy {
    /// A copy for `user_id` into `folder`, without flags.
    pub fn new(user_id: i64, folder: &str) -> LocalCopy {
        LocalCopy {
            user_id,
            folder: folder.to_owned(),
            flags: Flags::default(),
        }
    }

    /// A copy for each of `users` into `folder`, without flags.
    pub fn all(users: &[i64], folder: &str) -> Vec<LocalCopy> {
        users.iter().map(|&u| LocalCopy::new(u, folder)).collect()
    }
}

/// A message accepted for delivery: what the SMTP server hands over before it answers 250.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    /// The raw message (RFC 5322), including the trace headers the receiver added: in memory or
    /// in a spool file.
    pub raw: BlobSource<'a>,
    /// INTERNALDATE for the local copies, Unix seconds.
    pub internal_date: i64,
    /// Local copies to store, one or more per local user.
    pub local: &'a [LocalCopy],
    /// Envelope sender (MAIL FROM, empty for bounces), kept for the queue entries.
    pub sender: &'a str,
    /// Remote recipients to queue for outbound delivery.
    pub remote: &'a [String],
    /// The delivery status notification parameters of `remote[i]` at index `i` (RFC 3461);
    /// recipients past its end have none.
    pub remote_dsn: &'a [DsnRequest],
    /// When queued copies expire and bounce, Unix seconds.
    pub expires_at: i64,
}

/// One message of [`Store::append_all`].
#[derive(Debug, Clone, Copy)]
pub struct NewMessage<'a> {
    /// The raw message (RFC 5322).
    pub raw: &'a [u8],
    /// Flags and keywords it starts with.
    pub flags: &'a Flags,
    /// INTERNALDATE, Unix seconds.
    pub internal_date: i64,
}

/// What a new mailbox entry gets besides its bytes.
struct NewEntry<'a> {
    flags: &'a Flags,
    internal_date: i64,
}

/// A local copy of a message whose blob is stored, to store ([`Store::store_copies`]).
struct NewCopy<'a> {
    copy: &'a LocalCopy,
    hash: &'a str,
    size: i64,
    internal_date: i64,
}

/// A [`NewCopy`] as migration 0035's `postern_store_copies` reads it.
#[derive(serde::Serialize)]
struct CopyRow<'a> {
    user_id: i64,
    size: i64,
    folder: &'a str,
    hash: &'a str,
    internal_date: i64,
    flags: i64,
    keywords: String,
}

impl<'a> CopyRow<'a> {
    fn of(c: &NewCopy<'a>) -> CopyRow<'a> {
        CopyRow {
            user_id: c.copy.user_id,
            size: c.size,
            folder: &c.copy.folder,
            hash: c.hash,
            internal_date: c.internal_date,
            flags: c.copy.flags.system,
            keywords: c.copy.flags.keywords_text(),
        }
    }
}

/// What [`Store::accept`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// One outcome per local copy, in the order given.
    pub local: Vec<DeliveryOutcome>,
    /// Ids of the queue entries created, one per remote recipient.
    pub queued: Vec<i64>,
}

impl Accepted {
    /// The local users who got no copy because their quota is full.
    pub fn over_quota(&self) -> BTreeSet<i64> {
        self.local
            .iter()
            .filter_map(|o| match o {
                DeliveryOutcome::OverQuota { user_id } => Some(*user_id),
                DeliveryOutcome::Delivered { .. } => None,
            })
            .collect()
    }
}

impl Store {
    /// Stores a message for local users and queues it for remote recipients in one transaction,
    /// committed before this returns, so the caller may answer 250 afterwards and the message
    /// survives a crash. Users over quota are reported, not delivered to, and do not stop delivery
    /// to the others. A message in memory is written together with the other messages accepted
    /// at the same moment, in one transaction ([`crate::group_commit`]); a message in a spool file
    /// is read from it in chunks (and through a memory map for the parse only), so it is never
    /// copied whole onto the heap, and written in a transaction of its own. The full-text index
    /// of a grouped message's body is written after the commit ([`crate::deferred_text`]); a
    /// large one's is written with it, from the parse of its memory map (the background indexer
    /// would read it whole from the database).
    pub async fn accept(&self, m: Incoming<'_>) -> Result<Accepted> {
        match m.raw {
            BlobSource::Bytes(raw) if raw.len() <= BLOB_CHUNK_SIZE => {
                let parsed = parse_for_storage(raw, BodyText::Deferred).await?;
                let pending = Pending::new(&m, raw, content_hash(raw), parsed);
                let accepted = self.accept_grouped(pending).await?;
                self.index_texts_soon();
                Ok(accepted)
            }
            BlobSource::Bytes(raw) => {
                let parsed = parse_for_storage(raw, BodyText::Now).await?;
                self.accept_parsed(&m, &content_hash(raw), &parsed).await
            }
            BlobSource::File(file) => {
                let parsed = parse_spooled(file, BodyText::Now).await?;
                self.accept_parsed(&m, &file.hash, &parsed).await
            }
        }
    }

    /// [`Store::accept`] of a parsed message in a transaction of its own.
    pub(crate) async fn accept_parsed(
        &self,
        m: &Incoming<'_>,
        hash: &str,
        parsed: &Analysed,
    ) -> Result<Accepted> {
        let users: Vec<i64> = m.local.iter().map(|copy| copy.user_id).collect();
        let mut tx = self.locked_tx(&users).await?;
        put_blob(&mut tx, self.backend, m.raw, hash, parsed).await?;
        let mut changes = Vec::new();
        let accepted = self
            .store_entries(&mut tx, &[(*m, hash)], &mut changes)
            .await?
            .pop()
            .ok_or_else(|| StoreError::invalid("accepted message", "no outcome"))?;
        if changes.is_empty() {
            tx.rollback().await?;
        } else {
            self.commit(tx, changes).await?;
        }
        Ok(accepted)
    }

    /// The local copies and queue entries of `messages` (each with the hash of its stored blob),
    /// written in `tx` (whose caller locked the users); the changes to publish at commit are
    /// added to `changes`. The copies of all of them are stored in arrival order first
    /// ([`Store::store_copies`]: one statement on PostgreSQL), then the queue entries.
    pub(crate) async fn store_entries(
        &self,
        tx: &mut Transaction<'static, Any>,
        messages: &[(Incoming<'_>, &str)],
        changes: &mut Vec<Change>,
    ) -> Result<Vec<Accepted>> {
        let copies: Vec<NewCopy<'_>> = messages
            .iter()
            .flat_map(|(m, hash)| {
                m.local.iter().map(move |copy| NewCopy {
                    copy,
                    hash,
                    size: m.raw.len() as i64,
                    internal_date: m.internal_date,
                })
            })
            .collect();
        let mut stored = self.store_copies(tx, &copies).await?.into_iter();
        let now = crate::unix_now();
        let mut all = Vec::with_capacity(messages.len());
        for (m, hash) in messages {
            let mut accepted = Accepted {
                local: Vec::with_capacity(m.local.len()),
                queued: Vec::with_capacity(m.remote.len()),
            };
            for copy in m.local {
                let user_id = copy.user_id;
                let Some((mailbox_id, uid, modseq)) = stored.next().flatten() else {
                    accepted.local.push(DeliveryOutcome::OverQuota { user_id });
                    continue;
                };
                changes.push(Change::Mailbox {
                    user_id,
                    mailbox_id,
                    modseq,
                    event: MailboxEvent::Appended,
                });
                accepted.local.push(DeliveryOutcome::Delivered {
                    user_id,
                    mailbox_id,
                    uid,
                });
            }
            let no_dsn = DsnRequest::default();
            for (i, recipient) in m.remote.iter().enumerate() {
                let dsn = m.remote_dsn.get(i).unwrap_or(&no_dsn);
                let row = sqlx::query(
                    "INSERT INTO queue (blob_hash, sender, recipient, next_attempt, expires_at, \
                     created_at, dsn_notify, dsn_orcpt, dsn_ret, dsn_envid) \
                     VALUES ($1, $2, $3, $4, $5, $4, $6, $7, $8, $9) RETURNING id",
                )
                .bind(*hash)
                .bind(m.sender)
                .bind(recipient)
                .bind(now)
                .bind(m.expires_at)
                .bind(dsn.notify.as_deref())
                .bind(dsn.orcpt.as_deref())
                .bind(dsn.ret.as_deref())
                .bind(dsn.envid.as_deref())
                .fetch_one(&mut **tx)
                .await?;
                accepted.queued.push(get(&row, "id")?);
            }
            if !accepted.queued.is_empty() && !changes.contains(&Change::Queue) {
                changes.push(Change::Queue);
            }
            all.push(accepted);
        }
        Ok(all)
    }

    /// Stores `copies` of stored blobs in `tx`, in order, each as if alone: charges the user's
    /// quota, picks the copy's folder (INBOX if the user has none of that name) and inserts the
    /// message under the next UID. Returns the mailbox, UID and MODSEQ of each copy, `None` for
    /// one whose user's quota is full. On PostgreSQL all copies are one statement (migration
    /// 0035's function: one round trip for a whole group commit).
    async fn store_copies(
        &self,
        tx: &mut Transaction<'static, Any>,
        copies: &[NewCopy<'_>],
    ) -> Result<Vec<Option<(i64, i64, i64)>>> {
        let no_inbox = |user_id| StoreError::NotFound(format!("INBOX of user {user_id}"));
        if self.backend == Backend::Postgres {
            if copies.is_empty() {
                return Ok(Vec::new());
            }
            let rows: Vec<CopyRow<'_>> = copies.iter().map(CopyRow::of).collect();
            let json = serde_json::to_string(&rows)
                .map_err(|e| StoreError::invalid("local copies", e.to_string()))?;
            let rows = sqlx::query(
                "SELECT copy_charged, copy_mailbox, copy_uid, copy_modseq \
                 FROM postern_store_copies($1::jsonb)",
            )
            .bind(json)
            .fetch_all(&mut **tx)
            .await?;
            if rows.len() != copies.len() {
                return Err(StoreError::invalid(
                    "local copies",
                    format!("{} of {} stored", rows.len(), copies.len()),
                ));
            }
            let mut stored = Vec::with_capacity(copies.len());
            for (row, c) in rows.iter().zip(copies) {
                if get::<i64>(row, "copy_charged")? == 0 {
                    stored.push(None);
                    continue;
                }
                let Some(uid) = get::<Option<i64>>(row, "copy_uid")? else {
                    return Err(no_inbox(c.copy.user_id));
                };
                stored.push(Some((
                    get(row, "copy_mailbox")?,
                    uid,
                    get(row, "copy_modseq")?,
                )));
            }
            return Ok(stored);
        }
        let mut stored = Vec::with_capacity(copies.len());
        for c in copies {
            let user_id = c.copy.user_id;
            if !charge_quota(tx, user_id, c.size).await? {
                stored.push(None);
                continue;
            }
            let row = sqlx::query(
                "SELECT id FROM mailboxes WHERE user_id = $1 AND name IN ($2, 'INBOX') \
                 ORDER BY CASE WHEN name = $2 THEN 0 ELSE 1 END LIMIT 1",
            )
            .bind(user_id)
            .bind(&c.copy.folder)
            .fetch_optional(&mut **tx)
            .await?
            .ok_or_else(|| no_inbox(user_id))?;
            let mailbox_id: i64 = get(&row, "id")?;
            let (uid, modseq) = insert_message(
                tx,
                mailbox_id,
                c.hash,
                c.size,
                &c.copy.flags,
                c.internal_date,
            )
            .await?;
            stored.push(Some((mailbox_id, uid, modseq)));
        }
        Ok(stored)
    }

    /// Appends a message to a mailbox (IMAP APPEND, RFC 3501 §6.3.11) and returns its UID.
    /// Fails with [`StoreError::OverQuota`] if the owner's quota would be exceeded (RFC 9208 §4.2.1).
    pub async fn append(
        &self,
        mailbox: &Mailbox,
        raw: &[u8],
        flags: &Flags,
        internal_date: i64,
    ) -> Result<i64> {
        let parsed = parse_for_storage(raw, BodyText::Now).await?;
        let hash = content_hash(raw);
        let source = BlobSource::Bytes(raw);
        let entry = NewEntry {
            flags,
            internal_date,
        };
        self.append_parsed(mailbox, source, &hash, &parsed, entry)
            .await
    }

    /// Appends several messages to a mailbox in one transaction (IMAP MULTIAPPEND, RFC 3502
    /// §6.3.11): either all are stored, under consecutive UIDs returned in order, or none is.
    /// The owner's quota is charged once for their total size, so a set that does not fit as a
    /// whole fails with [`StoreError::OverQuota`] (RFC 9208 §4.2.1).
    pub async fn append_all(
        &self,
        mailbox: &Mailbox,
        messages: &[NewMessage<'_>],
    ) -> Result<Vec<i64>> {
        let mut analysed = Vec::with_capacity(messages.len());
        for m in messages {
            analysed.push((
                parse_for_storage(m.raw, BodyText::Now).await?,
                content_hash(m.raw),
            ));
        }
        let total: i64 = messages.iter().map(|m| m.raw.len() as i64).sum();
        let mut tx = self.locked_tx(&[mailbox.user_id]).await?;
        if !charge_quota(&mut tx, mailbox.user_id, total).await? {
            return Err(StoreError::OverQuota(format!("user {}", mailbox.user_id)));
        }
        let mut uids = Vec::with_capacity(messages.len());
        let mut last_modseq = 0;
        for (m, (parsed, hash)) in messages.iter().zip(&analysed) {
            put_blob(
                &mut tx,
                self.backend,
                BlobSource::Bytes(m.raw),
                hash,
                parsed,
            )
            .await?;
            let size = m.raw.len() as i64;
            let (uid, modseq) =
                insert_message(&mut tx, mailbox.id, hash, size, m.flags, m.internal_date).await?;
            uids.push(uid);
            last_modseq = modseq;
        }
        if uids.is_empty() {
            tx.rollback().await?;
            return Ok(uids);
        }
        let change = Change::Mailbox {
            user_id: mailbox.user_id,
            mailbox_id: mailbox.id,
            modseq: last_modseq,
            event: MailboxEvent::Appended,
        };
        self.commit(tx, vec![change]).await?;
        Ok(uids)
    }

    /// Like [`Store::append`] for a message that was written to a [`Spool`] file as it arrived
    /// (a large APPEND literal). Its hash was computed while it was written; the parser reads it
    /// through a memory map and the chunked INSERT one chunk at a time, so the message is never
    /// copied whole onto the heap, and the write transaction starts only once the whole message
    /// is on disk. The spool file is gone when this returns.
    pub async fn append_spooled(
        &self,
        mailbox: &Mailbox,
        spool: Spool,
        flags: &Flags,
        internal_date: i64,
    ) -> Result<i64> {
        let entry = NewEntry {
            flags,
            internal_date,
        };
        self.append_spool_file(mailbox, spool, entry).await
    }

    async fn append_spool_file(
        &self,
        mailbox: &Mailbox,
        spool: Spool,
        entry: NewEntry<'_>,
    ) -> Result<i64> {
        let file = spool.finish().await?;
        let parsed = parse_spooled(&file, BodyText::Now).await?;
        let source = BlobSource::File(&file);
        self.append_parsed(mailbox, source, &file.hash, &parsed, entry)
            .await
    }

    async fn append_parsed(
        &self,
        mailbox: &Mailbox,
        source: BlobSource<'_>,
        hash: &str,
        parsed: &Analysed,
        entry: NewEntry<'_>,
    ) -> Result<i64> {
        let size = match source {
            BlobSource::Bytes(raw) => raw.len() as i64,
            BlobSource::File(file) => file.len as i64,
        };
        let mut tx = self.locked_tx(&[mailbox.user_id]).await?;
        if !charge_quota(&mut tx, mailbox.user_id, size).await? {
            return Err(StoreError::OverQuota(format!("user {}", mailbox.user_id)));
        }
        put_blob(&mut tx, self.backend, source, hash, parsed).await?;
        let (uid, modseq) = insert_message(
            &mut tx,
            mailbox.id,
            hash,
            size,
            entry.flags,
            entry.internal_date,
        )
        .await?;
        let change = Change::Mailbox {
            user_id: mailbox.user_id,
            mailbox_id: mailbox.id,
            modseq,
            event: MailboxEvent::Appended,
        };
        self.commit(tx, vec![change]).await?;
        Ok(uid)
    }
}
