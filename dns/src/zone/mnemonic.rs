//! Class and type mnemonics of master files (RFC 1035 §5.1), and the RFC 3597 §5 `CLASSnnn`
//! and `TYPEnnn` forms.

use std::str::FromStr;

use hickory_proto::rr::{DNSClass, RecordType};

/// A class mnemonic or `CLASSnnn`; `None` for a token that is none (a type, a TTL).
pub(super) fn parse_class(tok: &str) -> Option<DNSClass> {
    // Nearly every class written is `IN`: no upper-case copy for it.
    if tok.eq_ignore_ascii_case("IN") {
        return Some(DNSClass::IN);
    }
    any_class(tok)
}

/// A class mnemonic or the RFC 3597 `CLASSnnn` form.
fn any_class(tok: &str) -> Option<DNSClass> {
    match tok.to_ascii_uppercase().as_str() {
        "IN" => Some(DNSClass::IN),
        "CH" => Some(DNSClass::CH),
        "HS" => Some(DNSClass::HS),
        "ANY" => Some(DNSClass::ANY),
        "NONE" => Some(DNSClass::NONE),
        other => other
            .strip_prefix("CLASS")
            .and_then(|n| n.parse::<u16>().ok())
            .map(DNSClass::from),
    }
}

/// Mnemonics hickory does not know, with their codes (IANA DNS parameters registry).
const EXTRA_TYPES: [(&str, u16); 7] = [
    ("RP", 17),
    ("AFSDB", 18),
    ("RT", 21),
    ("LOC", 29),
    ("KX", 36),
    ("SPF", 99),
    ("URI", 256),
];

/// The mnemonic of a type (`TYPEnnn` for one without, RFC 3597 §5).
pub fn type_name(rtype: RecordType) -> String {
    match rtype {
        RecordType::Unknown(code) => EXTRA_TYPES
            .iter()
            .find(|(_, c)| *c == code)
            .map_or_else(|| format!("TYPE{code}"), |(name, _)| (*name).to_owned()),
        other => other.to_string(),
    }
}

/// Parses a record type mnemonic or the RFC 3597 `TYPEnnn` form.
pub fn parse_type(tok: &str) -> Result<RecordType, String> {
    common_type(tok).map_or_else(|| any_type(tok), Ok)
}

/// The commonest types, matched without an upper-case copy.
fn common_type(tok: &str) -> Option<RecordType> {
    [
        RecordType::A,
        RecordType::AAAA,
        RecordType::MX,
        RecordType::TXT,
    ]
    .into_iter()
    .find(|common| tok.eq_ignore_ascii_case((*common).into()))
}

/// Any type [`parse_type`] takes.
fn any_type(tok: &str) -> Result<RecordType, String> {
    let upper = tok.to_ascii_uppercase();
    let rtype = match upper.strip_prefix("TYPE").map(str::parse::<u16>) {
        Some(Ok(code)) => RecordType::from(code),
        _ => match EXTRA_TYPES.iter().find(|(name, _)| *name == upper) {
            Some((_, code)) => RecordType::from(*code),
            None => {
                RecordType::from_str(&upper).map_err(|_| format!("unknown record type `{tok}`"))?
            }
        },
    };
    match rtype {
        RecordType::ANY
        | RecordType::AXFR
        | RecordType::IXFR
        | RecordType::OPT
        | RecordType::TSIG => Err(format!("{tok} is a meta type, not allowed in zone data")),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shortcuts for common mnemonics give what the general readers give.
    #[test]
    fn common_mnemonics_read_as_any_others() {
        let tokens = [
            "A", "a", "Aaaa", "aaaa", "AAAAA", "AA", "A6", "mx", "Mx", "MX1", "txt", "TxT",
            "TYPE1", "type28", "IN", "in", "iN", "IN6", "INN", "CLASS1", "ch", "", "\\A", "Ａ",
        ];
        for tok in tokens {
            if let Some(t) = common_type(tok) {
                assert_eq!(any_type(tok), Ok(t), "{tok}");
            }
            assert_eq!(parse_type(tok), any_type(tok), "{tok}");
            assert_eq!(parse_class(tok), any_class(tok), "{tok}");
        }
        assert_eq!(common_type("aaaa"), Some(RecordType::AAAA));
        assert_eq!(parse_class("In"), Some(DNSClass::IN));
    }
}
