//! `postern backup --verify`: re-reads every file of every backup in a directory and checks it
//! against its hash, without a database.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;

use super::manifest::{self, sum_file, Found};
use crate::error::{Result, StoreError};

/// What a verification found.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Backups checked.
    pub backups: usize,
    /// Files whose hash was checked (table files, blob lists and blob files).
    pub files: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Every damaged, truncated or missing item, by name; empty when all is well.
    pub problems: Vec<String>,
}

/// Checks every backup in `root` (or the one backup `root` is): each table file and blob list
/// against the SHA-256 in the manifest, each blob file against the hash it is named by, and that
/// every blob a backup needs is held by it or a parent.
pub fn verify(root: &Path) -> Result<VerifyReport> {
    let found = manifest::list(root)?;
    if found.is_empty() {
        return Err(StoreError::Backup(format!(
            "no backup in {}",
            root.display()
        )));
    }
    let mut report = VerifyReport {
        backups: found.len(),
        ..VerifyReport::default()
    };
    for backup in &found {
        check_backup(backup, &mut report);
    }
    Ok(report)
}

fn check_backup(backup: &Found, report: &mut VerifyReport) {
    let name = &backup.manifest.name;
    for (file, sum) in &backup.manifest.files {
        report.files += 1;
        match sum_file(&backup.dir.join(file)) {
            Ok(found) if found == *sum => report.bytes += found.bytes,
            Ok(found) => report.problems.push(format!(
                "{name}/{file}: damaged or truncated ({} bytes, the manifest says {}; SHA-256 \
                 differs)",
                found.bytes, sum.bytes
            )),
            Err(e) => report.problems.push(format!("{name}/{file}: {e}")),
        }
    }
    let mut held = HashSet::new();
    if let Err(e) = manifest::read_blob_list(&backup.dir, &mut held) {
        report.problems.push(e.to_string());
    }
    let mut hashes: Vec<&String> = held.iter().collect();
    hashes.sort();
    for hash in hashes {
        report.files += 1;
        let file = manifest::blob_path(hash);
        match sum_file(&backup.dir.join(&file)) {
            Ok(found) if found.sha256 == *hash => report.bytes += found.bytes,
            Ok(found) => report.problems.push(format!(
                "{name}/{file}: damaged or truncated (its {} bytes do not hash to its name)",
                found.bytes
            )),
            Err(e) => report.problems.push(format!("{name}/{file}: {e}")),
        }
    }
    if let Err(e) = check_needed(backup, held) {
        report.problems.push(format!("{name}: {e}"));
    }
}

/// Fails naming the first blob the backup's blob table needs that neither it nor a parent holds.
fn check_needed(backup: &Found, mut held: HashSet<String>) -> Result<()> {
    for parent in manifest::chain(&backup.dir)?.iter().skip(1) {
        manifest::read_blob_list(&parent.dir, &mut held)?;
    }
    let Some(entry) = backup.manifest.tables.iter().find(|t| t.name == "blobs") else {
        return Ok(());
    };
    let hash_at = entry
        .columns
        .iter()
        .position(|c| c.name == "hash")
        .ok_or_else(|| StoreError::Backup("blobs table without hash column".to_owned()))?;
    let path = backup.dir.join(entry.file());
    let file = std::fs::File::open(&path).map_err(|e| manifest::io_err(&path, e))?;
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| manifest::io_err(&path, e))?;
        let hash = serde_json::from_str::<Vec<serde_json::Value>>(&line)
            .ok()
            .and_then(|row| row.get(hash_at)?.as_str().map(str::to_owned));
        match hash {
            Some(hash) if held.contains(&hash) => {}
            Some(hash) => {
                return Err(StoreError::Backup(format!(
                    "blob {hash} ({} line {}) is held by no backup of its chain",
                    entry.file(),
                    n + 1
                )))
            }
            None => {
                return Err(StoreError::Backup(format!(
                    "{} line {}: not a row of the blobs table",
                    entry.file(),
                    n + 1
                )))
            }
        }
    }
    Ok(())
}
