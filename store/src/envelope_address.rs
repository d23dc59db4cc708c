//! RFC 5322 §3.4 address lists as IMAP's ENVELOPE shows them (RFC 3501 §7.4.2): groups with their
//! start and end markers, source routes, quoted local parts, a comment as the name of a bare
//! address, and missing parts filled in the way Dovecot does. mail-parser normalises addresses
//! for mail handling (it drops routes, empty groups and comments, and cannot tell a group's end),
//! so ENVELOPE reads the raw header value with this small parser instead.

use crate::parsed::EnvelopeAddress;

/// Local part of an address that has none (Dovecot's `MISSING_MAILBOX`).
const MISSING_MAILBOX: &str = "MISSING_MAILBOX";
/// Domain of an address that has none (Dovecot's `MISSING_DOMAIN`).
const MISSING_DOMAIN: &str = "MISSING_DOMAIN";

/// Most addresses read from one header (a bound on hostile input).
const MAX_ADDRESSES: usize = 10_000;

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    /// The text of the last comment skipped.
    comment: Option<String>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    /// Skips folding white space and comments (nested, with quoted pairs), remembering the last
    /// comment's text.
    fn cfws(&mut self) {
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'\t' | b'\r' | b'\n' => self.i += 1,
                b'(' => {
                    let mut depth = 0usize;
                    let mut text = Vec::new();
                    while let Some(c) = self.peek() {
                        self.i += 1;
                        match c {
                            b'(' => {
                                if depth > 0 {
                                    text.push(c);
                                }
                                depth += 1;
                            }
                            b')' => {
                                depth -= 1;
                                if depth == 0 {
                                    break;
                                }
                                text.push(c);
                            }
                            b'\\' => {
                                if let Some(n) = self.peek() {
                                    text.push(n);
                                    self.i += 1;
                                }
                            }
                            _ => text.push(c),
                        }
                    }
                    let text = String::from_utf8_lossy(&text).trim().to_owned();
                    self.comment = Some(text);
                }
                _ => break,
            }
        }
    }

    /// A quoted string's content (quoted pairs undone); the opening quote is at `self.i`.
    fn quoted(&mut self) -> String {
        self.i += 1;
        let mut out = Vec::new();
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    if let Some(n) = self.peek() {
                        out.push(n);
                        self.i += 1;
                    }
                }
                b'\r' | b'\n' => {}
                _ => out.push(c),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// A run of atom text (RFC 5322 `atext` and `.`), possibly empty.
    fn atom(&mut self) -> String {
        let start = self.i;
        while let Some(c) = self.peek() {
            if matches!(
                c,
                b'(' | b')' | b'<' | b'>' | b'@' | b',' | b';' | b':' | b'\\' | b'"' | b'[' | b']'
            ) || c.is_ascii_whitespace()
                || c.is_ascii_control()
            {
                break;
            }
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }

    /// Words (atoms and quoted strings) up to a special character: a display name or local part.
    /// Returns the words and whether any was quoted.
    fn words(&mut self) -> Vec<String> {
        let mut words = Vec::new();
        loop {
            self.cfws();
            match self.peek() {
                Some(b'"') => words.push(self.quoted()),
                Some(_) => {
                    let a = self.atom();
                    if a.is_empty() {
                        break;
                    }
                    words.push(a);
                }
                None => break,
            }
        }
        words
    }

    /// A domain: dot-atoms and domain literals (`[...]`, kept with brackets), comments skipped.
    fn domain(&mut self) -> String {
        let mut out = String::new();
        loop {
            self.cfws();
            match self.peek() {
                Some(b'[') => {
                    let start = self.i;
                    while let Some(c) = self.peek() {
                        self.i += 1;
                        if c == b']' {
                            break;
                        }
                    }
                    out.push_str(&String::from_utf8_lossy(&self.s[start..self.i]));
                }
                Some(_) => {
                    let a = self.atom();
                    if a.is_empty() {
                        break;
                    }
                    out.push_str(&a);
                }
                None => break,
            }
        }
        out
    }

    /// `<[route:]local@domain>` after the `<`.
    fn angle_addr(&mut self, name: Option<String>) -> EnvelopeAddress {
        self.cfws();
        let mut route = None;
        if self.peek() == Some(b'@') {
            let start = self.i;
            while let Some(c) = self.peek() {
                if c == b':' || c == b'>' {
                    break;
                }
                self.i += 1;
            }
            let text: String = String::from_utf8_lossy(&self.s[start..self.i])
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            if self.peek() == Some(b':') {
                self.i += 1;
                route = Some(text);
            }
        }
        let local = self.words().concat();
        self.cfws();
        let domain = if self.peek() == Some(b'@') {
            self.i += 1;
            self.domain()
        } else {
            String::new()
        };
        self.cfws();
        while let Some(c) = self.peek() {
            self.i += 1;
            if c == b'>' {
                break;
            }
        }
        address(name, route, local, domain)
    }
}

fn address(
    name: Option<String>,
    route: Option<String>,
    local: String,
    domain: String,
) -> EnvelopeAddress {
    EnvelopeAddress {
        name: name.filter(|n| !n.is_empty()),
        route,
        mailbox: Some(if local.is_empty() {
            MISSING_MAILBOX.to_owned()
        } else {
            local
        }),
        host: Some(if domain.is_empty() {
            MISSING_DOMAIN.to_owned()
        } else {
            domain
        }),
    }
}

/// The ENVELOPE address structures of a raw (unfolded) address header value. A group becomes
/// `(NIL NIL name NIL)`, its members, then `(NIL NIL NIL NIL)` (RFC 3501 §7.4.2).
pub fn envelope_addresses(value: &str) -> Vec<EnvelopeAddress> {
    let mut p = Parser {
        s: value.as_bytes(),
        i: 0,
        comment: None,
    };
    let mut out = Vec::new();
    let mut in_group = false;
    while out.len() < MAX_ADDRESSES {
        p.cfws();
        let Some(c) = p.peek() else { break };
        match c {
            b',' => {
                p.i += 1;
                continue;
            }
            b';' => {
                p.i += 1;
                if in_group {
                    out.push(EnvelopeAddress::default());
                    in_group = false;
                }
                continue;
            }
            _ => {}
        }
        p.comment = None;
        let start = p.i;
        let words = p.words();
        p.cfws();
        match p.peek() {
            Some(b':') if !in_group => {
                p.i += 1;
                out.push(EnvelopeAddress {
                    mailbox: Some(words.join(" ")),
                    ..EnvelopeAddress::default()
                });
                in_group = true;
            }
            Some(b'<') => {
                p.i += 1;
                let name = Some(words.join(" "));
                out.push(p.angle_addr(name));
            }
            Some(b'@') => {
                p.i += 1;
                let local = words.concat();
                p.comment = None;
                let domain = p.domain();
                p.cfws();
                out.push(address(p.comment.take(), None, local, domain));
            }
            _ => {
                if words.is_empty() && p.i == start {
                    // A character that cannot start anything (a stray `>`, `:` or `@`): skip it.
                    p.i += 1;
                    continue;
                }
                out.push(address(
                    p.comment.take(),
                    None,
                    words.concat(),
                    String::new(),
                ));
            }
        }
    }
    if in_group {
        out.push(EnvelopeAddress::default());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(name: Option<&str>, route: Option<&str>, mailbox: &str, host: &str) -> EnvelopeAddress {
        EnvelopeAddress {
            name: name.map(str::to_owned),
            route: route.map(str::to_owned),
            mailbox: Some(mailbox.to_owned()),
            host: Some(host.to_owned()),
        }
    }

    fn group(name: &str) -> EnvelopeAddress {
        EnvelopeAddress {
            mailbox: Some(name.to_owned()),
            ..EnvelopeAddress::default()
        }
    }

    #[test]
    fn plain_named_and_commented() {
        assert_eq!(
            envelope_addresses("user@domain"),
            vec![a(None, None, "user", "domain")]
        );
        assert_eq!(
            envelope_addresses("Real Name <user@domain>, \"Doe, J\" <j@d>"),
            vec![
                a(Some("Real Name"), None, "user", "domain"),
                a(Some("Doe, J"), None, "j", "d")
            ]
        );
        assert_eq!(
            envelope_addresses("user@domain (Real Name)"),
            vec![a(Some("Real Name"), None, "user", "domain")]
        );
        assert_eq!(
            envelope_addresses("<user-from (comment)@ (comment) domain.org>"),
            vec![a(None, None, "user-from", "domain.org")]
        );
    }

    #[test]
    fn quoted_local_part_route_and_missing_parts() {
        assert_eq!(
            envelope_addresses("\"a b\"@c"),
            vec![a(None, None, "a b", "c")]
        );
        assert_eq!(
            envelope_addresses("<@route:user@domain>"),
            vec![a(None, Some("@route"), "user", "domain")]
        );
        assert_eq!(
            envelope_addresses("nodomain"),
            vec![a(None, None, "nodomain", MISSING_DOMAIN)]
        );
        assert_eq!(
            envelope_addresses("<>"),
            vec![a(None, None, MISSING_MAILBOX, MISSING_DOMAIN)]
        );
        assert!(envelope_addresses("").is_empty());
        assert!(envelope_addresses("  ").is_empty());
    }

    #[test]
    fn groups() {
        assert_eq!(
            envelope_addresses("group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;"),
            vec![
                group("group"),
                a(None, None, "g1", "d1.org"),
                a(None, None, "g2", "d2.org"),
                EnvelopeAddress::default(),
                group("group2"),
                a(None, None, "g3", "d3.org"),
                EnvelopeAddress::default(),
            ]
        );
        assert_eq!(
            envelope_addresses("group:;, group2: (foo) ;"),
            vec![
                group("group"),
                EnvelopeAddress::default(),
                group("group2"),
                EnvelopeAddress::default()
            ]
        );
        assert_eq!(
            envelope_addresses("undisclosed-recipients:"),
            vec![group("undisclosed-recipients"), EnvelopeAddress::default()]
        );
    }

    #[test]
    fn hostile_input_ends() {
        for s in [
            "<<<<",
            ">>>@@@::;;",
            "(((",
            "\"unterminated",
            "a@[1.2.3",
            "@:@:@",
        ] {
            let _ = envelope_addresses(s);
        }
        assert_eq!(
            envelope_addresses(&"a@b,".repeat(20_000)).len(),
            MAX_ADDRESSES
        );
    }
}
