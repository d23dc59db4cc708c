//! The one login path of the process: SMTP AUTH (RFC 4954), IMAP LOGIN and AUTHENTICATE
//! (RFC 3501 §6.2), ManageSieve AUTHENTICATE (RFC 5804 §2.1), the admin UI and the mail users' self-service page all call
//! [`Store::login`] or [`Store::login_admin`], which do *limiter reserve → (wait) → verify →
//! record → metrics and log* in one place. The limiter ([`Limiter`], policy in its module doc) is
//! owned by the [`Store`], so every service shares one budget by construction.
//!
//! Metrics: `postern_logins_total{service,result}` (result `success`, `failure`, `throttled`,
//! `unavailable`), `postern_login_verifications_total{service}` (Argon2 verifications actually
//! run) and `postern_login_limiter_total{decision}` (`allowed`, `slowed`, `throttled`).

mod config;
mod limiter;

use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

pub use config::LoginConfig;
pub use limiter::{ClientKey, Decision, Limiter, Rule, Slot};

use crate::address::normalize_address;
use crate::db::{get, Store};
use crate::error::Result;
use crate::password::{self, Lane};
use crate::{Admin, User};

/// Which service a login attempt arrived through; it labels metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// SMTP AUTH on submission (RFC 4954).
    Smtp,
    /// IMAP LOGIN or AUTHENTICATE (RFC 3501 §6.2.2, §6.2.3).
    Imap,
    /// The admin web UI's login form.
    AdminWeb,
    /// The mail users' self-service page (`/account`), including the password-change form.
    Account,
    /// ManageSieve AUTHENTICATE (RFC 5804 §2.1).
    ManageSieve,
}

impl Service {
    /// The `service` label of the login metrics.
    pub fn label(self) -> &'static str {
        match self {
            Service::Smtp => "smtp",
            Service::Imap => "imap",
            Service::AdminWeb => "admin-web",
            Service::Account => "account",
            Service::ManageSieve => "managesieve",
        }
    }
}

/// One login attempt as a protocol received it.
#[derive(Debug, Clone, Copy)]
pub struct LoginAttempt<'a> {
    /// The service it came through.
    pub service: Service,
    /// The client's address (the limiter's key; IPv6 by /64).
    pub client: IpAddr,
    /// The login name: a mail address for users, the admin name for administrators.
    pub username: &'a str,
    /// The password as sent.
    pub password: &'a str,
}

/// The result of a login attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome<T> {
    /// The password matched an enabled account.
    Success(T),
    /// Wrong name or password, or a disabled account (the client is not told which).
    Failed,
    /// Refused without checking the password: too many failures from this address, or the
    /// account is being guessed at from elsewhere. SMTP answers 454 4.7.0 (RFC 4954 §6), IMAP
    /// `NO [UNAVAILABLE]` (RFC 5530), HTTP 429 (RFC 6585 §4).
    Throttled {
        /// When the client may try again.
        retry_after: Duration,
    },
    /// The check could not be made (the database failed); nothing was counted against anyone.
    Unavailable,
}

/// An account found by its login name: who it is, its row id, its stored hash, whether enabled.
struct Found<T> {
    who: T,
    id: i64,
    hash: String,
    enabled: bool,
}

/// Which table a login checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    Users,
    Admins,
}

impl Store {
    /// Checks a mail user's login through the shared limiter; see the module documentation.
    /// Unknown addresses cost the same verification as known ones.
    pub async fn login(&self, attempt: LoginAttempt<'_>) -> LoginOutcome<User> {
        let normalized = normalize_address(attempt.username).ok();
        let account = match &normalized {
            Some(a) => account_key("user", &a.to_string()),
            None => account_key("user", &attempt.username.to_lowercase()),
        };
        let lookup = async {
            let Some(a) = normalized.as_ref() else {
                return Ok(None);
            };
            let row = sqlx::query(crate::users::SELECT_USER_BY_ADDRESS)
                .bind(&a.domain)
                .bind(&a.local)
                .fetch_optional(&self.pool)
                .await?;
            row.map(|r| {
                let user = crate::users::user_from_row(&r)?;
                Ok(Found {
                    id: user.id,
                    enabled: !user.disabled,
                    hash: get(&r, "password_hash")?,
                    who: user,
                })
            })
            .transpose()
        };
        self.run_login(attempt, account, Table::Users, lookup).await
    }

    /// Checks an administrator's login through the same limiter as every other login (admin
    /// names have their own account keys, so `admin` the admin and a user are never confused).
    pub async fn login_admin(&self, attempt: LoginAttempt<'_>) -> LoginOutcome<Admin> {
        let account = account_key("admin", attempt.username);
        let lookup = async {
            let row =
                sqlx::query("SELECT id, username, password_hash FROM admins WHERE username = $1")
                    .bind(attempt.username)
                    .fetch_optional(&self.pool)
                    .await?;
            row.map(|r| {
                let id = get(&r, "id")?;
                Ok(Found {
                    who: Admin {
                        id,
                        username: get(&r, "username")?,
                    },
                    id,
                    hash: get(&r, "password_hash")?,
                    enabled: true,
                })
            })
            .transpose()
        };
        self.run_login(attempt, account, Table::Admins, lookup)
            .await
    }

    /// The login limits in force (the `[login]` table).
    pub fn login_config(&self) -> &LoginConfig {
        self.limiter.config()
    }

    async fn run_login<T>(
        &self,
        attempt: LoginAttempt<'_>,
        account: String,
        table: Table,
        lookup: impl Future<Output = Result<Option<Found<T>>>>,
    ) -> LoginOutcome<T> {
        let service = attempt.service.label();
        let client = attempt.client;
        let username = loggable(attempt.username);
        let (slot, wait) = match self.limiter.reserve(client, &account) {
            Decision::Throttled { retry_after, rule } => {
                count_decision("throttled");
                count_result(service, "throttled");
                tracing::warn!(
                    service,
                    %client,
                    username,
                    ?rule,
                    retry_after_secs = retry_after.as_secs(),
                    "login refused unverified: too many failures"
                );
                return LoginOutcome::Throttled { retry_after };
            }
            Decision::Allowed { slot, wait } => (slot, wait),
        };
        if wait.is_zero() {
            count_decision("allowed");
        } else {
            count_decision("slowed");
            tracing::info!(service, %client, username, wait_ms = wait.as_millis() as u64, "login slowed down");
            tokio::time::sleep(wait).await;
        }
        let found = match lookup.await {
            Ok(found) => found,
            Err(e) => {
                self.limiter.release(slot);
                count_result(service, "unavailable");
                tracing::error!(service, error = %e, "login check failed in the store");
                return LoginOutcome::Unavailable;
            }
        };
        let lane = if slot.suspect() {
            Lane::Suspect
        } else {
            Lane::Normal
        };
        let (stored, enabled) = match &found {
            Some(f) => (Some(f.hash.clone()), f.enabled),
            None => (None, false),
        };
        let verified = password::verify(attempt.password, stored, lane).await;
        if verified.ran {
            metrics::counter!("postern_login_verifications_total", "service" => service)
                .increment(1);
        }
        match found {
            Some(f) if verified.ok && f.enabled => {
                self.limiter.success(slot);
                count_result(service, "success");
                tracing::info!(service, %client, username, "login succeeded");
                if password::needs_rehash(&f.hash) {
                    self.rehash(table, f.id, &f.hash, attempt.password).await;
                }
                LoginOutcome::Success(f.who)
            }
            _ => {
                self.limiter.failure(slot);
                count_result(service, "failure");
                let why = if verified.ok && !enabled {
                    "account disabled"
                } else {
                    "wrong name or password"
                };
                tracing::warn!(service, %client, username, why, "login failed");
                LoginOutcome::Failed
            }
        }
    }

    /// Replaces a hash made with older parameters by one with the current ones (the password was
    /// just verified). Only if the stored hash is still the one verified, so a password changed
    /// in between is never overwritten. Failures are logged: the old hash keeps working.
    async fn rehash(&self, table: Table, id: i64, old: &str, password: &str) {
        let sql = match table {
            Table::Users => {
                "UPDATE users SET password_hash = $1 WHERE id = $2 AND password_hash = $3"
            }
            Table::Admins => {
                "UPDATE admins SET password_hash = $1 WHERE id = $2 AND password_hash = $3"
            }
        };
        let result = async {
            let new = password::hash(password).await?;
            let mut tx = self.write_tx().await?;
            sqlx::query(sql)
                .bind(&new)
                .bind(id)
                .bind(old)
                .execute(&mut *tx)
                .await?;
            self.commit(tx, vec![]).await
        }
        .await;
        match result {
            Ok(()) => tracing::info!(
                ?table,
                id,
                "password hash upgraded to the current parameters"
            ),
            Err(e) => tracing::warn!(?table, id, error = %e, "upgrading a password hash failed"),
        }
    }
}

/// Longest login name kept as it is in limiter keys and logs; no valid address is longer
/// (RFC 5321 §4.5.3.1: 64 + 1 + 255 octets).
const MAX_NAME_LEN: usize = 320;

/// The limiter's key for an account: `kind:name`, or a SHA-256 of an over-long name, so that a
/// client sending huge names cannot make the limiter's maps huge.
fn account_key(kind: &str, name: &str) -> String {
    if name.len() <= MAX_NAME_LEN {
        format!("{kind}:{name}")
    } else {
        use sha2::{Digest, Sha256};
        format!(
            "{kind}:sha256:{}",
            hex::encode(Sha256::digest(name.as_bytes()))
        )
    }
}

/// A login name as it may appear in a log line: at most [`MAX_NAME_LEN`] bytes.
fn loggable(name: &str) -> &str {
    if name.len() <= MAX_NAME_LEN {
        return name;
    }
    let mut end = MAX_NAME_LEN;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

fn count_decision(decision: &'static str) {
    metrics::counter!("postern_login_limiter_total", "decision" => decision).increment(1);
}

fn count_result(service: &'static str, result: &'static str) {
    metrics::counter!("postern_logins_total", "service" => service, "result" => result)
        .increment(1);
}

/// Describes the login metrics (HELP lines); call once after installing the recorder.
pub fn describe_metrics() {
    metrics::describe_counter!(
        "postern_logins_total",
        "Logins by service and result (success, failure, throttled, unavailable)."
    );
    metrics::describe_counter!(
        "postern_login_verifications_total",
        "Password hashes computed to check a login, by service."
    );
    metrics::describe_counter!(
        "postern_login_limiter_total",
        "Decisions of the login limiter before a password is checked (allowed, slowed, throttled)."
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn long_names_are_bounded() {
        let long = "é".repeat(1000);
        assert!(super::account_key("user", &long).len() < 100);
        assert_eq!(super::account_key("admin", "root"), "admin:root");
        assert!(super::loggable(&long).len() <= super::MAX_NAME_LEN);
        assert_eq!(super::loggable("alice"), "alice");
    }
}
