//! IMAP URLs naming one message or part (RFC 5092 §6, `imessagepart`) with URLAUTH (RFC 4467
//! §2.3, §9): `imap://user@host/mailbox[;UIDVALIDITY=n]/;UID=n[/;SECTION=s][/;PARTIAL=o.l]
//! [;EXPIRE=datetime];URLAUTH=access[:mechanism:token]`. No crate parses them, so this module
//! does: keywords are case-insensitive, names are percent-decoded UTF-8. The userinfo names the
//! owner; without an `@` of its own it is completed with the host, the domain of a Postern
//! account (`imap://alice@example.org/` is alice@example.org's).

/// Who may fetch a URL (RFC 4467 §3: the access identifier).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// `anonymous`: anyone, logged in or not.
    Anonymous,
    /// `authuser`: any authenticated user of this server.
    AuthUser,
    /// `user+name`: only that user.
    User(String),
    /// `submit+name`: a submission server acting for that user.
    Submit(String),
}

/// One parsed URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapUrl {
    /// The mailbox owner's address.
    pub owner: String,
    /// The mailbox name (UTF-8, `/` separated).
    pub mailbox: String,
    /// `;UIDVALIDITY=`: the URL is void if the mailbox's differs.
    pub uidvalidity: Option<u32>,
    /// `;UID=`.
    pub uid: u32,
    /// `;SECTION=` as written after decoding (`1.2`, `HEADER`, ...).
    pub section: Option<String>,
    /// `;PARTIAL=offset[.length]`.
    pub partial: Option<(u32, Option<u32>)>,
    /// `;EXPIRE=`: seconds since the epoch after which the URL is void.
    pub expire: Option<i64>,
    /// `;URLAUTH=` access identifier; `None` for a URL without URLAUTH.
    pub access: Option<Access>,
    /// Everything up to and including the access identifier: what the token signs (§2.3).
    pub rump: String,
    /// `:mechanism:token` after the rump, the mechanism upper-cased.
    pub verifier: Option<(String, String)>,
}

/// RFC 3986 §2.1 percent-decoding.
pub(crate) fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Percent-decodes `s` into UTF-8.
fn decode(s: &str) -> Option<String> {
    String::from_utf8(percent_decode(s)?).ok()
}

fn nz_number(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|&n| n > 0)
}

/// Splits `rest` at the case-insensitive `key` (e.g. `/;uid=`): before and after it.
fn split_key<'a>(rest: &'a str, key: &str) -> Option<(&'a str, &'a str)> {
    let at = rest.to_ascii_lowercase().find(key)?;
    Some((&rest[..at], &rest[at + key.len()..]))
}

/// The value of a trailing `;KEY=value` of `s` (the last such key), and `s` without it.
fn take_param<'a>(s: &'a str, key: &str) -> (&'a str, Option<&'a str>) {
    match split_key(s, key) {
        Some((before, value)) => (before, Some(value)),
        None => (s, None),
    }
}

fn access(s: &str) -> Option<Access> {
    let lower = s.to_ascii_lowercase();
    if lower == "anonymous" {
        return Some(Access::Anonymous);
    }
    if lower == "authuser" {
        return Some(Access::AuthUser);
    }
    let user = |prefix: &str| {
        lower
            .starts_with(prefix)
            .then(|| decode(&s[prefix.len()..]))
            .flatten()
            .filter(|u| !u.is_empty())
    };
    if let Some(u) = user("user+") {
        return Some(Access::User(u));
    }
    user("submit+").map(Access::Submit)
}

/// `;EXPIRE=` value (RFC 4467 §2.3: an RFC 3339 date-time), as seconds since the epoch.
fn expire(s: &str) -> Option<i64> {
    let decoded = decode(s)?;
    chrono::DateTime::parse_from_rfc3339(&decoded)
        .ok()
        .map(|t| t.timestamp())
}

/// Parses `url`; `None` if it is not an IMAP URL naming one message (or part of one).
pub fn parse(url: &str) -> Option<ImapUrl> {
    let scheme = "imap://";
    if !url.get(..scheme.len())?.eq_ignore_ascii_case(scheme) {
        return None;
    }
    let rest = &url[scheme.len()..];
    let (authority, path) = rest.split_once('/')?;
    let (userinfo, host) = authority.rsplit_once('@')?;
    let user = decode(userinfo.split(';').next()?)?;
    let host = host.split(':').next()?.to_ascii_lowercase();
    if user.is_empty() || host.is_empty() {
        return None;
    }
    let owner = if user.contains('@') {
        user
    } else {
        format!("{user}@{host}")
    };
    // The rump ends with the access identifier; a verifier `:mech:token` may follow.
    let (message_part, auth) = match split_key(path, ";urlauth=") {
        Some((m, a)) => (m, Some(a)),
        None => (path, None),
    };
    let (access_text, verifier) = match auth {
        Some(a) => match a.split_once(':') {
            Some((acc, v)) => {
                let (mech, token) = v.split_once(':')?;
                if mech.is_empty() || token.is_empty() {
                    return None;
                }
                (
                    Some(acc),
                    Some((mech.to_ascii_uppercase(), token.to_owned())),
                )
            }
            None => (Some(a), None),
        },
        None => (None, None),
    };
    let access = match access_text {
        Some(a) => Some(access(a)?),
        None => None,
    };
    let rump_len = url.len() - verifier.as_ref().map_or(0, |(m, t)| m.len() + t.len() + 2);
    let (message_part, expire_text) = take_param(message_part, ";expire=");
    let expire = match expire_text {
        Some(e) => Some(expire(e)?),
        None => None,
    };
    let (mailbox_part, after) = split_key(message_part, "/;uid=")?;
    let (mailbox_text, validity) = take_param(mailbox_part, ";uidvalidity=");
    let (after, partial_text) = take_param(after, "/;partial=");
    let (uid_text, section_text) = take_param(after, "/;section=");
    let partial = match partial_text {
        Some(p) => Some(match p.split_once('.') {
            Some((o, l)) => (o.parse().ok()?, Some(nz_number(l)?)),
            None => (p.parse().ok()?, None),
        }),
        None => None,
    };
    let mailbox = decode(mailbox_text)?;
    if mailbox.is_empty() {
        return None;
    }
    Some(ImapUrl {
        owner,
        mailbox,
        uidvalidity: match validity {
            Some(v) => Some(nz_number(v)?),
            None => None,
        },
        uid: nz_number(uid_text)?,
        section: match section_text {
            Some(s) => Some(decode(s)?).filter(|s| !s.is_empty()),
            None => None,
        },
        partial,
        expire,
        access,
        rump: url[..rump_len].to_owned(),
        verifier,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = parse(
            "imap://joe@example.org/INBOX/;uid=20/;section=1.2;urlauth=user+fred:internal:91354a47",
        )
        .unwrap();
        assert_eq!(u.owner, "joe@example.org");
        assert_eq!((u.mailbox.as_str(), u.uid), ("INBOX", 20));
        assert_eq!(u.section.as_deref(), Some("1.2"));
        assert_eq!(u.access, Some(Access::User("fred".into())));
        assert_eq!(
            u.rump,
            "imap://joe@example.org/INBOX/;uid=20/;section=1.2;urlauth=user+fred"
        );
        assert_eq!(u.verifier, Some(("INTERNAL".into(), "91354a47".into())));
        let u = parse("IMAP://a%40b.test@host/Sent%20Items;UIDVALIDITY=7/;UID=3/;PARTIAL=0.10;EXPIRE=2030-01-01T00:00:00Z;URLAUTH=anonymous")
            .unwrap();
        assert_eq!(u.owner, "a@b.test");
        assert_eq!(u.mailbox, "Sent Items");
        assert_eq!(
            (u.uidvalidity, u.uid, u.partial),
            (Some(7), 3, Some((0, Some(10))))
        );
        assert_eq!(u.expire, Some(1_893_456_000));
        assert_eq!(u.access, Some(Access::Anonymous));
        assert!(u.verifier.is_none());
        for bad in [
            "http://a@b/INBOX/;uid=1",
            "imap://b/INBOX/;uid=1",
            "imap://a@b/INBOX",
            "imap://a@b/INBOX/;uid=0",
            "imap://a@b/INBOX/;uid=x",
            "imap://a@b//;uid=1",
            "imap://a@b/INBOX/;uid=1;urlauth=nobody",
            "imap://a@b/INBOX/;uid=1;urlauth=user+",
            "imap://a@b/INBOX/;uid=1;urlauth=anonymous:internal",
            "imap://a@b/INBOX/;uid=1;urlauth=anonymous:internal:",
            "imap://a@b/INBOX/;uid=1;expire=soon;urlauth=anonymous",
            "imap://a@b/IN%ZZ/;uid=1",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }
}
