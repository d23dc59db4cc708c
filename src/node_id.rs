//! The node's stable id: made once and kept in the data directory, so the same node has the same
//! id after a restart (it then takes back its own queue leases at once), while two nodes sharing
//! one database, each with its own data directory, have different ids.

use std::path::Path;

use anyhow::Context;

/// The file, in the data directory, that keeps the node id.
const NODE_ID_FILE: &str = "node-id";

/// The node id kept in `data_dir`, made (`hostname` and random hex) and written there the first
/// time; the file is replaced atomically (temp file + rename), so it is never seen half-written.
pub fn load_or_create(data_dir: &Path, hostname: &str) -> anyhow::Result<String> {
    let path = data_dir.join(NODE_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    let id = format!("{hostname}-{}", crate::manage::hex_secret()?);
    let tmp = data_dir.join(format!("{NODE_ID_FILE}.tmp"));
    std::fs::write(&tmp, format!("{id}\n"))
        .and_then(|()| std::fs::rename(&tmp, &path))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(id)
}
