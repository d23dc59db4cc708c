//! Address match lists with BIND9 semantics (BIND 9 ARM, "Address Match Lists").
//!
//! Elements are tried in order and the first that matches decides: a plain element
//! allows, a `!`-negated one denies. A nested list (or a named ACL) counts as matching
//! only when it matches positively inside; a negative match inside a nested list is "no
//! match" for the outer list, so double negation never turns into a surprise allow.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use hickory_proto::rr::Name;
use ipnet::IpNet;

use crate::config::{AclConfig, MatchElement};
use crate::error::DnsError;

/// Who is asking: the client (or local) address and the TSIG key that signed the request.
#[derive(Debug, Clone, Copy)]
pub struct Who<'a> {
    /// Address to match; IPv4-mapped IPv6 addresses are matched as IPv4.
    pub ip: IpAddr,
    /// Name of the TSIG key that validly signed the request, if any.
    pub key: Option<&'a Name>,
}

/// A compiled address match list.
#[derive(Debug, Clone, Default)]
pub struct Acl {
    elements: Vec<(bool, Element)>,
}

#[derive(Debug, Clone)]
enum Element {
    Any,
    Never,
    Nets(Arc<[IpNet]>),
    Key(Name),
    Nested(Arc<Acl>),
}

impl Acl {
    /// True when the first matching element is a positive one.
    pub fn allows(&self, who: Who<'_>) -> bool {
        self.decide(&who, canonical(who.ip)) == Some(true)
    }

    /// `Some(true)` for a positive match, `Some(false)` for a negated one, `None` if nothing matched.
    fn decide(&self, who: &Who<'_>, ip: IpAddr) -> Option<bool> {
        for (negated, element) in &self.elements {
            let hit = match element {
                Element::Any => true,
                Element::Never => false,
                Element::Nets(nets) => nets.iter().any(|n| n.contains(&ip)),
                Element::Key(name) => who.key == Some(name),
                Element::Nested(inner) => inner.decide(who, ip) == Some(true),
            };
            if hit {
                return Some(!negated);
            }
        }
        None
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// The machine's own addresses, for the `localhost` and `localnets` keywords.
#[derive(Debug, Clone)]
pub struct LocalAddrs {
    localhost: Arc<[IpNet]>,
    localnets: Arc<[IpNet]>,
}

impl LocalAddrs {
    /// Reads the interface addresses now (BIND re-reads them on reload, so do we).
    pub fn detect() -> Self {
        let mut host: Vec<IpNet> = vec![
            IpNet::from(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            IpNet::from(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        ];
        let mut nets = host.clone();
        for iface in if_addrs::get_if_addrs().unwrap_or_default() {
            let (ip, prefix) = match iface.addr {
                if_addrs::IfAddr::V4(a) => (IpAddr::V4(a.ip), a.prefixlen),
                if_addrs::IfAddr::V6(a) => (IpAddr::V6(a.ip), a.prefixlen),
            };
            host.push(IpNet::from(ip));
            if let Ok(net) = IpNet::new(ip, prefix) {
                nets.push(net.trunc());
            }
        }
        host.dedup();
        nets.dedup();
        LocalAddrs {
            localhost: host.into(),
            localnets: nets.into(),
        }
    }

    /// Fixed addresses, for tests.
    #[cfg(test)]
    pub fn fixed(localhost: &[&str], localnets: &[&str]) -> Self {
        let parse = |v: &[&str]| -> Arc<[IpNet]> {
            v.iter()
                .map(|s| s.parse::<IpNet>().expect("test net"))
                .collect()
        };
        LocalAddrs {
            localhost: parse(localhost),
            localnets: parse(localnets),
        }
    }
}

/// Compiles match lists against the named ACLs and TSIG keys of one configuration.
pub struct AclCompiler<'a> {
    defs: HashMap<&'a str, &'a AclConfig>,
    done: HashMap<String, Arc<Acl>>,
    keys: &'a HashSet<Name>,
    local: LocalAddrs,
}

const KEYWORDS: [&str; 4] = ["any", "none", "localhost", "localnets"];

impl<'a> AclCompiler<'a> {
    /// Checks ACL names (unique, not keywords) and prepares to compile lists.
    pub fn new(
        acls: &'a [AclConfig],
        keys: &'a HashSet<Name>,
        local: LocalAddrs,
    ) -> Result<Self, DnsError> {
        let mut defs = HashMap::new();
        for acl in acls {
            if KEYWORDS.contains(&acl.name.as_str()) || acl.name.starts_with('!') {
                return Err(DnsError::config(format!(
                    "acl name `{}` is reserved",
                    acl.name
                )));
            }
            if defs.insert(acl.name.as_str(), acl).is_some() {
                return Err(DnsError::config(format!("duplicate acl `{}`", acl.name)));
            }
        }
        let mut compiler = AclCompiler {
            defs,
            done: HashMap::new(),
            keys,
            local,
        };
        for acl in acls {
            compiler.named(&acl.name, &mut Vec::new())?;
        }
        Ok(compiler)
    }

    /// Compiles one list; `context` names its place in the config for error messages.
    pub fn compile(&mut self, list: &[MatchElement], context: &str) -> Result<Acl, DnsError> {
        self.list(list, context, &mut Vec::new())
    }

    fn named(&mut self, name: &str, stack: &mut Vec<String>) -> Result<Arc<Acl>, DnsError> {
        if let Some(done) = self.done.get(name) {
            return Ok(done.clone());
        }
        if stack.iter().any(|s| s == name) {
            return Err(DnsError::config(format!(
                "acl `{name}` refers to itself ({} -> {name})",
                stack.join(" -> ")
            )));
        }
        let def = *self.defs.get(name).ok_or_else(|| {
            DnsError::config(format!(
                "unknown acl `{name}` (not an address, prefix, keyword or [[dns.acl]] name)"
            ))
        })?;
        stack.push(name.to_owned());
        let acl = Arc::new(self.list(&def.elements, &format!("acl `{name}`"), stack)?);
        stack.pop();
        self.done.insert(name.to_owned(), acl.clone());
        Ok(acl)
    }

    fn list(
        &mut self,
        list: &[MatchElement],
        context: &str,
        stack: &mut Vec<String>,
    ) -> Result<Acl, DnsError> {
        let mut elements = Vec::with_capacity(list.len());
        for element in list {
            elements.push(match element {
                MatchElement::List(inner) => (
                    false,
                    Element::Nested(Arc::new(self.list(inner, context, stack)?)),
                ),
                MatchElement::Item(text) => self.item(text.trim(), context, stack)?,
            });
        }
        Ok(Acl { elements })
    }

    fn item(
        &mut self,
        text: &str,
        context: &str,
        stack: &mut Vec<String>,
    ) -> Result<(bool, Element), DnsError> {
        let (negated, body) = match text.strip_prefix('!') {
            Some(rest) => (true, rest.trim_start()),
            None => (false, text),
        };
        let element = match body {
            "" => return Err(DnsError::config(format!("{context}: empty match element"))),
            "any" => Element::Any,
            "none" => Element::Never,
            "localhost" => Element::Nets(self.local.localhost.clone()),
            "localnets" => Element::Nets(self.local.localnets.clone()),
            _ => {
                if let Some(key) = body
                    .strip_prefix("key:")
                    .or_else(|| body.strip_prefix("key "))
                {
                    let name = key_name(key.trim())?;
                    if !self.keys.contains(&name) {
                        return Err(DnsError::config(format!(
                            "{context}: unknown TSIG key `{}`",
                            key.trim()
                        )));
                    }
                    Element::Key(name)
                } else if let Some(net) = parse_net(body) {
                    let net = net.map_err(|e| DnsError::config(format!("{context}: {e}")))?;
                    Element::Nets(Arc::from(vec![net]))
                } else {
                    Element::Nested(self.named(body, stack).map_err(|e| match e {
                        DnsError::Config(m) => DnsError::config(format!("{context}: {m}")),
                        other => other,
                    })?)
                }
            }
        };
        Ok((negated, element))
    }
}

/// Parses an address or prefix; `None` when the text does not look like one at all.
fn parse_net(text: &str) -> Option<Result<IpNet, String>> {
    let looks_like_address = text.contains(':')
        || text
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == '/');
    if !looks_like_address {
        return None;
    }
    Some(match text.split_once('/') {
        None => text
            .parse::<IpAddr>()
            .map(|ip| IpNet::from(canonical(ip)))
            .map_err(|_| format!("`{text}` is not a valid IP address")),
        Some(_) => text
            .parse::<IpNet>()
            .map_err(|_| format!("`{text}` is not a valid CIDR prefix"))
            .and_then(|net| {
                if net.trunc() == net {
                    Ok(net)
                } else {
                    Err(format!(
                        "`{text}` has host bits set (did you mean {}?)",
                        net.trunc()
                    ))
                }
            }),
    })
}

/// A TSIG key name as a domain name (`xfr-key` becomes `xfr-key.`).
pub fn key_name(text: &str) -> Result<Name, DnsError> {
    let mut name = Name::from_ascii(text)
        .map_err(|e| DnsError::config(format!("bad TSIG key name `{text}`: {e}")))?;
    name.set_fqdn(true);
    Ok(name.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(acls: &[AclConfig], keys: &[&str], list: &[MatchElement]) -> Result<Acl, DnsError> {
        let keys: HashSet<Name> = keys.iter().map(|k| key_name(k).expect("key")).collect();
        let local = LocalAddrs::fixed(&["127.0.0.1/32", "::1/128"], &["127.0.0.0/8"]);
        let mut c = AclCompiler::new(acls, &keys, local)?;
        c.compile(list, "test")
    }

    fn items(v: &[&str]) -> Vec<MatchElement> {
        v.iter().map(|s| MatchElement::from(*s)).collect()
    }

    fn who(ip: &str) -> Who<'static> {
        Who {
            ip: ip.parse().expect("ip"),
            key: None,
        }
    }

    #[test]
    fn first_match_wins_and_negation() {
        let acl = compile(&[], &[], &items(&["!10.1.0.0/16", "10.0.0.0/8"])).expect("acl");
        assert!(acl.allows(who("10.2.3.4")));
        assert!(!acl.allows(who("10.1.3.4")));
        assert!(!acl.allows(who("192.0.2.1")));
        let reversed = compile(&[], &[], &items(&["10.0.0.0/8", "!10.1.0.0/16"])).expect("acl");
        assert!(reversed.allows(who("10.1.3.4")));
    }

    #[test]
    fn keywords_and_mapped_addresses() {
        let acl = compile(&[], &[], &items(&["localhost"])).expect("acl");
        assert!(acl.allows(who("127.0.0.1")));
        assert!(acl.allows(who("::ffff:127.0.0.1")));
        assert!(!acl.allows(who("127.0.0.3")));
        let nets = compile(&[], &[], &items(&["localnets"])).expect("acl");
        assert!(nets.allows(who("127.0.0.3")));
        assert!(!compile(&[], &[], &items(&["none"]))
            .expect("acl")
            .allows(who("1.2.3.4")));
        assert!(!compile(&[], &[], &items(&["!any", "any"]))
            .expect("acl")
            .allows(who("1.2.3.4")));
        let v6 = compile(&[], &[], &items(&["2001:db8::/32"])).expect("acl");
        assert!(v6.allows(who("2001:db8::1")));
    }

    #[test]
    fn nested_negative_is_no_match() {
        let acls = vec![AclConfig {
            name: "not-bad".into(),
            elements: items(&["!192.0.2.66", "192.0.2.0/24"]),
        }];
        let acl = compile(&acls, &[], &items(&["not-bad", "192.0.2.66"])).expect("acl");
        // Inside `not-bad` .66 is a negative match, which is "no match" outside: the next
        // element then allows it.
        assert!(acl.allows(who("192.0.2.66")));
        let negated = compile(&acls, &[], &items(&["!not-bad", "any"])).expect("acl");
        assert!(!negated.allows(who("192.0.2.1")));
        assert!(negated.allows(who("192.0.2.66")));
        let inline = vec![
            MatchElement::List(items(&["!10.0.0.1", "10.0.0.0/8"])),
            MatchElement::from("10.0.0.1"),
        ];
        assert!(compile(&[], &[], &inline)
            .expect("acl")
            .allows(who("10.0.0.1")));
    }

    #[test]
    fn keys_match_signed_requests() {
        let acl = compile(&[], &["xfr"], &items(&["key:xfr"])).expect("acl");
        let key = key_name("xfr").expect("name");
        assert!(acl.allows(Who {
            ip: "192.0.2.1".parse().expect("ip"),
            key: Some(&key),
        }));
        assert!(!acl.allows(who("192.0.2.1")));
    }

    #[test]
    fn clear_errors() {
        let err = |list: &[&str]| {
            compile(&[], &[], &items(list))
                .expect_err("error")
                .to_string()
        };
        assert!(err(&["10.0.0.0/33"]).contains("not a valid CIDR"));
        assert!(err(&["10.0.0.1/8"]).contains("host bits"));
        assert!(err(&["300.1.1.1"]).contains("not a valid IP"));
        assert!(err(&["office"]).contains("unknown acl `office`"));
        assert!(err(&["key:nope"]).contains("unknown TSIG key"));
        let cyclic = vec![
            AclConfig {
                name: "a".into(),
                elements: items(&["b"]),
            },
            AclConfig {
                name: "b".into(),
                elements: items(&["a"]),
            },
        ];
        assert!(compile(&cyclic, &[], &[])
            .expect_err("cycle")
            .to_string()
            .contains("refers to itself"));
    }
}
