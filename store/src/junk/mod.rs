//! The learning junk filter's statistics: per user, how many trained spam and ham messages held
//! each token, trained from the user's own actions (IMAP moves and `$Junk`/`$NotJunk`) and read
//! at delivery to score new mail. Tokenising ([`Tokens`]) and scoring ([`bayes`]) are pure; this
//! module stores the counts with batched upserts and keeps them bounded by pruning.

pub mod bayes;
mod tokens;

use std::collections::HashMap;

use sqlx::{Any, Transaction};

use crate::blobs::read_blob;
use crate::db::get;
use crate::error::Result;
use crate::{Mailbox, Store};

pub use bayes::TokenCounts;
pub use tokens::{Tokens, MAX_TOKENS};

/// Tokens per batched statement.
const BATCH: usize = 200;

/// Trainings between two prunings of a user's tokens.
const PRUNE_EVERY: i64 = 50;

/// Tokens seen in one message only and not for this long are dropped when pruning.
const RARE_TOKEN_SECS: i64 = 30 * 24 * 3600;

/// Most tokens kept per user; pruning drops the rarest, oldest ones beyond it.
pub const MAX_USER_TOKENS: i64 = 200_000;

/// A user's judgement of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JunkClass {
    /// Unwanted mail.
    Spam,
    /// Wanted mail.
    Ham,
}

/// How many messages a user's statistics were trained with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JunkTraining {
    /// Messages trained as spam.
    pub spam: i64,
    /// Messages trained as ham.
    pub ham: i64,
}

impl JunkTraining {
    /// Whether statistics trained this much are used: at least `min` of each class, and at least
    /// one.
    pub fn suffices(&self, min: JunkTraining) -> bool {
        self.spam >= min.spam.max(1) && self.ham >= min.ham.max(1)
    }
}

impl Store {
    /// Trains `mailbox`'s owner's statistics with the messages `uids` of `mailbox` as `class`.
    /// A message already trained as `class` is skipped; one trained as the other class is
    /// untrained first. Returns how many messages changed the statistics.
    pub async fn train_junk(
        &self,
        mailbox: &Mailbox,
        uids: &[i64],
        class: JunkClass,
    ) -> Result<usize> {
        let mut hashes = Vec::new();
        for &uid in uids {
            hashes.extend(self.blob_hash(mailbox, uid).await?);
        }
        let mut trained = 0;
        for hash in hashes {
            let tokens = Tokens::of(&read_blob(&self.pool, &hash).await?);
            if self
                .train_tokens(mailbox.user_id, &hash, &tokens, class)
                .await?
            {
                trained += 1;
            }
        }
        Ok(trained)
    }

    /// Trains `user_id`'s statistics with a message's `tokens`, remembering it under `key` (its
    /// blob hash); `false` when it was already trained as `class`.
    pub async fn train_tokens(
        &self,
        user_id: i64,
        key: &str,
        tokens: &Tokens,
        class: JunkClass,
    ) -> Result<bool> {
        let spam = i64::from(class == JunkClass::Spam);
        let mut tx = self.locked_tx(&[user_id]).await?;
        let before =
            sqlx::query("SELECT spam FROM junk_trained WHERE user_id = $1 AND blob_hash = $2")
                .bind(user_id)
                .bind(key)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| get::<i64>(&r, "spam"))
                .transpose()?;
        if before == Some(spam) {
            return Ok(false);
        }
        let retrain = i64::from(before.is_some());
        let delta = JunkDelta {
            spam: if spam == 1 { 1 } else { -retrain },
            ham: if spam == 1 { -retrain } else { 1 },
        };
        let now = crate::unix_now();
        for batch in tokens.as_slice().chunks(BATCH) {
            add_tokens(&mut tx, user_id, batch, delta, now).await?;
        }
        let totals = sqlx::query(
            "INSERT INTO junk_totals (user_id, spam, ham) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id) DO UPDATE SET \
             spam = CASE WHEN junk_totals.spam + $4 < 0 THEN 0 ELSE junk_totals.spam + $4 END, \
             ham = CASE WHEN junk_totals.ham + $5 < 0 THEN 0 ELSE junk_totals.ham + $5 END \
             RETURNING spam, ham",
        )
        .bind(user_id)
        .bind(delta.spam.max(0))
        .bind(delta.ham.max(0))
        .bind(delta.spam)
        .bind(delta.ham)
        .fetch_one(&mut *tx)
        .await?;
        let trainings = get::<i64>(&totals, "spam")? + get::<i64>(&totals, "ham")?;
        sqlx::query(
            "INSERT INTO junk_trained (user_id, blob_hash, spam) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id, blob_hash) DO UPDATE SET spam = excluded.spam",
        )
        .bind(user_id)
        .bind(key)
        .bind(spam)
        .execute(&mut *tx)
        .await?;
        self.commit(tx, Vec::new()).await?;
        if retrain == 0 && trainings % PRUNE_EVERY == 0 {
            self.prune_junk(user_id, now).await?;
        }
        Ok(true)
    }

    /// How many messages `user_id`'s statistics were trained with.
    pub async fn junk_training(&self, user_id: i64) -> Result<JunkTraining> {
        let row = sqlx::query("SELECT spam, ham FROM junk_totals WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => JunkTraining {
                spam: get(&r, "spam")?,
                ham: get(&r, "ham")?,
            },
            None => JunkTraining::default(),
        })
    }

    /// The probability that a message with `tokens` is spam for `user_id`, or `None` while the
    /// user's statistics hold fewer than `min.spam` spam or `min.ham` ham messages.
    pub async fn junk_probability(
        &self,
        user_id: i64,
        tokens: &Tokens,
        min: JunkTraining,
    ) -> Result<Option<f64>> {
        let totals = self.junk_training(user_id).await?;
        if !totals.suffices(min) {
            return Ok(None);
        }
        let mut known: HashMap<String, TokenCounts> = HashMap::new();
        for batch in tokens.as_slice().chunks(BATCH) {
            let marks: Vec<String> = (0..batch.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!(
                "SELECT token, spam, ham FROM junk_tokens WHERE user_id = $1 AND token IN ({})",
                marks.join(", ")
            );
            // Only numbered placeholders are formatted into the text; the tokens are bound.
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(user_id);
            for t in batch {
                q = q.bind(t);
            }
            for row in q.fetch_all(&self.pool).await? {
                let counts = TokenCounts {
                    spam: get(&row, "spam")?,
                    ham: get(&row, "ham")?,
                };
                known.insert(get(&row, "token")?, counts);
            }
        }
        let counts: Vec<TokenCounts> = known.into_values().collect();
        Ok(Some(bayes::spam_probability(
            &counts,
            totals.spam,
            totals.ham,
        )))
    }

    /// Keeps `user_id`'s statistics bounded: drops tokens seen in at most one message and not
    /// since [`RARE_TOKEN_SECS`] before `now`, then the rarest, oldest beyond
    /// [`MAX_USER_TOKENS`], and the trained marks of messages the user no longer has.
    pub async fn prune_junk(&self, user_id: i64, now: i64) -> Result<()> {
        let mut tx = self.locked_tx(&[user_id]).await?;
        sqlx::query(
            "DELETE FROM junk_tokens WHERE user_id = $1 AND spam + ham <= 1 AND seen_at < $2",
        )
        .bind(user_id)
        .bind(now - RARE_TOKEN_SECS)
        .execute(&mut *tx)
        .await?;
        let count: i64 = get(
            &sqlx::query("SELECT COUNT(*) AS n FROM junk_tokens WHERE user_id = $1")
                .bind(user_id)
                .fetch_one(&mut *tx)
                .await?,
            "n",
        )?;
        if count > MAX_USER_TOKENS {
            sqlx::query(
                "DELETE FROM junk_tokens WHERE user_id = $1 AND token IN (SELECT token FROM \
                 junk_tokens WHERE user_id = $1 ORDER BY spam + ham, seen_at LIMIT $2)",
            )
            .bind(user_id)
            .bind(count - MAX_USER_TOKENS)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "DELETE FROM junk_trained WHERE user_id = $1 AND NOT EXISTS (SELECT 1 FROM messages m \
             JOIN mailboxes b ON b.id = m.mailbox_id WHERE b.user_id = $1 \
             AND m.blob_hash = junk_trained.blob_hash)",
        )
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        self.commit(tx, Vec::new()).await
    }

    /// How many tokens `user_id`'s statistics hold.
    pub async fn junk_token_count(&self, user_id: i64) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM junk_tokens WHERE user_id = $1")
            .bind(user_id)
            .fetch_one(&self.pool)
            .await?;
        get(&row, "n")
    }
}

/// What one training adds to each token's counts (-1 when untraining the other class).
#[derive(Debug, Clone, Copy)]
struct JunkDelta {
    spam: i64,
    ham: i64,
}

/// Adds `delta` to the counts of `tokens` in one statement (counts never go below zero).
async fn add_tokens(
    tx: &mut Transaction<'static, Any>,
    user_id: i64,
    tokens: &[String],
    delta: JunkDelta,
    now: i64,
) -> Result<()> {
    let rows: Vec<String> = (0..tokens.len())
        .map(|i| format!("($1, ${}, $2, $3, $4)", i + 7))
        .collect();
    let sql = format!(
        "INSERT INTO junk_tokens (user_id, token, spam, ham, seen_at) VALUES {} \
         ON CONFLICT (user_id, token) DO UPDATE SET \
         spam = CASE WHEN junk_tokens.spam + $5 < 0 THEN 0 ELSE junk_tokens.spam + $5 END, \
         ham = CASE WHEN junk_tokens.ham + $6 < 0 THEN 0 ELSE junk_tokens.ham + $6 END, \
         seen_at = excluded.seen_at",
        rows.join(", ")
    );
    // Only numbered placeholders are formatted into the text; the tokens are bound.
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(user_id)
        .bind(delta.spam.max(0))
        .bind(delta.ham.max(0))
        .bind(now)
        .bind(delta.spam)
        .bind(delta.ham);
    for t in tokens {
        q = q.bind(t);
    }
    q.execute(&mut **tx).await?;
    Ok(())
}
