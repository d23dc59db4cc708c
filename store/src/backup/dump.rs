//! Writing a backup: one consistent snapshot of every covered table and of the blob bytes.
//!
//! The snapshot is one transaction on one connection. On PostgreSQL it is `REPEATABLE READ READ
//! ONLY`, so every query sees the database as of the first one. On SQLite it is a deferred
//! read transaction: in WAL mode a reader keeps the snapshot of its first read until it ends,
//! while writers go on appending to the WAL (they are never blocked; only checkpoints wait). This
//! was chosen over `VACUUM INTO` and the online-backup API because it streams rows and blobs
//! straight into the backup format (no second copy of the database on disk, and a level-N backup
//! skips blobs it does not need), and it is the same code on both backends.

use std::collections::HashSet;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use futures_util::TryStreamExt;
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::manifest::{
    self, io_err, FileSum, Manifest, Summing, TableEntry, BLOB_LIST, FORMAT, NEEDED_LIST,
};
use super::schema::{self, quoted, Column, Coverage, TABLES};
use super::value::to_json;
use crate::db::{Backend, Store};
use crate::error::{Result, StoreError};

/// What `postern backup` made.
#[derive(Debug, Clone)]
pub struct BackupSummary {
    /// The new backup's directory.
    pub dir: PathBuf,
    /// Its dump level.
    pub level: u32,
    /// The backup it builds on (for level > 0).
    pub parent: Option<String>,
    /// Tables written.
    pub tables: usize,
    /// Rows written, over all tables.
    pub rows: u64,
    /// Blob files written (the blobs its parents lack).
    pub blobs: u64,
    /// Bytes in those files.
    pub blob_bytes: u64,
}

impl Store {
    /// Writes a backup of level `level` into a new directory under `root`: a consistent snapshot
    /// of every table (see [`super::schema::TABLES`]) taken while the store keeps serving, plus
    /// the blob files that the chain of lower-level backups it builds on lacks (all of them at
    /// level 0). Nothing appears under `root` unless the whole backup succeeded.
    pub async fn backup(&self, root: &Path, level: u32) -> Result<BackupSummary> {
        std::fs::create_dir_all(root).map_err(|e| io_err(root, e))?;
        let existing = manifest::list(root)?;
        let parent = match level {
            0 => None,
            _ => Some(
                existing
                    .iter()
                    .rev()
                    .find(|f| f.manifest.level < level)
                    .ok_or_else(|| {
                        StoreError::Backup(format!(
                            "no backup of a level below {level} in {}: make a level 0 backup first",
                            root.display()
                        ))
                    })?,
            ),
        };
        let mut known = HashSet::new();
        if let Some(parent) = parent {
            for found in manifest::chain(&parent.dir)? {
                manifest::read_hashes(&found.dir, BLOB_LIST, &mut known)?;
            }
        }
        let serial = existing.last().map_or(0, |f| f.manifest.serial) + 1;
        let created_at = crate::unix_now();
        let name = format!("{serial:05}-level-{level}-{}", stamp(created_at));
        let partial = root.join(format!(".partial-{name}"));
        let mut manifest = Manifest {
            format: FORMAT,
            name: name.clone(),
            serial,
            level,
            created_at,
            backend: match self.backend {
                Backend::Sqlite => "sqlite",
                Backend::Postgres => "postgres",
            }
            .to_owned(),
            schema_version: 0,
            parent: parent.map(|p| p.manifest.name.clone()),
            tables: Vec::new(),
            sequences: Default::default(),
            blobs: 0,
            blob_bytes: 0,
            files: Default::default(),
        };
        let written = match self.snapshot(&partial, &known, &mut manifest).await {
            Ok(()) => finish(&partial, &root.join(&name), &manifest),
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(e);
        }
        Ok(BackupSummary {
            dir: root.join(&name),
            level,
            parent: manifest.parent,
            tables: manifest.tables.len(),
            rows: manifest.tables.iter().map(|t| t.rows).sum(),
            blobs: manifest.blobs,
            blob_bytes: manifest.blob_bytes,
        })
    }

    /// Reads everything in one transaction into `dir`, filling in `manifest`.
    async fn snapshot(
        &self,
        dir: &Path,
        known: &HashSet<String>,
        manifest: &mut Manifest,
    ) -> Result<()> {
        for sub in ["tables", "blobs"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(|e| io_err(dir, e))?;
        }
        let mut tx = match self.backend {
            Backend::Sqlite => self.pool.begin().await?,
            Backend::Postgres => {
                self.pool
                    .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?
            }
        };
        manifest.schema_version = schema::schema_version(&mut tx).await?;
        schema::check_covered(&mut tx, self.backend).await?;
        let present: HashSet<String> = schema::tables(&mut tx, self.backend)
            .await?
            .into_iter()
            .collect();
        let mut blobs = BlobFiles {
            dir,
            known,
            written: Vec::new(),
            seen: HashSet::new(),
            bytes: 0,
        };
        for (table, coverage) in TABLES {
            if !present.contains(*table)
                || matches!(coverage, Coverage::BlobChunks | Coverage::Skipped(_))
            {
                continue;
            }
            let mut columns = schema::columns(&mut tx, self.backend, table).await?;
            let file = manifest::table_file(table);
            let rows = match coverage {
                Coverage::Rows => dump_rows(&mut tx, table, &columns, &dir.join(&file)).await?,
                Coverage::Blobs => {
                    columns.retain(|c| c.name != "data");
                    let (rows, sum, needed) =
                        dump_blobs(&mut tx, &columns, &dir.join(&file), &mut blobs).await?;
                    manifest.files.insert(NEEDED_LIST.to_owned(), needed);
                    (rows, sum)
                }
                Coverage::BlobChunks | Coverage::Skipped(_) => continue,
            };
            manifest.files.insert(file, rows.1);
            manifest.tables.push(TableEntry {
                name: (*table).to_owned(),
                columns,
                rows: rows.0,
            });
        }
        manifest.sequences = schema::sequences(&mut tx, self.backend).await?;
        tx.commit().await?;
        manifest.blobs = blobs.written.len() as u64;
        manifest.blob_bytes = blobs.bytes;
        let list = dir.join(BLOB_LIST);
        let mut out = Summing::new(BufWriter::new(create(&list)?));
        for hash in &blobs.written {
            writeln!(out, "{hash}").map_err(|e| io_err(&list, e))?;
        }
        manifest.files.insert(
            BLOB_LIST.to_owned(),
            out.finish().map_err(|e| io_err(&list, e))?,
        );
        Ok(())
    }
}

/// Writes the manifest, makes everything durable and moves the backup into place.
fn finish(partial: &Path, target: &Path, manifest: &Manifest) -> Result<()> {
    let path = partial.join("manifest.json");
    let json = serde_json::to_vec_pretty(manifest)
        .map_err(|e| StoreError::Backup(format!("encoding the manifest: {e}")))?;
    std::fs::write(&path, json).map_err(|e| io_err(&path, e))?;
    sync_filesystem(partial)?;
    std::fs::rename(partial, target).map_err(|e| io_err(target, e))?;
    let root = target.parent().unwrap_or(Path::new("."));
    std::fs::File::open(root)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(root, e))
}

/// Flushes every file written to the file system holding `dir` to disk, in one call instead of
/// one fsync per blob file.
fn sync_filesystem(dir: &Path) -> Result<()> {
    use std::os::fd::AsRawFd;
    let handle = std::fs::File::open(dir).map_err(|e| io_err(dir, e))?;
    // SAFETY: syncfs only reads the descriptor, which `handle` keeps open during the call.
    if unsafe { libc::syncfs(handle.as_raw_fd()) } != 0 {
        return Err(io_err(dir, std::io::Error::last_os_error()));
    }
    Ok(())
}

/// `YYYYMMDDTHHMMSSZ` of Unix time `secs`.
fn stamp(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .map(|s| s.replace(['-', ':'], ""))
        .unwrap_or_else(|| secs.to_string())
}

fn create(path: &Path) -> Result<std::fs::File> {
    std::fs::File::create(path).map_err(|e| io_err(path, e))
}

fn select(table: &str, columns: &[Column], extra: &str) -> String {
    let mut names: Vec<String> = columns.iter().map(|c| quoted(&c.name)).collect();
    if !extra.is_empty() {
        names.push(extra.to_owned());
    }
    format!("SELECT {} FROM {}", names.join(", "), quoted(table))
}

/// Streams every row of `table` into `path`; returns the row count and the file's sum.
async fn dump_rows(
    tx: &mut Transaction<'static, Any>,
    table: &str,
    columns: &[Column],
    path: &Path,
) -> Result<(u64, FileSum)> {
    let mut out = Summing::new(BufWriter::new(create(path)?));
    let sql = select(table, columns, "");
    let mut stream = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch(&mut **tx);
    let mut rows = 0;
    while let Some(row) = stream.try_next().await? {
        write_row(&mut out, &row, columns, path)?;
        rows += 1;
    }
    Ok((rows, out.finish().map_err(|e| io_err(path, e))?))
}

/// Writes the first `columns.len()` columns of `row` as one line of JSON to `out` (the file at
/// `path`).
fn write_row(out: &mut impl Write, row: &AnyRow, columns: &[Column], path: &Path) -> Result<()> {
    let values = columns
        .iter()
        .enumerate()
        .map(|(i, c)| to_json(row, i, c.kind))
        .collect::<Result<Vec<_>>>()?;
    serde_json::to_writer(&mut *out, &values)
        .map_err(std::io::Error::from)
        .and_then(|()| out.write_all(b"\n"))
        .map_err(|e| io_err(path, e))
}

/// The blob files of the backup being written.
struct BlobFiles<'a> {
    dir: &'a Path,
    /// Hashes the parent backups hold.
    known: &'a HashSet<String>,
    /// Hashes written here, in order.
    written: Vec<String>,
    seen: HashSet<String>,
    bytes: u64,
}

impl BlobFiles<'_> {
    /// Whether the blob `hash` must be written here (and marks it as written).
    fn wanted(&mut self, hash: &str) -> bool {
        !self.known.contains(hash) && self.seen.insert(hash.to_owned())
    }

    /// Opens the file for `hash`.
    fn create(&mut self, hash: &str) -> Result<(PathBuf, std::fs::File)> {
        if !manifest::valid_hash(hash) {
            return Err(StoreError::Backup(format!(
                "stored blob key {hash:?} is not a SHA-256"
            )));
        }
        let path = self.dir.join(manifest::blob_path(hash));
        if let Some(sub) = path.parent() {
            std::fs::create_dir_all(sub).map_err(|e| io_err(sub, e))?;
        }
        Ok((path.clone(), create(&path)?))
    }

    /// Records a complete file whose bytes hashed to `digest`.
    fn done(&mut self, hash: &str, digest: &[u8], len: u64) -> Result<()> {
        if hex::encode(digest) != hash {
            return Err(StoreError::Backup(format!(
                "stored blob {hash} does not match its hash: the database is damaged"
            )));
        }
        self.written.push(hash.to_owned());
        self.bytes += len;
        Ok(())
    }
}

/// Streams the hash of every blob into [`NEEDED_LIST`], and the rows (without `data`) and bytes
/// of the blobs the parents lack into `path` and their files; chunked blobs are read afterwards,
/// one chunk at a time. Returns the rows written and the sums of both files.
async fn dump_blobs(
    tx: &mut Transaction<'static, Any>,
    columns: &[Column],
    path: &Path,
    files: &mut BlobFiles<'_>,
) -> Result<(u64, FileSum, FileSum)> {
    let at = |name: &str| columns.iter().position(|c| c.name == name);
    let (Some(hash_at), Some(chunked_at)) = (at("hash"), at("chunked")) else {
        return Err(StoreError::Backup(
            "table blobs lacks its hash or chunked column".to_owned(),
        ));
    };
    let mut out = Summing::new(BufWriter::new(create(path)?));
    let needed_path = files.dir.join(NEEDED_LIST);
    let mut needed = Summing::new(BufWriter::new(create(&needed_path)?));
    let sql = select("blobs", columns, "data");
    let mut chunked = Vec::new();
    let mut rows = 0;
    {
        let mut stream = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch(&mut **tx);
        while let Some(row) = stream.try_next().await? {
            let hash: String = row.try_get(hash_at)?;
            writeln!(needed, "{hash}").map_err(|e| io_err(&needed_path, e))?;
            if !files.wanted(&hash) {
                continue;
            }
            write_row(&mut out, &row, columns, path)?;
            rows += 1;
            if row.try_get::<i64, _>(chunked_at)? != 0 {
                chunked.push(hash);
                continue;
            }
            let data: Vec<u8> = row.try_get(columns.len())?;
            let (file_path, mut file) = files.create(&hash)?;
            file.write_all(&data).map_err(|e| io_err(&file_path, e))?;
            files.done(&hash, &Sha256::digest(&data), data.len() as u64)?;
        }
    }
    for hash in chunked {
        let (file_path, mut file) = files.create(&hash)?;
        let mut hasher = Sha256::new();
        let mut len = 0u64;
        let mut stream = sqlx::query("SELECT data FROM blob_chunks WHERE hash = $1 ORDER BY seq")
            .bind(&hash)
            .fetch(&mut **tx);
        while let Some(row) = stream.try_next().await? {
            let data: Vec<u8> = row.try_get(0)?;
            hasher.update(&data);
            len += data.len() as u64;
            file.write_all(&data).map_err(|e| io_err(&file_path, e))?;
        }
        drop(stream);
        files.done(&hash, &hasher.finalize(), len)?;
    }
    Ok((
        rows,
        out.finish().map_err(|e| io_err(path, e))?,
        needed.finish().map_err(|e| io_err(&needed_path, e))?,
    ))
}
