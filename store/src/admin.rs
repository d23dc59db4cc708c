//! Admin accounts, browser sessions and API bearer tokens. Only a SHA-256 of each session secret is
//! stored, so a leaked database does not hand out live sessions.

use sha2::{Digest, Sha256};

use crate::db::{get, Store};
use crate::error::{unique_as_exists, Result, StoreError};
use crate::tokens::TokenScope;
use crate::{password, unix_now};

/// An administrator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    /// Row id.
    pub id: i64,
    /// Login name.
    pub username: String,
}

/// What a session secret is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    /// A browser login (cookie), expiring.
    Browser,
    /// An API bearer token, valid until revoked.
    ApiToken,
}

impl SessionKind {
    fn as_str(self) -> &'static str {
        match self {
            SessionKind::Browser => "browser",
            SessionKind::ApiToken => "api",
        }
    }
}

/// A live session found by its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSession {
    /// Whose session.
    pub admin: Admin,
    /// Browser or API token.
    pub kind: SessionKind,
    /// The anti-CSRF token forms of this session must carry.
    pub csrf_token: String,
    /// What it may do: [`TokenScope::Admin`] for every browser session.
    pub scope: TokenScope,
    /// For an API token, when it was last used (Unix time), if ever.
    pub last_used_at: Option<i64>,
}

/// A live self-service session of a mail user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSession {
    /// The user's id.
    pub user_id: i64,
    /// The user's address.
    pub address: String,
    /// The anti-CSRF token forms of this session must carry.
    pub csrf_token: String,
}

pub(crate) fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

pub(crate) fn random_secret() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

fn check_username(username: &str) -> Result<()> {
    let ok = (1..=64).contains(&username.len())
        && username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(StoreError::invalid(
            "admin name",
            "1 to 64 letters, digits, '.', '_', '-' or '@'",
        ))
    }
}

impl Store {
    /// Creates an administrator.
    pub async fn add_admin(&self, username: &str, password: &str) -> Result<Admin> {
        check_username(username)?;
        let hash = password::hash(password).await?;
        let mut tx = self.write_tx().await?;
        let row = sqlx::query("INSERT INTO admins (username, password_hash, created_at) VALUES ($1, $2, $3) RETURNING id")
            .bind(username)
            .bind(&hash)
            .bind(unix_now())
            .fetch_one(&mut *tx)
            .await
            .map_err(unique_as_exists(format!("admin {username}")))?;
        let id = get(&row, "id")?;
        self.commit(tx, vec![]).await?;
        Ok(Admin {
            id,
            username: username.to_owned(),
        })
    }

    /// All administrators, by name.
    pub async fn list_admins(&self) -> Result<Vec<Admin>> {
        let rows = sqlx::query("SELECT id, username FROM admins ORDER BY username")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Admin {
                    id: get(r, "id")?,
                    username: get(r, "username")?,
                })
            })
            .collect()
    }

    /// Sets an administrator's password and ends their browser sessions (API tokens stay).
    pub async fn set_admin_password(&self, username: &str, password: &str) -> Result<()> {
        let hash = password::hash(password).await?;
        let mut tx = self.write_tx().await?;
        let row =
            sqlx::query("UPDATE admins SET password_hash = $1 WHERE username = $2 RETURNING id")
                .bind(&hash)
                .bind(username)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("admin {username}")))?;
        sqlx::query("DELETE FROM admin_sessions WHERE admin_id = $1 AND kind = 'browser'")
            .bind(get::<i64>(&row, "id")?)
            .execute(&mut *tx)
            .await?;
        self.commit(tx, vec![]).await
    }

    /// Removes an administrator with their sessions and tokens. The last administrator cannot
    /// be removed (nobody could log in to the UI any more).
    pub async fn remove_admin(&self, username: &str) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let count: i64 = get(
            &sqlx::query("SELECT COUNT(*) AS n FROM admins")
                .fetch_one(&mut *tx)
                .await?,
            "n",
        )?;
        let row = sqlx::query("SELECT id FROM admins WHERE username = $1")
            .bind(username)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("admin {username}")))?;
        if count <= 1 {
            return Err(StoreError::invalid(
                "admin name",
                "the last administrator cannot be removed",
            ));
        }
        let id: i64 = get(&row, "id")?;
        sqlx::query("DELETE FROM admin_sessions WHERE admin_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM admins WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        self.commit(tx, vec![]).await
    }

    /// Checks an admin password without the login limiter or metrics: only for tests (feature
    /// `testing`). The admin UI uses [`Store::login_admin`].
    #[cfg(feature = "testing")]
    pub async fn authenticate_admin(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<Admin>> {
        let row = sqlx::query("SELECT id, username, password_hash FROM admins WHERE username = $1")
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        let (admin, hash) = match &row {
            Some(r) => (
                Some(Admin {
                    id: get(r, "id")?,
                    username: get(r, "username")?,
                }),
                Some(get::<String>(r, "password_hash")?),
            ),
            None => (None, None),
        };
        let ok = password::verify(password, hash, password::Lane::Normal)
            .await
            .ok;
        Ok(admin.filter(|_| ok))
    }

    /// Creates a session and returns its secret (shown once; only its hash is kept). A browser
    /// session expires after `ttl_secs`; an API token made here has the `admin` scope and no
    /// expiry (`ttl_secs` ignored; [`Store::create_token`] sets both).
    pub async fn create_session(
        &self,
        admin_id: i64,
        kind: SessionKind,
        label: &str,
        ttl_secs: i64,
    ) -> Result<String> {
        if kind == SessionKind::ApiToken {
            return self
                .create_token(admin_id, label, TokenScope::Admin, None)
                .await;
        }
        let secret = random_secret();
        let now = unix_now();
        let expires = Some(now + ttl_secs);
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO admin_sessions (token_hash, admin_id, kind, label, csrf_token, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(secret_hash(&secret))
        .bind(admin_id)
        .bind(kind.as_str())
        .bind(label)
        .bind(random_secret())
        .bind(now)
        .bind(expires)
        .execute(&mut *tx)
        .await?;
        self.commit(tx, vec![]).await?;
        Ok(secret)
    }

    /// The live session for `secret`, if any (expired sessions are not returned).
    pub async fn session(&self, secret: &str) -> Result<Option<AdminSession>> {
        let row = sqlx::query(
            "SELECT a.id, a.username, s.kind, s.csrf_token, s.scope, s.last_used_at FROM admin_sessions s JOIN admins a ON a.id = s.admin_id \
             WHERE s.token_hash = $1 AND (s.expires_at IS NULL OR s.expires_at > $2)",
        )
        .bind(secret_hash(secret))
        .bind(unix_now())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(AdminSession {
                admin: Admin {
                    id: get(&r, "id")?,
                    username: get(&r, "username")?,
                },
                kind: if get::<String>(&r, "kind")? == "api" {
                    SessionKind::ApiToken
                } else {
                    SessionKind::Browser
                },
                csrf_token: get(&r, "csrf_token")?,
                scope: get::<String>(&r, "scope")?.parse()?,
                last_used_at: get(&r, "last_used_at")?,
            })
        })
        .transpose()
    }

    /// Ends a session (logout) or revokes a token; also drops every expired browser session
    /// (expired API tokens stay listed until revoked).
    pub async fn delete_session(&self, secret: &str) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM admin_sessions WHERE token_hash = $1 OR (kind = 'browser' AND expires_at <= $2)")
            .bind(secret_hash(secret))
            .bind(unix_now())
            .execute(&mut *tx)
            .await?;
        self.commit(tx, vec![]).await
    }

    /// Creates a mail user's self-service session valid for `ttl_secs`; returns its secret.
    pub async fn create_user_session(&self, user_id: i64, ttl_secs: i64) -> Result<String> {
        let secret = random_secret();
        let now = unix_now();
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO user_sessions (token_hash, user_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(secret_hash(&secret))
        .bind(user_id)
        .bind(random_secret())
        .bind(now)
        .bind(now + ttl_secs)
        .execute(&mut *tx)
        .await?;
        self.commit(tx, vec![]).await?;
        Ok(secret)
    }

    /// The live self-service session for `secret`, if any; a disabled user has none.
    pub async fn user_session(&self, secret: &str) -> Result<Option<UserSession>> {
        let row = sqlx::query(
            "SELECT u.id, u.local_part, d.name AS domain, s.csrf_token FROM user_sessions s \
             JOIN users u ON u.id = s.user_id JOIN domains d ON d.id = u.domain_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.disabled = 0",
        )
        .bind(secret_hash(secret))
        .bind(unix_now())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(UserSession {
                user_id: get(&r, "id")?,
                address: format!(
                    "{}@{}",
                    get::<String>(&r, "local_part")?,
                    get::<String>(&r, "domain")?
                ),
                csrf_token: get(&r, "csrf_token")?,
            })
        })
        .transpose()
    }

    /// Ends a self-service session; also drops expired ones.
    pub async fn delete_user_session(&self, secret: &str) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM user_sessions WHERE token_hash = $1 OR expires_at <= $2")
            .bind(secret_hash(secret))
            .bind(unix_now())
            .execute(&mut *tx)
            .await?;
        self.commit(tx, vec![]).await
    }
}
