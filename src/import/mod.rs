//! `postern import maildir|mbox ADDRESS PATH`: moving a user's mail in from a Dovecot/Courier
//! Maildir++ tree or from mbox files (one file per folder, Thunderbird `.sbd` and mutt-style
//! directories nesting); `postern import imap` (in [`imap`]) fetches it from another server.
//! Every message goes through the store's import API, which records a source identity (the
//! SHA-256 of its bytes and its occurrence number in the source folder; for IMAP, the UID) with it
//! in the transaction that stores it (see [`importer`]): a second or interrupted run stores
//! nothing twice, and carries flags changed at the source since over.

mod imap;
mod imap_client;
mod importer;
mod maildir;
mod mailu;
mod mbox;
mod sources;

use anyhow::Context;
use postern_store::{Mailbox, Store, StoreError};

use crate::cli::ImportCmd;
use crate::output::outln;
use importer::{Importer, Options, SourceIds};
use mbox::Quoting;
use sources::{Folder, SourceKind};

/// Runs `postern import ...`; messages larger than `max_size` bytes (the IMAP
/// `max_message_size`) are reported and not imported.
pub async fn run(store: &Store, cmd: ImportCmd, max_size: u64) -> anyhow::Result<()> {
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
        ImportCmd::Mailu(args) => return mailu::run(store, args, max_size).await,
        ImportCmd::Imap(args) => return imap::run(store, args, max_size).await,
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
    let options = Options {
        dry_run,
        quoting,
        max_size,
    };
    let done = import_folders(store, &user, &folders, options).await?;
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
    options: Options,
) -> anyhow::Result<Imported> {
    let warn = |w: String| eprintln!("warning: {w}");
    let existing = store.list_mailboxes(user.id).await?;
    let mut importer = Importer::new(store, options);
    for folder in folders {
        let Some(target) = target(store, user, &folder.levels, &existing, options.dry_run).await?
        else {
            warn(format!(
                "{}: folder name {:?} refused, skipped",
                folder.path.display(),
                folder.levels.join("/")
            ));
            continue;
        };
        let mailbox = target.mailbox.as_ref();
        importer.begin_folder(mailbox).await?;
        let mut ids = SourceIds::new(folder.levels.join("/"));
        let read = match folder.kind {
            SourceKind::Maildir => importer.maildir(&folder.path, mailbox, &mut ids).await,
            SourceKind::Mbox => importer.mbox(&folder.path, mailbox, &mut ids).await,
        };
        let counts = importer.end_folder(mailbox).await;
        let counts = read
            .and(counts)
            .with_context(|| format!("importing {}", folder.path.display()))?;
        let verb = if options.dry_run {
            "would import"
        } else {
            "imported"
        };
        outln!(
            "{}{}: {verb} {}, {} already there{}",
            target.name,
            target.note(),
            counts.new,
            counts.there,
            counts.changed_note()
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
