//! `postern backup DIR [--level N]`, `postern backup --verify DIR` and `postern restore DIR`: the
//! command-line side of the store's backup module (what is written and how is documented there).

use std::path::Path;
use std::process::ExitCode;

use postern_store::backup::{self, BackupSummary};
use postern_store::Store;

use crate::output::outln;

/// Makes a backup of `store` under `dir` and prints what it holds.
pub async fn backup(store: &Store, dir: &Path, level: u32) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let BackupSummary {
        dir: made,
        level,
        parent,
        tables,
        rows,
        blobs,
        blob_bytes,
    } = store.backup(dir, level).await?;
    let parent = parent.map_or(String::new(), |p| format!(", builds on {p}"));
    outln!(
        "backup {} (level {level}{parent}): {tables} tables, {rows} rows, {blobs} new message \
         blobs ({blob_bytes} bytes) in {:.1}s",
        made.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// Checks every backup in `dir`; fails listing every damaged item.
pub fn verify(dir: &Path) -> anyhow::Result<ExitCode> {
    let report = backup::verify(dir)?;
    for problem in &report.problems {
        eprintln!("damaged: {problem}");
    }
    outln!(
        "verified {} backup(s): {} files, {} bytes, {} problem(s)",
        report.backups,
        report.files,
        report.bytes,
        report.problems.len()
    );
    Ok(if report.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Restores the newest backup in `dir` into `store`; fails listing every item it could not
/// restore (everything else is restored).
pub async fn restore(store: &Store, dir: &Path) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let report = store.restore(dir).await?;
    for problem in &report.problems {
        eprintln!("not restored: {problem}");
    }
    outln!(
        "restored {} into the {:?} store: {} rows in {:.1}s, {} problem(s)",
        report.backup.display(),
        store.backend(),
        report.rows,
        started.elapsed().as_secs_f64(),
        report.problems.len()
    );
    Ok(if report.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
