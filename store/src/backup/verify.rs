//! `postern backup --verify`: re-reads every file of every backup in a directory and checks it
//! against its hash, without a database.

use std::collections::HashSet;
use std::path::Path;

use super::manifest::{self, sum_file, Found, BLOB_LIST, NEEDED_LIST};
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
    if let Err(e) = manifest::read_hashes(&backup.dir, BLOB_LIST, &mut held) {
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

/// Fails naming the first blob the backup needs that neither it nor a parent holds.
fn check_needed(backup: &Found, mut held: HashSet<String>) -> Result<()> {
    for parent in manifest::chain(&backup.dir)?.iter().skip(1) {
        manifest::read_hashes(&parent.dir, BLOB_LIST, &mut held)?;
    }
    let mut needed = HashSet::new();
    manifest::read_hashes(&backup.dir, NEEDED_LIST, &mut needed)?;
    let mut missing: Vec<&String> = needed.difference(&held).collect();
    missing.sort();
    match missing.first() {
        None => Ok(()),
        Some(hash) => Err(StoreError::Backup(format!(
            "blob {hash} ({NEEDED_LIST}) is held by no backup of its chain ({} missing)",
            missing.len()
        ))),
    }
}
