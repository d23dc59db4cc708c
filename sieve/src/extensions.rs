//! The Sieve extensions Postern announces (ManageSieve's `SIEVE` capability, RFC 5804 §1.7):
//! those `sieve-rs` compiles, less two it must not claim.

use sieve::compiler::grammar::{Capability, Comparator};

/// The space-separated extension names, in `sieve-rs`'s order. Left out: `comparator-elbonia`
/// (a test comparator of `sieve-rs`) and `enotify`, whose announcement would oblige a `NOTIFY`
/// capability naming the notification methods delivery carries out (RFC 5804 §1.7); Postern
/// sends no notifications.
pub fn extensions() -> String {
    Capability::all()
        .iter()
        .filter(|c| {
            !matches!(
                c,
                Capability::Comparator(Comparator::Elbonia) | Capability::Enotify
            )
        })
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn announced() {
        let list = super::extensions();
        for name in [
            "fileinto",
            "vacation",
            "date",
            "relational",
            "copy",
            "comparator-i;octet",
        ] {
            assert!(list.split(' ').any(|e| e == name), "{name} in {list}");
        }
        assert!(!list.contains("elbonia") && !list.contains("enotify"));
    }
}
