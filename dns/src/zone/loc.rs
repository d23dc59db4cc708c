//! LOC RDATA in presentation format (RFC 1876 §3) to wire format (RFC 1876 §2).

/// Reference latitude/longitude (the equator, the prime meridian) as 2^31 thousandths of
/// an arc second, and altitude base (100 000 m below the WGS 84 spheroid) in centimetres.
const EQUATOR: i64 = 1 << 31;
const ALT_BASE: i64 = 10_000_000;

/// Meters with up to two decimals (`-10.5`, `20m`) to centimetres.
fn centimetres(text: &str) -> Result<i64, String> {
    let bad = || format!("bad LOC distance `{text}`");
    let t = text.strip_suffix(['m', 'M']).unwrap_or(text);
    let (neg, t) = t.strip_prefix('-').map_or((false, t), |r| (true, r));
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    if whole.is_empty() && frac.is_empty()
        || frac.len() > 2
        || !whole
            .bytes()
            .chain(frac.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let frac: i64 = format!("{frac:0<2}").parse().map_err(|_| bad())?;
    let cm = whole.checked_mul(100).ok_or_else(bad)? + frac;
    Ok(if neg { -cm } else { cm })
}

/// A size or precision in the RFC 1876 §2 mantissa/exponent octet.
fn precision(text: &str) -> Result<u8, String> {
    let cm = centimetres(text)?;
    if !(0..=9_000_000_000).contains(&cm) {
        return Err(format!("LOC size or precision `{text}` out of range"));
    }
    let mut exponent = 0u32;
    while exponent < 9 && cm >= 10i64.pow(exponent + 1) {
        exponent += 1;
    }
    let mantissa = (cm / 10i64.pow(exponent)).min(9);
    Ok(((mantissa as u8) << 4) | exponent as u8)
}

/// One coordinate: degrees [minutes [seconds]] hemisphere, as thousandths of arc seconds
/// from the reference.
fn coordinate<'a>(
    fields: &mut impl Iterator<Item = &'a str>,
    hemispheres: [&str; 2],
    max_degrees: i64,
) -> Result<u32, String> {
    let mut parts = Vec::new();
    let hemisphere = loop {
        let f = fields.next().ok_or("LOC: coordinate incomplete")?;
        if hemispheres.iter().any(|h| f.eq_ignore_ascii_case(h)) {
            break f;
        }
        parts.push(f);
    };
    let bad = || format!("bad LOC coordinate `{}`", parts.join(" "));
    let (deg, min, sec) = match parts[..] {
        [d] => (d, "0", "0"),
        [d, m] => (d, m, "0"),
        [d, m, s] => (d, m, s),
        _ => return Err(bad()),
    };
    let deg: i64 = deg.parse().map_err(|_| bad())?;
    let min: i64 = min.parse().map_err(|_| bad())?;
    let (s, ms) = sec.split_once('.').unwrap_or((sec, ""));
    if ms.len() > 3 || !ms.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let s: i64 = s.parse().map_err(|_| bad())?;
    let ms: i64 = format!("{ms:0<3}").parse().map_err(|_| bad())?;
    if deg > max_degrees || min >= 60 || s >= 60 || deg < 0 || min < 0 || s < 0 {
        return Err(bad());
    }
    let value = ((deg * 60 + min) * 60 + s) * 1000 + ms;
    if value > max_degrees * 3_600_000 {
        return Err(bad());
    }
    let signed = if hemisphere.eq_ignore_ascii_case(hemispheres[0]) {
        EQUATOR + value
    } else {
        EQUATOR - value
    };
    u32::try_from(signed).map_err(|_| bad())
}

/// The wire RDATA of a LOC record from its presentation fields.
pub fn loc_wire(fields: &[&str]) -> Result<Vec<u8>, String> {
    let mut it = fields.iter().copied();
    let latitude = coordinate(&mut it, ["N", "S"], 90)?;
    let longitude = coordinate(&mut it, ["E", "W"], 180)?;
    let altitude = centimetres(it.next().ok_or("LOC: altitude missing")?)? + ALT_BASE;
    let altitude = u32::try_from(altitude).map_err(|_| "LOC altitude out of range")?;
    let mut sizes = [precision("1m")?, precision("10000m")?, precision("10m")?];
    for size in &mut sizes {
        match it.next() {
            Some(f) => *size = precision(f)?,
            None => break,
        }
    }
    if let Some(extra) = it.next() {
        return Err(format!("extra input text `{extra}`"));
    }
    let mut wire = vec![0, sizes[0], sizes[1], sizes[2]];
    wire.extend_from_slice(&latitude.to_be_bytes());
    wire.extend_from_slice(&longitude.to_be_bytes());
    wire.extend_from_slice(&altitude.to_be_bytes());
    Ok(wire)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1876_example() {
        // RFC 1876 §4: cambridge-net.kei.com. LOC 42 21 54 N 71 06 18 W -24m 30m
        let wire =
            loc_wire(&["42", "21", "54", "N", "71", "06", "18", "W", "-24m", "30m"]).expect("ok");
        assert_eq!(wire[..4], [0, 0x33, 0x16, 0x13]);
        assert_eq!(
            u32::from_be_bytes([wire[4], wire[5], wire[6], wire[7]]),
            (1u32 << 31) + ((42 * 60 + 21) * 60 + 54) * 1000
        );
        assert_eq!(
            u32::from_be_bytes([wire[12], wire[13], wire[14], wire[15]]),
            10_000_000 - 2400
        );
        assert!(loc_wire(&["91", "N", "0", "E", "0"]).is_err());
        assert!(loc_wire(&["1", "N", "0", "E", "0", "1", "1", "1", "1"]).is_err());
    }
}
