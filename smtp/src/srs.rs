//! The Sender Rewriting Scheme (SRS, in the libsrs2/postsrsd `SRS0` form): a redirected
//! message leaves with an envelope sender at our domain, so SPF (RFC 7208) passes at the receiver,
//! and a bounce to that address can be turned back into the original sender.
//!
//! `SRS0=HHHHHHHH=TT=domain=local@forwarder`: `TT` is the day number modulo 1024 in base32, `HHHHHHHH`
//! the first eight base64 characters of HMAC-SHA256(secret, `TT` + domain + local), lower-cased
//! before hashing (some MTAs change case). Hand-written: no maintained SRS crate fits (rust-srs is
//! archived; others are unreviewed one-release crates), and the scheme is a few lines over `ring`.

use base64::Engine;
use ring::hmac;

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const HASH_LEN: usize = 8;
/// Days a rewritten address stays valid for bounces (libsrs2's default `maxage`).
pub const MAX_AGE_DAYS: u64 = 21;

/// Why a bounce address is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SrsError {
    /// Not of the `SRS0=...` form.
    #[error("not an SRS address")]
    NotSrs,
    /// The hash does not match: forged or damaged.
    #[error("SRS hash does not match")]
    BadHash,
    /// Older than [`MAX_AGE_DAYS`].
    #[error("SRS address has expired")]
    Expired,
}

/// An SRS rewriter with one secret.
#[derive(Clone)]
pub struct Srs {
    key: hmac::Key,
}

impl std::fmt::Debug for Srs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Srs(..)")
    }
}

impl Srs {
    /// A rewriter keyed with `secret`.
    pub fn new(secret: &[u8]) -> Srs {
        Srs {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    /// `sender` rewritten for forwarding by `domain` on day `day` (Unix days); the null sender
    /// and addresses without `@` stay as they are.
    pub fn forward(&self, sender: &str, domain: &str, day: u64) -> String {
        let Some((local, sender_domain)) = sender.rsplit_once('@') else {
            return sender.to_owned();
        };
        if local.is_empty() || sender_domain.is_empty() {
            return sender.to_owned();
        }
        let tt = timestamp(day);
        let hash = self.hash(&tt, sender_domain, local);
        format!("SRS0={hash}={tt}={sender_domain}={local}@{domain}")
    }

    /// The original sender of an `SRS0` address's local part, checked against the hash and
    /// [`MAX_AGE_DAYS`] on day `day`.
    pub fn reverse(&self, local_part: &str, day: u64) -> Result<String, SrsError> {
        let rest = local_part
            .get(..5)
            .filter(|p| p.eq_ignore_ascii_case("SRS0="))
            .map(|_| &local_part[5..])
            .ok_or(SrsError::NotSrs)?;
        let mut parts = rest.splitn(4, '=');
        let (Some(hash), Some(tt), Some(domain), Some(local)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(SrsError::NotSrs);
        };
        if tt.len() != 2 || domain.is_empty() || local.is_empty() {
            return Err(SrsError::NotSrs);
        }
        let expected = self.hash(tt, domain, local);
        if !same_hash(&expected, hash) {
            return Err(SrsError::BadHash);
        }
        let then = decode_timestamp(tt).ok_or(SrsError::NotSrs)?;
        let age = (day % 1024 + 1024 - then) % 1024;
        if age > MAX_AGE_DAYS {
            return Err(SrsError::Expired);
        }
        Ok(format!("{local}@{domain}"))
    }

    fn hash(&self, tt: &str, domain: &str, local: &str) -> String {
        let data = format!("{tt}{domain}{local}").to_ascii_lowercase();
        let tag = hmac::sign(&self.key, data.as_bytes());
        let mut text = base64::engine::general_purpose::STANDARD.encode(tag.as_ref());
        text.truncate(HASH_LEN);
        text
    }
}

/// Case-insensitive comparison taking the same time wherever the first difference is.
fn same_hash(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| {
            acc | (x.to_ascii_lowercase() ^ y.to_ascii_lowercase())
        }) == 0
}

/// Today as Unix days.
pub fn today() -> u64 {
    u64::try_from(postern_store::unix_now()).unwrap_or(0) / 86_400
}

fn timestamp(day: u64) -> String {
    let t = day % 1024;
    let a = BASE32[(t >> 5) as usize] as char;
    let b = BASE32[(t & 31) as usize] as char;
    format!("{a}{b}")
}

fn decode_timestamp(tt: &str) -> Option<u64> {
    let mut value = 0u64;
    for c in tt.bytes() {
        let i = BASE32.iter().position(|&b| b == c.to_ascii_uppercase())?;
        value = value * 32 + i as u64;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_and_reverse() {
        let srs = Srs::new(b"secret");
        let day = 20_000;
        let a = srs.forward("alice+x=y@Example.ORG", "fwd.test", day);
        assert!(
            a.starts_with("SRS0=") && a.ends_with("=Example.ORG=alice+x=y@fwd.test"),
            "{a}"
        );
        let local = a.rsplit_once('@').unwrap().0;
        assert_eq!(srs.reverse(local, day).unwrap(), "alice+x=y@Example.ORG");
        assert_eq!(
            srs.reverse(&local.to_ascii_lowercase(), day + 3).unwrap(),
            "alice+x=y@example.org"
        );
        assert_eq!(srs.forward("", "fwd.test", day), "");
    }

    #[test]
    fn tampering_and_expiry() {
        let srs = Srs::new(b"secret");
        let day = 20_000;
        let a = srs.forward("alice@example.org", "fwd.test", day);
        let local = a.rsplit_once('@').unwrap().0;
        let forged = local.replace("alice", "mallory");
        assert_eq!(srs.reverse(&forged, day), Err(SrsError::BadHash));
        assert_eq!(
            Srs::new(b"other").reverse(local, day),
            Err(SrsError::BadHash)
        );
        assert_eq!(
            srs.reverse(local, day + MAX_AGE_DAYS + 1),
            Err(SrsError::Expired)
        );
        assert_eq!(
            srs.reverse(local, day + MAX_AGE_DAYS).unwrap(),
            "alice@example.org"
        );
        assert_eq!(srs.reverse("alice", day), Err(SrsError::NotSrs));
        assert_eq!(srs.reverse("SRS0=abc", day), Err(SrsError::NotSrs));
        // Wraps around the 1024-day cycle.
        let b = srs.forward("bob@example.org", "fwd.test", 1023);
        assert!(srs.reverse(b.rsplit_once('@').unwrap().0, 1025).is_ok());
    }
}
