//! Users' Sieve scripts (RFC 5228) and the vacation reply log (RFC 5230 §4.2).
//!
//! A user has up to [`MAX_SIEVE_SCRIPTS`] named scripts, at most one active (RFC 5804 §1.1); the
//! active one runs at local delivery. Scripts are stored as text here, so every node filters with
//! the same scripts; compiling and checking them is the caller's business (the store never
//! interprets Sieve).

use sha2::{Digest, Sha256};

use crate::db::{get, Store};
use crate::error::{unique_as_exists, Result, StoreError};
use crate::unix_now;

/// Most scripts one user may keep (ManageSieve HAVESPACE answers `NO (QUOTA/MAXSCRIPTS)` past it).
pub const MAX_SIEVE_SCRIPTS: i64 = 32;
/// Largest script in bytes (Dovecot's `sieve_max_script_size` is 1 MiB; scripts are small).
pub const MAX_SIEVE_SCRIPT_BYTES: usize = 256 * 1024;
/// Longest script name in bytes (RFC 5804 §1.6 asks servers to take at least 128 octets).
pub const MAX_SIEVE_NAME_BYTES: usize = 512;
/// Longest vacation period the reply log remembers, in seconds (older rows are pruned); RFC 5230
/// §4.1 lets a server cap `:days`, as Pigeonhole's `sieve_vacation_max_period` does.
pub const MAX_VACATION_PERIOD_SECS: i64 = 90 * 86_400;

/// One stored Sieve script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SieveScript {
    /// The script's name, unique per user (RFC 5804 §1.6).
    pub name: String,
    /// The script's text (UTF-8, RFC 5228 §2.1).
    pub content: String,
    /// Whether this is the user's active script.
    pub active: bool,
    /// When it was last stored (Unix seconds).
    pub updated_at: i64,
}

/// Checks a script name against RFC 5804 §1.6: not empty, not too long, no control characters
/// (U+0000–U+001F, U+007F–U+009F) and no line or paragraph separator (U+2028, U+2029).
pub fn check_sieve_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(StoreError::invalid("sieve script name", "it is empty"));
    }
    if name.len() > MAX_SIEVE_NAME_BYTES {
        return Err(StoreError::invalid(
            "sieve script name",
            format!("longer than {MAX_SIEVE_NAME_BYTES} bytes"),
        ));
    }
    if name
        .chars()
        .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}')
    {
        return Err(StoreError::invalid(
            "sieve script name",
            "it contains a control character or line separator",
        ));
    }
    Ok(())
}

impl Store {
    /// Whether `user_id` may store a script `name` of `size` bytes (ManageSieve HAVESPACE,
    /// RFC 5804 §2.5): within [`MAX_SIEVE_SCRIPT_BYTES`], and either replacing an existing
    /// script or under [`MAX_SIEVE_SCRIPTS`]. The error says which limit.
    pub async fn sieve_have_space(&self, user_id: i64, name: &str, size: usize) -> Result<()> {
        check_space(&self.pool, user_id, name, size).await
    }

    /// Stores `content` as the user's script `name`, replacing a script of that name (keeping its
    /// active flag). Enforces the name rules and both limits atomically, also against parallel
    /// uploads.
    pub async fn put_sieve_script(&self, user_id: i64, name: &str, content: &str) -> Result<()> {
        let mut tx = self.locked_tx(&[user_id]).await?;
        check_space(&mut *tx, user_id, name, content.len()).await?;
        sqlx::query(
            "INSERT INTO sieve_scripts (user_id, name, content, active, updated_at) \
             VALUES ($1, $2, $3, 0, $4) ON CONFLICT (user_id, name) \
             DO UPDATE SET content = excluded.content, updated_at = excluded.updated_at",
        )
        .bind(user_id)
        .bind(name)
        .bind(content)
        .bind(unix_now())
        .execute(&mut *tx)
        .await?;
        self.commit(tx, vec![]).await
    }

    /// The user's scripts (with their text), sorted by name.
    pub async fn list_sieve_scripts(&self, user_id: i64) -> Result<Vec<SieveScript>> {
        let rows = sqlx::query(
            "SELECT name, content, active, updated_at FROM sieve_scripts \
             WHERE user_id = $1 ORDER BY name",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(script_from_row).collect()
    }

    /// The user's script `name`, if there is one.
    pub async fn sieve_script(&self, user_id: i64, name: &str) -> Result<Option<SieveScript>> {
        let row = sqlx::query(
            "SELECT name, content, active, updated_at FROM sieve_scripts \
             WHERE user_id = $1 AND name = $2",
        )
        .bind(user_id)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(script_from_row).transpose()
    }

    /// The script that runs at delivery for `user_id`, if one is active.
    pub async fn active_sieve_script(&self, user_id: i64) -> Result<Option<SieveScript>> {
        let row = sqlx::query(
            "SELECT name, content, active, updated_at FROM sieve_scripts \
             WHERE user_id = $1 AND active = 1",
        )
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(script_from_row).transpose()
    }

    /// Makes `name` the user's one active script, or deactivates all with `None`
    /// (RFC 5804 §2.8, SETACTIVE with an empty name). `NotFound` if there is no such script.
    pub async fn set_active_sieve_script(&self, user_id: i64, name: Option<&str>) -> Result<()> {
        let mut tx = self.write_tx().await?;
        if let Some(name) = name {
            let found =
                sqlx::query("SELECT 1 AS one FROM sieve_scripts WHERE user_id = $1 AND name = $2")
                    .bind(user_id)
                    .bind(name)
                    .fetch_optional(&mut *tx)
                    .await?;
            if found.is_none() {
                return Err(StoreError::NotFound(format!("sieve script {name:?}")));
            }
        }
        sqlx::query(
            "UPDATE sieve_scripts SET active = CASE WHEN name = $2 THEN 1 ELSE 0 END \
             WHERE user_id = $1",
        )
        .bind(user_id)
        .bind(name.unwrap_or(""))
        .execute(&mut *tx)
        .await?;
        self.commit(tx, vec![]).await
    }

    /// Deletes the user's script `name`. The active script may not be deleted (RFC 5804 §2.10):
    /// that is `Invalid`, a missing one `NotFound`.
    pub async fn delete_sieve_script(&self, user_id: i64, name: &str) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query("SELECT active FROM sieve_scripts WHERE user_id = $1 AND name = $2")
            .bind(user_id)
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        match row {
            None => return Err(StoreError::NotFound(format!("sieve script {name:?}"))),
            Some(r) if get::<i64>(&r, "active")? != 0 => {
                return Err(StoreError::invalid(
                    "sieve script",
                    format!("{name:?} is active; deactivate it first"),
                ))
            }
            Some(_) => {}
        }
        sqlx::query("DELETE FROM sieve_scripts WHERE user_id = $1 AND name = $2")
            .bind(user_id)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        self.commit(tx, vec![]).await
    }

    /// Renames the user's script `from` to `to`, keeping its text and active flag (RFC 5804
    /// §2.11.1). `NotFound` if `from` is missing, `Exists` if `to` is taken.
    pub async fn rename_sieve_script(&self, user_id: i64, from: &str, to: &str) -> Result<()> {
        check_sieve_name(to)?;
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE sieve_scripts SET name = $3, updated_at = $4 WHERE user_id = $1 AND name = $2",
        )
        .bind(user_id)
        .bind(from)
        .bind(to)
        .bind(unix_now())
        .execute(&mut *tx)
        .await
        .map_err(unique_as_exists(format!("sieve script {to:?}")))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("sieve script {from:?}")));
        }
        self.commit(tx, vec![]).await
    }

    /// Records a vacation reply from `user_id` for `response` (the sender plus the `:handle`,
    /// RFC 5230 §4.2) unless one was sent within `period_secs`; true means "send it now". Atomic,
    /// so parallel deliveries on any node send one reply. The period is capped at
    /// [`MAX_VACATION_PERIOD_SECS`], and rows older than that are pruned.
    pub async fn record_vacation_reply(
        &self,
        user_id: i64,
        response: &str,
        period_secs: i64,
    ) -> Result<bool> {
        let now = unix_now();
        let period = period_secs.clamp(0, MAX_VACATION_PERIOD_SECS);
        let key = hex::encode(Sha256::digest(response.as_bytes()));
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM sieve_vacation_sent WHERE user_id = $1 AND sent_at < $2")
            .bind(user_id)
            .bind(now - MAX_VACATION_PERIOD_SECS)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query(
            "INSERT INTO sieve_vacation_sent (user_id, response, sent_at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id, response) DO UPDATE SET sent_at = excluded.sent_at \
             WHERE sieve_vacation_sent.sent_at <= $4",
        )
        .bind(user_id)
        .bind(&key)
        .bind(now)
        .bind(now - period)
        .execute(&mut *tx)
        .await?;
        self.commit(tx, vec![]).await?;
        Ok(done.rows_affected() > 0)
    }
}

/// Checks `name` and `size` and that the user may store one more script of that name (a script
/// of the same name is replaced, so it needs no new slot); run on `ex`, the pool or the writing
/// transaction that then stores it.
async fn check_space<'e, E>(ex: E, user_id: i64, name: &str, size: usize) -> Result<()>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    check_sieve_name(name)?;
    if size > MAX_SIEVE_SCRIPT_BYTES {
        return Err(too_large());
    }
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, SUM(CASE WHEN name = $2 THEN 1 ELSE 0 END) AS same \
         FROM sieve_scripts WHERE user_id = $1",
    )
    .bind(user_id)
    .bind(name)
    .fetch_one(ex)
    .await?;
    let same = get::<Option<i64>>(&row, "same")?.unwrap_or(0);
    if same == 0 && get::<i64>(&row, "n")? >= MAX_SIEVE_SCRIPTS {
        return Err(too_many());
    }
    Ok(())
}

fn too_large() -> StoreError {
    StoreError::invalid(
        "sieve script",
        format!("larger than {MAX_SIEVE_SCRIPT_BYTES} bytes"),
    )
}

fn too_many() -> StoreError {
    StoreError::invalid(
        "sieve script",
        format!("a user may keep at most {MAX_SIEVE_SCRIPTS} scripts"),
    )
}

pub(crate) fn script_from_row(row: &sqlx::any::AnyRow) -> Result<SieveScript> {
    Ok(SieveScript {
        name: get(row, "name")?,
        content: get(row, "content")?,
        active: get::<i64>(row, "active")? != 0,
        updated_at: get(row, "updated_at")?,
    })
}
