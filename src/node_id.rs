//! The node's stable id: made once and kept in the data directory, so the same node has the same
//! id after a restart (it then takes back its own queue leases at once), while two nodes sharing
//! one database, each with its own data directory, have different ids. The SRS secret is kept
//! the same way.

use std::path::Path;

use anyhow::Context;

/// The file, in the data directory, that keeps the node id.
const NODE_ID_FILE: &str = "node-id";

/// The file, in the data directory, that keeps the SRS secret when `[smtp] srs_secret` is unset.
const SRS_SECRET_FILE: &str = "srs-secret";

/// The node id kept in `data_dir`, made (`hostname` and random hex) the first time.
pub fn load_or_create(data_dir: &Path, hostname: &str) -> anyhow::Result<String> {
    kept_value(data_dir, NODE_ID_FILE, || {
        Ok(format!("{hostname}-{}", crate::manage::hex_secret()?))
    })
}

/// The SRS secret kept in `data_dir`, random hex made the first time (nodes sharing bounces
/// must set the same `[smtp] srs_secret` instead).
pub fn srs_secret(data_dir: &Path) -> anyhow::Result<String> {
    kept_value(data_dir, SRS_SECRET_FILE, crate::manage::hex_secret)
}

/// The value kept in `data_dir/file`, made with `make` and written there the first time; the
/// file is replaced atomically (temp file + rename), so it is never seen half-written.
fn kept_value(
    data_dir: &Path,
    file: &str,
    make: impl FnOnce() -> anyhow::Result<String>,
) -> anyhow::Result<String> {
    let path = data_dir.join(file);
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    let value = make()?;
    let tmp = data_dir.join(format!("{file}.tmp"));
    std::fs::write(&tmp, format!("{value}\n"))
        .and_then(|()| std::fs::rename(&tmp, &path))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(value)
}
