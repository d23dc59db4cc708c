//! LIST-EXTENDED (RFC 5258 §3, §6) selection and return options, several patterns, and LIST-STATUS
//! (RFC 5819 §2). imap-codec parses only the RFC 3501 LIST grammar (its `ext_list_extended` is
//! unfinished), so an extended LIST is read here; reference and first pattern are handed on to
//! imap-codec as a plain LIST, everything else travels in [`ListExtras`].

use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::status::StatusDataItemName;
use imap_codec::CommandCodec;

use imap_codec::decode::Decoder;

/// Options of an extended LIST.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListExtras {
    /// Selection option SUBSCRIBED: only subscribed names (RFC 5258 §3.1).
    pub subscribed: bool,
    /// Selection option SPECIAL-USE: only special-use mailboxes (RFC 6154 §3).
    pub special_use_only: bool,
    /// Selection option RECURSIVEMATCH: parents of matching children get CHILDINFO (RFC 5258
    /// §3.1).
    pub recursive_match: bool,
    /// Return option SUBSCRIBED (or implied by the selection option).
    pub return_subscribed: bool,
    /// Return option CHILDREN (RFC 5258 §4).
    pub return_children: bool,
    /// Return option STATUS with its items (RFC 5819 §2).
    pub return_status: Option<Vec<StatusDataItemName>>,
    /// Every pattern, the first included, as sent (before modified UTF-7 decoding).
    pub patterns: Vec<Vec<u8>>,
    /// Whether any extended syntax was used (responses then follow RFC 5258: `\NonExistent`,
    /// children attributes only when asked for).
    pub extended: bool,
}

/// One token of a LIST command.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    /// An atom, a quoted string (unescaped) or a literal's bytes.
    Word(Vec<u8>),
}

/// Splits the arguments of a command into tokens (RFC 3501 §4: atoms, quoted strings, literals,
/// parentheses), stopping at the final CRLF.
fn tokens(buf: &[u8]) -> Result<Vec<Token>, &'static str> {
    let syntax = "Syntax error in LIST";
    let mut out = Vec::new();
    let mut pos = 0;
    let end = buf.len() - buf.ends_with(b"\r\n") as usize * 2;
    while pos < end {
        match buf[pos] {
            b' ' => pos += 1,
            b'(' => {
                out.push(Token::Open);
                pos += 1;
            }
            b')' => {
                out.push(Token::Close);
                pos += 1;
            }
            b'"' => {
                let mut word = Vec::new();
                pos += 1;
                loop {
                    match buf.get(pos).filter(|_| pos < end) {
                        None | Some(b'\r' | b'\n') => return Err(syntax),
                        Some(b'"') => break,
                        Some(b'\\') => {
                            word.push(*buf.get(pos + 1).ok_or(syntax)?);
                            pos += 2;
                        }
                        Some(&b) => {
                            word.push(b);
                            pos += 1;
                        }
                    }
                }
                pos += 1;
                out.push(Token::Word(word));
            }
            b'{' => {
                let close = pos + buf[pos..].iter().position(|&b| b == b'}').ok_or(syntax)?;
                let digits = std::str::from_utf8(&buf[pos + 1..close])
                    .map_err(|_| syntax)?
                    .trim_end_matches('+');
                let len: usize = digits.parse().map_err(|_| syntax)?;
                let start = close + 3;
                if buf.get(close + 1..start) != Some(b"\r\n") || start + len > end {
                    return Err(syntax);
                }
                out.push(Token::Word(buf[start..start + len].to_vec()));
                pos = start + len;
            }
            _ => {
                let len = buf[pos..end]
                    .iter()
                    .position(|&b| matches!(b, b' ' | b'(' | b')' | b'"') || b < 0x20)
                    .unwrap_or(end - pos);
                if len == 0 {
                    return Err(syntax);
                }
                out.push(Token::Word(buf[pos..pos + len].to_vec()));
                pos += len;
            }
        }
    }
    Ok(out)
}

/// The words of a parenthesised list starting at `tokens[*at]` (which must be `(`).
fn word_list(tokens: &[Token], at: &mut usize) -> Result<Vec<Vec<u8>>, &'static str> {
    if tokens.get(*at) != Some(&Token::Open) {
        return Err("Expected a parenthesised list");
    }
    *at += 1;
    let mut words = Vec::new();
    loop {
        match tokens.get(*at) {
            Some(Token::Close) => {
                *at += 1;
                return Ok(words);
            }
            Some(Token::Word(w)) => {
                words.push(w.clone());
                *at += 1;
            }
            _ => return Err("Syntax error in LIST"),
        }
    }
}

fn upper(word: &[u8]) -> String {
    String::from_utf8_lossy(word).to_ascii_uppercase()
}

/// STATUS items of a RETURN (STATUS (...)) option, decoded by imap-codec.
fn status_items(words: &[Vec<u8>]) -> Result<Vec<StatusDataItemName>, &'static str> {
    let mut probe = b"a STATUS x (".to_vec();
    probe.extend_from_slice(&words.join(&b' '));
    probe.extend_from_slice(b")\r\n");
    match CommandCodec::default().decode(&probe) {
        Ok((b"", cmd)) => match cmd.body {
            CommandBody::Status { item_names, .. } => Ok(item_names.into_owned()),
            _ => Err("Bad STATUS return option"),
        },
        _ => Err("Bad STATUS return option"),
    }
}

/// Appends `word` as a literal (any bytes survive the trip to imap-codec).
fn push_literal(out: &mut Vec<u8>, word: &[u8]) {
    out.extend_from_slice(format!(" {{{}}}\r\n", word.len()).as_bytes());
    out.extend_from_slice(word);
}

/// If `message` is a LIST command, reads it: a plain LIST of the reference and first pattern for
/// imap-codec, and the options. Unknown options and RECURSIVEMATCH without another selection
/// option are errors (BAD, RFC 5258 §3).
pub fn split(message: &[u8]) -> Option<Result<(Vec<u8>, ListExtras), &'static str>> {
    let space = message.iter().position(|&b| b == b' ')?;
    let head = message.get(space + 1..space + 6)?;
    if !head.eq_ignore_ascii_case(b"LIST ") {
        return None;
    }
    Some(parse(message, space))
}

fn parse(message: &[u8], space: usize) -> Result<(Vec<u8>, ListExtras), &'static str> {
    let tokens = tokens(&message[space + 6..])?;
    let mut extras = ListExtras::default();
    let mut at = 0;
    if tokens.first() == Some(&Token::Open) {
        extras.extended = true;
        let mut other_selection = false;
        for o in word_list(&tokens, &mut at)? {
            match upper(&o).as_str() {
                "SUBSCRIBED" => {
                    extras.subscribed = true;
                    extras.return_subscribed = true;
                    other_selection = true;
                }
                "SPECIAL-USE" => {
                    extras.special_use_only = true;
                    other_selection = true;
                }
                "RECURSIVEMATCH" => extras.recursive_match = true,
                "REMOTE" => {}
                _ => return Err("Unknown LIST selection option"),
            }
        }
        if extras.recursive_match && !other_selection {
            return Err("RECURSIVEMATCH needs another selection option");
        }
    }
    let Some(Token::Word(reference)) = tokens.get(at) else {
        return Err("Syntax error in LIST");
    };
    at += 1;
    match tokens.get(at) {
        Some(Token::Open) => {
            extras.extended = true;
            extras.patterns = word_list(&tokens, &mut at)?;
            if extras.patterns.is_empty() {
                return Err("Empty pattern list");
            }
        }
        Some(Token::Word(w)) => {
            extras.patterns = vec![w.clone()];
            at += 1;
        }
        _ => return Err("Syntax error in LIST"),
    }
    if let Some(Token::Word(w)) = tokens.get(at) {
        if upper(w) != "RETURN" {
            return Err("Syntax error in LIST");
        }
        at += 1;
        extras.extended = true;
        if tokens.get(at) != Some(&Token::Open) {
            return Err("Syntax error in LIST");
        }
        at += 1;
        loop {
            match tokens.get(at) {
                Some(Token::Close) => {
                    at += 1;
                    break;
                }
                Some(Token::Word(w)) => {
                    at += 1;
                    match upper(w).as_str() {
                        "SUBSCRIBED" => extras.return_subscribed = true,
                        "CHILDREN" => extras.return_children = true,
                        "SPECIAL-USE" => {}
                        "STATUS" => {
                            let words = word_list(&tokens, &mut at)?;
                            extras.return_status = Some(status_items(&words)?);
                        }
                        _ => return Err("Unknown LIST return option"),
                    }
                }
                _ => return Err("Syntax error in LIST"),
            }
        }
    }
    if at != tokens.len() {
        return Err("Syntax error in LIST");
    }
    let mut plain = message[..space + 5].to_vec();
    push_literal(&mut plain, reference);
    push_literal(&mut plain, &extras.patterns[0]);
    plain.extend_from_slice(b"\r\n");
    Ok((plain, extras))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &[u8]) -> (Vec<u8>, ListExtras) {
        split(line).expect("a LIST").expect("valid")
    }

    #[test]
    fn options_and_patterns() {
        let (plain, x) = ok(b"5 LIST (SUBSCRIBED) \"\" \"*\" RETURN (SPECIAL-USE)\r\n");
        assert_eq!(plain, b"5 LIST {0}\r\n {1}\r\n*\r\n");
        assert!(x.subscribed && x.return_subscribed && !x.special_use_only && x.extended);
        let (_, x) = ok(b"a list \"\" % return (subscribed children)\r\n");
        assert!(!x.subscribed && x.return_subscribed && x.return_children);
        let (_, x) = ok(b"a LIST (SPECIAL-USE) \"\" *\r\n");
        assert!(x.special_use_only);
        let (_, x) = ok(b"a LIST \"\" *\r\n");
        assert!(!x.extended);
        assert_eq!(x.patterns, vec![b"*".to_vec()]);
        let (_, x) = ok(b"a LIST \"\" (a/*2 \"b c\" {3}\r\nx\"y)\r\n");
        assert_eq!(
            x.patterns,
            vec![b"a/*2".to_vec(), b"b c".to_vec(), b"x\"y".to_vec()]
        );
        let (_, x) = ok(b"a LIST (remote subscribed recursivematch) \"\" % RETURN (STATUS (MESSAGES UNSEEN))\r\n");
        assert!(x.recursive_match);
        assert_eq!(
            x.return_status,
            Some(vec![
                StatusDataItemName::Messages,
                StatusDataItemName::Unseen
            ])
        );
        assert!(split(b"a SELECT INBOX\r\n").is_none());
    }

    #[test]
    fn errors() {
        for line in [
            &b"a LIST (imaptest) \"\" \"\"\r\n"[..],
            b"a LIST (recursivematch) \"\" \"\"\r\n",
            b"a LIST (recursivematch remote) \"\" \"\"\r\n",
            b"a LIST \"\" \"\" return (imaptest)\r\n",
            b"a LIST \"\" ()\r\n",
            b"a LIST \"\"\r\n",
            b"a LIST \"\" % extra\r\n",
            b"a LIST \"\" \"unterminated\r\n",
            b"a LIST \"\" {99}\r\nshort\r\n",
        ] {
            assert!(split(line).expect("a LIST").is_err(), "{line:?}");
        }
    }
}
