//! Address literals in MAIL and RCPT paths (`user@[192.0.2.1]`, `user@[IPv6:2001:db8::1]`,
//! RFC 5321 §4.1.3), which smtp-proto's path parser refuses: the literal is swapped for a
//! placeholder domain before parsing and put back into the parsed address afterwards.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use smtp_proto::Request;

/// The domain standing in for the literal while smtp-proto parses the line (`.invalid` is
/// reserved, RFC 2606 §2, so no real address can carry it).
const PLACEHOLDER: &str = "address-literal.invalid";

/// A MAIL or RCPT line whose path's domain is an address literal.
pub(super) struct Literal {
    /// The line with the literal replaced by the placeholder.
    pub line: Vec<u8>,
    /// The literal with its brackets, e.g. `[IPv6:2001:db8::1]`.
    literal: String,
}

/// The literal of a complete `MAIL FROM:<…@[…]>` or `RCPT TO:<…@[…]>` line, if it has one; a
/// literal that is not an IPv4 or `IPv6:` address (general address literals) gives `None`, so the
/// line is refused by the parser as before.
pub(super) fn find(line: &[u8]) -> Option<Literal> {
    let upper = line.get(..10)?.to_ascii_uppercase();
    if !(upper.starts_with(b"MAIL FROM:") || upper.starts_with(b"RCPT TO:")) {
        return None;
    }
    let open = line.iter().position(|&b| b == b'<')?;
    let close = open + line[open..].iter().position(|&b| b == b'>')?;
    let path = &line[open + 1..close];
    let at = path.windows(2).rposition(|w| w == b"@[")?;
    let literal = std::str::from_utf8(&path[at + 1..]).ok()?;
    ip(literal)?;
    let mut out = line[..open + 1 + at + 1].to_vec();
    out.extend_from_slice(PLACEHOLDER.as_bytes());
    out.extend_from_slice(&line[close..]);
    Some(Literal {
        line: out,
        literal: literal.to_owned(),
    })
}

/// The address of an IPv4 (`[192.0.2.1]`) or IPv6 (`[IPv6:2001:db8::1]`, tag in any case)
/// address literal (RFC 5321 §4.1.3); `None` for a domain name or another kind of literal.
pub(crate) fn ip(domain: &str) -> Option<IpAddr> {
    let inner = domain.strip_prefix('[')?.strip_suffix(']')?;
    match inner.get(..5) {
        Some(tag) if tag.eq_ignore_ascii_case("IPv6:") => {
            inner[5..].parse::<Ipv6Addr>().ok().map(IpAddr::V6)
        }
        _ => inner.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
    }
}

impl Literal {
    /// The parsed request with the literal back in its address.
    pub(super) fn restore(&self, request: Request<String>) -> Request<String> {
        let put_back = |address: String| match address.strip_suffix(PLACEHOLDER) {
            Some(local) if local.ends_with('@') => format!("{local}{}", self.literal),
            _ => address,
        };
        match request {
            Request::Mail { mut from } => {
                from.address = put_back(from.address);
                Request::Mail { from }
            }
            Request::Rcpt { mut to } => {
                to.address = put_back(to.address);
                Request::Rcpt { to }
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{find, ip};

    #[test]
    fn literal_addresses() {
        assert_eq!(ip("[192.0.2.1]"), Some("192.0.2.1".parse().unwrap()));
        assert_eq!(
            ip("[IPv6:2001:db8::1]"),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(ip("[ipv6:::1]"), Some("::1".parse().unwrap()));
        for not in [
            "example.test",
            "[::1]",
            "[IPv6:192.0.2.1]",
            "[300.0.0.1]",
            "[tag:x]",
            "192.0.2.1",
            "[192.0.2.1",
        ] {
            assert_eq!(ip(not), None, "{not}");
        }
    }

    #[test]
    fn finds_ip_literals_only() {
        let l = find(b"RCPT TO:<user@[127.0.0.1]> NOTIFY=NEVER\r\n").expect("literal");
        assert_eq!(
            l.line,
            b"RCPT TO:<user@address-literal.invalid> NOTIFY=NEVER\r\n"
        );
        assert!(find(b"mail from:<a@[IPv6:2001:db8::1]>\r\n").is_some());
        assert!(find(b"RCPT TO:<a@[ipv6:::1]>\r\n").is_some());
        assert!(find(b"RCPT TO:<a@[300.0.0.1]>\r\n").is_none());
        assert!(find(b"RCPT TO:<a@[tag:content]>\r\n").is_none());
        assert!(find(b"RCPT TO:<a@[127.0.0.1]x>\r\n").is_none());
        assert!(find(b"RCPT TO:<a@example.test>\r\n").is_none());
        assert!(find(b"EHLO [127.0.0.1]\r\n").is_none());
    }
}
