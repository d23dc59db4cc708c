//! The bytes of a message received over SMTP, on the shell's side of the session. The session
//! hands the data out in pieces ([`Event::MessageData`]); they are kept in memory while the
//! message is small and written to a [`Spool`] file (in the data directory) once it grows past
//! [`MEMORY_LIMIT`], so a large message never sits whole on the heap.
//!
//! A complete spooled message is read through a read-only memory map by the checks that need the
//! whole message at once: DKIM and DMARC verification and DKIM signing (mail-auth takes one
//! `&[u8]` and hashes the whole body), Sieve and the junk classifier. Its pages are file-backed
//! page cache that the kernel can write back and reclaim rather than anonymous memory, and the map
//! is dropped before the message goes to [`Store::accept`] as its spool file, which the store
//! reads chunk by chunk (and maps for its parse only, one large message at a time). Header fields
//! put before a spooled message (`Authentication-Results:`, `DKIM-Signature:`) go into a new
//! spool file followed by a copy of the old one's bytes. Spool files have no name in the file
//! system, so nothing is left behind on any error path or after a crash.
//!
//! [`Store::accept`]: postern_store::Store::accept
//! [`Event::MessageData`]: crate::session::Event::MessageData

use std::ops::Deref;
use std::path::Path;

use memmap2::Mmap;
use postern_store::{release_pages, Spool, SpoolFile, StoredBytes};
use tokio::sync::{Semaphore, SemaphorePermit};

/// Bytes of a message kept in memory before it moves to a spool file.
pub(crate) const MEMORY_LIMIT: usize = 1 << 20;

/// Bytes copied per write when a spooled message is rewritten.
const COPY_PIECE: usize = 1 << 20;

/// How many spooled (large) messages are checked at once, process-wide. The checks read a message
/// whole (through its map) and parse it (mail-parser decodes every attachment onto the heap for
/// Sieve and the junk classifier), so their memory grows with the message; this bounds it to this
/// many large messages however many clients send at once. Small messages do not wait.
const LARGE_CHECKS: usize = 2;

/// A message whose data is arriving.
#[derive(Debug, Default)]
pub(crate) enum Receiving {
    /// No data yet.
    #[default]
    Empty,
    /// In memory, at most [`MEMORY_LIMIT`] bytes.
    Memory(Vec<u8>),
    /// In a spool file.
    Spool(Spool),
    /// Writing the spool file failed: the message cannot be accepted.
    Failed(String),
}

impl Receiving {
    /// Appends a piece of the message; a spool file is created in `dir` once it is large.
    pub(crate) async fn write(&mut self, bytes: &[u8], dir: Option<&Path>) {
        if let Err(e) = self.try_write(bytes, dir).await {
            tracing::error!(error = %e, "writing a message to its spool file failed");
            *self = Receiving::Failed(e.to_string());
        }
    }

    async fn try_write(&mut self, bytes: &[u8], dir: Option<&Path>) -> std::io::Result<()> {
        match self {
            Receiving::Empty => *self = Receiving::Memory(bytes.to_vec()),
            Receiving::Memory(held) if held.len() + bytes.len() <= MEMORY_LIMIT => {
                held.extend_from_slice(bytes);
            }
            Receiving::Memory(held) => {
                let mut spool = Spool::create(dir).await?;
                spool.write(held).await?;
                spool.write(bytes).await?;
                *self = Receiving::Spool(spool);
            }
            Receiving::Spool(spool) => spool.write(bytes).await?,
            Receiving::Failed(_) => {}
        }
        Ok(())
    }

    /// The complete message.
    pub(crate) async fn finish(self) -> std::io::Result<Message> {
        match self {
            Receiving::Empty => Ok(Message::Memory(Vec::new())),
            Receiving::Memory(bytes) => Ok(Message::Memory(bytes)),
            Receiving::Spool(spool) => Message::mapped(spool).await,
            Receiving::Failed(e) => Err(std::io::Error::other(e)),
        }
    }
}

/// The bytes of a complete message: in memory, or a memory-mapped spool file.
#[derive(Debug)]
pub(crate) enum Message {
    /// A small message.
    Memory(Vec<u8>),
    /// A large message's spool file and a read-only map of it.
    Mapped {
        /// The nameless file, handed to the store as it is.
        file: SpoolFile,
        /// Its bytes for the checks that need the whole message at once.
        map: Mmap,
    },
}

impl Deref for Message {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Message::Memory(bytes) => bytes,
            Message::Mapped { map, .. } => map,
        }
    }
}

impl Message {
    async fn mapped(spool: Spool) -> std::io::Result<Message> {
        Message::map(StoredBytes::File(spool.finish().await?))
    }

    /// A message as the store holds it (in memory or in a spool file), mapped if spooled: its
    /// pages are read from the file only when something reads them.
    pub(crate) fn map(stored: StoredBytes) -> std::io::Result<Message> {
        Ok(match stored {
            StoredBytes::Memory(bytes) => Message::Memory(bytes),
            StoredBytes::File(file) => match file.map()? {
                Some(map) => Message::Mapped { file, map },
                None => Message::Memory(Vec::new()),
            },
        })
    }

    /// Waits until this message may be checked (see [`LARGE_CHECKS`]): at once for a message in
    /// memory; the permit lasts until it is dropped, which is to be after [`Message::unmap`].
    pub(crate) async fn check_permit(&self) -> Option<SemaphorePermit<'static>> {
        static CHECKS: Semaphore = Semaphore::const_new(LARGE_CHECKS);
        match self {
            Message::Memory(_) => None,
            Message::Mapped { .. } => CHECKS.acquire().await.ok(),
        }
    }

    /// Lets go of the memory holding bytes `start..end` of a spooled message, which was read
    /// (see [`release_pages`]); nothing for a message in memory.
    pub(crate) fn release(&self, start: usize, end: usize) {
        if let Message::Mapped { map, .. } = self {
            release_pages(map, start, end);
        }
    }

    /// The message for the store: a spooled message's map is dropped, so that the pages the
    /// checks read leave this process's memory and the store reads the file chunk by chunk.
    pub(crate) fn unmap(self) -> StoredBytes {
        match self {
            Message::Memory(bytes) => StoredBytes::Memory(bytes),
            Message::Mapped { file, map } => {
                drop(map);
                StoredBytes::File(file)
            }
        }
    }

    /// `head` followed by this message from byte `from` on: header fields put before the message
    /// (`from` 0), or a rewritten header section (`from` its end). A spooled message is copied
    /// into a new spool file in `dir`.
    pub(crate) async fn replace_head(
        self,
        from: usize,
        head: &[u8],
        dir: Option<&Path>,
    ) -> std::io::Result<Message> {
        match self {
            Message::Memory(mut bytes) => {
                bytes.splice(..from, head.iter().copied());
                Ok(Message::Memory(bytes))
            }
            Message::Mapped { file, map } => {
                let mut spool = Spool::create(dir).await?;
                spool.write(head).await?;
                for piece in map[from.min(map.len())..].chunks(COPY_PIECE) {
                    spool.write(piece).await?;
                }
                drop((map, file));
                Message::mapped(spool).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn small_messages_stay_in_memory_large_ones_are_spooled() {
        let dir = tempfile::tempdir().unwrap();
        let mut small = Receiving::default();
        small
            .write(b"Subject: a\r\n\r\nbody\r\n", Some(dir.path()))
            .await;
        let small = small.finish().await.unwrap();
        assert!(matches!(small, Message::Memory(_)));
        let small = small
            .replace_head(0, b"X-A: 1\r\n", Some(dir.path()))
            .await
            .unwrap();
        assert_eq!(&*small, b"X-A: 1\r\nSubject: a\r\n\r\nbody\r\n");

        let piece: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
        let mut large = Receiving::default();
        for _ in 0..30 {
            large.write(&piece, Some(dir.path())).await;
        }
        assert!(matches!(large, Receiving::Spool(_)));
        let large = large.finish().await.unwrap();
        assert!(matches!(large, Message::Mapped { .. }));
        assert_eq!(large.len(), 3_000_000);
        let replaced = large
            .replace_head(10, b"X-B: 2\r\n", Some(dir.path()))
            .await
            .unwrap();
        assert_eq!(&replaced[..8], b"X-B: 2\r\n");
        assert_eq!(&replaced[8..8 + 100], &piece[10..110]);
        assert_eq!(replaced.len(), 3_000_000 - 10 + 8);
        // The spool files have no names.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
