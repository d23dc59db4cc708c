//! Validation and normalisation of mail addresses and domain names.
//!
//! Domains are compared case-insensitively (RFC 5321 §2.4); local parts are matched
//! case-insensitively too, as Postfix and Dovecot do for virtual users, so both are stored lower-case.

use crate::error::{Result, StoreError};

/// A validated `local@domain` address, both parts lower-case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    /// The part before `@` (may be empty only for a catch-all alias source).
    pub local: String,
    /// The domain, without a trailing dot.
    pub domain: String,
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

/// Validates a domain name (letters, digits, hyphens and dots; RFC 1035 §2.3.1 lengths) and returns it
/// lower-case without a trailing dot.
pub fn normalize_domain(domain: &str) -> Result<String> {
    let d = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    let bad = |reason: &str| {
        Err(StoreError::invalid(
            "domain",
            format!("{domain:?}: {reason}"),
        ))
    };
    if d.is_empty() || d.len() > 253 {
        return bad("must be 1 to 253 characters");
    }
    for label in d.split('.') {
        if label.is_empty() || label.len() > 63 {
            return bad("each label must be 1 to 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return bad(
                "only letters, digits, hyphens and dots are allowed (use punycode for IDN)",
            );
        }
        if label.starts_with('-') || label.ends_with('-') {
            return bad("a label may not start or end with a hyphen");
        }
    }
    Ok(d)
}

/// Validates `local@domain` (RFC 5321 §4.1.2 dot-atom local part, at most 64 octets) and returns
/// it normalised. A quoted local part is refused: no hosted mailbox needs one.
pub fn normalize_address(address: &str) -> Result<Address> {
    let address = address.trim();
    let Some((local, domain)) = address.rsplit_once('@') else {
        return Err(StoreError::invalid(
            "address",
            format!("{address:?} has no @"),
        ));
    };
    let local = local.to_lowercase();
    let domain = normalize_domain(domain)?;
    if local.is_empty() || local.len() > 64 {
        return Err(StoreError::invalid(
            "address",
            format!("{address:?}: local part must be 1 to 64 octets"),
        ));
    }
    let atext = |c: char| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    if local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
        || !local.chars().all(|c| atext(c) || c == '.')
    {
        return Err(StoreError::invalid(
            "address",
            format!(
                "{address:?}: local part may hold letters, digits, dots and !#$%&'*+-/=?^_`{{|}}~"
            ),
        ));
    }
    Ok(Address { local, domain })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_trailing_dot() {
        let a = normalize_address("Alice.B+x@Example.TEST.").unwrap();
        assert_eq!(a.to_string(), "alice.b+x@example.test");
    }

    #[test]
    fn rejects_bad_addresses() {
        for bad in [
            "",
            "alice",
            "@example.test",
            "a b@example.test",
            "a..b@example.test",
            ".a@example.test",
            "a@-x.test",
            "a@x..test",
            "a@exa_mple.test",
        ] {
            assert!(normalize_address(bad).is_err(), "{bad:?} accepted");
        }
        assert!(normalize_address(&format!("{}@example.test", "a".repeat(65))).is_err());
    }
}
