//! Mail users: one per hosted address with a mailbox, an Argon2id password and a quota.

use sqlx::any::AnyRow;

use crate::address::{normalize_address, Address};
use crate::db::{get, Store};
use crate::error::{unique_as_exists, Result, StoreError};
use crate::{mailboxes, password, unix_now};

/// A mail user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Row id.
    pub id: i64,
    /// The user's address (login name).
    pub address: Address,
    /// Quota in bytes; 0 means unlimited.
    pub quota_bytes: i64,
    /// Bytes used by the user's stored messages.
    pub used_bytes: i64,
    /// A disabled user cannot log in and receives no mail.
    pub disabled: bool,
}

/// A static SELECT of user rows joined with their domain, followed by `$tail` (WHERE/ORDER BY).
macro_rules! select_users {
    ($tail:literal) => {
        concat!(
            "SELECT u.id, u.local_part, d.name AS domain, u.quota_bytes, u.used_bytes, u.disabled, ",
            "u.password_hash FROM users u JOIN domains d ON d.id = u.domain_id ",
            $tail
        )
    };
}

/// The user row (with `password_hash`) for `$1` = domain, `$2` = local part.
pub(crate) const SELECT_USER_BY_ADDRESS: &str =
    select_users!("WHERE d.name = $1 AND u.local_part = $2");

pub(crate) fn user_from_row(r: &AnyRow) -> Result<User> {
    Ok(User {
        id: get(r, "id")?,
        address: Address {
            local: get(r, "local_part")?,
            domain: get(r, "domain")?,
        },
        quota_bytes: get(r, "quota_bytes")?,
        used_bytes: get(r, "used_bytes")?,
        disabled: get::<i64>(r, "disabled")? != 0,
    })
}

impl Store {
    /// Creates a user in a hosted domain, with INBOX and the special-use mailboxes (RFC 6154).
    pub async fn add_user(&self, address: &str, password: &str, quota_bytes: i64) -> Result<User> {
        let hash = password::hash(password).await?;
        self.insert_user(address, &hash, quota_bytes).await
    }

    /// Creates a user like [`Store::add_user`] with a password hash another system made (see
    /// [`password::is_stored_hash`]); it is replaced by Argon2id at the user's first login.
    pub async fn add_user_with_hash(
        &self,
        address: &str,
        hash: &str,
        quota_bytes: i64,
    ) -> Result<User> {
        if !password::is_stored_hash(hash) {
            return Err(StoreError::invalid(
                "password hash",
                "not of a scheme Postern verifies",
            ));
        }
        self.insert_user(address, hash, quota_bytes).await
    }

    async fn insert_user(&self, address: &str, hash: &str, quota_bytes: i64) -> Result<User> {
        let address = normalize_address(address)?;
        if quota_bytes < 0 {
            return Err(StoreError::invalid(
                "quota",
                "must be 0 (unlimited) or more bytes",
            ));
        }
        let mut tx = self.write_tx().await?;
        let domain_id: i64 = match sqlx::query("SELECT id FROM domains WHERE name = $1")
            .bind(&address.domain)
            .fetch_optional(&mut *tx)
            .await?
        {
            Some(r) => get(&r, "id")?,
            None => return Err(StoreError::NotFound(format!("domain {}", address.domain))),
        };
        let row = sqlx::query(
            "INSERT INTO users (domain_id, local_part, password_hash, quota_bytes, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(domain_id)
        .bind(&address.local)
        .bind(hash)
        .bind(quota_bytes)
        .bind(unix_now())
        .fetch_one(&mut *tx)
        .await
        .map_err(unique_as_exists(format!("user {address}")))?;
        let id: i64 = get(&row, "id")?;
        // The default mailboxes start subscribed: clients (Thunderbird's LIST (SUBSCRIBED)) show
        // only subscribed folders.
        for (name, special_use) in mailboxes::DEFAULT_MAILBOXES {
            crate::subscriptions::insert_subscription(&mut tx, id, name).await?;
            mailboxes::insert_mailbox(&mut tx, id, name, special_use).await?;
        }
        self.commit(tx, vec![]).await?;
        Ok(User {
            id,
            address,
            quota_bytes,
            used_bytes: 0,
            disabled: false,
        })
    }

    /// The user whose address is `address` (no alias resolution), if any.
    pub async fn user(&self, address: &str) -> Result<Option<User>> {
        let Ok(address) = normalize_address(address) else {
            return Ok(None);
        };
        let row = sqlx::query(SELECT_USER_BY_ADDRESS)
            .bind(&address.domain)
            .bind(&address.local)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// The user with row id `id`, if any.
    pub async fn user_by_id(&self, id: i64) -> Result<Option<User>> {
        let row = sqlx::query(select_users!("WHERE u.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Users of one domain, or of all domains, by address.
    pub async fn list_users(&self, domain: Option<&str>) -> Result<Vec<User>> {
        let rows = match domain {
            Some(d) => {
                let d = crate::normalize_domain(d)?;
                sqlx::query(select_users!("WHERE d.name = $1 ORDER BY u.local_part"))
                    .bind(d)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query(select_users!("ORDER BY d.name, u.local_part"))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(user_from_row).collect()
    }

    /// Checks a password without the login limiter or metrics: only for tests (feature
    /// `testing`). Network services use [`Store::login`].
    #[cfg(feature = "testing")]
    pub async fn authenticate(&self, address: &str, password: &str) -> Result<Option<User>> {
        let found = match normalize_address(address) {
            Ok(a) => {
                sqlx::query(SELECT_USER_BY_ADDRESS)
                    .bind(&a.domain)
                    .bind(&a.local)
                    .fetch_optional(&self.pool)
                    .await?
            }
            Err(_) => None,
        };
        let (user, hash) = match &found {
            Some(r) => (
                Some(user_from_row(r)?),
                Some(get::<String>(r, "password_hash")?),
            ),
            None => (None, None),
        };
        let ok = password::verify(password, hash, password::Lane::Normal)
            .await
            .ok;
        Ok(user.filter(|u| ok && !u.disabled))
    }

    /// The user's stored password hash: only for tests (feature `testing`), which check that a
    /// login replaced an imported hash.
    #[cfg(feature = "testing")]
    pub async fn stored_password_hash(&self, address: &str) -> Result<Option<String>> {
        let Ok(a) = normalize_address(address) else {
            return Ok(None);
        };
        let row = sqlx::query(SELECT_USER_BY_ADDRESS)
            .bind(&a.domain)
            .bind(&a.local)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| get(&r, "password_hash")).transpose()
    }

    /// Replaces a user's password.
    pub async fn set_password(&self, address: &str, password: &str) -> Result<()> {
        let hash = password::hash(password).await?;
        self.update_user(
            address,
            "UPDATE users SET password_hash = $1 WHERE id = $2",
            UserValue::Text(hash),
        )
        .await
    }

    /// Sets a user's quota in bytes (0 = unlimited).
    pub async fn set_quota(&self, address: &str, quota_bytes: i64) -> Result<()> {
        if quota_bytes < 0 {
            return Err(StoreError::invalid(
                "quota",
                "must be 0 (unlimited) or more bytes",
            ));
        }
        self.update_user(
            address,
            "UPDATE users SET quota_bytes = $1 WHERE id = $2",
            UserValue::Int(quota_bytes),
        )
        .await
    }

    /// Enables or disables a user (a disabled user can neither log in nor receive mail).
    pub async fn set_disabled(&self, address: &str, disabled: bool) -> Result<()> {
        self.update_user(
            address,
            "UPDATE users SET disabled = $1 WHERE id = $2",
            UserValue::Int(i64::from(disabled)),
        )
        .await
    }

    /// Removes a user with their mailboxes and messages.
    pub async fn remove_user(&self, address: &str) -> Result<()> {
        let user = self.require_user(address).await?;
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(user.id)
            .execute(&mut *tx)
            .await?;
        crate::blobs::delete_unreferenced_blobs(&mut tx, self.backend).await?;
        self.commit(tx, vec![]).await
    }

    async fn require_user(&self, address: &str) -> Result<User> {
        let a = normalize_address(address)?;
        self.user(address)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("user {a}")))
    }

    async fn update_user(&self, address: &str, sql: &'static str, value: UserValue) -> Result<()> {
        let user = self.require_user(address).await?;
        let mut tx = self.write_tx().await?;
        let q = sqlx::query(sql);
        let q = match value {
            UserValue::Text(s) => q.bind(s),
            UserValue::Int(i) => q.bind(i),
        };
        q.bind(user.id).execute(&mut *tx).await?;
        self.commit(tx, vec![]).await
    }
}

enum UserValue {
    Text(String),
    Int(i64),
}

/// Parses a quota: bytes, or a number with a K, M, G or T suffix (1024-based); `0` is unlimited.
pub fn parse_quota(s: &str) -> Result<i64> {
    let s = s.trim();
    let bad = |why: &str| StoreError::invalid("quota", format!("{s:?}: {why}"));
    let (digits, shift) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(bad("unknown unit (use K, M, G or T)")),
            };
            (&s[..i], shift)
        }
        _ => (s, 0),
    };
    let n: i64 = digits.parse().map_err(|_| bad("not a number"))?;
    n.checked_mul(1 << shift)
        .filter(|v| *v >= 0)
        .ok_or_else(|| bad("out of range"))
}

#[cfg(test)]
mod tests {
    use super::parse_quota;

    #[test]
    fn quotas() {
        assert_eq!(parse_quota("0").unwrap(), 0);
        assert_eq!(parse_quota("1500").unwrap(), 1500);
        assert_eq!(parse_quota("2k").unwrap(), 2048);
        assert_eq!(parse_quota("500M").unwrap(), 500 << 20);
        assert_eq!(parse_quota(" 2G ").unwrap(), 2 << 30);
        for bad in ["", "G", "1X", "-1", "99999999999T"] {
            assert!(parse_quota(bad).is_err(), "{bad}");
        }
    }
}
