//! Restoring a backup into an empty store, on either backend, in one transaction.
//!
//! Tables go in parent-first order ([`TABLES`]), blobs first. Rows are inserted in batches; a
//! batch the database refuses (a row whose parent or blob is missing from a damaged backup) is
//! retried row by row under savepoints, so every good row is restored and every bad one is
//! reported by file and line. Blob bytes are checked against their hash before they go in.
//! A backup made by an older schema (from [`schema::RESTORES_FROM`] on) restores too, without
//! the tables dropped since ([`schema::DROPPED`]).

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use sqlx::{Any, Transaction};

use super::manifest::{self, io_err, sum_file, Found, TableEntry, NEEDED_LIST};
use super::schema::{self, quoted, Coverage, Kind, TABLES};
use super::value::Value;
use crate::blobs::BLOB_CHUNK_SIZE;
use crate::db::Store;
use crate::error::{Result, StoreError};

/// What `postern restore` did.
#[derive(Debug, Clone)]
pub struct RestoreReport {
    /// The backup restored (the newest one when a directory of backups was given).
    pub backup: PathBuf,
    /// Rows restored, over all tables (blobs included).
    pub rows: u64,
    /// What could not be restored, each naming the file, line or blob; empty when everything
    /// was.
    pub problems: Vec<String>,
}

/// Rows per INSERT, and bytes of values per INSERT, whichever is reached first.
const BATCH_ROWS: usize = 200;
const BATCH_BYTES: usize = 4 << 20;

impl Store {
    /// Restores the backup at `path` (one backup's directory, or a directory of backups: then
    /// the newest) with the parents it builds on into this store, which must be empty and at the
    /// same schema version. Damaged items are skipped and listed in the report; everything else
    /// is restored.
    pub async fn restore(&self, path: &Path) -> Result<RestoreReport> {
        let newest = manifest::list(path)?
            .pop()
            .ok_or_else(|| StoreError::Backup(format!("no backup in {}", path.display())))?;
        let chain = manifest::chain(&newest.dir)?;
        let top = &chain[0];
        let mut tx = self.write_tx().await?;
        schema::check_covered(&mut tx, self.backend).await?;
        let version = schema::schema_version(&mut tx).await?;
        if let Some(other) = chain
            .iter()
            .find(|f| f.manifest.schema_version != top.manifest.schema_version)
        {
            return Err(StoreError::Backup(format!(
                "{} builds on {}, which is of another schema version ({} and {})",
                top.manifest.name,
                other.manifest.name,
                top.manifest.schema_version,
                other.manifest.schema_version
            )));
        }
        let made_at = top.manifest.schema_version;
        if !(schema::RESTORES_FROM..=version).contains(&made_at) {
            return Err(StoreError::Backup(format!(
                "{} is of schema version {made_at}, this Postern's store is at {version} and \
                 restores backups from version {} on: restore with the Postern release that \
                 made it",
                top.dir.display(),
                schema::RESTORES_FROM
            )));
        }
        self.check_target(&mut tx, &top.manifest.tables, made_at)
            .await?;
        let mut problems = Vec::new();
        for (file, sum) in &top.manifest.files {
            match sum_file(&top.dir.join(file)) {
                Ok(found) if found == *sum => {}
                Ok(found) => problems.push(format!(
                    "{file}: damaged or truncated ({} bytes, the manifest says {}; SHA-256 differs)",
                    found.bytes, sum.bytes
                )),
                Err(e) => problems.push(format!("{file}: {e}")),
            }
        }
        let mut rows = 0;
        for (table, coverage) in TABLES {
            let Some(entry) = top.manifest.tables.iter().find(|t| t.name == *table) else {
                continue;
            };
            let mut loader = Loader {
                tx: &mut tx,
                entry,
                backup: top,
                problems: &mut problems,
                rows: 0,
            };
            match coverage {
                Coverage::Rows => loader.rows().await?,
                Coverage::Blobs => loader.blobs(&chain).await?,
                Coverage::BlobChunks | Coverage::Skipped(_) => continue,
            }
            rows += loader.rows;
        }
        schema::advance_sequences(&mut tx, self.backend, &top.manifest.sequences).await?;
        tx.commit().await?;
        if self.backend == crate::db::Backend::Sqlite {
            // The whole store went through the WAL in one transaction: copy it into the database
            // file now rather than leave a WAL as large as the database until the next checkpoint.
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.pool)
                .await?;
        }
        // The search index is derived from the blobs and not in the backup: rebuild it.
        self.index_backlog().await?;
        Ok(RestoreReport {
            backup: top.dir.clone(),
            rows,
            problems,
        })
    }

    /// Fails unless every covered table is empty and has at least the backup's columns (made at
    /// schema version `made_at`: its tables dropped since are left out, [`schema::DROPPED`]).
    async fn check_target(
        &self,
        tx: &mut Transaction<'static, Any>,
        tables: &[TableEntry],
        made_at: i64,
    ) -> Result<()> {
        let present: HashSet<String> = schema::tables(tx, self.backend)
            .await?
            .into_iter()
            .collect();
        for (table, coverage) in TABLES {
            if matches!(coverage, Coverage::Skipped(_)) || !present.contains(*table) {
                continue;
            }
            let sql = format!("SELECT 1 AS one FROM {} LIMIT 1", quoted(table));
            if sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_optional(&mut **tx)
                .await?
                .is_some()
            {
                return Err(StoreError::Backup(format!(
                    "the store is not empty (table {table} has rows): restore only into a new, \
                     empty database"
                )));
            }
        }
        for entry in tables {
            if schema::dropped_since(&entry.name, made_at).is_some() {
                continue;
            }
            if !matches!(
                schema::coverage(&entry.name),
                Some(Coverage::Rows | Coverage::Blobs)
            ) || !present.contains(&entry.name)
            {
                return Err(StoreError::Backup(format!(
                    "the backup holds table {}, which this Postern does not restore",
                    entry.name
                )));
            }
            let columns = schema::columns(tx, self.backend, &entry.name).await?;
            for c in &entry.columns {
                if !columns.contains(c) {
                    return Err(StoreError::Backup(format!(
                        "the backup's column {}.{} ({:?}) is not in this store's schema",
                        entry.name, c.name, c.kind
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Restores one table.
struct Loader<'a> {
    tx: &'a mut Transaction<'static, Any>,
    entry: &'a TableEntry,
    /// The backup restored (the first of its chain).
    backup: &'a Found,
    problems: &'a mut Vec<String>,
    rows: u64,
}

/// One row read from a table file: where it came from and its values.
struct Line {
    at: String,
    values: Vec<Value>,
}

impl Loader<'_> {
    /// Restores a table of rows.
    async fn rows(&mut self) -> Result<()> {
        let names: Vec<String> = self.entry.columns.iter().map(|c| c.name.clone()).collect();
        let mut batch = Batch::new(&self.entry.name, names);
        let mut lines = Lines::open(self.backup, self.entry, self.problems);
        while let Some(line) = lines.next(self.problems)? {
            if batch.push(line) {
                self.rows += batch.flush(self.tx, self.problems).await?;
            }
        }
        self.rows += batch.flush(self.tx, self.problems).await?;
        Ok(())
    }

    /// Restores the `blobs` table: every blob the snapshot needs, each from the backup of
    /// `chain` that holds its row and file, its bytes checked against its hash.
    async fn blobs(&mut self, chain: &[Found]) -> Result<()> {
        let columns = &self.entry.columns;
        let at = |name: &str| columns.iter().position(|c| c.name == name);
        let (Some(hash_at), Some(size_at), Some(chunked_at)) =
            (at("hash"), at("size"), at("chunked"))
        else {
            return Err(StoreError::Backup(
                "the backup's blobs table lacks its hash, size or chunked column".to_owned(),
            ));
        };
        let mut needed = HashSet::new();
        manifest::read_hashes(&self.backup.dir, NEEDED_LIST, &mut needed)?;
        let mut tried = HashSet::new();
        let mut names: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
        names.push("data".to_owned());
        let mut batch = Batch::new("blobs", names);
        for found in chain {
            let Some(entry) = found.manifest.tables.iter().find(|t| t.name == "blobs") else {
                continue;
            };
            if entry.columns != *columns {
                return Err(StoreError::Backup(format!(
                    "{}: its blobs table has other columns than {}",
                    found.manifest.name, self.backup.manifest.name
                )));
            }
            let mut lines = Lines::open(found, entry, self.problems);
            while let Some(mut line) = lines.next(self.problems)? {
                let (Value::Text(Some(hash)), Value::Int(Some(size))) =
                    (&line.values[hash_at], &line.values[size_at])
                else {
                    self.problems
                        .push(format!("{}: blob without hash or size", line.at));
                    continue;
                };
                let (hash, size) = (hash.clone(), *size);
                if !needed.contains(&hash) || !tried.insert(hash.clone()) {
                    continue;
                }
                let file = found.dir.join(manifest::blob_path(&hash));
                let chunked = usize::try_from(size).map_or(true, |s| s > BLOB_CHUNK_SIZE);
                let inline = match check_blob(&file, &hash, size, !chunked) {
                    Ok(inline) => inline,
                    Err(reason) => {
                        self.problems
                            .push(format!("blob {hash} ({}): {reason}", file.display()));
                        continue;
                    }
                };
                line.values[chunked_at] = Value::Int(Some(i64::from(chunked)));
                line.values.push(Value::Bytes(Some(inline)));
                if batch.push(line) {
                    self.rows += batch.flush(self.tx, self.problems).await?;
                }
                if chunked {
                    insert_chunks(self.tx, &hash, &file).await?;
                }
            }
        }
        self.rows += batch.flush(self.tx, self.problems).await?;
        let mut missing: Vec<&String> = needed.difference(&tried).collect();
        missing.sort();
        for hash in missing {
            self.problems
                .push(format!("blob {hash}: held by no backup of the chain"));
        }
        Ok(())
    }
}

/// Checks that the file of blob `hash` holds `size` bytes hashing to `hash`; returns the bytes
/// when `keep` (a blob stored inline, at most one chunk) and nothing otherwise.
fn check_blob(
    path: &Path,
    hash: &str,
    size: i64,
    keep: bool,
) -> std::result::Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let limit = u64::try_from(size).unwrap_or(0) + 1;
    let mut reader = file.take(limit);
    let mut hasher = Sha256::new();
    let mut kept = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut len = 0u64;
    loop {
        let n = reader.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        len += n as u64;
        if keep {
            kept.extend_from_slice(&buf[..n]);
        }
    }
    if len != u64::try_from(size).unwrap_or(0) {
        return Err(format!(
            "{len} bytes, expected {size} (truncated or damaged)"
        ));
    }
    if hex::encode(hasher.finalize()) != hash {
        return Err("its bytes do not match its SHA-256 (damaged)".to_owned());
    }
    Ok(kept)
}

/// Writes the chunks of a large blob from its (checked) file, one chunk in memory at a time.
async fn insert_chunks(tx: &mut Transaction<'static, Any>, hash: &str, path: &Path) -> Result<()> {
    let mut file = std::fs::File::open(path).map_err(|e| io_err(path, e))?;
    for seq in 0i64.. {
        let mut chunk = Vec::with_capacity(BLOB_CHUNK_SIZE);
        (&mut file)
            .take(BLOB_CHUNK_SIZE as u64)
            .read_to_end(&mut chunk)
            .map_err(|e| io_err(path, e))?;
        if chunk.is_empty() {
            break;
        }
        sqlx::query("INSERT INTO blob_chunks (hash, seq, data) VALUES ($1, $2, $3)")
            .bind(hash)
            .bind(seq)
            .bind(chunk)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// The rows of one table file, read one line at a time.
struct Lines {
    /// `None` once the file is read (or could not be opened).
    reader: Option<BufReader<std::fs::File>>,
    file: String,
    kinds: Vec<Kind>,
    id_at: Option<usize>,
    expected: u64,
    line: u64,
    good: u64,
}

impl Lines {
    fn open(backup: &Found, entry: &TableEntry, problems: &mut Vec<String>) -> Lines {
        let file = format!("{}/{}", backup.manifest.name, entry.file());
        let path = backup.dir.join(entry.file());
        let reader = match std::fs::File::open(&path) {
            Ok(f) => Some(BufReader::new(f)),
            Err(e) => {
                problems.push(format!(
                    "{file}: {e}; none of its {} rows restored",
                    entry.rows
                ));
                None
            }
        };
        Lines {
            reader,
            file,
            kinds: entry.columns.iter().map(|c| c.kind).collect(),
            id_at: entry.columns.iter().position(|c| c.name == "id"),
            expected: entry.rows,
            line: 0,
            good: 0,
        }
    }

    /// The next well-formed row; bad lines are reported and skipped, and at the end of the file
    /// a shortfall against the manifest's row count is reported.
    fn next(&mut self, problems: &mut Vec<String>) -> Result<Option<Line>> {
        let mut buf = Vec::new();
        loop {
            let Some(reader) = self.reader.as_mut() else {
                return Ok(None);
            };
            buf.clear();
            let n = reader
                .read_until(b'\n', &mut buf)
                .map_err(|e| StoreError::Backup(format!("{}: {e}", self.file)))?;
            if n == 0 {
                self.reader = None;
                if self.good < self.expected {
                    problems.push(format!(
                        "{}: {} of {} rows present (truncated)",
                        self.file, self.good, self.expected
                    ));
                }
                return Ok(None);
            }
            self.line += 1;
            let at = format!("{} line {}", self.file, self.line);
            if buf.last() != Some(&b'\n') {
                problems.push(format!("{at}: cut off (the file is truncated)"));
                continue;
            }
            match self.parse(&buf) {
                Some(values) => {
                    self.good += 1;
                    let at = match self.id_at.map(|i| &values[i]) {
                        Some(Value::Int(Some(id))) => format!("{at} (id {id})"),
                        _ => at,
                    };
                    return Ok(Some(Line { at, values }));
                }
                None => problems.push(format!("{at}: not a row of this table")),
            }
        }
    }

    fn parse(&self, line: &[u8]) -> Option<Vec<Value>> {
        let json: Vec<serde_json::Value> = serde_json::from_slice(line).ok()?;
        if json.len() != self.kinds.len() {
            return None;
        }
        json.into_iter()
            .zip(&self.kinds)
            .map(|(v, k)| Value::from_json(v, *k))
            .collect()
    }
}

/// Rows waiting to be inserted into one table with one multi-row INSERT.
struct Batch {
    table: String,
    columns: Vec<String>,
    lines: Vec<Line>,
    weight: usize,
}

impl Batch {
    fn new(table: &str, columns: Vec<String>) -> Batch {
        Batch {
            table: table.to_owned(),
            columns,
            lines: Vec::new(),
            weight: 0,
        }
    }

    /// Adds a row; true when the batch is full and should be flushed.
    fn push(&mut self, line: Line) -> bool {
        self.weight += line.values.iter().map(Value::weight).sum::<usize>();
        self.lines.push(line);
        self.lines.len() >= BATCH_ROWS || self.weight >= BATCH_BYTES
    }

    fn insert_sql(&self, rows: usize) -> String {
        let width = self.columns.len();
        let tuples: Vec<String> = (0..rows)
            .map(|r| {
                let params: Vec<String> =
                    (1..=width).map(|c| format!("${}", r * width + c)).collect();
                format!("({})", params.join(", "))
            })
            .collect();
        let names: Vec<String> = self.columns.iter().map(|c| quoted(c)).collect();
        format!(
            "INSERT INTO {} ({}) VALUES {}",
            quoted(&self.table),
            names.join(", "),
            tuples.join(", ")
        )
    }

    /// Inserts the rows; returns how many went in. Rows the database refuses are reported.
    async fn flush(
        &mut self,
        tx: &mut Transaction<'static, Any>,
        problems: &mut Vec<String>,
    ) -> Result<u64> {
        let lines = std::mem::take(&mut self.lines);
        self.weight = 0;
        if lines.is_empty() {
            return Ok(0);
        }
        sql(tx, "SAVEPOINT restore_batch").await?;
        let mut query = sqlx::query(sqlx::AssertSqlSafe(self.insert_sql(lines.len())));
        for line in &lines {
            for value in &line.values {
                query = value.clone().bind(query);
            }
        }
        let batch = query.execute(&mut **tx).await;
        if batch.is_ok() {
            sql(tx, "RELEASE SAVEPOINT restore_batch").await?;
            return Ok(lines.len() as u64);
        }
        sql(tx, "ROLLBACK TO SAVEPOINT restore_batch").await?;
        let one = self.insert_sql(1);
        let mut inserted = 0;
        for line in lines {
            sql(tx, "SAVEPOINT restore_row").await?;
            let mut query = sqlx::query(sqlx::AssertSqlSafe(one.clone()));
            for value in line.values {
                query = value.bind(query);
            }
            match query.execute(&mut **tx).await {
                Ok(_) => inserted += 1,
                Err(e) => {
                    sql(tx, "ROLLBACK TO SAVEPOINT restore_row").await?;
                    problems.push(format!("{}: not restored: {e}", line.at));
                }
            }
            sql(tx, "RELEASE SAVEPOINT restore_row").await?;
        }
        sql(tx, "RELEASE SAVEPOINT restore_batch").await?;
        Ok(inserted)
    }
}

async fn sql(tx: &mut Transaction<'static, Any>, statement: &'static str) -> Result<()> {
    sqlx::query(statement).execute(&mut **tx).await?;
    Ok(())
}
