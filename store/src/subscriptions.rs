//! IMAP subscriptions (RFC 3501 §6.3.6-7, §6.3.9): a per-user list of mailbox names that outlives
//! the mailboxes themselves. `mailboxes.subscribed` mirrors "this mailbox's name is subscribed"
//! and is kept up to date here.

use std::collections::BTreeSet;

use sqlx::{Any, Transaction};

use crate::changes::Change;
use crate::db::{get, Store};
use crate::error::Result;

/// Adds `name` to the user's subscriptions (nothing if it is there already).
pub(crate) async fn insert_subscription(
    tx: &mut Transaction<'static, Any>,
    user_id: i64,
    name: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO subscriptions (user_id, name) VALUES ($1, $2) ON CONFLICT (user_id, name) DO NOTHING",
    )
    .bind(user_id)
    .bind(name)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Removes `name` from the user's subscriptions; whether it was there.
pub(crate) async fn delete_subscription(
    tx: &mut Transaction<'static, Any>,
    user_id: i64,
    name: &str,
) -> Result<bool> {
    let gone = sqlx::query("DELETE FROM subscriptions WHERE user_id = $1 AND name = $2")
        .bind(user_id)
        .bind(name)
        .execute(&mut **tx)
        .await?;
    Ok(gone.rows_affected() > 0)
}

/// Sets `mailboxes.subscribed` of the user's mailbox called `name` (if any) from the list.
pub(crate) async fn sync_mirror(
    tx: &mut Transaction<'static, Any>,
    user_id: i64,
    name: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE mailboxes SET subscribed = \
         (SELECT COUNT(*) FROM subscriptions WHERE user_id = $1 AND name = $2) \
         WHERE user_id = $3 AND name = $4",
    )
    .bind(user_id)
    .bind(name)
    .bind(user_id)
    .bind(name)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// The names the user is subscribed to, whether or not such mailboxes exist (LSUB,
    /// `LIST (SUBSCRIBED)`).
    pub async fn subscriptions(&self, user_id: i64) -> Result<BTreeSet<String>> {
        sqlx::query("SELECT name FROM subscriptions WHERE user_id = $1")
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| get(r, "name"))
            .collect()
    }

    /// Subscribes to or unsubscribes from `name` (IMAP SUBSCRIBE/UNSUBSCRIBE, RFC 3501 §6.3.6-7).
    /// Returns whether the list changed. The caller decides whether the name must exist.
    pub async fn set_subscription(&self, user_id: i64, name: &str, on: bool) -> Result<bool> {
        let mut tx = self.write_tx().await?;
        let changed = if on {
            let before = self.subscriptions_in(&mut tx, user_id, name).await?;
            insert_subscription(&mut tx, user_id, name).await?;
            !before
        } else {
            delete_subscription(&mut tx, user_id, name).await?
        };
        sync_mirror(&mut tx, user_id, name).await?;
        let changes = if changed {
            vec![Change::Subscriptions { user_id }]
        } else {
            Vec::new()
        };
        self.commit(tx, changes).await?;
        Ok(changed)
    }

    async fn subscriptions_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        user_id: i64,
        name: &str,
    ) -> Result<bool> {
        Ok(
            sqlx::query("SELECT 1 AS one FROM subscriptions WHERE user_id = $1 AND name = $2")
                .bind(user_id)
                .bind(name)
                .fetch_optional(&mut **tx)
                .await?
                .is_some(),
        )
    }
}
