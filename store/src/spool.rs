//! A spool file for a message that arrives in pieces (a large IMAP APPEND literal, SMTP DATA or
//! BDAT) or leaves in pieces (a queued message copied out of its chunks to be sent): the protocol
//! writes the bytes as they come (their SHA-256 is computed on the way), then hands the whole file
//! to [`Store::append_spooled`] or [`Store::accept`]. The parser reads it through a memory map,
//! the chunked INSERT with positioned reads of one chunk at a time. File-backed pages are page cache, which the kernel can
//! write back and reclaim, not heap: a 40 MiB APPEND neither grows the process's heap by 40 MiB nor
//! binds one 40 MiB database value. Mapped pages do count in the process's RSS while mapped, so the
//! map exists only while the message is parsed (one large message at a time).
//!
//! [`Store::append_spooled`]: crate::Store::append_spooled
//! [`Store::accept`]: crate::Store::accept

use std::os::unix::fs::FileExt;
use std::path::Path;

use memmap2::{Mmap, UncheckedAdvice};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

/// An anonymous temporary file holding one message. It has no name in the file system (it is
/// unlinked at once, or created with `O_TMPFILE`), so it disappears when dropped, even if the
/// process is killed.
pub struct Spool {
    file: tokio::fs::File,
    len: u64,
    hasher: Sha256,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool").field("len", &self.len).finish()
    }
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
            hasher: Sha256::new(),
        })
    }

    /// Appends `bytes` to the file.
    pub async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.file.write_all(bytes).await?;
        self.hasher.update(bytes);
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

    /// Finishes writing: the complete file, its length and its content hash.
    pub async fn finish(mut self) -> std::io::Result<SpoolFile> {
        self.file.flush().await?;
        let file = self.file.into_std().await;
        Ok(SpoolFile {
            file,
            len: self.len,
            hash: hex::encode(self.hasher.finalize()),
        })
    }
}

/// A completely written spool file (still nameless: it disappears with its last handle or map).
#[derive(Debug)]
pub struct SpoolFile {
    file: std::fs::File,
    /// Its length in bytes.
    pub(crate) len: u64,
    /// Lowercase hex SHA-256 of its bytes (the blob key).
    pub(crate) hash: String,
}

impl SpoolFile {
    /// Maps the file read-only (`None` if it is empty). Drop the map as soon as possible: its
    /// pages count in the process's RSS while mapped.
    pub fn map(&self) -> std::io::Result<Option<Mmap>> {
        if self.len == 0 {
            return Ok(None);
        }
        // SAFETY: the file is an anonymous temporary file that only this process ever had a
        // handle to; it was written completely before `finish` and nothing writes to or truncates
        // it while the map exists.
        Ok(Some(unsafe { Mmap::map(&self.file)? }))
    }

    /// Its length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Fills `buf` from the file at `offset` (a positioned read; the file is in the page cache,
    /// having just been written).
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }
}

/// Lets go of the pages of `map` (a map from [`SpoolFile::map`]) holding bytes `start..end`, so
/// that they stop counting in the process's RSS (`madvise(MADV_DONTNEED)`). They are read again
/// from the file if touched later. For a message read front to back (sent, scanned), so that at
/// most the piece in hand is resident.
pub fn release_pages(map: &Mmap, start: usize, end: usize) {
    let end = end.min(map.len());
    if start >= end {
        return;
    }
    // SAFETY: `map` is a read-only shared map of a file that nothing writes (see
    // `SpoolFile::map`): dropping its pages loses nothing, they are read again on the next access.
    if let Err(e) =
        unsafe { map.unchecked_advise_range(UncheckedAdvice::DontNeed, start, end - start) }
    {
        tracing::debug!(error = %e, "releasing spool file pages failed");
    }
}
