//! RDATA back to presentation format, for records that arrive on the wire (dynamic UPDATE)
//! and are stored as text like admin records.

use std::fmt::Write;

use hickory_proto::rr::{Name, RData};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

use super::parse::parse_text;

/// The RDATA in zone-file syntax (RFC 1035 §5.1) that the zone parser reads back to the same
/// value; TXT strings are quoted and escaped (RFC 1035 §5.1 `\DDD`), and any type whose text
/// form does not read back identically is written in the RFC 3597 §5 generic form
/// `\# <length> <hex>`. `None` only for RDATA that cannot be encoded at all.
pub fn rdata_text(data: &RData) -> Option<String> {
    let text = match data {
        RData::TXT(txt) => txt
            .txt_data
            .iter()
            .map(|s| quote(s))
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    };
    if reads_back(data, &text) {
        return Some(text);
    }
    let mut wire = Vec::new();
    data.emit(&mut BinEncoder::new(&mut wire)).ok()?;
    let mut generic = format!("\\# {} ", wire.len());
    for b in &wire {
        let _ = write!(generic, "{b:02x}");
    }
    reads_back(data, &generic).then_some(generic)
}

fn reads_back(data: &RData, text: &str) -> bool {
    if text.contains(['\n', '\r']) {
        return false;
    }
    let line = format!("@ 0 IN {} {text}\n", data.record_type());
    parse_text(&line, "update", &Name::root())
        .ok()
        .and_then(|p| p.records.into_iter().next())
        .is_some_and(|r| r.record.data == *data)
}

/// `data` as quoted `<character-string>`s of at most 255 octets each (RFC 1035 §3.3.14), as
/// TXT RDATA text for data longer than one string may hold (DKIM keys).
pub fn character_strings(data: &[u8]) -> String {
    data.chunks(255).map(quote).collect::<Vec<_>>().join(" ")
}

/// One `<character-string>` in double quotes (RFC 1035 §5.1).
fn quote(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\{b:03}");
            }
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{A, MX, TXT};

    #[test]
    fn round_trips() {
        let a = RData::A(A::new(192, 0, 2, 1));
        assert_eq!(rdata_text(&a).as_deref(), Some("192.0.2.1"));
        let mx = RData::MX(MX::new(
            10,
            Name::from_ascii("mail.example.test.").expect("n"),
        ));
        assert_eq!(rdata_text(&mx).as_deref(), Some("10 mail.example.test."));
        let txt = RData::TXT(TXT::from_bytes(vec![
            b"say \"hi\"  twice".as_slice(),
            b"\x00\x01;x".as_slice(),
        ]));
        let text = rdata_text(&txt).expect("text");
        assert_eq!(text, r#""say \"hi\"  twice" "\000\001;x""#);
        // Octets above 127 are written and read back as `\DDD` octets, not code points.
        let high = RData::TXT(TXT::from_bytes(vec![b"\xff\x80".as_slice()]));
        assert_eq!(rdata_text(&high).as_deref(), Some(r#""\255\128""#));
    }
}
