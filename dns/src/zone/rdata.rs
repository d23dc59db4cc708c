//! Presentation-format RDATA (RFC 1035 §5.1 and each type's RFC) to hickory `RData`.
//!
//! Every field is read here into wire format, which hickory then decodes into its structured
//! `RData` (or carries as `RData::Unknown` with the same octets, RFC 3597, for types it has no
//! structure for, e.g. DNAME, RP, LOC, URI). hickory's own text parser reads `\DDD` escapes as
//! Unicode code points, leaves relative SVCB targets unqualified, ignores text after the RDATA
//! and knows no RP, AFSDB, KX, LOC, URI, SPF or DNAME; it also refuses NSEC and RRSIG, so
//! signed zone files would not load. That is why this reader exists.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use base64::Engine;
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::binary::{BinDecoder, Restrict};
use hickory_proto::serialize::txt::{parse_ttl, Parser};

use super::dnssec_text;
use super::loc::loc_wire;
use super::parse::type_name;
use super::svcb::svcb_params;
use super::token::{character_string, emit_name, name, octets};

/// Parses presentation-format RDATA relative to `origin`; any text left over is an error
/// (named-checkzone: "extra input text").
pub fn parse_rdata(rtype: RecordType, tokens: &[&str], origin: &Name) -> Result<RData, String> {
    read(rtype, tokens, origin).map_err(|e| format!("bad {} record: {e}", type_name(rtype)))
}

fn read(rtype: RecordType, tokens: &[&str], origin: &Name) -> Result<RData, String> {
    let mut c = Fields {
        tokens,
        pos: 0,
        origin,
        wire: Vec::new(),
    };
    if tokens.first() == Some(&"\\#") {
        c.pos = 1;
        let len: usize = c.number("`\\#` length")?;
        let data = decode_hex(&c.rest_joined())?;
        if data.len() != len {
            return Err(format!(
                "`\\#` length {len} but {} octets of data",
                data.len()
            ));
        }
        return from_wire(rtype, &data);
    }
    match rtype {
        // Addresses, most of a big zone's records, are built as they are (their octets would
        // decode to the same).
        RecordType::A => {
            let addr: Ipv4Addr = c.parse("IPv4 address")?;
            c.end()?;
            return Ok(RData::A(addr.into()));
        }
        RecordType::AAAA => {
            let addr: Ipv6Addr = c.parse("IPv6 address")?;
            c.end()?;
            return Ok(RData::AAAA(addr.into()));
        }
        RecordType::NS
        | RecordType::CNAME
        | RecordType::DNAME
        | RecordType::PTR
        | RecordType::ANAME => c.name()?,
        RecordType::MX => c.u16_then_name()?,
        RecordType::SOA => {
            c.name()?;
            c.name()?;
            let serial: u32 = c.number("serial")?;
            c.wire.extend_from_slice(&serial.to_be_bytes());
            for what in ["refresh", "retry", "expire", "minimum"] {
                c.ttl(what)?;
            }
        }
        RecordType::TXT => {
            c.need("at least one character-string")?;
            while c.pos < c.tokens.len() {
                c.character_string()?;
            }
        }
        RecordType::HINFO => {
            c.character_string()?;
            c.character_string()?;
        }
        RecordType::SRV => {
            for what in ["priority", "weight", "port"] {
                c.u16(what)?;
            }
            c.name()?;
        }
        RecordType::NAPTR => {
            c.u16("order")?;
            c.u16("preference")?;
            for _ in 0..3 {
                c.character_string()?;
            }
            c.name()?;
        }
        RecordType::CAA => {
            c.u8("flags")?;
            let tag = c.next("tag")?;
            if !(1..=15).contains(&tag.len()) || !tag.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(format!("bad CAA tag `{tag}` (RFC 8659 §4.1)"));
            }
            c.wire.push(tag.len() as u8);
            c.wire.extend_from_slice(tag.as_bytes());
            let value = octets(c.next("value")?)?;
            c.wire.extend_from_slice(&value);
        }
        RecordType::SSHFP => {
            c.u8("algorithm")?;
            c.u8("fingerprint type")?;
            c.hex_rest()?;
        }
        RecordType::TLSA | RecordType::SMIMEA => {
            for what in ["usage", "selector", "matching type"] {
                c.u8(what)?;
            }
            c.hex_rest()?;
        }
        RecordType::OPENPGPKEY => c.base64_rest()?,
        RecordType::DS | RecordType::CDS => {
            c.u16("key tag")?;
            c.u8("algorithm")?;
            c.u8("digest type")?;
            c.hex_rest()?;
        }
        RecordType::DNSKEY | RecordType::CDNSKEY | RecordType::KEY => {
            c.u16("flags")?;
            c.u8("protocol")?;
            c.u8("algorithm")?;
            c.base64_rest()?;
        }
        RecordType::SVCB | RecordType::HTTPS => {
            c.u16("priority")?;
            c.name()?;
            let params: Vec<&str> = c.tokens[c.pos..].to_vec();
            c.pos = c.tokens.len();
            c.wire.extend(svcb_params(&params)?);
        }
        RecordType::RRSIG
        | RecordType::NSEC
        | RecordType::NSEC3
        | RecordType::NSEC3PARAM
        | RecordType::CSYNC => {
            let fields: Vec<&str> = c.tokens.to_vec();
            c.pos = c.tokens.len();
            c.wire = match rtype {
                RecordType::RRSIG => dnssec_text::rrsig(&fields, origin)?,
                RecordType::NSEC => dnssec_text::nsec(&fields, origin)?,
                RecordType::NSEC3 => dnssec_text::nsec3(&fields, false)?,
                RecordType::NSEC3PARAM => dnssec_text::nsec3(&fields, true)?,
                _ => dnssec_text::csync(&fields)?,
            };
        }
        RecordType::Unknown(code) => match code {
            // SPF (RFC 7208 §3.1, type 99) has the syntax of TXT.
            99 => {
                c.need("at least one character-string")?;
                while c.pos < c.tokens.len() {
                    c.character_string()?;
                }
            }
            // RP (RFC 1183 §2.2): mailbox and TXT domain names.
            17 => {
                c.name()?;
                c.name()?;
            }
            // AFSDB (RFC 1183 §1), RT (RFC 1183 §3.3), KX (RFC 2230 §3.1): preference, name.
            18 | 21 | 36 => c.u16_then_name()?,
            // LOC (RFC 1876 §3).
            29 => {
                let fields: Vec<&str> = c.tokens[c.pos..].to_vec();
                c.pos = c.tokens.len();
                c.wire = loc_wire(&fields)?;
            }
            // URI (RFC 7553 §4.4): priority, weight, target as one quoted string.
            256 => {
                c.u16("priority")?;
                c.u16("weight")?;
                let target = c.next("target")?;
                if !target.starts_with('"') {
                    return Err("URI target must be a quoted string (RFC 7553 §4.4)".into());
                }
                c.wire.extend(octets(target)?);
            }
            _ => return Err("use the RFC 3597 form `\\# <length> <hex>` for this type".into()),
        },
        _ => return hickory_text(rtype, tokens, origin),
    }
    c.end()?;
    from_wire(rtype, &c.wire)
}

/// Types without a reader here (CERT, and types hickory knows that are rare in zone files):
/// hickory's text parser, which reads their fields correctly (they hold no character-strings).
fn hickory_text(rtype: RecordType, tokens: &[&str], origin: &Name) -> Result<RData, String> {
    let text = format!("$ORIGIN {origin}\n@ 0 IN {rtype} {}\n", tokens.join(" "));
    let (_, sets) = Parser::new(text, None, None)
        .parse()
        .map_err(|e| e.to_string())?;
    sets.into_values()
        .flat_map(|set| set.into_parts().records)
        .map(|r| r.data)
        .next()
        .ok_or_else(|| "no data".to_owned())
}

/// Decodes wire-format RDATA into hickory's structure for the type (RFC 3597 §5 for `\#`).
pub fn from_wire(rtype: RecordType, wire: &[u8]) -> Result<RData, String> {
    let len = u16::try_from(wire.len()).map_err(|_| "RDATA longer than 65535 octets".to_owned())?;
    let mut decoder = BinDecoder::new(wire);
    let data = RData::read(&mut decoder, rtype, Restrict::new(len))
        .map_err(|e| format!("RDATA does not decode: {e}"))?;
    if !decoder.is_empty() {
        return Err("RDATA has trailing octets".into());
    }
    Ok(data)
}

/// Hex digits (whitespace between tokens allowed) to octets.
pub fn decode_hex(text: &str) -> Result<Vec<u8>, String> {
    hex::decode(text).map_err(|e| format!("bad hex data: {e}"))
}

/// A cursor over the RDATA tokens that writes wire format.
struct Fields<'a> {
    tokens: &'a [&'a str],
    pos: usize,
    origin: &'a Name,
    wire: Vec<u8>,
}

impl<'a> Fields<'a> {
    fn next(&mut self, what: &str) -> Result<&'a str, String> {
        let tok = self
            .tokens
            .get(self.pos)
            .ok_or_else(|| format!("{what} missing"))?;
        self.pos += 1;
        Ok(tok)
    }

    fn need(&self, what: &str) -> Result<(), String> {
        match self.tokens.get(self.pos) {
            Some(_) => Ok(()),
            None => Err(format!("{what} missing")),
        }
    }

    fn parse<T: FromStr>(&mut self, what: &str) -> Result<T, String> {
        let tok = self.next(what)?;
        tok.parse().map_err(|_| format!("bad {what} `{tok}`"))
    }

    fn number<T: FromStr>(&mut self, what: &str) -> Result<T, String> {
        let tok = self.next(what)?;
        if !tok.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("bad {what} `{tok}`"));
        }
        tok.parse()
            .map_err(|_| format!("{what} `{tok}` out of range"))
    }

    fn u8(&mut self, what: &str) -> Result<(), String> {
        let v: u8 = self.number(what)?;
        self.wire.push(v);
        Ok(())
    }

    fn u16(&mut self, what: &str) -> Result<(), String> {
        let v: u16 = self.number(what)?;
        self.wire.extend_from_slice(&v.to_be_bytes());
        Ok(())
    }

    fn ttl(&mut self, what: &str) -> Result<(), String> {
        let tok = self.next(what)?;
        let v = parse_ttl(tok).map_err(|_| format!("bad {what} `{tok}`"))?;
        self.wire.extend_from_slice(&v.to_be_bytes());
        Ok(())
    }

    fn name(&mut self) -> Result<(), String> {
        let tok = self.next("domain name")?;
        let n = name(tok, self.origin)?;
        emit_name(&n, &mut self.wire);
        Ok(())
    }

    fn u16_then_name(&mut self) -> Result<(), String> {
        self.u16("preference")?;
        self.name()
    }

    fn character_string(&mut self) -> Result<(), String> {
        let tok = self.next("character-string")?;
        let data = character_string(tok)?;
        self.wire.push(data.len() as u8);
        self.wire.extend_from_slice(&data);
        Ok(())
    }

    fn rest_joined(&mut self) -> String {
        let rest = self.tokens[self.pos..].concat();
        self.pos = self.tokens.len();
        rest
    }

    fn hex_rest(&mut self) -> Result<(), String> {
        self.need("hex data")?;
        let data = decode_hex(&self.rest_joined())?;
        self.wire.extend(data);
        Ok(())
    }

    fn base64_rest(&mut self) -> Result<(), String> {
        self.need("base64 data")?;
        let data = base64::engine::general_purpose::STANDARD
            .decode(self.rest_joined())
            .map_err(|e| format!("bad base64 data: {e}"))?;
        self.wire.extend(data);
        Ok(())
    }

    fn end(&self) -> Result<(), String> {
        match self.tokens.get(self.pos) {
            None => Ok(()),
            Some(extra) => Err(format!("extra input text `{extra}`")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(rtype: RecordType, text: &str) -> Result<RData, String> {
        let origin = Name::from_ascii("example.test.").expect("name");
        let tokens: Vec<&str> = text.split_whitespace().collect();
        parse_rdata(rtype, &tokens, &origin)
    }

    fn wire(data: &RData) -> Vec<u8> {
        let mut out = Vec::new();
        hickory_proto::serialize::binary::BinEncodable::emit(
            data,
            &mut hickory_proto::serialize::binary::BinEncoder::new(&mut out),
        )
        .expect("emit");
        out
    }

    /// A and AAAA data, built as they are, are what their octets decode to, and bad ones fail
    /// as they did through the octets (every address of the fidelity corpus, and hostile ones).
    #[test]
    fn addresses_as_their_octets_decode() {
        let corpus = include_str!("../../../tests/fixtures/fidelity/corpus.zone");
        let mut fields: Vec<(RecordType, String)> = corpus
            .lines()
            .filter_map(|l| {
                let tokens: Vec<&str> = l.split_whitespace().collect();
                let at = tokens.iter().position(|t| *t == "A" || *t == "AAAA")?;
                // The type of the record, not a type named in its data (NSEC, CSYNC).
                let data = tokens.get(at + 1)?;
                if at > 3 || (tokens.len() != at + 2 && *data != "\\#") {
                    return None;
                }
                let rtype = RecordType::from_str(tokens[at]).ok()?;
                Some((rtype, tokens[at + 1..].join(" ")))
            })
            .collect();
        assert!(fields.len() >= 12, "{fields:?}");
        for text in ["0.0.0.0", "255.255.255.255", "10.1.17.111"] {
            fields.push((RecordType::A, text.into()));
        }
        for text in [
            "::",
            "2001:db8::ffff:1",
            "::ffff:192.0.2.1",
            "fe80::1:2:3:4:5",
        ] {
            fields.push((RecordType::AAAA, text.into()));
        }
        for (rtype, text) in &fields {
            let data = read(*rtype, text).expect("address");
            let octets = match &data {
                RData::A(a) => a.0.octets().to_vec(),
                RData::AAAA(a) => a.0.octets().to_vec(),
                other => panic!("{other:?}"),
            };
            assert_eq!(from_wire(*rtype, &octets), Ok(data.clone()), "{text}");
            assert_eq!(wire(&data), octets);
        }
        let bad = [
            (
                RecordType::A,
                "1.2.3",
                "bad A record: bad IPv4 address `1.2.3`",
            ),
            (
                RecordType::A,
                "01.2.3.4",
                "bad A record: bad IPv4 address `01.2.3.4`",
            ),
            (
                RecordType::A,
                "1.2.3.4 x",
                "bad A record: extra input text `x`",
            ),
            (RecordType::A, "::1", "bad A record: bad IPv4 address `::1`"),
            (RecordType::A, "", "bad A record: IPv4 address missing"),
            (
                RecordType::AAAA,
                "1.2.3.4",
                "bad AAAA record: bad IPv6 address `1.2.3.4`",
            ),
            (
                RecordType::AAAA,
                ":: ::",
                "bad AAAA record: extra input text `::`",
            ),
            (
                RecordType::AAAA,
                "",
                "bad AAAA record: IPv6 address missing",
            ),
        ];
        for (rtype, text, message) in bad {
            assert_eq!(read(rtype, text), Err(message.to_owned()), "{text}");
        }
    }

    #[test]
    fn issue_cases() {
        let txt = read(RecordType::TXT, r#""\000\255\010""#).expect("txt");
        assert_eq!(wire(&txt), [3, 0, 255, 10]);
        let svcb = read(RecordType::SVCB, "1 www port=8443").expect("svcb");
        let RData::SVCB(svcb) = svcb else {
            panic!("structured SVCB")
        };
        assert_eq!(svcb.target_name.to_string(), "www.example.test.");
        let e = read(RecordType::MX, "10 a. b.").expect_err("extra");
        assert_eq!(e, "bad MX record: extra input text `b.`");
        let e = read(RecordType::A, "192.0.2.3 192.0.2.4").expect_err("extra");
        assert!(e.contains("extra input text `192.0.2.4`"), "{e}");
        assert!(read(RecordType::TXT, &format!("\"{}\"", "x".repeat(256))).is_err());
        let dname = read(RecordType::DNAME, "new").expect("dname");
        assert_eq!(wire(&dname), b"\x03new\x07example\x04test\x00");
        let rp = read(RecordType::Unknown(17), "admin info.").expect("rp");
        assert_eq!(wire(&rp), b"\x05admin\x07example\x04test\x00\x04info\x00");
        let e = read(RecordType::Unknown(17), "a").expect_err("short");
        assert_eq!(e, "bad RP record: domain name missing");
    }
}
