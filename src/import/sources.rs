//! The folders of an import source and where each goes: Maildir++ and mbox folder discovery,
//! folder names (modified UTF-7 levels, `/` and control characters), the special-use folders,
//! opening files without following symbolic links, and which keywords IMAP can carry.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use postern_imap::mutf7;
use postern_store::{Flags, Mailbox};

use super::maildir;

/// What a source folder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// A Maildir folder directory (with `cur/` and `new/`).
    Maildir,
    /// An mbox file.
    Mbox,
}

/// One source folder: its hierarchy levels (UTF-8) and where it is.
#[derive(Debug)]
pub struct Folder {
    /// Name levels; `["INBOX"]` for the inbox.
    pub levels: Vec<String>,
    /// The Maildir directory or mbox file.
    pub path: PathBuf,
    /// Which of the two.
    pub kind: SourceKind,
}

/// The folders of the Maildir++ tree at `root`, names decoded from modified UTF-7.
pub fn maildir_folders(root: &Path, warn: &mut dyn FnMut(String)) -> anyhow::Result<Vec<Folder>> {
    Ok(maildir::folders(root, warn)?
        .into_iter()
        .map(|(levels, path)| Folder {
            levels: levels.iter().map(|l| level(l, true, warn)).collect(),
            path,
            kind: SourceKind::Maildir,
        })
        .collect())
}

/// The mbox folders at `path`: the file itself, or every mbox file under the directory, where
/// `X.sbd/` (Thunderbird) or a plain subdirectory (mutt) holds the children of `X`. Files that do
/// not begin with `From ` (indexes such as `.msf`) and symbolic links are skipped.
pub fn mbox_folders(path: &Path, warn: &mut dyn FnMut(String)) -> anyhow::Result<Vec<Folder>> {
    let meta =
        std::fs::symlink_metadata(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut all = Vec::new();
    if meta.file_type().is_file() {
        let name = file_level(path.file_name().unwrap_or_default(), warn);
        all.push(Folder {
            levels: vec![name],
            path: path.to_path_buf(),
            kind: SourceKind::Mbox,
        });
    } else {
        walk_mbox_dir(path, &[], &mut all, warn)?;
    }
    Ok(all)
}

fn walk_mbox_dir(
    dir: &Path,
    parent: &[String],
    all: &mut Vec<Folder>,
    warn: &mut dyn FnMut(String),
) -> anyhow::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let raw = entry.file_name();
        let path = entry.path();
        if raw.as_encoded_bytes().starts_with(b".") {
            continue;
        }
        let kind = std::fs::symlink_metadata(&path)?.file_type();
        if kind.is_dir() {
            let stem = raw
                .as_encoded_bytes()
                .strip_suffix(b".sbd")
                .map_or(raw.as_os_str(), OsStr::from_bytes);
            let mut levels = parent.to_vec();
            levels.push(file_level(stem, warn));
            walk_mbox_dir(&path, &levels, all, warn)?;
        } else if kind.is_file() && looks_like_mbox(&path) {
            let mut levels = parent.to_vec();
            levels.push(file_level(&raw, warn));
            all.push(Folder {
                levels,
                path,
                kind: SourceKind::Mbox,
            });
        }
    }
    Ok(())
}

/// Whether the file is empty or begins with `From `.
fn looks_like_mbox(path: &Path) -> bool {
    let mut head = [0u8; 5];
    let Ok(mut file) = open_no_follow(path) else {
        return false;
    };
    let n = std::io::Read::read(&mut file, &mut head).unwrap_or(0);
    n == 0 || (n == 5 && &head == b"From ")
}

/// An mbox file name as a folder level (`.mbox` dropped; not UTF-8 is replaced and warned about).
fn file_level(name: &OsStr, warn: &mut dyn FnMut(String)) -> String {
    if name.to_str().is_none() {
        warn(format!("file name {name:?} is not UTF-8"));
    }
    let name = name.to_string_lossy();
    let name = name.strip_suffix(".mbox").unwrap_or(&name);
    level(name, false, warn)
}

/// One folder level in UTF-8: decoded from modified UTF-7 if asked (and valid), with `/` (our
/// hierarchy separator) and control characters replaced by `_`.
pub fn level(raw: &str, utf7: bool, warn: &mut dyn FnMut(String)) -> String {
    let decoded = match utf7 {
        true => mutf7::decode(raw).unwrap_or_else(|| raw.to_owned()),
        false => raw.to_owned(),
    };
    let clean: String = decoded
        .chars()
        .map(|c| if c == '/' || c.is_control() { '_' } else { c })
        .collect();
    if clean != decoded {
        warn(format!("folder name {decoded:?} imported as {clean:?}"));
    }
    clean
}

/// Folder names other programs use for the RFC 6154 special-use folders, lower case.
const SPECIAL_NAMES: [(&str, &str); 15] = [
    ("sent", "\\Sent"),
    ("sent messages", "\\Sent"),
    ("sent items", "\\Sent"),
    ("sent mail", "\\Sent"),
    ("drafts", "\\Drafts"),
    ("draft", "\\Drafts"),
    ("trash", "\\Trash"),
    ("deleted messages", "\\Trash"),
    ("deleted items", "\\Trash"),
    ("junk", "\\Junk"),
    ("spam", "\\Junk"),
    ("junk e-mail", "\\Junk"),
    ("archive", "\\Archive"),
    ("archives", "\\Archive"),
    ("inbox", "INBOX"),
];

/// The user's mailbox name for a source folder: a top-level special folder (`Sent Items`,
/// `Spam`, `inbox` ...) goes to the user's folder with that special use (or INBOX); any other
/// keeps its name, levels joined with `/`.
pub fn target_name(levels: &[String], existing: &[Mailbox]) -> String {
    if let [only] = levels {
        let lower = only.to_lowercase();
        if let Some((_, usage)) = SPECIAL_NAMES.iter().find(|(name, _)| *name == lower) {
            if *usage == "INBOX" {
                return "INBOX".to_owned();
            }
            if let Some(m) = existing
                .iter()
                .find(|m| m.special_use.as_deref() == Some(usage))
            {
                return m.name.clone();
            }
        }
    }
    levels.join("/")
}

/// Opens a file for reading, refusing a symbolic link (`O_NOFOLLOW`).
pub fn open_no_follow(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// `flags` without the keywords IMAP cannot carry (not an atom, RFC 3501 §9 `flag-keyword`).
pub fn valid_flags(flags: &Flags) -> Flags {
    use imap_codec::imap_types::core::Atom;
    Flags {
        system: flags.system,
        keywords: flags
            .keywords
            .iter()
            .filter(|k| Atom::try_from(k.as_str()).is_ok())
            .cloned()
            .collect(),
    }
}
