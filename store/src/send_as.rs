//! Which addresses a user may send as (RFC 6409 §6.1: the submission server may check the sender
//! against the authenticated identity): their own address with or without `+tag`, the aliases
//! that reach them (a catch-all does not make a domain's every address theirs), and an explicit
//! per-user "send as" list managed by the administrator.

use crate::address::normalize_address;
use crate::aliases::Resolution;
use crate::db::{get, Store};
use crate::error::{unique_as_exists, Result, StoreError};
use crate::unix_now;

impl Store {
    /// Lets the user `user` send as `address` (any address, hosted or not).
    pub async fn add_send_as(&self, user: &str, address: &str) -> Result<()> {
        let address = normalize_address(address)?.to_string();
        let id = self.user_id(user).await?;
        let mut tx = self.write_tx().await?;
        sqlx::query("INSERT INTO user_send_as (user_id, address, created_at) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(&address)
            .bind(unix_now())
            .execute(&mut *tx)
            .await
            .map_err(unique_as_exists(format!("{user} may send as {address}")))?;
        self.commit(tx, vec![]).await
    }

    /// Takes `address` off the user's send-as list.
    pub async fn remove_send_as(&self, user: &str, address: &str) -> Result<()> {
        let address = normalize_address(address)?.to_string();
        let id = self.user_id(user).await?;
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("DELETE FROM user_send_as WHERE user_id = $1 AND address = $2")
            .bind(id)
            .bind(&address)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("{user} send as {address}")));
        }
        self.commit(tx, vec![]).await
    }

    /// The user's explicit send-as list, sorted.
    pub async fn list_send_as(&self, user: &str) -> Result<Vec<String>> {
        let id = self.user_id(user).await?;
        let rows =
            sqlx::query("SELECT address FROM user_send_as WHERE user_id = $1 ORDER BY address")
                .bind(id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(|r| get(r, "address")).collect()
    }

    /// Whether the user (`user_id`, whose address is `user`) may send as `address`: their own
    /// address with or without `+tag`, an alias whose expansion reaches them, or an address on
    /// their send-as list. A catch-all alias never counts.
    pub async fn may_send_as(&self, user_id: i64, user: &str, address: &str) -> Result<bool> {
        let Ok(from) = normalize_address(address) else {
            return Ok(false);
        };
        let base = from
            .local
            .split_once('+')
            .map_or(from.local.as_str(), |(b, _)| b);
        let sources = [from.to_string(), format!("{base}@{}", from.domain)];
        if sources.iter().any(|s| s == user) {
            return Ok(true);
        }
        let listed = sqlx::query(
            "SELECT 1 AS one FROM user_send_as WHERE user_id = $1 AND (address = $2 OR address = $3)",
        )
        .bind(user_id)
        .bind(&sources[0])
        .bind(&sources[1])
        .fetch_optional(&self.pool)
        .await?;
        if listed.is_some() {
            return Ok(true);
        }
        for alias in self.list_aliases(Some(&from.domain)).await? {
            if !sources.contains(&alias.source) {
                continue;
            }
            if alias.destination == user {
                return Ok(true);
            }
            if let Resolution::Deliver { local, .. } =
                self.resolve_recipient(&alias.destination).await?
            {
                if local.contains(&user_id) {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    async fn user_id(&self, user: &str) -> Result<i64> {
        match self.user(user).await? {
            Some(u) => Ok(u.id),
            None => Err(StoreError::NotFound(format!("user {user}"))),
        }
    }
}
