//! The on-disk layout of a backup directory and its manifest.
//!
//! ```text
//! DIR/00001-level-0-20261207T031500Z/manifest.json   what the backup holds (written last)
//!                                    tables/T.jsonl  rows of table T, one JSON array per line
//!                                    blobs.txt       hashes of the blob files this backup holds
//!                                    blobs/ab/ab12…  message bytes, one file per SHA-256
//!                                    needed.txt      hashes of every blob of the snapshot
//! ```
//!
//! A backup is built in `DIR/.partial-…` and renamed into place once complete, so a listed
//! backup is never half written. A level-N backup (N > 0) names as parent the newest backup of a
//! lower level and holds only the blobs its chain of parents lacks (dump levels as in Amanda or
//! dump(8)): their files and their rows of `tables/blobs.jsonl` (a blob's row never changes);
//! `needed.txt` says which blobs of the chain it uses. Its other tables are always complete.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::schema::Column;
use crate::error::{Result, StoreError};

/// Version of the layout and manifest this code writes and reads.
pub(crate) const FORMAT: u32 = 1;

/// What a backup holds, written as `manifest.json` once everything else is on disk.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Manifest {
    /// [`FORMAT`].
    pub format: u32,
    /// The directory name of this backup.
    pub name: String,
    /// Position in the sequence of backups in the same directory (1, 2, ...).
    pub serial: u64,
    /// Dump level: 0 holds every blob, N holds the blobs its parents lack.
    pub level: u32,
    /// Unix seconds at the start of the snapshot.
    pub created_at: i64,
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// The highest migration applied to the source schema.
    pub schema_version: i64,
    /// The backup (directory name, same parent directory) whose blobs this one builds on.
    pub parent: Option<String>,
    /// Tables in restore order, with their columns and row counts.
    pub tables: Vec<TableEntry>,
    /// Last id handed out per table with an identity/AUTOINCREMENT column.
    pub sequences: BTreeMap<String, i64>,
    /// Blob files this backup holds, and their total size.
    pub blobs: u64,
    /// Bytes in those files.
    pub blob_bytes: u64,
    /// SHA-256 and size of every other file (`tables/…`, `blobs.txt`), by relative path.
    pub files: BTreeMap<String, FileSum>,
}

/// One table of a backup.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct TableEntry {
    pub name: String,
    pub columns: Vec<Column>,
    pub rows: u64,
}

impl TableEntry {
    /// Relative path of the table's rows.
    pub fn file(&self) -> String {
        table_file(&self.name)
    }
}

/// Relative path of a table's rows.
pub(crate) fn table_file(table: &str) -> String {
    format!("tables/{table}.jsonl")
}

/// SHA-256 (hex) and length of a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileSum {
    pub sha256: String,
    pub bytes: u64,
}

/// Relative path of the list of blob files a backup holds.
pub(crate) const BLOB_LIST: &str = "blobs.txt";

/// Relative path of the list of every blob the snapshot references (held here or by a parent).
pub(crate) const NEEDED_LIST: &str = "needed.txt";

/// Whether `hash` is a lowercase hex SHA-256, as every blob key is (and so safe in a path).
pub(crate) fn valid_hash(hash: &str) -> bool {
    hash.len() == 64
        && hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Relative path of a blob's file.
pub(crate) fn blob_path(hash: &str) -> String {
    format!("blobs/{}/{hash}", &hash[..2])
}

/// An I/O error on `path`, named.
pub(crate) fn io_err(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Backup(format!("{}: {e}", path.display()))
}

/// A writer that hashes and counts what passes through it.
pub(crate) struct Summing<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Summing<W> {
    pub fn new(inner: W) -> Self {
        Summing {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// Flushes and returns the sum of everything written.
    pub fn finish(mut self) -> std::io::Result<FileSum> {
        self.inner.flush()?;
        Ok(FileSum {
            sha256: hex::encode(self.hasher.finalize()),
            bytes: self.bytes,
        })
    }
}

impl<W: Write> Write for Summing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// SHA-256 and length of the file at `path`, read in pieces.
pub(crate) fn sum_file(path: &Path) -> std::io::Result<FileSum> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok(FileSum {
        sha256: hex::encode(hasher.finalize()),
        bytes,
    })
}

/// A backup found on disk: its directory and manifest.
#[derive(Debug)]
pub(crate) struct Found {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

/// Reads the manifest of the backup in `dir`.
pub(crate) fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join("manifest.json");
    let text = std::fs::read(&path).map_err(|e| io_err(&path, e))?;
    let manifest: Manifest = serde_json::from_slice(&text).map_err(|e| {
        StoreError::Backup(format!("{}: not a backup manifest: {e}", path.display()))
    })?;
    if manifest.format != FORMAT {
        return Err(StoreError::Backup(format!(
            "{}: backup format {} (this Postern reads format {FORMAT})",
            path.display(),
            manifest.format
        )));
    }
    Ok(manifest)
}

/// Every complete backup in `root`, oldest first. `root` may also be one backup's directory.
pub(crate) fn list(root: &Path) -> Result<Vec<Found>> {
    if root.join("manifest.json").exists() {
        return Ok(vec![Found {
            dir: root.to_owned(),
            manifest: read_manifest(root)?,
        }]);
    }
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(root, e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_err(root, e))?;
        let dir = entry.path();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') || !dir.join("manifest.json").exists() {
            continue;
        }
        let manifest = read_manifest(&dir)?;
        found.push(Found { dir, manifest });
    }
    found.sort_by_key(|f| f.manifest.serial);
    Ok(found)
}

/// The backup in `dir` followed by its parents, each read from `dir`'s parent directory.
pub(crate) fn chain(dir: &Path) -> Result<Vec<Found>> {
    let mut chain = vec![Found {
        dir: dir.to_owned(),
        manifest: read_manifest(dir)?,
    }];
    let root = dir.parent().unwrap_or(Path::new("."));
    while let Some(parent) = chain.last().and_then(|f| f.manifest.parent.clone()) {
        let pdir = root.join(&parent);
        if !pdir.join("manifest.json").exists() {
            return Err(StoreError::Backup(format!(
                "{}: needs its parent backup {parent}, which is not in {}",
                dir.display(),
                root.display()
            )));
        }
        if chain.len() > 64 {
            return Err(StoreError::Backup(format!(
                "{}: chain of parent backups does not end",
                dir.display()
            )));
        }
        chain.push(Found {
            manifest: read_manifest(&pdir)?,
            dir: pdir,
        });
    }
    Ok(chain)
}

/// The hashes listed in a backup's `list` ([`BLOB_LIST`] or [`NEEDED_LIST`]), added to `into`; a
/// line that is not a hash is an error naming the file and line.
pub(crate) fn read_hashes(dir: &Path, list: &str, into: &mut HashSet<String>) -> Result<()> {
    let path = dir.join(list);
    let file = std::fs::File::open(&path).map_err(|e| io_err(&path, e))?;
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| io_err(&path, e))?;
        if !valid_hash(&line) {
            return Err(StoreError::Backup(format!(
                "{} line {}: not a blob hash",
                path.display(),
                n + 1
            )));
        }
        into.insert(line);
    }
    Ok(())
}
