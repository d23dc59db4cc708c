//! Messages brought in by `postern import`: stored in batches, each batch in one transaction with
//! the source identity of every message (`imported_messages`), so an interrupted import resumes
//! without storing anything twice; and kept in step with their source: what the import last saw
//! of each message's flags there is recorded with it, so a re-run carries over only what changed
//! at the source and keeps what the user changed here since.

use std::collections::{HashMap, HashSet};

use crate::blobs::{content_hash, put_blobs, BlobSource, NewBlob};
use crate::changes::{Change, MailboxEvent};
use crate::db::{get, values_rows, Store, ROWS_PER_STATEMENT};
use crate::delivery::{parse_for_storage, parse_spooled};
use crate::error::{Result, StoreError};
use crate::mailboxes::Mailbox;
use crate::messages::{charge_quota, insert_messages, FlagOp, Flags, NewMessage};
use crate::search_index::Analysed;
use crate::search_index::BodyText;
use crate::spool::{Spool, SpoolFile};

/// The bytes of a message to import: in memory, or (a large one) in a spool file, which the
/// parser maps and the INSERT reads one chunk at a time.
pub enum ImportBytes {
    /// Held in memory.
    Memory(Vec<u8>),
    /// Written to a spool file.
    Spooled(Spool),
}

/// One message for [`Store::import_batch`].
pub struct ImportItem {
    /// Its bytes.
    pub bytes: ImportBytes,
    /// Flags and keywords at the source.
    pub flags: Flags,
    /// INTERNALDATE, Unix seconds.
    pub internal_date: i64,
    /// Its identity at the source, recorded with it.
    pub source_key: String,
}

/// What became of one message of a batch: `Ok(Some(uid))` stored under that UID, `Ok(None)`
/// imported before (nothing stored), or the error that concerns this message only
/// ([`StoreError::OverQuota`], or [`StoreError::Invalid`] if it could not be parsed).
pub type ImportOutcome = Result<Option<i64>>;

/// A parsed message of a batch, waiting for the transaction.
struct Ready {
    index: usize,
    held: Held,
    hash: String,
    analysed: Analysed,
    size: i64,
}

enum Held {
    Memory(Vec<u8>),
    File(SpoolFile),
}

impl Held {
    fn source(&self) -> BlobSource<'_> {
        match self {
            Held::Memory(raw) => BlobSource::Bytes(raw),
            Held::File(file) => BlobSource::File(file),
        }
    }
}

/// What [`Store::sync_imported_flags`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagSync {
    /// No message was imported under that key into that mailbox.
    NotImported,
    /// The source flags are as last seen: nothing to do.
    Unchanged,
    /// The change at the source was applied to the message here.
    Updated,
    /// Imported before source flags were recorded: the message is left as it is and the
    /// source flags are recorded, so later changes there are carried over.
    Recorded,
}

impl Store {
    /// Imports `items` into `mailbox` in one transaction: each message is parsed first (outside
    /// the transaction), then those whose source key is not recorded for the mailbox yet are
    /// stored with their keys and source flags, their quota charged (in order: a message over the
    /// quota is left out, later smaller ones may still fit), with one multi-row statement per
    /// table rather than one transaction per message. Either the whole batch is stored or, on a
    /// crash or database error, none of it: a re-run stores it then, and nothing twice. Returns
    /// one outcome per item, in order.
    pub async fn import_batch(
        &self,
        mailbox: &Mailbox,
        items: Vec<ImportItem>,
    ) -> Result<Vec<ImportOutcome>> {
        let mut outcomes: Vec<ImportOutcome> = Vec::with_capacity(items.len());
        let mut ready = Vec::with_capacity(items.len());
        let mut keys = Vec::with_capacity(items.len());
        let mut flags = Vec::with_capacity(items.len());
        for (index, item) in items.into_iter().enumerate() {
            outcomes.push(Ok(None));
            keys.push(item.source_key);
            flags.push((item.flags, item.internal_date));
            let (held, hash, parsed) = match item.bytes {
                ImportBytes::Memory(raw) => {
                    let parsed = parse_for_storage(&raw, BodyText::Now).await;
                    let hash = content_hash(&raw);
                    (Held::Memory(raw), hash, parsed)
                }
                ImportBytes::Spooled(spool) => {
                    let file = spool.finish().await?;
                    let parsed = parse_spooled(&file, BodyText::Now).await;
                    let hash = file.hash.clone();
                    (Held::File(file), hash, parsed)
                }
            };
            match parsed {
                Ok(analysed) => {
                    let size = match held.source() {
                        BlobSource::Bytes(raw) => raw.len() as i64,
                        BlobSource::File(file) => file.len as i64,
                    };
                    ready.push(Ready {
                        index,
                        held,
                        hash,
                        analysed,
                        size,
                    });
                }
                Err(e) => outcomes[index] = Err(e),
            }
        }
        let mut tx = self.locked_tx(&[mailbox.user_id]).await?;
        let wanted: Vec<&str> = ready.iter().map(|r| keys[r.index].as_str()).collect();
        let there = self.recorded_keys(&mut tx, mailbox, &wanted).await?;
        let mut in_batch = HashSet::new();
        ready.retain(|r| !there.contains(&keys[r.index]) && in_batch.insert(&keys[r.index]));
        let total: i64 = ready.iter().map(|r| r.size).sum();
        if !charge_quota(&mut tx, mailbox.user_id, total).await? {
            let mut fits = Vec::with_capacity(ready.len());
            for r in ready {
                if charge_quota(&mut tx, mailbox.user_id, r.size).await? {
                    fits.push(r);
                } else {
                    let who = format!("user {}", mailbox.user_id);
                    outcomes[r.index] = Err(StoreError::OverQuota(who));
                }
            }
            ready = fits;
        }
        if ready.is_empty() {
            tx.rollback().await?;
            return Ok(outcomes);
        }
        let blobs: Vec<NewBlob<'_>> = ready
            .iter()
            .map(|r| NewBlob {
                source: r.held.source(),
                hash: &r.hash,
                analysed: &r.analysed,
            })
            .collect();
        put_blobs(&mut tx, self.backend, &blobs).await?;
        drop(blobs);
        let new: Vec<NewMessage<'_>> = ready
            .iter()
            .map(|r| NewMessage {
                hash: &r.hash,
                size: r.size,
                flags: &flags[r.index].0,
                internal_date: flags[r.index].1,
            })
            .collect();
        let ids = insert_messages(&mut tx, mailbox.id, &new).await?;
        drop(new);
        for (group, ids) in ready
            .chunks(ROWS_PER_STATEMENT)
            .zip(ids.chunks(ROWS_PER_STATEMENT))
        {
            let sql = format!(
                "INSERT INTO imported_messages (mailbox_id, source_key, uid, source_flags, \
                 source_keywords) VALUES {}",
                values_rows(group.len(), 5, 1)
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (r, (uid, _)) in group.iter().zip(ids) {
                let source = &flags[r.index].0;
                query = query
                    .bind(mailbox.id)
                    .bind(keys[r.index].as_str())
                    .bind(*uid)
                    .bind(source.system)
                    .bind(source.keywords_text());
                outcomes[r.index] = Ok(Some(*uid));
            }
            query.execute(&mut *tx).await?;
        }
        let modseq = ids.last().map_or(0, |(_, modseq)| *modseq);
        let change = Change::Mailbox {
            user_id: mailbox.user_id,
            mailbox_id: mailbox.id,
            modseq,
            event: MailboxEvent::Appended,
        };
        self.commit(tx, vec![change]).await?;
        Ok(outcomes)
    }

    /// Which of `keys` are recorded as imported into `mailbox`, read in `tx`.
    async fn recorded_keys(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        mailbox: &Mailbox,
        keys: &[&str],
    ) -> Result<HashSet<String>> {
        let mut there = HashSet::new();
        for group in keys.chunks(ROWS_PER_STATEMENT) {
            let list: Vec<String> = (0..group.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!(
                "SELECT source_key FROM imported_messages WHERE mailbox_id = $1 \
                 AND source_key IN ({})",
                list.join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(mailbox.id);
            for key in group {
                query = query.bind(*key);
            }
            for row in query.fetch_all(&mut **tx).await? {
                there.insert(get::<String>(&row, "source_key")?);
            }
        }
        Ok(there)
    }

    /// Every source key recorded as imported into `mailbox`, with the source flags last seen for
    /// it (`None` if none were recorded): what a re-run compares the source with, read at once.
    pub async fn imported_keys(&self, mailbox: &Mailbox) -> Result<HashMap<String, Option<Flags>>> {
        let rows = sqlx::query(
            "SELECT source_key, source_flags, source_keywords FROM imported_messages \
             WHERE mailbox_id = $1",
        )
        .bind(mailbox.id)
        .fetch_all(&self.pool)
        .await?;
        let mut all = HashMap::with_capacity(rows.len());
        for row in rows {
            let flags = match get::<Option<i64>>(&row, "source_flags")? {
                Some(system) => Some(Flags::from_columns(
                    system,
                    &get::<Option<String>>(&row, "source_keywords")?.unwrap_or_default(),
                )),
                None => None,
            };
            all.insert(get::<String>(&row, "source_key")?, flags);
        }
        Ok(all)
    }

    /// Carries the flags of the message imported under `source_key` into `mailbox` over from the
    /// source, where they are now `now`: flags added there since the last run are added here,
    /// flags removed there are removed here, and flags the user changed here that the source did
    /// not change stay as they are. A message expunged here stays expunged.
    pub async fn sync_imported_flags(
        &self,
        mailbox: &Mailbox,
        source_key: &str,
        now: &Flags,
    ) -> Result<FlagSync> {
        let row = sqlx::query(
            "SELECT uid, source_flags, source_keywords FROM imported_messages \
             WHERE mailbox_id = $1 AND source_key = $2",
        )
        .bind(mailbox.id)
        .bind(source_key)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(FlagSync::NotImported);
        };
        let uid: Option<i64> = get(&row, "uid")?;
        let seen = match get::<Option<i64>>(&row, "source_flags")? {
            Some(system) => Some(Flags::from_columns(
                system,
                &get::<Option<String>>(&row, "source_keywords")?.unwrap_or_default(),
            )),
            None => None,
        };
        let outcome = match (uid, seen) {
            (_, Some(seen)) if &seen == now => return Ok(FlagSync::Unchanged),
            (Some(uid), Some(seen)) => {
                let added = Flags {
                    system: now.system & !seen.system,
                    keywords: now.keywords.difference(&seen.keywords).cloned().collect(),
                };
                let removed = Flags {
                    system: seen.system & !now.system,
                    keywords: seen.keywords.difference(&now.keywords).cloned().collect(),
                };
                self.set_flags(mailbox, &[uid], FlagOp::Add, &added).await?;
                self.set_flags(mailbox, &[uid], FlagOp::Remove, &removed)
                    .await?;
                FlagSync::Updated
            }
            _ => FlagSync::Recorded,
        };
        sqlx::query(
            "UPDATE imported_messages SET source_flags = $1, source_keywords = $2 \
             WHERE mailbox_id = $3 AND source_key = $4",
        )
        .bind(now.system)
        .bind(now.keywords_text())
        .bind(mailbox.id)
        .bind(source_key)
        .execute(&self.pool)
        .await?;
        Ok(outcome)
    }
}
