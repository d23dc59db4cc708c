//! Reading a Dovecot/Courier Maildir++ tree: the folders (`.Sent`, `.a.b`), each message's flags
//! from its file name (`unique:2,FRS`), keywords through `dovecot-keywords`, and the file time as
//! internal date. Hand-written: the format is a directory convention, a few dozen lines, and no
//! maildir crate that knows Maildir++ folders and Dovecot keywords is available.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use postern_store::Flags;

/// A message file of a Maildir folder.
#[derive(Debug)]
pub struct MaildirMessage {
    /// The file (in `cur/` or `new/`).
    pub path: PathBuf,
    /// Flags from its name; a message in `new/` is never \Seen.
    pub flags: Flags,
    /// Its modification time, Unix seconds.
    pub internal_date: i64,
}

/// The folders of the Maildir++ tree at `root`: `(levels, directory)` with INBOX (the root
/// itself) first as `["INBOX"]`, the others in name order with their levels as raw names (still
/// modified UTF-7). Symbolic links are not followed.
pub fn folders(
    root: &Path,
    warn: &mut dyn FnMut(String),
) -> std::io::Result<Vec<(Vec<String>, PathBuf)>> {
    if !is_real_dir(&root.join("cur")) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{} is not a Maildir (no cur/ directory)", root.display()),
        ));
    }
    let mut found = BTreeMap::new();
    for entry in std::fs::read_dir(root)? {
        let entry = entry?;
        let raw = entry.file_name();
        let name = raw.to_string_lossy();
        let Some(inner) = name.strip_prefix('.') else {
            continue;
        };
        if inner.is_empty() || inner == "." {
            continue;
        }
        let dir = entry.path();
        if !is_real_dir(&dir) || !is_real_dir(&dir.join("cur")) {
            continue;
        }
        if raw.to_str().is_none() {
            warn(format!(
                "{}: folder name is not UTF-8, imported as {name:?}",
                dir.display()
            ));
        }
        let levels: Vec<String> = inner.split('.').map(str::to_owned).collect();
        if levels.iter().any(String::is_empty) {
            warn(format!("{}: empty hierarchy level, skipped", dir.display()));
            continue;
        }
        found.insert(levels, dir);
    }
    let mut all = vec![(vec!["INBOX".to_owned()], root.to_path_buf())];
    all.extend(found);
    Ok(all)
}

/// The messages of the Maildir folder `dir` (`new/` then `cur/`), oldest first. Files whose name
/// begins with `.` and anything that is not a regular file (symlinks included) are skipped.
pub fn messages(dir: &Path) -> std::io::Result<Vec<MaildirMessage>> {
    let keywords = keyword_letters(dir);
    let mut all = Vec::new();
    for sub in ["new", "cur"] {
        let path = dir.join(sub);
        if !is_real_dir(&path) {
            continue;
        }
        for entry in std::fs::read_dir(&path)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let meta = std::fs::symlink_metadata(entry.path())?;
            if name.starts_with('.') || !meta.file_type().is_file() {
                continue;
            }
            let mut flags = flags_from_name(&name, &keywords);
            if sub == "new" {
                flags.system &= !Flags::SEEN;
            }
            let internal_date = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs() as i64);
            all.push(MaildirMessage {
                path: entry.path(),
                flags,
                internal_date,
            });
        }
    }
    all.sort_by(|a, b| (a.internal_date, &a.path).cmp(&(b.internal_date, &b.path)));
    Ok(all)
}

/// Dovecot's `dovecot-keywords` file: lines `N name`, letter `a` + N standing for `name`.
fn keyword_letters(dir: &Path) -> BTreeMap<char, String> {
    let text = std::fs::read(dir.join("dovecot-keywords")).unwrap_or_default();
    String::from_utf8_lossy(&text)
        .lines()
        .filter_map(|line| {
            let (n, name) = line.split_once(' ')?;
            let n: u8 = n.parse().ok().filter(|n| *n < 26)?;
            Some((char::from(b'a' + n), name.trim().to_owned()))
        })
        .collect()
}

/// Flags from a file name `unique:2,FLAGS` (`;` or `!` may stand for `:`): D \Draft, F \Flagged,
/// P `$Forwarded`, R \Answered, S \Seen, T \Deleted, `a`..`z` the keywords of `dovecot-keywords`.
fn flags_from_name(name: &str, keywords: &BTreeMap<char, String>) -> Flags {
    let mut flags = Flags::default();
    let info = [":2,", ";2,", "!2,"]
        .iter()
        .find_map(|sep| name.rsplit_once(sep).map(|(_, info)| info));
    for c in info.unwrap_or_default().chars() {
        match c {
            'D' => flags.system |= Flags::DRAFT,
            'F' => flags.system |= Flags::FLAGGED,
            'R' => flags.system |= Flags::ANSWERED,
            'S' => flags.system |= Flags::SEEN,
            'T' => flags.system |= Flags::DELETED,
            'P' => {
                flags.keywords.insert("$Forwarded".to_owned());
            }
            _ => {
                if let Some(k) = keywords.get(&c) {
                    flags.keywords.insert(k.clone());
                }
            }
        }
    }
    flags
}

/// Whether `path` is a directory and not a symbolic link to one.
fn is_real_dir(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_dir())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_keywords_from_names() {
        let keywords = BTreeMap::from([('a', "work".to_owned()), ('c', "$Junk".to_owned())]);
        let f = flags_from_name("1700000000.M1P2.host,S=12:2,FPRSTac", &keywords);
        assert_eq!(
            f.system,
            Flags::FLAGGED | Flags::ANSWERED | Flags::SEEN | Flags::DELETED
        );
        let want: Vec<&str> = vec!["$Forwarded", "$Junk", "work"];
        assert_eq!(
            f.keywords.iter().map(String::as_str).collect::<Vec<_>>(),
            want
        );
        assert_eq!(flags_from_name("1.2.host", &keywords), Flags::default());
        assert_eq!(
            flags_from_name("1.2.host;2,D", &keywords).system,
            Flags::DRAFT
        );
    }
}
