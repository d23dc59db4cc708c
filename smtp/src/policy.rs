//! Connection policy on the MX: DNS block lists (RFC 5782) and the client network used for
//! greylisting (RFC 6647 §4.1).

use std::net::IpAddr;

use crate::resolver::Resolver;

/// The name to look up for `ip` under a block list `zone` (RFC 5782 §2.1 for IPv4: octets
/// reversed; §2.4 for IPv6: nibbles reversed), fully qualified.
pub(crate) fn dnsbl_query(ip: IpAddr, zone: &str) -> String {
    let zone = zone.trim_end_matches('.');
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.{zone}.")
        }
        IpAddr::V6(v6) => {
            let mut name = String::with_capacity(64 + zone.len() + 1);
            for byte in v6.octets().iter().rev() {
                name.push_str(&format!("{:x}.{:x}.", byte & 0xf, byte >> 4));
            }
            name.push_str(zone);
            name.push('.');
            name
        }
    }
}

/// Whether an address is public, that is, worth asking a block list about.
pub(crate) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast())
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public(IpAddr::V4(v4)),
            None => {
                let first = v6.segments()[0];
                !(v6.is_loopback()
                    || v6.is_unspecified()
                    || (first & 0xfe00) == 0xfc00
                    || (first & 0xffc0) == 0xfe80)
            }
        },
    }
}

/// The first block list among `zones` that lists `ip` with an A record in 127.0.0.0/8
/// (RFC 5782 §2.1). A lookup failure counts as not listed: a broken list must not stop mail.
pub(crate) async fn dnsbl_listed(
    resolver: &Resolver,
    ip: IpAddr,
    zones: &[String],
) -> Option<String> {
    for zone in zones {
        let name = dnsbl_query(ip, zone);
        match resolver.ipv4(&name).await {
            Ok(answer) => {
                if answer.records.iter().any(|a| a.octets()[0] == 127) {
                    return Some(zone.trim_end_matches('.').to_owned());
                }
            }
            Err(e) => tracing::debug!(zone, %ip, error = %e, "block list lookup"),
        }
    }
    None
}

/// The client network a greylisting triplet names: the /24 of an IPv4 address, the /64 of an
/// IPv6 address, so that pools of outbound servers retrying from neighbouring addresses pass.
pub(crate) fn greylist_network(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => greylist_network(IpAddr::V4(v4)),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dnsbl_names() {
        assert_eq!(
            dnsbl_query("192.0.2.99".parse().unwrap(), "zen.spamhaus.org"),
            "99.2.0.192.zen.spamhaus.org."
        );
        assert_eq!(
            dnsbl_query("2001:db8:1:2:3:4:567:89ab".parse().unwrap(), "bl.test."),
            "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.bl.test."
        );
    }

    #[test]
    fn public_addresses() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["192.0.2.1", "2001:db8::1", "::ffff:198.51.100.7"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn greylist_networks() {
        assert_eq!(
            greylist_network("192.0.2.77".parse().unwrap()),
            "192.0.2.0/24"
        );
        assert_eq!(
            greylist_network("2001:db8:a:b:c::1".parse().unwrap()),
            "2001:db8:a:b::/64"
        );
        assert_eq!(
            greylist_network("::ffff:192.0.2.1".parse().unwrap()),
            "192.0.2.0/24"
        );
    }
}
