//! Reading a Mailu installation's configuration database (`/data/main.db`, SQLite), as Mailu's
//! SQLAlchemy models (`core/admin/mailu/models.py`) define it: tables `domain`, `alternative`,
//! `relay`, `user`, `alias`, `fetch` and `token`. Booleans are 0/1 integers, dates
//! `YYYY-MM-DD` text, lists (alias and forward destinations) comma-separated text. Columns newer
//! Mailu releases added (`alias.disabled`) are optional, so older databases read too.

use std::path::Path;

use anyhow::Context;
use sqlx::sqlite::{SqliteConnectOptions, SqliteRow};
use sqlx::{ConnectOptions, Connection, Row, SqliteConnection};

/// Everything the import takes from the database.
#[derive(Debug, Default)]
pub struct MailuData {
    /// Domain names (`domain.name`).
    pub domains: Vec<String>,
    /// Alternative domain names and the domain each stands for (`alternative`).
    pub alternatives: Vec<(String, String)>,
    /// Relayed domains and their SMTP host (`relay`).
    pub relays: Vec<(String, Option<String>)>,
    /// Users (`user`).
    pub users: Vec<MailuUser>,
    /// Aliases (`alias`).
    pub aliases: Vec<MailuAlias>,
    /// Rows of `fetch` (remote accounts Mailu's fetchmail polled).
    pub fetches: i64,
    /// Rows of `token` (application tokens).
    pub tokens: i64,
}

/// A row of `user`.
#[derive(Debug, Clone)]
pub struct MailuUser {
    /// `localpart@domain` (`email`).
    pub email: String,
    /// The stored hash, maybe with a `{SCHEME}` prefix (`password`).
    pub password: String,
    /// Quota in bytes (`quota_bytes`).
    pub quota_bytes: i64,
    /// `enabled`.
    pub enabled: bool,
    /// `global_admin`.
    pub global_admin: bool,
    /// `enable_imap`.
    pub enable_imap: bool,
    /// `forward_enabled`.
    pub forward_enabled: bool,
    /// `forward_destination`, split.
    pub forward_destination: Vec<String>,
    /// `forward_keep`.
    pub forward_keep: bool,
    /// `reply_enabled`.
    pub reply_enabled: bool,
    /// `reply_subject`.
    pub reply_subject: String,
    /// `reply_body`.
    pub reply_body: String,
    /// `reply_startdate` (`YYYY-MM-DD`).
    pub reply_startdate: String,
    /// `reply_enddate` (`YYYY-MM-DD`).
    pub reply_enddate: String,
}

/// A row of `alias`.
#[derive(Debug, Clone)]
pub struct MailuAlias {
    /// `localpart` (an SQL LIKE pattern when `wildcard`).
    pub localpart: String,
    /// `domain_name`.
    pub domain: String,
    /// `wildcard`.
    pub wildcard: bool,
    /// `destination`, split.
    pub destination: Vec<String>,
    /// `disabled` (absent before Mailu 2024.06: false).
    pub disabled: bool,
}

/// Reads the database at `path` (opened read-only).
pub async fn read(path: &Path) -> anyhow::Result<MailuData> {
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .connect()
        .await
        .with_context(|| format!("opening the Mailu database {}", path.display()))?;
    let data = read_all(&mut conn)
        .await
        .with_context(|| format!("reading the Mailu database {}", path.display()))?;
    conn.close().await?;
    Ok(data)
}

async fn read_all(conn: &mut SqliteConnection) -> anyhow::Result<MailuData> {
    let rows = |sql: &'static str| sqlx::query(sql);
    let domains = rows("SELECT name FROM domain ORDER BY name")
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| r.try_get("name"))
        .collect::<Result<_, _>>()?;
    let alternatives = rows("SELECT name, domain_name FROM alternative ORDER BY name")
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("name")?, r.try_get("domain_name")?)))
        .collect::<Result<_, sqlx::Error>>()?;
    let relays = rows("SELECT name, smtp FROM relay ORDER BY name")
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("name")?, r.try_get("smtp")?)))
        .collect::<Result<_, sqlx::Error>>()?;
    let users = rows("SELECT * FROM user ORDER BY email")
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(user)
        .collect::<Result<_, _>>()?;
    let aliases = rows("SELECT * FROM alias ORDER BY email")
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(alias)
        .collect::<Result<_, _>>()?;
    let fetches = count_rows(conn, "SELECT COUNT(*) AS n FROM fetch").await;
    let tokens = count_rows(conn, "SELECT COUNT(*) AS n FROM token").await;
    Ok(MailuData {
        domains,
        alternatives,
        relays,
        users,
        aliases,
        fetches,
        tokens,
    })
}

/// The count a `SELECT COUNT(*) AS n` gives; 0 if the table does not exist (older schemas).
async fn count_rows(conn: &mut SqliteConnection, sql: &'static str) -> i64 {
    match sqlx::query(sql).fetch_one(conn).await {
        Ok(row) => row.try_get("n").unwrap_or(0),
        Err(_) => 0,
    }
}

fn user(r: &SqliteRow) -> Result<MailuUser, sqlx::Error> {
    Ok(MailuUser {
        email: r.try_get("email")?,
        password: r.try_get("password")?,
        quota_bytes: r.try_get("quota_bytes")?,
        enabled: r.try_get("enabled")?,
        global_admin: r.try_get("global_admin")?,
        enable_imap: flag(r, "enable_imap", true),
        forward_enabled: flag(r, "forward_enabled", false),
        forward_destination: list(&text(r, "forward_destination")),
        forward_keep: flag(r, "forward_keep", true),
        reply_enabled: flag(r, "reply_enabled", false),
        reply_subject: text(r, "reply_subject"),
        reply_body: text(r, "reply_body"),
        reply_startdate: text(r, "reply_startdate"),
        reply_enddate: text(r, "reply_enddate"),
    })
}

fn alias(r: &SqliteRow) -> Result<MailuAlias, sqlx::Error> {
    Ok(MailuAlias {
        localpart: r.try_get("localpart")?,
        domain: r.try_get("domain_name")?,
        wildcard: r.try_get("wildcard")?,
        destination: list(&r.try_get::<String, _>("destination")?),
        disabled: flag(r, "disabled", false),
    })
}

/// An optional boolean column (missing in older schemas, or NULL): `default`.
fn flag(r: &SqliteRow, column: &str, default: bool) -> bool {
    r.try_get::<Option<bool>, _>(column)
        .ok()
        .flatten()
        .unwrap_or(default)
}

/// An optional text column: empty when missing or NULL.
fn text(r: &SqliteRow, column: &str) -> String {
    r.try_get::<Option<String>, _>(column)
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Mailu's `CommaSeparatedList`: items split at `,`, trimmed, empty ones dropped.
fn list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|i| !i.is_empty())
        .map(str::to_owned)
        .collect()
}
