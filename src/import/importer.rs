//! Bringing one source folder's messages in: each message is read (streamed, at most
//! [`SPILL_BYTES`] of it in memory), keyed by its source identity, compared with what earlier runs
//! recorded for the mailbox (read once per folder), and either stored (in batches of
//! [`BATCH_MESSAGES`] messages or [`BATCH_BYTES`] bytes, one transaction each, see
//! [`Store::import_batch`]) or, if it was imported before, its flags carried over from the source
//! when they changed there ([`Store::sync_imported_flags`]).

use std::collections::HashMap;
use std::io::Read;

use postern_store::{FlagSync, Flags, ImportBytes, ImportItem, Mailbox, Spool, Store};
use sha2::{Digest, Sha256};

use super::mbox::Quoting;
use super::sources;

/// Most messages stored in one transaction.
const BATCH_MESSAGES: usize = 256;
/// Most bytes stored in one transaction, unless one message alone is larger.
const BATCH_BYTES: u64 = 8 << 20;

/// Bytes of a message kept in memory before they go to a spool file: most messages are smaller,
/// so a re-run that finds them imported never writes them anywhere.
pub(crate) const SPILL_BYTES: usize = 1 << 20;

/// How an import runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    /// Only count what would be done.
    pub dry_run: bool,
    /// The quoting of mbox sources.
    pub quoting: Quoting,
    /// Largest message imported (the IMAP `max_message_size`): a larger one is reported and
    /// skipped, and never held in memory or on disk whole.
    pub max_size: u64,
}

/// What became of one source folder's messages.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FolderCounts {
    /// Stored now (or that would be, in a dry run).
    pub new: u64,
    /// Imported before.
    pub there: u64,
    /// Of those, how many had their flags changed at the source since (now carried over).
    pub flags_changed: u64,
}

impl FolderCounts {
    /// ` (N with flags changed at the source, updated)`, or nothing.
    pub fn changed_note(&self) -> String {
        match self.flags_changed {
            0 => String::new(),
            n => format!(" ({n} with flags changed at the source, updated)"),
        }
    }
}

/// A message waiting for its batch: what names it in an error, and the message.
struct Pending {
    label: String,
    item: ImportItem,
}

/// Imports messages for one user, folder by folder.
pub(crate) struct Importer<'a> {
    pub store: &'a Store,
    pub options: Options,
    pub done: super::Imported,
    folder: FolderCounts,
    known: HashMap<String, Option<Flags>>,
    pending: Vec<Pending>,
    pending_bytes: u64,
}

impl<'a> Importer<'a> {
    /// An importer into `store`.
    pub fn new(store: &'a Store, options: Options) -> Importer<'a> {
        Importer {
            store,
            options,
            done: super::Imported::default(),
            folder: FolderCounts::default(),
            known: HashMap::new(),
            pending: Vec::new(),
            pending_bytes: 0,
        }
    }

    /// Starts a source folder going to `mailbox` (`None`: it does not exist yet, in a dry run):
    /// reads what earlier runs recorded for the mailbox.
    pub async fn begin_folder(&mut self, mailbox: Option<&Mailbox>) -> anyhow::Result<()> {
        self.folder = FolderCounts::default();
        self.known = match mailbox {
            Some(m) => self.store.imported_keys(m).await?,
            None => HashMap::new(),
        };
        Ok(())
    }

    /// Stores what is still waiting and returns the folder's counts.
    pub async fn end_folder(&mut self, mailbox: Option<&Mailbox>) -> anyhow::Result<FolderCounts> {
        if let Some(m) = mailbox {
            self.flush(m).await?;
        }
        self.known = HashMap::new();
        Ok(self.folder)
    }

    /// Takes one message under the import key `key` (named `label` in errors): stores it unless it
    /// was imported before, and then carries its flags over if they changed at the source.
    pub async fn offer(
        &mut self,
        mailbox: Option<&Mailbox>,
        incoming: Incoming,
        flags: &Flags,
        internal_date: i64,
        key: String,
        label: String,
    ) -> anyhow::Result<()> {
        let flags = sources::valid_flags(flags);
        if self.seen_before(mailbox, &key, &flags).await? {
            return Ok(());
        }
        if incoming.len > self.options.max_size {
            let e = anyhow::anyhow!(
                "the message is {} bytes, larger than max_message_size ({} bytes)",
                incoming.len,
                self.options.max_size
            );
            self.failed(&label, &e);
            return Ok(());
        }
        let Some(m) = mailbox.filter(|_| !self.options.dry_run) else {
            self.folder.new += 1;
            self.done.imported += 1;
            return Ok(());
        };
        self.pending_bytes += incoming.len;
        let item = ImportItem {
            bytes: incoming.into_bytes().await?,
            flags,
            internal_date,
            source_key: key,
        };
        self.pending.push(Pending { label, item });
        if self.pending.len() >= BATCH_MESSAGES || self.pending_bytes >= BATCH_BYTES {
            self.flush(m).await?;
        }
        Ok(())
    }

    /// Whether the message under `key` was imported into `mailbox` before; if so, its flags at
    /// the source, now `flags`, are carried over when they changed there (not in a dry run).
    pub async fn seen_before(
        &mut self,
        mailbox: Option<&Mailbox>,
        key: &str,
        flags: &Flags,
    ) -> anyhow::Result<bool> {
        let Some(seen) = self.known.get(key) else {
            return Ok(false);
        };
        self.folder.there += 1;
        let changed = seen.as_ref() != Some(flags);
        if let (Some(m), false, true) = (mailbox, self.options.dry_run, changed) {
            if self.store.sync_imported_flags(m, key, flags).await? == FlagSync::Updated {
                self.folder.flags_changed += 1;
            }
        }
        Ok(true)
    }

    /// Counts `n` messages a dry run would import without reading them.
    pub fn would_import(&mut self, n: u64) {
        self.folder.new += n;
        self.done.imported += n;
    }

    /// Stores the waiting messages in one transaction.
    async fn flush(&mut self, mailbox: &Mailbox) -> anyhow::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.pending_bytes = 0;
        let (labels, items): (Vec<String>, Vec<ImportItem>) = std::mem::take(&mut self.pending)
            .into_iter()
            .map(|p| (p.label, p.item))
            .unzip();
        let outcomes = self.store.import_batch(mailbox, items).await?;
        for (label, outcome) in labels.iter().zip(outcomes) {
            match outcome {
                Ok(Some(_)) => {
                    self.folder.new += 1;
                    self.done.imported += 1;
                }
                Ok(None) => self.folder.there += 1,
                Err(e) => self.failed(label, &e.into()),
            }
        }
        Ok(())
    }

    /// Reports a message that could not be imported, naming it.
    pub fn failed(&mut self, label: &str, e: &anyhow::Error) {
        eprintln!("error: {label}: {e:#}; not imported");
        self.done.failed += 1;
    }

    /// Imports the messages of a Maildir folder.
    pub async fn maildir(
        &mut self,
        dir: &std::path::Path,
        mailbox: Option<&Mailbox>,
        ids: &mut SourceIds,
    ) -> anyhow::Result<()> {
        for m in super::maildir::messages(dir)? {
            let label = m.path.display().to_string();
            let incoming = match read_maildir_message(&m.path, self.options).await {
                Ok(Some(incoming)) => incoming,
                // A Maildir in use renames files as their flags change: one gone since the
                // listing is picked up by the next run under its new name.
                Ok(None) => continue,
                Err(e) => {
                    self.failed(&label, &e);
                    continue;
                }
            };
            let key = ids.key(incoming.hash());
            self.offer(mailbox, incoming, &m.flags, m.internal_date, key, label)
                .await?;
        }
        Ok(())
    }

    /// Imports the messages of an mbox file. The import key leaves out the header fields that
    /// carry flags (`Status:`, `X-Status:`, `X-Keywords:`), which a mail reader rewrites as the
    /// flags change: a re-run finds the message by the rest and carries its new flags over.
    pub async fn mbox(
        &mut self,
        path: &std::path::Path,
        mailbox: Option<&Mailbox>,
        ids: &mut SourceIds,
    ) -> anyhow::Result<()> {
        let file = sources::open_no_follow(path)?;
        let input = std::io::BufReader::with_capacity(super::mbox::MAX_PIECE, file);
        let mut reader = super::mbox::MboxReader::new(input, self.options.quoting);
        let mut n = 0;
        while let Some(date) = reader.next_message()? {
            n += 1;
            let mut incoming = Incoming::new(self.options);
            while let Some((piece, flag_field)) = reader.next_piece()? {
                incoming.write(piece, !flag_field).await?;
            }
            let date = date.unwrap_or_else(postern_store::unix_now);
            let flags = reader.flags();
            let key = ids.key(incoming.hash());
            let label = format!("{}: message {n}", path.display());
            self.offer(mailbox, incoming, &flags, date, key, label)
                .await?;
        }
        Ok(())
    }
}

/// One message on its way in: its key hash so far, its length, and its bytes (none kept in a dry
/// run or past the size limit): in memory up to [`SPILL_BYTES`], beyond that in a spool file,
/// written in pieces of that size.
pub(crate) struct Incoming {
    hasher: Sha256,
    keep: bool,
    max_size: u64,
    len: u64,
    buf: Vec<u8>,
    spool: Option<Spool>,
}

impl Incoming {
    /// An empty message.
    pub fn new(options: Options) -> Incoming {
        Incoming {
            hasher: Sha256::new(),
            keep: !options.dry_run,
            max_size: options.max_size,
            len: 0,
            buf: Vec::new(),
            spool: None,
        }
    }

    /// Appends bytes; `keyed`: whether they count in the import key.
    pub async fn write(&mut self, bytes: &[u8], keyed: bool) -> anyhow::Result<()> {
        self.len += bytes.len() as u64;
        if self.len > self.max_size {
            // Refused whatever it is: neither kept nor hashed, only read past.
            self.keep = false;
            self.buf = Vec::new();
            self.spool = None;
            return Ok(());
        }
        if keyed {
            self.hasher.update(bytes);
        }
        if self.keep {
            self.buf.extend_from_slice(bytes);
            if self.buf.len() >= SPILL_BYTES {
                self.spill().await?;
            }
        }
        Ok(())
    }

    /// The SHA-256 of the keyed bytes.
    pub fn hash(&self) -> [u8; 32] {
        self.hasher.clone().finalize().into()
    }

    /// Moves the bytes held in memory to the spool file (created on first use).
    async fn spill(&mut self) -> anyhow::Result<()> {
        let spool = match &mut self.spool {
            Some(spool) => spool,
            None => self.spool.insert(Spool::create(None).await?),
        };
        spool.write(&self.buf).await?;
        self.buf.clear();
        Ok(())
    }

    /// The whole message: in memory if it is small, else in its spool file.
    async fn into_bytes(mut self) -> anyhow::Result<ImportBytes> {
        match self.spool.take() {
            None => Ok(ImportBytes::Memory(self.buf)),
            Some(mut spool) => {
                spool.write(&self.buf).await?;
                Ok(ImportBytes::Spooled(spool))
            }
        }
    }
}

/// Reads one Maildir message file (not following a symbolic link). `None` if it disappeared
/// since the listing; an error if it cannot be read or is not a message: empty, or not beginning
/// with a header field (RFC 5322 §2.2) or an mbox `From ` line.
async fn read_maildir_message(
    path: &std::path::Path,
    options: Options,
) -> anyhow::Result<Option<Incoming>> {
    let mut file = match sources::open_no_follow(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("warning: {} disappeared, skipped", path.display());
            return Ok(None);
        }
        file => file?,
    };
    let mut incoming = Incoming::new(options);
    let mut buf = vec![0; super::mbox::MAX_PIECE];
    let mut first = true;
    loop {
        let n = file.read(&mut buf)?;
        if first {
            if let Some(why) = not_a_message(&buf[..n]) {
                anyhow::bail!("corrupt message file: {why}");
            }
            first = false;
        }
        if n == 0 {
            break;
        }
        incoming.write(&buf[..n], true).await?;
    }
    Ok(Some(incoming))
}

/// Why the start of a message file is not a message, if it is not.
fn not_a_message(head: &[u8]) -> Option<&'static str> {
    if head.is_empty() {
        return Some("the file is empty");
    }
    if head.starts_with(b"From ") {
        return None;
    }
    let name_len = head
        .iter()
        .take_while(|b| (33..=126).contains(*b) && **b != b':')
        .count();
    if name_len == 0 || head.get(name_len) != Some(&b':') {
        return Some("it does not begin with a header field (RFC 5322 §2.2)");
    }
    None
}

/// The identities of one source folder's messages: the SHA-256 of the bytes, which occurrence of
/// those bytes in the folder it is (a folder may hold a message twice), and the folder's name (two
/// source folders may go to one mailbox, `.Sent` and `.Sent Items` to Sent).
pub(crate) struct SourceIds {
    folder: String,
    seen: HashMap<[u8; 32], u64>,
}

impl SourceIds {
    /// The identities of the messages of source folder `folder`.
    pub fn new(folder: String) -> SourceIds {
        SourceIds {
            folder,
            seen: HashMap::new(),
        }
    }

    /// The key of the next message whose bytes hash to `hash`.
    pub fn key(&mut self, hash: [u8; 32]) -> String {
        let occurrence = self.seen.entry(hash).or_default();
        *occurrence += 1;
        format!(
            "sha256:{}#{occurrence} in {}",
            hex::encode(hash),
            self.folder
        )
    }
}
