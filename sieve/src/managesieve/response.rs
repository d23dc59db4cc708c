//! Server responses (RFC 5804 §1.3, §4): `OK`, `NO` and `BYE` with an optional response code
//! and human-readable text, and the strings they and the data lines carry.

/// A response code (RFC 5804 §1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    /// The script or name does not exist (§1.3 `NONEXISTENT`).
    Nonexistent,
    /// The script is active and cannot be deleted (§1.3 `ACTIVE`).
    Active,
    /// The new name is taken (§1.3 `ALREADYEXISTS`).
    AlreadyExists,
    /// Too many scripts (§1.3 `QUOTA/MAXSCRIPTS`).
    MaxScripts,
    /// The script is too large (§1.3 `QUOTA/MAXSIZE`).
    MaxSize,
    /// A temporary failure: try again later (§1.3 `TRYLATER`).
    TryLater,
    /// The mechanism needs an encrypted connection: STARTTLS first (§1.3 `ENCRYPT-NEEDED`).
    EncryptNeeded,
    /// The tag a NOOP carried back (§2.11 `TAG`).
    Tag(Vec<u8>),
}

impl Code {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b" (");
        match self {
            Code::Nonexistent => out.extend_from_slice(b"NONEXISTENT"),
            Code::Active => out.extend_from_slice(b"ACTIVE"),
            Code::AlreadyExists => out.extend_from_slice(b"ALREADYEXISTS"),
            Code::MaxScripts => out.extend_from_slice(b"QUOTA/MAXSCRIPTS"),
            Code::MaxSize => out.extend_from_slice(b"QUOTA/MAXSIZE"),
            Code::TryLater => out.extend_from_slice(b"TRYLATER"),
            Code::EncryptNeeded => out.extend_from_slice(b"ENCRYPT-NEEDED"),
            Code::Tag(tag) => {
                out.extend_from_slice(b"TAG ");
                string(out, tag);
            }
        }
        out.push(b')');
    }
}

/// The three response kinds (RFC 5804 §1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The command succeeded.
    Ok,
    /// The command failed; the connection goes on.
    No,
    /// The server closes the connection.
    Bye,
}

/// Appends `status [(code)] ["text"]` and CRLF to `out`.
pub fn status(out: &mut Vec<u8>, status: Status, code: Option<&Code>, text: &str) {
    out.extend_from_slice(match status {
        Status::Ok => b"OK",
        Status::No => b"NO",
        Status::Bye => b"BYE",
    });
    if let Some(code) = code {
        code.write(out);
    }
    if !text.is_empty() {
        out.push(b' ');
        string(out, text.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends `s` as a quoted string when it may be one (short, no CR, LF or NUL), else as a
/// literal `{n}` (RFC 5804 §4 `string`, `literal-s2c`).
pub fn string(out: &mut Vec<u8>, s: &[u8]) {
    let quotable =
        s.len() <= super::frame::MAX_QUOTED && !s.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0));
    if quotable {
        out.push(b'"');
        for &b in s {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        literal(out, s);
    }
}

/// Appends `{n}` CRLF and the octets of `s` (RFC 5804 §4 `literal-s2c`).
pub fn literal(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
    out.extend_from_slice(s);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses() {
        let mut out = Vec::new();
        status(&mut out, Status::No, Some(&Code::Active), "in \"use\"");
        assert_eq!(out, b"NO (ACTIVE) \"in \\\"use\\\"\"\r\n");
        out.clear();
        status(&mut out, Status::Ok, Some(&Code::Tag(b"x".to_vec())), "");
        assert_eq!(out, b"OK (TAG \"x\")\r\n");
        out.clear();
        status(&mut out, Status::No, None, "line 1\r\nline 2");
        assert_eq!(out, b"NO {14}\r\nline 1\r\nline 2\r\n");
    }
}
