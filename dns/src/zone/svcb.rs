//! SVCB/HTTPS SvcParams in presentation format (RFC 9460 §2.1 and Appendix A) to wire format.

use std::net::{Ipv4Addr, Ipv6Addr};

use base64::Engine;

use super::token::octets;

/// The SvcParamKey names of RFC 9460 §14.3.2, by number.
const KEYS: [&str; 9] = [
    "mandatory",
    "alpn",
    "no-default-alpn",
    "port",
    "ipv4hint",
    "ech",
    "ipv6hint",
    "dohpath",
    "ohttp",
];

fn key_number(name: &str) -> Result<u16, String> {
    if let Some(n) = KEYS.iter().position(|k| k.eq_ignore_ascii_case(name)) {
        return Ok(n as u16);
    }
    name.strip_prefix("key")
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|d| d.parse::<u16>().ok())
        .filter(|&k| k != 65535)
        .ok_or_else(|| format!("unknown SvcParamKey `{name}`"))
}

/// Splits a decoded value list on commas; `\,` and `\\` stand for `,` and `\` (RFC 9460 A.1).
fn value_list(value: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut items = vec![Vec::new()];
    let mut iter = value.iter();
    while let Some(&b) = iter.next() {
        match b {
            b'\\' => {
                let next = iter.next().ok_or("value list ends with a backslash")?;
                if let Some(item) = items.last_mut() {
                    item.push(*next);
                }
            }
            b',' => items.push(Vec::new()),
            _ => {
                if let Some(item) = items.last_mut() {
                    item.push(b);
                }
            }
        }
    }
    if items.iter().any(Vec::is_empty) {
        return Err("empty item in a comma-separated value list".into());
    }
    Ok(items)
}

fn text_items(value: &[u8]) -> Result<Vec<String>, String> {
    value_list(value)?
        .into_iter()
        .map(|i| String::from_utf8(i).map_err(|_| "non-ASCII item in a value list".to_owned()))
        .collect()
}

fn param_value(key: u16, value: Option<&[u8]>) -> Result<Vec<u8>, String> {
    let need = || value.ok_or_else(|| format!("SvcParam {} needs a value", key_name(key)));
    let mut out = Vec::new();
    match key {
        0 => {
            for k in text_items(need()?)? {
                out.extend_from_slice(&key_number(&k)?.to_be_bytes());
            }
        }
        1 => {
            for id in value_list(need()?)? {
                let len = u8::try_from(id.len()).map_err(|_| "ALPN id over 255 octets")?;
                out.push(len);
                out.extend(id);
            }
        }
        2 => {
            if value.is_some() {
                return Err("no-default-alpn takes no value".into());
            }
        }
        3 => {
            let text = String::from_utf8(need()?.to_vec()).map_err(|_| "bad port")?;
            let port: u16 = text.parse().map_err(|_| format!("bad port `{text}`"))?;
            out.extend_from_slice(&port.to_be_bytes());
        }
        4 => {
            for a in text_items(need()?)? {
                let addr: Ipv4Addr = a.parse().map_err(|_| format!("bad ipv4hint `{a}`"))?;
                out.extend_from_slice(&addr.octets());
            }
        }
        6 => {
            for a in text_items(need()?)? {
                let addr: Ipv6Addr = a.parse().map_err(|_| format!("bad ipv6hint `{a}`"))?;
                out.extend_from_slice(&addr.octets());
            }
        }
        5 => {
            out = base64::engine::general_purpose::STANDARD
                .decode(need()?)
                .map_err(|e| format!("bad ech: {e}"))?;
        }
        _ => out = value.map(<[u8]>::to_vec).unwrap_or_default(),
    }
    Ok(out)
}

fn key_name(key: u16) -> String {
    KEYS.get(usize::from(key))
        .map_or_else(|| format!("key{key}"), |k| (*k).to_owned())
}

/// The SvcParams of one SVCB/HTTPS record, in wire format sorted by key (RFC 9460 §2.2).
pub fn svcb_params(tokens: &[&str]) -> Result<Vec<u8>, String> {
    let mut params: Vec<(u16, Vec<u8>)> = Vec::new();
    let mut i = 0;
    while let Some(tok) = tokens.get(i) {
        i += 1;
        let (key, value) = match tok.split_once('=') {
            None => (*tok, None),
            Some((key, "")) => {
                let value = tokens
                    .get(i)
                    .filter(|v| v.starts_with('"'))
                    .ok_or_else(|| format!("SvcParam `{key}=` without a value"))?;
                i += 1;
                (key, Some(octets(value)?))
            }
            Some((key, value)) => (key, Some(octets(value)?)),
        };
        let number = key_number(key)?;
        if params.iter().any(|(k, _)| *k == number) {
            return Err(format!("SvcParam `{key}` given twice (RFC 9460 §2.2)"));
        }
        params.push((number, param_value(number, value.as_deref())?));
    }
    params.sort_by_key(|(k, _)| *k);
    let mut wire = Vec::new();
    for (key, value) in params {
        let len = u16::try_from(value.len()).map_err(|_| "SvcParam value too long")?;
        wire.extend_from_slice(&key.to_be_bytes());
        wire.extend_from_slice(&len.to_be_bytes());
        wire.extend(value);
    }
    Ok(wire)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_sorted_and_escaped() {
        let wire = svcb_params(&["port=8443", "alpn=", "\"h2,h3\"", "key65000=x"]).expect("ok");
        assert_eq!(
            wire,
            [
                &[0, 1, 0, 6, 2, b'h', b'2', 2, b'h', b'3'][..],
                &[0, 3, 0, 2, 0x20, 0xfb],
                &[0xfd, 0xe8, 0, 1, b'x'],
            ]
            .concat()
        );
        let wire = svcb_params(&[r"alpn=a\\,b,c"]).expect("ok");
        assert_eq!(wire, [0, 1, 0, 6, 3, b'a', b',', b'b', 1, b'c']);
        assert!(svcb_params(&["port=1", "port=2"]).is_err());
        assert!(svcb_params(&["bogus=1"]).is_err());
    }
}
