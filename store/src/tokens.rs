//! API bearer tokens: a scope (what the token may do), an optional expiry, a label, and when it
//! was last used. Only a SHA-256 of the secret is stored; a token is named in listings and
//! revocations by its id, the first [`ID_LEN`] hex digits of that hash, which reveals nothing of
//! the secret.

use std::fmt;
use std::str::FromStr;

use crate::admin::{random_secret, secret_hash};
use crate::db::{get, Store};
use crate::error::{Result, StoreError};
use crate::unix_now;

/// Hex digits of the secret's hash that name a token.
pub const ID_LEN: usize = 16;

/// Seconds between two updates of a token's `last_used_at` (so most requests only read).
pub const TOUCH_INTERVAL: i64 = 60;

/// What a bearer token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenScope {
    /// Everything the API offers (and every browser session).
    Admin,
    /// Only GET (and HEAD) requests of the API and `/metrics`.
    Read,
    /// Only `/metrics`, for a Prometheus scraper.
    Metrics,
}

impl TokenScope {
    /// The name used in the database, the CLI and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenScope::Admin => "admin",
            TokenScope::Read => "read",
            TokenScope::Metrics => "metrics",
        }
    }

    /// Every scope, widest first.
    pub const ALL: [TokenScope; 3] = [TokenScope::Admin, TokenScope::Read, TokenScope::Metrics];
}

impl fmt::Display for TokenScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TokenScope {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<TokenScope> {
        TokenScope::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| StoreError::invalid("scope", "one of admin, read, metrics"))
    }
}

/// An API token as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// The first [`ID_LEN`] hex digits of the secret's SHA-256, naming the token.
    pub id: String,
    /// The administrator the token acts for.
    pub admin: String,
    /// What it is for.
    pub label: String,
    /// What it may do.
    pub scope: TokenScope,
    /// Unix time of creation.
    pub created_at: i64,
    /// Unix time of the last request made with it (to the minute), if any.
    pub last_used_at: Option<i64>,
    /// Unix time after which it is refused; `None` never expires.
    pub expires_at: Option<i64>,
}

/// Parses a token lifetime: a number of seconds, or a number with `s`, `m`, `h`, `d` or `w`.
pub fn parse_lifetime(text: &str) -> Result<i64> {
    let text = text.trim();
    let bad = || StoreError::invalid("expires", "a positive number with s, m, h, d or w (30d)");
    let (digits, unit) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&text[..i], c.to_ascii_lowercase()),
        _ => (text, 's'),
    };
    let n: i64 = digits.parse().map_err(|_| bad())?;
    let factor = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(factor).filter(|s| *s > 0).ok_or_else(bad)
}

/// The id of the token whose secret is `secret`.
pub fn token_id(secret: &str) -> String {
    secret_hash(secret).chars().take(ID_LEN).collect()
}

impl Store {
    /// Creates an API token for `admin_id` and returns its secret (shown once). It expires
    /// `lifetime_secs` from now when given.
    pub async fn create_token(
        &self,
        admin_id: i64,
        label: &str,
        scope: TokenScope,
        lifetime_secs: Option<i64>,
    ) -> Result<String> {
        let secret = random_secret();
        let now = unix_now();
        let expires = lifetime_secs.map(|s| now.saturating_add(s));
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO admin_sessions (token_hash, admin_id, kind, label, csrf_token, created_at, expires_at, scope) \
             VALUES ($1, $2, 'api', $3, $4, $5, $6, $7)",
        )
        .bind(secret_hash(&secret))
        .bind(admin_id)
        .bind(label)
        .bind(random_secret())
        .bind(now)
        .bind(expires)
        .bind(scope.as_str())
        .execute(&mut *tx)
        .await?;
        self.commit(tx, vec![]).await?;
        Ok(secret)
    }

    /// Every API token, expired ones included (until revoked), oldest first.
    pub async fn list_tokens(&self) -> Result<Vec<ApiToken>> {
        let rows = sqlx::query(
            "SELECT s.token_hash, a.username, s.label, s.scope, s.created_at, s.last_used_at, s.expires_at \
             FROM admin_sessions s JOIN admins a ON a.id = s.admin_id WHERE s.kind = 'api' \
             ORDER BY s.created_at, s.token_hash",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let hash: String = get(r, "token_hash")?;
                Ok(ApiToken {
                    id: hash.chars().take(ID_LEN).collect(),
                    admin: get(r, "username")?,
                    label: get(r, "label")?,
                    scope: get::<String>(r, "scope")?.parse()?,
                    created_at: get(r, "created_at")?,
                    last_used_at: get(r, "last_used_at")?,
                    expires_at: get(r, "expires_at")?,
                })
            })
            .collect()
    }

    /// Revokes the API token named `id` (from [`Store::list_tokens`]).
    pub async fn revoke_token(&self, id: &str) -> Result<()> {
        if id.len() != ID_LEN || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(StoreError::NotFound(format!("token {id}")));
        }
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "DELETE FROM admin_sessions WHERE kind = 'api' AND substr(token_hash, 1, 16) = $1",
        )
        .bind(id.to_ascii_lowercase())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("token {id}")));
        }
        self.commit(tx, vec![]).await
    }

    /// Records that the token with `secret` was just used, at most once a minute.
    pub async fn touch_token(&self, secret: &str) -> Result<()> {
        let now = unix_now();
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE admin_sessions SET last_used_at = $1 WHERE token_hash = $2 AND kind = 'api' \
             AND (last_used_at IS NULL OR last_used_at <= $3)",
        )
        .bind(now)
        .bind(secret_hash(secret))
        .bind(now - TOUCH_INTERVAL)
        .execute(&mut *tx)
        .await?;
        self.commit(tx, vec![]).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes() {
        assert_eq!(parse_lifetime("30d").unwrap(), 30 * 86_400);
        assert_eq!(parse_lifetime("90").unwrap(), 90);
        assert_eq!(parse_lifetime("2w").unwrap(), 14 * 86_400);
        assert_eq!(parse_lifetime("5m").unwrap(), 300);
        for bad in ["", "0d", "-1d", "d", "3y", "1.5d", "99999999999999999w"] {
            assert!(parse_lifetime(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn scopes_round_trip() {
        for s in TokenScope::ALL {
            assert_eq!(s.as_str().parse::<TokenScope>().unwrap(), s);
        }
        assert!("root".parse::<TokenScope>().is_err());
    }
}
