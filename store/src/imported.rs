//! Keeping imported messages in step with their source: what the import last saw of each
//! message's flags there is recorded with it (`imported_messages`), so a re-run carries over
//! only what changed at the source and keeps what the user changed here since.

use crate::db::{get, Store};
use crate::error::Result;
use crate::mailboxes::Mailbox;
use crate::messages::{FlagOp, Flags};

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
