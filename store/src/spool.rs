//! A spool file for a message that arrives in pieces (a large IMAP APPEND literal): the protocol
//! writes the bytes as they come, then hands the whole file to [`Store::append_spooled`], which
//! reads it through a memory map. File-backed pages are page cache, which the kernel can write back
//! and reclaim, not heap: a 40 MiB APPEND neither grows the process's heap by 40 MiB nor binds one
//! 40 MiB database value.
//!
//! [`Store::append_spooled`]: crate::Store::append_spooled

use std::path::Path;

use memmap2::Mmap;
use tokio::io::AsyncWriteExt;

/// An anonymous temporary file holding one message. It has no name in the file system (it is
/// unlinked at once, or created with `O_TMPFILE`), so it disappears when dropped, even if the
/// process is killed.
#[derive(Debug)]
pub struct Spool {
    file: tokio::fs::File,
    len: u64,
}

impl Spool {
    /// Creates an empty spool file in `dir` (the system's temporary directory if `None`).
    pub async fn create(dir: Option<&Path>) -> std::io::Result<Spool> {
        let dir = dir.map_or_else(std::env::temp_dir, Path::to_path_buf);
        let file = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            tempfile::tempfile_in(&dir)
        })
        .await
        .map_err(std::io::Error::other)??;
        Ok(Spool {
            file: tokio::fs::File::from_std(file),
            len: 0,
        })
    }

    /// Appends `bytes` to the file.
    pub async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.file.write_all(bytes).await?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Finishes writing and maps the file for reading.
    pub(crate) async fn map(mut self) -> std::io::Result<SpoolMap> {
        self.file.flush().await?;
        let file = self.file.into_std().await;
        if self.len == 0 {
            return Ok(SpoolMap { map: None });
        }
        // SAFETY: the file is an anonymous temporary file that only this `Spool` ever had a handle
        // to; it was written completely above and nothing writes to or truncates it while the
        // map (which keeps its own reference to the file) exists.
        let map = unsafe { Mmap::map(&file)? };
        Ok(SpoolMap { map: Some(map) })
    }
}

/// A spool file mapped read-only.
pub(crate) struct SpoolMap {
    map: Option<Mmap>,
}

impl SpoolMap {
    /// The message bytes (page cache, not heap).
    pub(crate) fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or_default()
    }
}
