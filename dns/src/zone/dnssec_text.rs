//! Presentation format of the DNSSEC record types to wire format: RRSIG (RFC 4034 §3.2), NSEC
//! (RFC 4034 §4.2), NSEC3 and NSEC3PARAM (RFC 5155 §3.3, §4.3), CSYNC's type bitmap
//! (RFC 7477 §2.1.1), so that signed zone files load as BIND reads them.

use base64::Engine;
use hickory_proto::rr::Name;

use super::parse::parse_type;
use super::token::{emit_name, name};

/// The wire RDATA of an RRSIG record.
pub fn rrsig(fields: &[&str], origin: &Name) -> Result<Vec<u8>, String> {
    let [covered, algorithm, labels, ttl, expiration, inception, tag, signer, signature @ ..] =
        fields
    else {
        return Err(
            "RRSIG needs type covered, algorithm, labels, original TTL, expiration, \
                    inception, key tag, signer and signature"
                .into(),
        );
    };
    let mut wire = Vec::new();
    wire.extend_from_slice(&u16::from(parse_type(covered)?).to_be_bytes());
    wire.push(number(algorithm, "algorithm")?);
    wire.push(number(labels, "labels")?);
    wire.extend_from_slice(&number::<u32>(ttl, "original TTL")?.to_be_bytes());
    wire.extend_from_slice(&time(expiration)?.to_be_bytes());
    wire.extend_from_slice(&time(inception)?.to_be_bytes());
    wire.extend_from_slice(&number::<u16>(tag, "key tag")?.to_be_bytes());
    emit_name(&name(signer, origin)?, &mut wire);
    if signature.is_empty() {
        return Err("signature missing".into());
    }
    wire.extend(
        base64::engine::general_purpose::STANDARD
            .decode(signature.concat())
            .map_err(|e| format!("bad signature: {e}"))?,
    );
    Ok(wire)
}

/// The wire RDATA of an NSEC record.
pub fn nsec(fields: &[&str], origin: &Name) -> Result<Vec<u8>, String> {
    let (next, types) = fields.split_first().ok_or("next domain name missing")?;
    let mut wire = Vec::new();
    emit_name(&name(next, origin)?, &mut wire);
    wire.extend(type_bitmap(types)?);
    Ok(wire)
}

/// The wire RDATA of an NSEC3 record (`params` false) or an NSEC3PARAM record.
pub fn nsec3(fields: &[&str], params: bool) -> Result<Vec<u8>, String> {
    let [algorithm, flags, iterations, salt, rest @ ..] = fields else {
        return Err("needs hash algorithm, flags, iterations and salt".into());
    };
    let mut wire = vec![
        number(algorithm, "hash algorithm")?,
        number(flags, "flags")?,
    ];
    wire.extend_from_slice(&number::<u16>(iterations, "iterations")?.to_be_bytes());
    let salt = match *salt {
        "-" => Vec::new(),
        hex => super::rdata::decode_hex(hex)?,
    };
    wire.push(u8::try_from(salt.len()).map_err(|_| "salt over 255 octets")?);
    wire.extend(salt);
    if params {
        if let Some(extra) = rest.first() {
            return Err(format!("extra input text `{extra}`"));
        }
        return Ok(wire);
    }
    let (next, types) = rest.split_first().ok_or("next hashed owner name missing")?;
    let hash = base32hex(next)?;
    wire.push(u8::try_from(hash.len()).map_err(|_| "hash over 255 octets")?);
    wire.extend(hash);
    wire.extend(type_bitmap(types)?);
    Ok(wire)
}

/// The CSYNC RDATA: SOA serial, flags, type bitmap.
pub fn csync(fields: &[&str]) -> Result<Vec<u8>, String> {
    let [serial, flags, types @ ..] = fields else {
        return Err("needs SOA serial and flags".into());
    };
    let mut wire = number::<u32>(serial, "SOA serial")?.to_be_bytes().to_vec();
    wire.extend_from_slice(&number::<u16>(flags, "flags")?.to_be_bytes());
    wire.extend(type_bitmap(types)?);
    Ok(wire)
}

/// Type bitmap windows (RFC 4034 §4.1.2).
fn type_bitmap(types: &[&str]) -> Result<Vec<u8>, String> {
    let mut codes: Vec<u16> = types
        .iter()
        .map(|t| parse_type(t).map(u16::from))
        .collect::<Result<_, _>>()?;
    codes.sort_unstable();
    codes.dedup();
    let mut wire = Vec::new();
    let mut i = 0;
    while i < codes.len() {
        let window = codes[i] >> 8;
        let mut bits = [0u8; 32];
        let mut used = 0;
        while i < codes.len() && codes[i] >> 8 == window {
            let low = usize::from(codes[i] & 0xff);
            bits[low / 8] |= 0x80 >> (low % 8);
            used = low / 8 + 1;
            i += 1;
        }
        wire.push(window as u8);
        wire.push(used as u8);
        wire.extend_from_slice(&bits[..used]);
    }
    Ok(wire)
}

/// Base 32 with the extended hex alphabet, no padding (RFC 4648 §7, RFC 5155 §3.3).
fn base32hex(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0);
    for c in text.bytes() {
        let value = match c.to_ascii_uppercase() {
            d @ b'0'..=b'9' => d - b'0',
            l @ b'A'..=b'V' => l - b'A' + 10,
            _ => return Err(format!("bad base32hex `{text}`")),
        };
        buffer = (buffer << 5) | u32::from(value);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Ok(out)
}

/// A signature time: `YYYYMMDDHHmmSS` (UTC) or seconds (RFC 4034 §3.2), serial-number
/// arithmetic modulo 2^32.
fn time(text: &str) -> Result<u32, String> {
    let bad = || format!("bad signature time `{text}`");
    if text.len() != 14 {
        return number::<u32>(text, "signature time");
    }
    let part = |range: std::ops::Range<usize>| -> Result<i64, String> {
        text.get(range).and_then(|s| s.parse().ok()).ok_or_else(bad)
    };
    let (y, m, d) = (part(0..4)?, part(4..6)?, part(6..8)?);
    let (hh, mm, ss) = (part(8..10)?, part(10..12)?, part(12..14)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 59 {
        return Err(bad());
    }
    // Days from the civil date (proleptic Gregorian), H. Hinnant's algorithm.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hh * 3600 + mm * 60 + ss;
    Ok(seconds.rem_euclid(1 << 32) as u32)
}

fn number<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, String> {
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("bad {what} `{text}`"));
    }
    text.parse().map_err(|_| format!("bad {what} `{text}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_bitmaps_and_base32hex() {
        assert_eq!(time("20260101000000"), Ok(1_767_225_600));
        assert_eq!(time("1767225600"), Ok(1_767_225_600));
        assert!(time("20261301000000").is_err());
        let mut expected = vec![0, 6, 0x40, 0x01, 0, 0, 0, 0x03, 4, 27];
        expected.extend([0; 26]);
        expected.push(0x20);
        assert_eq!(
            type_bitmap(&["A", "MX", "RRSIG", "NSEC", "TYPE1234"]).expect("ok"),
            expected
        );
        assert_eq!(base32hex("CPNMUOG").expect("ok"), b"foob");
    }
}
