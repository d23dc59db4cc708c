//! Password hashes other mail systems store, accepted at login so that imported accounts keep
//! working: the next successful login replaces them with Argon2id (see [`crate::login`]).
//!
//! Accepted, with or without the Dovecot scheme prefix (`{SHA512-CRYPT}`, `{SHA256-CRYPT}`,
//! `{BLF-CRYPT}`, `{PBKDF2}`, `{CRYPT}`) that Mailu and others put in front:
//! - SHA-crypt `$6$` / `$5$` (Drepper's "Unix crypt using SHA-256 and SHA-512"),
//! - bcrypt `$2a$` / `$2b$` / `$2y$`,
//! - passlib's `bcrypt_sha256` (`$bcrypt-sha256$`, versions 1 and 2; Mailu's default since 1.9),
//! - passlib's `pbkdf2_sha512` / `pbkdf2_sha256` (`$pbkdf2-sha512$rounds$salt$sum`,
//!   adapted base64; what Mailu's `{PBKDF2}` scheme stored),
//! - MD5-crypt `$1$` (`{MD5-CRYPT}`, Poul-Henning Kamp's FreeBSD scheme), written here: the
//!   RustCrypto password-hash crates leave it out as broken, and `pwhash`, which has it, is
//!   unmaintained; it is only verified, never made.
//!
//! Every comparison is constant-time (the crates' own for SHA-crypt and bcrypt, `subtle` here).

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

/// Scheme prefixes in front of a hash, as Dovecot's password schemes name them.
const PREFIXES: [&str; 6] = [
    "{SHA512-CRYPT}",
    "{MD5-CRYPT}",
    "{SHA256-CRYPT}",
    "{BLF-CRYPT}",
    "{PBKDF2}",
    "{CRYPT}",
];

/// Most PBKDF2 iterations accepted from a stored hash, so one login cannot cost minutes.
const MAX_PBKDF2_ROUNDS: u32 = 10_000_000;

/// A stored hash of a scheme this module verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Sha512Crypt,
    Sha256Crypt,
    Bcrypt,
    BcryptSha256,
    Pbkdf2,
    Md5Crypt,
}

/// The hash without its `{SCHEME}` prefix, and its scheme if this module knows it.
fn identify(stored: &str) -> (&str, Option<Scheme>) {
    let bare = PREFIXES
        .iter()
        .find_map(|p| stored.strip_prefix(p))
        .unwrap_or(stored);
    let scheme = if bare.starts_with("$6$") {
        Some(Scheme::Sha512Crypt)
    } else if bare.starts_with("$5$") {
        Some(Scheme::Sha256Crypt)
    } else if ["$2a$", "$2b$", "$2y$"].iter().any(|p| bare.starts_with(p)) {
        Some(Scheme::Bcrypt)
    } else if bare.starts_with("$bcrypt-sha256$") {
        Some(Scheme::BcryptSha256)
    } else if bare.starts_with("$pbkdf2-sha512$") || bare.starts_with("$pbkdf2-sha256$") {
        Some(Scheme::Pbkdf2)
    } else if bare.starts_with("$1$") {
        Some(Scheme::Md5Crypt)
    } else {
        None
    };
    (bare, scheme)
}

/// Whether `stored` is a hash of a scheme [`verify`] knows (its format is not checked further).
pub(crate) fn is_legacy_hash(stored: &str) -> bool {
    identify(stored).1.is_some()
}

/// The scheme name of a stored hash for logs: the `{PREFIX}` or the `$id$`, never the hash.
pub(crate) fn scheme_name(stored: &str) -> String {
    let name = if stored.starts_with('{') {
        stored.split_inclusive('}').next().unwrap_or_default()
    } else {
        stored.split('$').nth(1).unwrap_or_default()
    };
    name.chars().take(32).collect()
}

/// Checks `password` against a stored hash of a legacy scheme. `None`: not a scheme this module
/// knows; `Some(false)` also for a malformed hash of a known scheme.
pub(crate) fn verify(password: &str, stored: &str) -> Option<bool> {
    let (bare, scheme) = identify(stored);
    Some(match scheme? {
        Scheme::Sha512Crypt => sha_crypt::sha512_check(password, bare).is_ok(),
        Scheme::Sha256Crypt => sha_crypt::sha256_check(password, bare).is_ok(),
        Scheme::Bcrypt => bcrypt::verify(password, bare).unwrap_or(false),
        Scheme::BcryptSha256 => bcrypt_sha256(password, bare).unwrap_or(false),
        Scheme::Pbkdf2 => pbkdf2(password, bare).unwrap_or(false),
        Scheme::Md5Crypt => md5_crypt(password, bare).unwrap_or(false),
    })
}

/// MD5-crypt `$1$<salt>$<sum>` (FreeBSD `crypt-md5.c`): salt of at most 8 characters, 1,000
/// rounds of MD5, the 16-byte result in crypt's base64 (`./0-9A-Za-z`, little end first).
fn md5_crypt(password: &str, bare: &str) -> Option<bool> {
    use md5::{Digest, Md5};
    let (salt, sum) = bare.strip_prefix("$1$")?.split_once('$')?;
    if salt.len() > 8 || sum.len() != 22 {
        return None;
    }
    let (pw, salt) = (password.as_bytes(), salt.as_bytes());
    let alternate = Md5::new()
        .chain_update(pw)
        .chain_update(salt)
        .chain_update(pw)
        .finalize();
    let mut ctx = Md5::new()
        .chain_update(pw)
        .chain_update(b"$1$")
        .chain_update(salt);
    for chunk in (0..pw.len()).step_by(16) {
        ctx.update(&alternate[..(pw.len() - chunk).min(16)]);
    }
    let mut i = pw.len();
    while i > 0 {
        if i & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(&pw[..1]);
        }
        i >>= 1;
    }
    let mut digest = ctx.finalize();
    for round in 0..1000 {
        let mut c = Md5::new();
        if round & 1 == 1 {
            c.update(pw);
        } else {
            c.update(digest);
        }
        if round % 3 != 0 {
            c.update(salt);
        }
        if round % 7 != 0 {
            c.update(pw);
        }
        if round & 1 == 1 {
            c.update(digest);
        } else {
            c.update(pw);
        }
        digest = c.finalize();
    }
    const ITOA64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let d = digest;
    let mut out = Vec::with_capacity(22);
    let groups = [
        (d[0], d[6], d[12]),
        (d[1], d[7], d[13]),
        (d[2], d[8], d[14]),
        (d[3], d[9], d[15]),
        (d[4], d[10], d[5]),
    ];
    let mut put = |mut v: u32, n: usize| {
        for _ in 0..n {
            out.push(ITOA64[(v & 0x3f) as usize]);
            v >>= 6;
        }
    };
    for (a, b, c) in groups {
        put(u32::from(a) << 16 | u32::from(b) << 8 | u32::from(c), 4);
    }
    put(u32::from(d[11]), 2);
    Some(out.ct_eq(sum.as_bytes()).into())
}

/// passlib `bcrypt_sha256`: `$bcrypt-sha256$v=2,t=2b,r=12$<salt>$<sum>` (the key is
/// base64(HMAC-SHA256(key = salt, password))) or version 1 `$bcrypt-sha256$2b,12$<salt>$<sum>`
/// (base64(SHA-256(password))); the key then goes through plain bcrypt with that salt and cost.
fn bcrypt_sha256(password: &str, bare: &str) -> Option<bool> {
    let mut parts = bare.strip_prefix("$bcrypt-sha256$")?.split('$');
    let (params, salt, sum) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || salt.len() != 22 || sum.len() != 31 {
        return None;
    }
    let (v2, ident, rounds) = match params.strip_prefix("v=2,") {
        Some(rest) => {
            let (t, r) = rest.split_once(',')?;
            (true, t.strip_prefix("t=")?, r.strip_prefix("r=")?)
        }
        None => {
            let (t, r) = params.split_once(',')?;
            (false, t, r)
        }
    };
    if !matches!(ident, "2a" | "2b") {
        return None;
    }
    let rounds: u32 = rounds.parse().ok()?;
    let digest: Vec<u8> = if v2 {
        let mut mac = Hmac::<Sha256>::new_from_slice(salt.as_bytes()).ok()?;
        mac.update(password.as_bytes());
        mac.finalize().into_bytes().to_vec()
    } else {
        Sha256::digest(password.as_bytes()).to_vec()
    };
    let key = base64::engine::general_purpose::STANDARD.encode(digest);
    bcrypt::verify(key, &format!("${ident}${rounds:02}${salt}{sum}")).ok()
}

/// passlib `pbkdf2_sha512` / `pbkdf2_sha256`: `$pbkdf2-sha512$<rounds>$<salt>$<sum>`, salt and sum in passlib's adapted base64 (`.` for `+`, no padding).
fn pbkdf2(password: &str, bare: &str) -> Option<bool> {
    let mut parts = bare.strip_prefix('$')?.split('$');
    let (id, rounds, salt, sum) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let rounds: u32 = rounds
        .parse()
        .ok()
        .filter(|r| (1..=MAX_PBKDF2_ROUNDS).contains(r))?;
    let (salt, sum) = (ab64(salt)?, ab64(sum)?);
    let mut out = vec![0u8; sum.len()];
    match (id, sum.len()) {
        ("pbkdf2-sha512", 64) => {
            pbkdf2::pbkdf2_hmac::<Sha512>(password.as_bytes(), &salt, rounds, &mut out)
        }
        ("pbkdf2-sha256", 32) => {
            pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), &salt, rounds, &mut out)
        }
        _ => return None,
    }
    Some(out.ct_eq(&sum).into())
}

/// Decodes passlib's adapted base64 (RFC 4648 §4 alphabet with `.` for `+`, no padding).
fn ab64(s: &str) -> Option<Vec<u8>> {
    let standard = s.replace('.', "+");
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(standard.trim_end_matches('='))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hashes of "correct horse" made by passlib 1.7.4 (the library Mailu hashes with).
    const VECTORS: [&str; 10] = [
        "{SHA512-CRYPT}$6$y0fK9zIcSveaFN3P$l1pHpOg3N.oLlnNtpauvZAPO6ccVOu3vvNaLzcb/M3juWUzfoSzbbvun3M4IpFp1vsXkzIv5ClXWRO1w9tcgZ.",
        "$6$rounds=6000$Lx/9WrOQml7Ciz96$qDpO5Fh6uMQ2CbAYEKHFSRqThxL54tABvowHo3DlnuvDwOpm37NYcjm.u8vOZcvIJrAgnz1WROYhS1e5yB5W4/",
        "{SHA256-CRYPT}$5$4GfaO3tV4q/2oa.H$mu0jI7QSkpa.lrI3DZw43DhaUvjMSD7v/sNUGS7Mpx5",
        "{BLF-CRYPT}$2y$04$C62dSN6MOcBIgcyAc8yvTO199halRH6vQAYbMeGRuOfh7z1NJGnwG",
        "$bcrypt-sha256$v=2,t=2b,r=4$8bZ9M7pu1r4nPO6bHjYAku$7YWtj4VOCzud0B7KDbcVNk7Tl9y4SQu",
        "$bcrypt-sha256$2b,4$HelfBmzMobSWgvmtLJIv5e$I/1imIsTVwBetMfWEsycxs.erL3uAxe",
        "{PBKDF2}$pbkdf2-sha512$1000$5Zzz3lurVWqtdc5ZS4kx5g$FcidrTSrQ1mi6jcGXO8qKKmpCJCigvnQLVTk3qeyQbt/Uel51uVBYdhT/5qN/BmKd01UnATpAMTgAwZC7Eek/w",
        "$pbkdf2-sha256$1000$DGGM0drbe08JYcy51/o/Bw$0U3PE8.qHp/4xCCPL5Fj8gHTJoIVr7hMzkPinAJfW2c",
        "{CRYPT}$2b$04$C62dSN6MOcBIgcyAc8yvTO199halRH6vQAYbMeGRuOfh7z1NJGnwG",
        "{MD5-CRYPT}$1$saltstri$CVtlMpOHug1.jDUbVpFvB1",
    ];

    /// MD5-crypt hashes made by `openssl passwd -1 -salt SALT PASSWORD` (OpenSSL 3.0).
    #[test]
    fn md5_crypt_vectors() {
        for (password, hash) in [
            ("secret", "$1$fsfe6i4t$rFPdgkRV9joppDK/9V9.Z."),
            ("", "$1$x$fwjfZtMwarkdetsjiQreU1"),
            (
                "Grüße, a long password of more than sixteen bytes",
                "$1$abcdefgh$ouB.uwXuefi0RycB3RtSs1",
            ),
        ] {
            assert_eq!(verify(password, hash), Some(true), "{hash}");
            assert_eq!(verify("secreT", hash), Some(false), "{hash}");
        }
    }

    #[test]
    fn known_vectors_verify_and_wrong_passwords_fail() {
        for v in VECTORS {
            assert!(is_legacy_hash(v), "{v}");
            assert_eq!(verify("correct horse", v), Some(true), "{v}");
            assert_eq!(verify("correct horsf", v), Some(false), "{v}");
            assert_eq!(verify("", v), Some(false), "{v}");
        }
    }

    #[test]
    fn malformed_and_unknown_hashes_fail_without_panic() {
        for bad in [
            "$6$",
            "$6$salt",
            "$2b$04$short",
            "$bcrypt-sha256$v=2,t=2x,r=4$8bZ9M7pu1r4nPO6bHjYAku$7YWtj4VOCzud0B7KDbcVNk7Tl9y4SQu",
            "$bcrypt-sha256$v=2$x$y",
            "$pbkdf2-sha512$0$5Zzz3lurVWqtdc5ZS4kx5g$FcidrTSrQ1mi6jcGXO8qKK",
            "$pbkdf2-sha512$99999999999$a$b",
            "$pbkdf2-sha256$1000$!!$??",
        ] {
            assert_eq!(verify("correct horse", bad), Some(false), "{bad}");
        }
        for bad in [
            "$1$abc$def",
            "$1$toolongsalt$CVtlMpOHug1.jDUbVpFvB1",
            "$1$x",
        ] {
            assert_eq!(verify("x", bad), Some(false), "{bad}");
        }
        assert_eq!(verify("x", "{SMD5}abc"), None);
        assert_eq!(verify("x", "{PLAIN}secret"), None);
        assert_eq!(
            verify("x", "$pbkdf2-md5$1000$DGGM0drbe08JYcy51/o/Bw$0U3PE8"),
            None
        );
        assert_eq!(scheme_name("{MD5-CRYPT}$1$abc$def"), "{MD5-CRYPT}");
        assert_eq!(scheme_name("$1$abc$def"), "1");
    }
}
