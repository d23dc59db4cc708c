//! SEARCHRES (RFC 5182): the `$` that names the result saved by `SEARCH RETURN (SAVE)`.
//! imap-codec 2.0.0-alpha.10 does not accept `$` in a sequence set, so it is taken off here
//! before decoding. As the set argument of FETCH, STORE, COPY, MOVE or UID EXPUNGE it becomes a
//! placeholder and the command is flagged (the session resolves the set to the saved messages,
//! [`crate::session::Extras::saved_set`]); as a search key (RFC 5182 §2.1, also inside `UID $`)
//! it becomes `UID <saved UIDs>`, or `NOT ALL` when nothing is saved.

use crate::esearch::starts_word;

/// Where the command's verb starts (after the tag and an optional `UID`).
fn verb_at(message: &[u8]) -> Option<usize> {
    let space = message.iter().position(|&b| b == b' ')?;
    let pos = space + 1;
    Some(if starts_word(message, pos, b"UID ") {
        pos + 4
    } else {
        pos
    })
}

/// Whether the byte after a `$` ends it as a token.
fn ends_token(b: Option<&u8>) -> bool {
    matches!(b, Some(b' ' | b')' | b'\r' | b'\n'))
}

/// If `message` is a FETCH, STORE, COPY, MOVE or UID EXPUNGE whose set is `$`, the command with
/// the placeholder set `1` instead: the session then uses the saved result.
pub fn saved_argument(message: &[u8]) -> Option<Vec<u8>> {
    let verb = verb_at(message)?;
    let name = [&b"FETCH "[..], b"STORE ", b"COPY ", b"MOVE ", b"EXPUNGE "]
        .into_iter()
        .find(|v| starts_word(message, verb, v))?;
    let at = verb + name.len();
    if message.get(at) != Some(&b'$') || !ends_token(message.get(at + 1)) {
        return None;
    }
    let mut out = message.to_vec();
    out[at] = b'1';
    Some(out)
}

/// If `message` is a SEARCH, SORT or THREAD with `$` among its keys, the command with each `$`
/// (and `UID $`) replaced by `UID <saved>`, `saved` giving the saved UIDs as a sequence set
/// (called only if there is a `$`; `None` when nothing is saved: `NOT ALL`, which matches
/// nothing). Quoted strings and literals are skipped.
pub fn search_keys(message: &[u8], saved: impl FnOnce() -> Option<String>) -> Option<Vec<u8>> {
    let verb = verb_at(message)?;
    [&b"SEARCH "[..], b"SORT ", b"THREAD "]
        .into_iter()
        .find(|v| starts_word(message, verb, v))?;
    let mut saved = Some(saved);
    let mut replacement = String::new();
    let mut out = Vec::with_capacity(message.len());
    let mut found = false;
    let mut i = 0;
    while i < message.len() {
        match message[i] {
            b'"' => {
                let mut j = i + 1;
                while j < message.len() && message[j] != b'"' {
                    j += if message[j] == b'\\' { 2 } else { 1 };
                }
                let end = (j + 1).min(message.len());
                out.extend_from_slice(&message[i..end]);
                i = end;
            }
            b'{' => {
                let end = literal_end(message, i).unwrap_or(i + 1);
                out.extend_from_slice(&message[i..end]);
                i = end;
            }
            b'$' if matches!(out.last(), Some(b' ' | b'(')) && ends_token(message.get(i + 1)) => {
                let key_start = out.len().saturating_sub(4);
                let after_uid = out.len() >= 5
                    && out[key_start..].eq_ignore_ascii_case(b"UID ")
                    && matches!(out[key_start - 1], b' ' | b'(');
                if after_uid {
                    out.truncate(key_start);
                }
                if let Some(saved) = saved.take() {
                    replacement =
                        saved().map_or_else(|| "NOT ALL".to_owned(), |s| format!("UID {s}"));
                }
                out.extend_from_slice(replacement.as_bytes());
                found = true;
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    found.then_some(out)
}

/// The end of the literal announced at `open` (`{n}` or `{n+}`, CRLF, n bytes).
fn literal_end(message: &[u8], open: usize) -> Option<usize> {
    let close = open + message[open..].iter().position(|&b| b == b'}')?;
    let digits = std::str::from_utf8(&message[open + 1..close]).ok()?;
    let n: usize = digits.trim_end_matches('+').parse().ok()?;
    if message.get(close + 1..close + 3) != Some(b"\r\n") {
        return None;
    }
    Some((close + 3).saturating_add(n).min(message.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_arguments() {
        assert_eq!(
            saved_argument(b"a FETCH $ (FLAGS)\r\n").unwrap(),
            b"a FETCH 1 (FLAGS)\r\n"
        );
        assert_eq!(
            saved_argument(b"a uid store $ +FLAGS (\\Seen)\r\n").unwrap(),
            b"a uid store 1 +FLAGS (\\Seen)\r\n"
        );
        assert_eq!(
            saved_argument(b"a UID EXPUNGE $\r\n").unwrap(),
            b"a UID EXPUNGE 1\r\n"
        );
        assert!(saved_argument(b"a FETCH 1:$ (FLAGS)\r\n").is_none());
        assert!(saved_argument(b"a FETCH $1 (FLAGS)\r\n").is_none());
        assert!(saved_argument(b"a SELECT $\r\n").is_none());
    }

    #[test]
    fn search_keys_become_uid_sets() {
        assert_eq!(
            search_keys(b"a SEARCH $ SEEN\r\n", || Some("3:5,9".into())).unwrap(),
            b"a SEARCH UID 3:5,9 SEEN\r\n"
        );
        assert_eq!(
            search_keys(b"a UID SEARCH OR UID $ (uid $)\r\n", || None).unwrap(),
            b"a UID SEARCH OR NOT ALL (NOT ALL)\r\n"
        );
        assert_eq!(
            search_keys(b"a SEARCH SUBJECT \" $ \" {3}\r\n $ $\r\n", || Some(
                "1".into()
            ))
            .unwrap(),
            b"a SEARCH SUBJECT \" $ \" {3}\r\n $ UID 1\r\n"
        );
        let never = || -> Option<String> { panic!("no $ to replace") };
        assert!(search_keys(b"a SEARCH SUBJECT \"$\"\r\n", never).is_none());
        assert!(search_keys(b"a FETCH $ FLAGS\r\n", never).is_none());
    }
}
