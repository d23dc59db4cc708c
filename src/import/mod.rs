//! `postern import maildir|mbox ADDRESS PATH`: moving a user's mail in from a Dovecot/Courier
//! Maildir++ tree or from mbox files (one file per folder, Thunderbird `.sbd` and mutt-style
//! directories nesting); `postern import imap` (in [`imap`]) fetches it from another server.
//! Every message goes through the store's import API, which records a source identity (the
//! SHA-256 of its bytes and its occurrence number in the source folder; for IMAP, the UID) with it
//! in one transaction: a second or interrupted run stores nothing twice.

mod imap;
mod imap_client;
mod maildir;
mod mailu;
mod mbox;
mod sources;

use std::collections::HashMap;
use std::io::Read;

use anyhow::Context;
use postern_store::{Flags, Mailbox, Spool, Store, StoreError};
use sha2::{Digest, Sha256};

use crate::cli::ImportCmd;
use crate::output::outln;
use mbox::{MboxReader, Quoting};
use sources::{Folder, SourceKind};

/// Runs `postern import ...`.
pub async fn run(store: &Store, cmd: ImportCmd) -> anyhow::Result<()> {
    let (address, path, dry_run, quoting, maildir) = match cmd {
        ImportCmd::Maildir {
            address,
            path,
            dry_run,
        } => (address, path, dry_run, Quoting::Rd, true),
        ImportCmd::Mbox {
            address,
            path,
            dry_run,
            mboxo,
        } => {
            let quoting = if mboxo { Quoting::O } else { Quoting::Rd };
            (address, path, dry_run, quoting, false)
        }
        ImportCmd::Mailu(args) => return mailu::run(store, args).await,
        ImportCmd::Imap(args) => return imap::run(store, args).await,
    };
    let user = store
        .user(&address)
        .await?
        .with_context(|| format!("no such user: {address}"))?;
    let mut warn = |w: String| eprintln!("warning: {w}");
    let folders = if maildir {
        sources::maildir_folders(&path, &mut warn)?
    } else {
        sources::mbox_folders(&path, &mut warn)?
    };
    let done = import_folders(store, &user, &folders, dry_run, quoting).await?;
    let verb = if dry_run { "would import" } else { "imported" };
    outln!("{verb} {} message(s) for {}", done.imported, user.address);
    done.check()
}

/// What importing a user's folders did.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Imported {
    /// Messages stored (or that would be, in a dry run).
    pub imported: u64,
    /// Messages that could not be read or stored (each reported on stderr).
    pub failed: u64,
    /// Source folders that could not be read (each reported on stderr).
    pub failed_folders: u64,
}

impl Imported {
    /// An error if any message failed, so the command exits non-zero after importing the rest.
    pub fn check(self) -> anyhow::Result<()> {
        match (self.failed, self.failed_folders) {
            (0, 0) => Ok(()),
            (n, 0) => anyhow::bail!("{n} message(s) could not be imported (see the errors above)"),
            (n, f) => anyhow::bail!(
                "{f} folder(s) and {n} more message(s) could not be imported (see the errors above)"
            ),
        }
    }
}

/// Imports `folders` into the user's mailboxes (created as needed), printing a line per folder.
/// A message that cannot be read or stored is reported with its file and skipped; a failing
/// database ends the import.
pub(crate) async fn import_folders(
    store: &Store,
    user: &postern_store::User,
    folders: &[Folder],
    dry_run: bool,
    quoting: Quoting,
) -> anyhow::Result<Imported> {
    let warn = |w: String| eprintln!("warning: {w}");
    let existing = store.list_mailboxes(user.id).await?;
    let mut importer = Importer {
        store,
        dry_run,
        quoting,
        done: Imported::default(),
    };
    for folder in folders {
        let Some(target) = target(store, user, &folder.levels, &existing, dry_run).await? else {
            warn(format!(
                "{}: folder name {:?} refused, skipped",
                folder.path.display(),
                folder.levels.join("/")
            ));
            continue;
        };
        let (new, old) = importer
            .folder(folder, target.mailbox.as_ref())
            .await
            .with_context(|| format!("importing {}", folder.path.display()))?;
        let verb = if dry_run { "would import" } else { "imported" };
        outln!(
            "{}{}: {verb} {new}, {old} already there",
            target.name,
            target.note()
        );
    }
    Ok(importer.done)
}

/// The user's mailbox a source folder goes to.
pub(crate) struct Target {
    /// Its name.
    pub name: String,
    /// The mailbox; `None` in a dry run when it does not exist yet.
    pub mailbox: Option<Mailbox>,
    /// Whether it is (or would be) created by this import.
    pub new: bool,
}

impl Target {
    /// ` (new folder)` for a folder this import creates.
    pub fn note(&self) -> &'static str {
        if self.new {
            " (new folder)"
        } else {
            ""
        }
    }
}

/// The mailbox for the source folder `levels`, created unless this is a dry run; `None` if the
/// name is refused.
pub(crate) async fn target(
    store: &Store,
    user: &postern_store::User,
    levels: &[String],
    existing: &[Mailbox],
    dry_run: bool,
) -> anyhow::Result<Option<Target>> {
    let name = sources::target_name(levels, existing);
    let found = store.mailbox(user.id, &name).await?;
    let new = found.is_none();
    let mailbox = match found {
        Some(m) => Some(m),
        None if dry_run => None,
        None => match store.create_mailbox_path(user.id, &name).await {
            Ok(m) => Some(m),
            Err(StoreError::Invalid { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        },
    };
    Ok(Some(Target { name, mailbox, new }))
}

struct Importer<'a> {
    store: &'a Store,
    dry_run: bool,
    quoting: Quoting,
    done: Imported,
}

/// Bytes of a message kept in memory before they go to a spool file: most messages are smaller,
/// so a re-run that finds them imported never writes them anywhere.
const SPILL_BYTES: usize = 1 << 20;

/// One message on its way in: its hash so far, and its bytes (none kept in a dry run): in memory
/// up to [`SPILL_BYTES`], beyond that in a spool file, written in pieces of that size.
struct Incoming {
    hasher: Sha256,
    keep: bool,
    buf: Vec<u8>,
    spool: Option<Spool>,
}

impl Incoming {
    fn new(dry_run: bool) -> Incoming {
        Incoming {
            hasher: Sha256::new(),
            keep: !dry_run,
            buf: Vec::new(),
            spool: None,
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.hasher.update(bytes);
        if self.keep {
            self.buf.extend_from_slice(bytes);
            if self.buf.len() >= SPILL_BYTES {
                self.spill().await?;
            }
        }
        Ok(())
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

    /// The whole message in a spool file.
    async fn into_spool(mut self) -> anyhow::Result<Spool> {
        self.spill().await?;
        self.spool
            .ok_or_else(|| anyhow::anyhow!("spool file missing after writing it"))
    }
}

impl Importer<'_> {
    /// Imports one source folder into `mailbox` (`None`: it does not exist yet, in a dry run).
    /// Returns (imported, already imported).
    async fn folder(
        &mut self,
        folder: &Folder,
        mailbox: Option<&Mailbox>,
    ) -> anyhow::Result<(u64, u64)> {
        let mut counts = (0, 0);
        let mut seen = SourceIds {
            folder: folder.levels.join("/"),
            seen: HashMap::new(),
        };
        match folder.kind {
            SourceKind::Maildir => {
                for m in maildir::messages(&folder.path)? {
                    let read = read_maildir_message(&m.path, self.dry_run).await;
                    let incoming = match read {
                        Ok(Some(incoming)) => incoming,
                        // A Maildir in use renames files as their flags change: one gone since
                        // the listing is picked up by the next run under its new name.
                        Ok(None) => continue,
                        Err(e) => {
                            self.failed(&m.path, &e);
                            continue;
                        }
                    };
                    let stored = self
                        .message(mailbox, incoming, &m.flags, m.internal_date, &mut seen)
                        .await;
                    match stored {
                        Ok(done) => add(&mut counts, done),
                        Err(e) if is_per_message(&e) => self.failed(&m.path, &e),
                        Err(e) => return Err(e),
                    }
                }
            }
            SourceKind::Mbox => {
                let file = sources::open_no_follow(&folder.path)?;
                let input = std::io::BufReader::with_capacity(mbox::MAX_PIECE, file);
                let mut reader = MboxReader::new(input, self.quoting);
                while let Some(date) = reader.next_message()? {
                    let mut incoming = Incoming::new(self.dry_run);
                    while let Some(piece) = reader.next_piece()? {
                        incoming.write(piece).await?;
                    }
                    let date = date.unwrap_or_else(postern_store::unix_now);
                    let flags = reader.flags();
                    let done = self
                        .message(mailbox, incoming, &flags, date, &mut seen)
                        .await?;
                    add(&mut counts, done);
                }
            }
        }
        Ok(counts)
    }

    /// Stores one message unless it was imported before; true if it was (or would be) stored.
    async fn message(
        &mut self,
        mailbox: Option<&Mailbox>,
        incoming: Incoming,
        flags: &Flags,
        internal_date: i64,
        seen: &mut SourceIds,
    ) -> anyhow::Result<bool> {
        let key = seen.key(incoming.hasher.clone().finalize().into());
        self.store_keyed(mailbox, incoming, flags, internal_date, &key)
            .await
    }

    /// Stores one message under the import key `key` unless it was imported before; true if it
    /// was (or would be) stored.
    async fn store_keyed(
        &mut self,
        mailbox: Option<&Mailbox>,
        incoming: Incoming,
        flags: &Flags,
        internal_date: i64,
        key: &str,
    ) -> anyhow::Result<bool> {
        let flags = sources::valid_flags(flags);
        let stored = match mailbox {
            None => true,
            Some(m) if self.store.was_imported(m, key).await? => false,
            Some(_) if self.dry_run => true,
            Some(m) => {
                let spool = incoming.into_spool().await?;
                let uid = self
                    .store
                    .import_spooled(m, spool, &flags, internal_date, key);
                uid.await?.is_some()
            }
        };
        self.done.imported += u64::from(stored);
        Ok(stored)
    }

    /// Reports a message that could not be imported, naming its file.
    fn failed(&mut self, path: &std::path::Path, e: &anyhow::Error) {
        eprintln!("error: {}: {e:#}; not imported", path.display());
        self.done.failed += 1;
    }
}

/// Whether an error concerns one message only (its file, its content, the quota), so the import
/// goes on with the next, rather than the store.
fn is_per_message(e: &anyhow::Error) -> bool {
    match e.downcast_ref::<StoreError>() {
        Some(StoreError::Invalid { .. } | StoreError::OverQuota(_)) => true,
        Some(_) => false,
        None => e.downcast_ref::<std::io::Error>().is_some(),
    }
}

/// Reads one Maildir message file (not following a symbolic link). `None` if it disappeared
/// since the listing; an error if it cannot be read or is not a message: empty, or not beginning
/// with a header field (RFC 5322 §2.2) or an mbox `From ` line.
async fn read_maildir_message(
    path: &std::path::Path,
    dry_run: bool,
) -> anyhow::Result<Option<Incoming>> {
    let mut file = match sources::open_no_follow(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("warning: {} disappeared, skipped", path.display());
            return Ok(None);
        }
        file => file?,
    };
    let mut incoming = Incoming::new(dry_run);
    let mut buf = vec![0; mbox::MAX_PIECE];
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
        incoming.write(&buf[..n]).await?;
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
struct SourceIds {
    folder: String,
    seen: HashMap<[u8; 32], u64>,
}

impl SourceIds {
    fn key(&mut self, hash: [u8; 32]) -> String {
        let occurrence = self.seen.entry(hash).or_default();
        *occurrence += 1;
        format!(
            "sha256:{}#{occurrence} in {}",
            hex::encode(hash),
            self.folder
        )
    }
}

fn add(counts: &mut (u64, u64), stored: bool) {
    if stored {
        counts.0 += 1;
    } else {
        counts.1 += 1;
    }
}
