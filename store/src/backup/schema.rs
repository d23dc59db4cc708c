//! Which tables a backup holds and how, and what the live schema looks like (tables, columns
//! and their kinds, identity sequences, migration version) on each backend.
//!
//! Every table of the migrated schema must be named in [`TABLES`]: a backup or restore that finds
//! a table it does not know fails and names it, so a new migration cannot silently drop data
//! from backups.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sqlx::{Any, Transaction};

use crate::db::{get, Backend};
use crate::error::{Result, StoreError};

/// How a backup treats one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coverage {
    /// Every row, every column, as typed JSON values.
    Rows,
    /// The `blobs` table: its rows without `data`; the bytes go to one file per hash.
    Blobs,
    /// `blob_chunks`: the bytes of large blobs, folded into the blob files.
    BlobChunks,
    /// Not backed up, for the reason given.
    Skipped(&'static str),
}

/// Why SQLite's full-text tables `blob_text` and `blob_fields` (migration 0032) and their shadow
/// tables are not backed up.
const FTS: &str = "SQLite's full-text index of blob_index (FTS5 and its shadow tables): rebuilt \
     with it";

/// Every table of the schema, parents before children (the order a restore inserts them in, so
/// that foreign keys hold), with how a backup covers it.
pub const TABLES: &[(&str, Coverage)] = &[
    ("domains", Coverage::Rows),
    ("users", Coverage::Rows),
    ("aliases", Coverage::Rows),
    ("mailboxes", Coverage::Rows),
    ("blobs", Coverage::Blobs),
    ("blob_chunks", Coverage::BlobChunks),
    ("messages", Coverage::Rows),
    ("queue", Coverage::Rows),
    ("dns_records", Coverage::Rows),
    ("admins", Coverage::Rows),
    ("admin_sessions", Coverage::Rows),
    ("user_sessions", Coverage::Rows),
    ("dkim_keys", Coverage::Rows),
    ("greylist", Coverage::Rows),
    ("dns_journal", Coverage::Rows),
    ("subscriptions", Coverage::Rows),
    ("dnssec_keys", Coverage::Rows),
    ("dns_zone_serials", Coverage::Rows),
    ("user_send_as", Coverage::Rows),
    ("imported_messages", Coverage::Rows),
    ("sieve_scripts", Coverage::Rows),
    ("sieve_vacation_sent", Coverage::Rows),
    ("junk_tokens", Coverage::Rows),
    ("junk_totals", Coverage::Rows),
    ("junk_trained", Coverage::Rows),
    ("account_settings", Coverage::Rows),
    ("urlauth_keys", Coverage::Rows),
    (
        "dns_signed_journal",
        Coverage::Skipped(
            "derived from the zones and their signatures, which a restored server makes anew: \
             its secondaries get one full transfer, as after losing a BIND or Knot journal",
        ),
    ),
    (
        "dns_signatures",
        Coverage::Skipped(
            "derived: made from the zones and the keys (dnssec_keys, backed up) at the first \
             start, under a new serial",
        ),
    ),
    (
        "blob_index",
        Coverage::Skipped(
            "derived from blobs (header block and search texts): restore rebuilds it",
        ),
    ),
    (
        "blob_text_pending",
        Coverage::Skipped(
            "derived: the blobs whose search text is not written yet; restore indexes every blob",
        ),
    ),
    ("blob_text", Coverage::Skipped(FTS)),
    ("blob_text_config", Coverage::Skipped(FTS)),
    ("blob_text_content", Coverage::Skipped(FTS)),
    ("blob_text_data", Coverage::Skipped(FTS)),
    ("blob_text_docsize", Coverage::Skipped(FTS)),
    ("blob_text_idx", Coverage::Skipped(FTS)),
    ("blob_fields", Coverage::Skipped(FTS)),
    ("blob_fields_config", Coverage::Skipped(FTS)),
    ("blob_fields_data", Coverage::Skipped(FTS)),
    ("blob_fields_idx", Coverage::Skipped(FTS)),
    (
        "change_log",
        Coverage::Skipped(
            "SQLite's log of changes for other processes on the same file, pruned after \
             minutes; meaningless in another database",
        ),
    ),
    (
        "_sqlx_migrations",
        Coverage::Skipped(
            "the migrations applied; the target runs its own, and restore checks that both \
             schemas are at the same version",
        ),
    ),
];

/// Tables that backups made before a migration hold and the schema no longer has: (table, the
/// migration that dropped it, why its rows are not needed). A restore of such a backup skips
/// them; every other change of the schema since [`RESTORES_FROM`] only added tables or columns
/// with defaults, so older backups restore into the current schema.
pub const DROPPED: &[(&str, i64, &str)] = &[(
    "dns_generations",
    30,
    "per-view change counters nothing reads: served serials follow the zones' content",
)];

/// The oldest schema version whose backups this Postern restores.
pub const RESTORES_FROM: i64 = 24;

/// Why `table` of a backup made at schema `version` is skipped at restore, if it is.
pub(crate) fn dropped_since(table: &str, version: i64) -> Option<&'static str> {
    DROPPED
        .iter()
        .find(|(t, v, _)| *t == table && version < *v)
        .map(|(_, _, why)| *why)
}

/// How `table` is covered, or `None` for a table backup does not know.
pub fn coverage(table: &str) -> Option<Coverage> {
    TABLES.iter().find(|(t, _)| *t == table).map(|(_, c)| *c)
}

/// The type of a column's values, the same on both backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    /// INTEGER / BIGINT.
    Int,
    /// TEXT.
    Text,
    /// BLOB / BYTEA.
    Bytes,
}

impl Kind {
    fn of_declared(table: &str, column: &str, declared: &str) -> Result<Kind> {
        let t = declared.to_ascii_lowercase();
        if t.contains("int") {
            Ok(Kind::Int)
        } else if t.contains("text") || t.contains("char") {
            Ok(Kind::Text)
        } else if t.contains("blob") || t.contains("bytea") {
            Ok(Kind::Bytes)
        } else {
            Err(StoreError::Backup(format!(
                "column {table}.{column} has type {declared:?}, which backup does not handle"
            )))
        }
    }
}

/// One column of a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Column {
    pub name: String,
    pub kind: Kind,
}

/// Quotes an identifier for SQL (both dialects use double quotes).
pub(crate) fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The user tables of the schema the connection of `tx` sees, sorted.
pub(crate) async fn tables(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
) -> Result<Vec<String>> {
    let sql = match backend {
        Backend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
        }
        Backend::Postgres => {
            "SELECT table_name::text AS name FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1"
        }
    };
    let rows = sqlx::query(sql).fetch_all(&mut **tx).await?;
    rows.iter().map(|r| get(r, "name")).collect()
}

/// The tables of the schema that [`TABLES`] does not name; a backup or restore refuses to run
/// while there are any.
pub(crate) async fn uncovered(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
) -> Result<Vec<String>> {
    Ok(tables(tx, backend)
        .await?
        .into_iter()
        .filter(|t| coverage(t).is_none())
        .collect())
}

/// Fails naming the first table backup does not cover.
pub(crate) async fn check_covered(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
) -> Result<()> {
    match uncovered(tx, backend).await?.first() {
        None => Ok(()),
        Some(t) => Err(StoreError::Backup(format!(
            "table {t} is in the schema but not in backup's table list \
             (postern_store::backup::TABLES): refusing to make or restore a backup that would \
             leave it out"
        ))),
    }
}

/// The columns of `table` in their declared order.
pub(crate) async fn columns(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    table: &str,
) -> Result<Vec<Column>> {
    let sql = match backend {
        Backend::Sqlite => "SELECT name, type AS decl FROM pragma_table_info($1) ORDER BY cid",
        Backend::Postgres => {
            "SELECT column_name::text AS name, data_type::text AS decl FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position"
        }
    };
    let rows = sqlx::query(sql).bind(table).fetch_all(&mut **tx).await?;
    rows.iter()
        .map(|r| {
            let name: String = get(r, "name")?;
            let decl: String = get(r, "decl")?;
            let kind = Kind::of_declared(table, &name, &decl)?;
            Ok(Column { name, kind })
        })
        .collect()
}

/// The highest migration applied.
pub(crate) async fn schema_version(tx: &mut Transaction<'static, Any>) -> Result<i64> {
    let row = sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM _sqlx_migrations")
        .fetch_one(&mut **tx)
        .await?;
    get(&row, "v")
}

/// The identity columns (PostgreSQL) or AUTOINCREMENT tables (SQLite, column `id`) and the last
/// value each has handed out, by table.
pub(crate) async fn sequences(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
) -> Result<BTreeMap<String, i64>> {
    let sql = match backend {
        Backend::Sqlite => "SELECT name, seq FROM sqlite_sequence",
        Backend::Postgres => {
            "SELECT c.table_name::text AS name, COALESCE(s.last_value, 0) AS seq \
             FROM information_schema.columns c JOIN pg_sequences s \
             ON s.schemaname || '.' || s.sequencename = \
                pg_get_serial_sequence(quote_ident(c.table_name), c.column_name) \
             WHERE c.table_schema = current_schema() AND c.is_identity = 'YES'"
        }
    };
    let rows = sqlx::query(sql).fetch_all(&mut **tx).await?;
    rows.iter()
        .map(|r| Ok((get(r, "name")?, get(r, "seq")?)))
        .collect()
}

/// Moves the sequence of every table with one past both the highest id restored and the last
/// value the source had handed out (`seen`), so new rows never reuse an id.
pub(crate) async fn advance_sequences(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    seen: &BTreeMap<String, i64>,
) -> Result<()> {
    match backend {
        Backend::Postgres => {
            let rows = sqlx::query(
                "SELECT table_name::text AS t, column_name::text AS c FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND is_identity = 'YES'",
            )
            .fetch_all(&mut **tx)
            .await?;
            for row in rows {
                let (table, col): (String, String) = (get(&row, "t")?, get(&row, "c")?);
                let sql = format!(
                    "SELECT setval(pg_get_serial_sequence($1, $2), GREATEST(MAX({c}), $3)) AS v \
                     FROM {t} HAVING GREATEST(MAX({c}), $3) >= 1",
                    c = quoted(&col),
                    t = quoted(&table),
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(quoted(&table))
                    .bind(&col)
                    .bind(seen.get(&table).copied().unwrap_or(0))
                    .fetch_optional(&mut **tx)
                    .await?;
            }
        }
        Backend::Sqlite => {
            for (table, seq) in seen {
                let updated =
                    sqlx::query("UPDATE sqlite_sequence SET seq = MAX(seq, $2) WHERE name = $1")
                        .bind(table)
                        .bind(seq)
                        .execute(&mut **tx)
                        .await?
                        .rows_affected();
                if updated == 0 {
                    sqlx::query("INSERT INTO sqlite_sequence (name, seq) VALUES ($1, $2)")
                        .bind(table)
                        .bind(seq)
                        .execute(&mut **tx)
                        .await?;
                }
            }
        }
    }
    Ok(())
}
