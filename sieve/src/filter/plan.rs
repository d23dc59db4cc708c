//! What a filter run decided for one user's copy of a message (RFC 5228 §2.10): the folders it
//! goes to with their flags, the addresses it is redirected to, the automatic replies, a refusal.

use postern_store::Flags;

/// One copy to store for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderCopy {
    /// The folder (`INBOX` for keep).
    pub folder: String,
    /// The flags and keywords it starts with (imap4flags, RFC 5232 §3).
    pub flags: Flags,
    /// `fileinto :create` (RFC 5490 §3.2): make the folder if it is missing.
    pub create: bool,
}

/// An automatic reply (vacation, RFC 5230 §5), sent with the null envelope sender (RFC 3834 §3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoReply {
    /// The envelope recipient: the original envelope sender.
    pub to: String,
    /// The complete reply message.
    pub message: Vec<u8>,
}

/// The outcome of the scripts for one user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Copies to store; empty means the message is discarded for this user (RFC 5228 §4.4)
    /// unless it was redirected or rejected.
    pub copies: Vec<FolderCopy>,
    /// Addresses to redirect the message to (RFC 5228 §4.2).
    pub redirects: Vec<String>,
    /// Vacation replies to send.
    pub replies: Vec<AutoReply>,
    /// The reason of a `reject`/`ereject` (RFC 5429 §2), if the script refused the message.
    pub reject: Option<String>,
}

impl Plan {
    /// The plan without a script: keep in INBOX (the implicit keep, RFC 5228 §2.10.2).
    pub fn keep() -> Plan {
        Plan {
            copies: vec![FolderCopy {
                folder: "INBOX".into(),
                flags: Flags::default(),
                create: false,
            }],
            ..Plan::default()
        }
    }

    /// Adds a copy to `folder`; a second copy into the same folder is dropped (RFC 5228 §2.10.3).
    pub(crate) fn add_copy(&mut self, folder: String, flags: Flags, create: bool) {
        if !self.copies.iter().any(|c| c.folder == folder) {
            self.copies.push(FolderCopy {
                folder,
                flags,
                create,
            });
        }
    }
}

/// The IMAP flags of imap4flags flag names (RFC 5232 §3): system flags by name (case-insensitive,
/// `\Recent` cannot be set), other names as keywords when they are valid IMAP atoms
/// (RFC 3501 §9 `flag-keyword`); anything else is dropped.
pub fn imap_flags(names: &[String]) -> Flags {
    let mut flags = Flags::default();
    for name in names.iter().flat_map(|n| n.split_ascii_whitespace()) {
        let system = match name.to_ascii_lowercase().as_str() {
            "\\seen" => Some(Flags::SEEN),
            "\\answered" => Some(Flags::ANSWERED),
            "\\flagged" => Some(Flags::FLAGGED),
            "\\deleted" => Some(Flags::DELETED),
            "\\draft" => Some(Flags::DRAFT),
            _ => None,
        };
        match system {
            Some(bit) => flags.system |= bit,
            None if is_keyword(name) => {
                flags.keywords.insert(name.to_owned());
            }
            None => {}
        }
    }
    flags
}

fn is_keyword(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_names() {
        let f = imap_flags(&[
            "\\SEEN \\flagged".into(),
            "$Label1".into(),
            "\\Recent".into(),
            "bad(".into(),
        ]);
        assert_eq!(f.system, Flags::SEEN | Flags::FLAGGED);
        assert_eq!(f.keywords.iter().collect::<Vec<_>>(), ["$Label1"]);
    }

    #[test]
    fn one_copy_per_folder() {
        let mut p = Plan::default();
        p.add_copy("A".into(), Flags::default(), false);
        p.add_copy("A".into(), Flags::system(Flags::SEEN), true);
        assert_eq!(p.copies.len(), 1);
    }
}
