//! LIST-EXTENDED (RFC 5258 §3) selection and return options. imap-codec parses only the RFC 3501
//! LIST grammar, so the options in parentheses are taken off here and the rest is left to it.

/// Options of an extended LIST.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListExtras {
    /// Selection option SUBSCRIBED: only subscribed mailboxes (RFC 5258 §3.1).
    pub subscribed: bool,
    /// Selection option SPECIAL-USE: only special-use mailboxes (RFC 6154 §3).
    pub special_use_only: bool,
    /// Return option SUBSCRIBED (or implied by the selection option).
    pub return_subscribed: bool,
    /// Whether any extended syntax was used (responses then carry `\NonExistent` rules).
    pub extended: bool,
}

fn options(list: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(list)
        .split_ascii_whitespace()
        .map(str::to_ascii_uppercase)
        .collect()
}

fn find_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len())
        .rposition(|w| w.eq_ignore_ascii_case(needle))
}

/// If `message` is a LIST with extended options, returns it without them, and the options.
pub fn split(message: &[u8]) -> Option<(Vec<u8>, ListExtras)> {
    let space = message.iter().position(|&b| b == b' ')?;
    let head = message.get(space + 1..space + 6)?;
    if !head.eq_ignore_ascii_case(b"LIST ") {
        return None;
    }
    let mut extras = ListExtras::default();
    let mut start = space + 6;
    let mut rest_start = start;
    if message.get(start) == Some(&b'(') {
        let close = start + message[start..].iter().position(|&b| b == b')')?;
        for o in options(&message[start + 1..close]) {
            match o.as_str() {
                "SUBSCRIBED" => {
                    extras.subscribed = true;
                    extras.return_subscribed = true;
                }
                "SPECIAL-USE" => extras.special_use_only = true,
                _ => {}
            }
        }
        extras.extended = true;
        start = close + 1;
        while message.get(start) == Some(&b' ') {
            start += 1;
        }
        rest_start = start;
    }
    let line_end = message.len()
        - if message.ends_with(b"\r\n") {
            2
        } else if message.ends_with(b"\n") {
            1
        } else {
            0
        };
    let mut end = line_end;
    if message[..line_end].ends_with(b")") {
        if let Some(at) = find_ci(&message[rest_start..line_end], b" RETURN (") {
            let at = rest_start + at;
            for o in options(&message[at + 9..line_end - 1]) {
                if o == "SUBSCRIBED" {
                    extras.return_subscribed = true;
                }
            }
            extras.extended = true;
            end = at;
        }
    }
    if !extras.extended {
        return None;
    }
    let mut out = message[..space + 6].to_vec();
    out.extend_from_slice(&message[rest_start..end]);
    out.extend_from_slice(b"\r\n");
    Some((out, extras))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thunderbird_list() {
        let (plain, x) = split(b"5 LIST (SUBSCRIBED) \"\" \"*\" RETURN (SPECIAL-USE)\r\n").unwrap();
        assert_eq!(plain, b"5 LIST \"\" \"*\"\r\n");
        assert!(x.subscribed && x.return_subscribed && !x.special_use_only);
        let (plain, x) = split(b"a list \"\" % return (subscribed children)\r\n").unwrap();
        assert_eq!(plain, b"a list \"\" %\r\n");
        assert!(!x.subscribed && x.return_subscribed);
        let (_, x) = split(b"a LIST (SPECIAL-USE) \"\" *\r\n").unwrap();
        assert!(x.special_use_only);
        assert!(split(b"a LIST \"\" *\r\n").is_none());
        assert!(split(b"a SELECT INBOX\r\n").is_none());
    }
}
