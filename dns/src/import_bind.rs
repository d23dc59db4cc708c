//! Converting BIND9 named.conf (`acl`, `key`, `view`, `zone`, and the transfer options of
//! `options`) into Postern's `[dns]` section (BIND 9 ARM, "Configuration Reference").
//! Everything that is not converted is reported as a warning, with its line.

use serde::Serialize;

use crate::config::{AclConfig, DnsConfig, MatchElement, TsigKeyConfig, ViewConfig, ZoneConfig};
use crate::error::DnsError;

/// Converts BIND9 `acl`, `key`, `view` and `zone` statements into `[dns]` TOML, with a
/// warning for everything that could not be converted. Only a syntax error is an `Err`.
pub fn import_bind(text: &str) -> Result<(String, Vec<String>), DnsError> {
    let statements = Parser::new(text).statements(0)?;
    let mut conv = Converter::default();
    let mut top_zones = Vec::new();
    let mut views = Vec::new();
    for st in &statements {
        match st.keyword() {
            "acl" => conv.acl(st),
            "key" => conv.key(st),
            "options" => conv.options(st),
            "view" => views.push(st),
            "zone" => top_zones.push(st),
            "include" => conv.warn(st, "`include` not followed: convert the included file too"),
            other => conv.warn(st, &format!("`{other}` statement not converted")),
        }
    }
    for view in views {
        conv.view(view);
    }
    if !top_zones.is_empty() {
        if conv.config.view.is_empty() {
            let mut view = ViewConfig {
                name: "default".into(),
                match_clients: vec!["any".into()],
                match_destinations: vec!["any".into()],
                allow_transfer: conv.global_transfer.clone().unwrap_or_default(),
                rrl: None,
                update_policy: Vec::new(),
                zone: Vec::new(),
            };
            for z in top_zones {
                if let Some(zone) = conv.zone(z, "default") {
                    view.zone.push(zone);
                }
            }
            conv.warnings.push(
                "zones outside views were put in a view `default` matching any client".into(),
            );
            conv.config.view.push(view);
        } else {
            for z in top_zones {
                conv.warn(
                    z,
                    "zone outside a view while views are used (BIND rejects this); skipped",
                );
            }
        }
    }
    conv.check_in_view();
    #[derive(Serialize)]
    struct Out<'a> {
        dns: &'a DnsConfig,
    }
    let toml = toml::to_string(&Out { dns: &conv.config })
        .map_err(|e| DnsError::config(format!("cannot write converted config: {e}")))?;
    Ok((toml, conv.warnings))
}

/// One statement: its words, an optional `{ ... }` block, and its line.
#[derive(Debug)]
struct Statement {
    line: usize,
    words: Vec<String>,
    block: Option<Vec<Statement>>,
}

impl Statement {
    fn keyword(&self) -> &str {
        self.words.first().map_or("", String::as_str)
    }

    fn arg(&self, i: usize) -> Option<&str> {
        self.words.get(i).map(String::as_str)
    }

    fn child(&self, keyword: &str) -> Option<&Statement> {
        self.block.iter().flatten().find(|s| s.keyword() == keyword)
    }
}

#[derive(Default)]
struct Converter {
    config: DnsConfig,
    warnings: Vec<String>,
    global_transfer: Option<Vec<MatchElement>>,
    global_notify: Vec<String>,
}

impl Converter {
    fn warn(&mut self, st: &Statement, message: &str) {
        self.warnings.push(format!("line {}: {message}", st.line));
    }

    fn acl(&mut self, st: &Statement) {
        let (Some(name), Some(block)) = (st.arg(1), &st.block) else {
            return self.warn(st, "acl without a name or list");
        };
        let elements = self.match_list(block);
        self.config.acl.push(AclConfig {
            name: name.to_owned(),
            elements,
        });
    }

    fn key(&mut self, st: &Statement) {
        let Some(name) = st.arg(1) else {
            return self.warn(st, "key without a name");
        };
        let algorithm = st.child("algorithm").and_then(|a| a.arg(1)).unwrap_or("");
        let secret = st.child("secret").and_then(|s| s.arg(1));
        let Some(secret) = secret else {
            return self.warn(st, &format!("key `{name}` has no secret; skipped"));
        };
        let algorithm = algorithm.to_ascii_lowercase();
        if !matches!(
            algorithm.as_str(),
            "hmac-sha256" | "hmac-sha384" | "hmac-sha512"
        ) {
            return self.warn(
                st,
                &format!("key `{name}`: algorithm `{algorithm}` not supported (use hmac-sha256); skipped"),
            );
        }
        self.config.tsig_key.push(TsigKeyConfig {
            name: name.to_owned(),
            algorithm,
            secret: secret.to_owned(),
        });
    }

    fn options(&mut self, st: &Statement) {
        for opt in st.block.iter().flatten() {
            match opt.keyword() {
                "allow-transfer" => {
                    self.global_transfer = opt.block.as_ref().map(|b| self.match_list(b))
                }
                "also-notify" => self.global_notify = self.notify_list(opt),
                "directory" => {
                    if let Some(dir) = opt.arg(1) {
                        self.config.zones_dir = dir.into();
                    }
                }
                "recursion" if opt.arg(1) == Some("no") => {}
                "listen-on" | "listen-on-v6" => self.warn(
                    opt,
                    "listen-on: set the addresses in [listeners] dns of postern.toml",
                ),
                other => self.warn(opt, &format!("option `{other}` not converted")),
            }
        }
    }

    fn view(&mut self, st: &Statement) {
        let Some(name) = st.arg(1) else {
            return self.warn(st, "view without a name");
        };
        let mut view = ViewConfig {
            name: name.to_owned(),
            match_clients: vec!["any".into()],
            match_destinations: vec!["any".into()],
            allow_transfer: self.global_transfer.clone().unwrap_or_default(),
            rrl: None,
            update_policy: Vec::new(),
            zone: Vec::new(),
        };
        let mut view_notify = self.global_notify.clone();
        for item in st.block.iter().flatten() {
            match item.keyword() {
                "match-clients" => view.match_clients = self.list_of(item),
                "match-destinations" => view.match_destinations = self.list_of(item),
                "allow-transfer" => view.allow_transfer = self.list_of(item),
                "also-notify" => view_notify = self.notify_list(item),
                "zone" => {
                    if let Some(mut zone) = self.zone(item, name) {
                        if zone.also_notify.is_empty() && zone.in_view.is_none() {
                            zone.also_notify.clone_from(&view_notify);
                        }
                        view.zone.push(zone);
                    }
                }
                "match-recursive-only" | "recursion" if item.arg(1) == Some("no") => {}
                other => self.warn(
                    item,
                    &format!("view `{name}`: option `{other}` not converted"),
                ),
            }
        }
        self.config.view.push(view);
    }

    fn zone(&mut self, st: &Statement, view: &str) -> Option<ZoneConfig> {
        let Some(name) = st.arg(1) else {
            self.warn(st, "zone without a name");
            return None;
        };
        if let Some(class) = st.arg(2) {
            if !class.eq_ignore_ascii_case("in") {
                self.warn(
                    st,
                    &format!("zone `{name}` class {class} not supported; skipped"),
                );
                return None;
            }
        }
        let mut zone = ZoneConfig {
            name: name.trim_end_matches('.').to_owned(),
            file: None,
            in_view: None,
            allow_transfer: None,
            also_notify: Vec::new(),
            dnssec: false,
        };
        for item in st.block.iter().flatten() {
            match item.keyword() {
                "type" => match item.arg(1) {
                    Some("master" | "primary") => {}
                    Some(other) => {
                        self.warn(
                            st,
                            &format!("view `{view}` zone `{name}`: type {other} not supported (Postern is primary only); skipped"),
                        );
                        return None;
                    }
                    None => {}
                },
                "file" => zone.file = item.arg(1).map(Into::into),
                "in-view" => zone.in_view = item.arg(1).map(str::to_owned),
                "allow-transfer" => zone.allow_transfer = Some(self.list_of(item)),
                "also-notify" => zone.also_notify = self.notify_list(item),
                "notify" if item.arg(1) != Some("no") => {}
                other => self.warn(
                    item,
                    &format!("view `{view}` zone `{name}`: option `{other}` not converted"),
                ),
            }
        }
        if zone.in_view.is_some() {
            zone.file = None;
        } else if zone.file.is_none() {
            self.warn(
                st,
                &format!("view `{view}` zone `{name}` has no file; skipped"),
            );
            return None;
        }
        Some(zone)
    }

    /// `in-view` must name an earlier view that has the zone from a file.
    fn check_in_view(&mut self) {
        for (i, view) in self.config.view.iter().enumerate() {
            for zone in &view.zone {
                let Some(other) = &zone.in_view else {
                    continue;
                };
                let found = self.config.view[..i].iter().any(|v| {
                    v.name == *other
                        && v.zone
                            .iter()
                            .any(|z| z.name == zone.name && z.in_view.is_none())
                });
                if !found {
                    self.warnings.push(format!(
                        "view `{}` zone `{}`: in-view `{other}` names no earlier view serving that zone; fix before use",
                        view.name, zone.name
                    ));
                }
            }
        }
    }

    fn list_of(&mut self, st: &Statement) -> Vec<MatchElement> {
        match &st.block {
            Some(block) => self.match_list(block),
            None => {
                self.warn(st, &format!("`{}` without a {{ list }}", st.keyword()));
                vec!["none".into()]
            }
        }
    }

    fn match_list(&mut self, block: &[Statement]) -> Vec<MatchElement> {
        let mut out = Vec::new();
        for el in block {
            let mut words: Vec<&str> = el.words.iter().map(String::as_str).collect();
            let mut negated = false;
            if let Some(first) = words.first().copied() {
                if first == "!" {
                    negated = true;
                    words.remove(0);
                } else if let Some(rest) = first.strip_prefix('!') {
                    negated = true;
                    words[0] = rest;
                }
            }
            let bang = if negated { "!" } else { "" };
            match (words.as_slice(), &el.block) {
                ([], Some(inner)) => {
                    let inner = self.match_list(inner);
                    if negated {
                        self.warn(el, "negated nested list `! { ... }` not converted (name it with an acl); dropped");
                    } else {
                        out.push(MatchElement::List(inner));
                    }
                }
                (["key", name], None) => out.push(format!("{bang}key:{name}").as_str().into()),
                ([word], None) => match bind_prefix(word) {
                    Some(prefix) => out.push(format!("{bang}{prefix}").as_str().into()),
                    None => out.push(format!("{bang}{word}").as_str().into()),
                },
                _ => self.warn(
                    el,
                    &format!("match element `{}` not converted", el.words.join(" ")),
                ),
            }
        }
        out
    }

    fn notify_list(&mut self, st: &Statement) -> Vec<String> {
        let mut out = Vec::new();
        let mut port = None;
        if let (Some("port"), Some(p)) = (st.arg(1), st.arg(2)) {
            port = p.parse::<u16>().ok();
        }
        for el in st.block.iter().flatten() {
            let ip = el.keyword();
            let mut this_port = port;
            let mut rest = el.words.iter().skip(1);
            while let Some(word) = rest.next() {
                match (word.as_str(), rest.next()) {
                    ("port", Some(p)) => this_port = p.parse().ok(),
                    ("key", Some(k)) => self.warn(
                        el,
                        &format!("also-notify key `{k}`: NOTIFY is sent unsigned"),
                    ),
                    (other, _) => {
                        self.warn(el, &format!("also-notify option `{other}` not converted"))
                    }
                }
            }
            match ip.parse::<std::net::IpAddr>() {
                Ok(addr) => out.push(std::net::SocketAddr::new(addr, this_port.unwrap_or(53)).to_string()),
                Err(_) => self.warn(el, &format!("also-notify `{ip}` is not an address (named primaries lists are not converted)")),
            }
        }
        out
    }
}

/// BIND allows `10/8` and `192.168/16`: pads the dotted part to four octets.
fn bind_prefix(word: &str) -> Option<String> {
    let (addr, len) = word.split_once('/')?;
    if addr.contains(':') || addr.split('.').count() >= 4 {
        return None;
    }
    let mut octets: Vec<&str> = addr.split('.').collect();
    if octets.iter().any(|o| o.parse::<u8>().is_err()) {
        return None;
    }
    while octets.len() < 4 {
        octets.push("0");
    }
    Some(format!("{}/{len}", octets.join(".")))
}

/// A small named.conf tokenizer and statement parser: words, "strings", `{ }`, `;`,
/// and `//`, `#`, `/* */` comments.
struct Parser<'a> {
    chars: std::iter::Peekable<std::str::CharIndices<'a>>,
    text: &'a str,
    line: usize,
}

#[derive(Debug, PartialEq)]
enum Tok {
    Word(String),
    Open,
    Close,
    Semi,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Parser {
            chars: text.char_indices().peekable(),
            text,
            line: 1,
        }
    }

    fn err(&self, message: &str) -> DnsError {
        DnsError::BindConf {
            line: self.line,
            message: message.to_owned(),
        }
    }

    fn next_tok(&mut self) -> Result<Option<Tok>, DnsError> {
        while let Some(&(i, c)) = self.chars.peek() {
            match c {
                '\n' => {
                    self.line += 1;
                    self.chars.next();
                }
                c if c.is_whitespace() => {
                    self.chars.next();
                }
                '#' => self.skip_line(),
                '/' if self.text[i..].starts_with("//") => self.skip_line(),
                '/' if self.text[i..].starts_with("/*") => {
                    let start = self.line;
                    self.chars.next();
                    self.chars.next();
                    let mut prev = ' ';
                    loop {
                        let Some((_, c)) = self.chars.next() else {
                            self.line = start;
                            return Err(self.err("unterminated /* comment"));
                        };
                        if c == '\n' {
                            self.line += 1;
                        }
                        if prev == '*' && c == '/' {
                            break;
                        }
                        prev = c;
                    }
                }
                '{' => {
                    self.chars.next();
                    return Ok(Some(Tok::Open));
                }
                '}' => {
                    self.chars.next();
                    return Ok(Some(Tok::Close));
                }
                ';' => {
                    self.chars.next();
                    return Ok(Some(Tok::Semi));
                }
                '"' => {
                    self.chars.next();
                    let mut s = String::new();
                    loop {
                        match self.chars.next() {
                            None => return Err(self.err("unterminated string")),
                            Some((_, '"')) => break,
                            Some((_, '\\')) => {
                                if let Some((_, c)) = self.chars.next() {
                                    s.push(c);
                                }
                            }
                            Some((_, c)) => {
                                if c == '\n' {
                                    self.line += 1;
                                }
                                s.push(c);
                            }
                        }
                    }
                    return Ok(Some(Tok::Word(s)));
                }
                _ => {
                    let mut s = String::new();
                    while let Some(&(j, c)) = self.chars.peek() {
                        if c.is_whitespace()
                            || matches!(c, '{' | '}' | ';' | '"' | '#')
                            || self.text[j..].starts_with("//")
                            || self.text[j..].starts_with("/*")
                        {
                            break;
                        }
                        s.push(c);
                        self.chars.next();
                    }
                    return Ok(Some(Tok::Word(s)));
                }
            }
        }
        Ok(None)
    }

    fn skip_line(&mut self) {
        while let Some(&(_, c)) = self.chars.peek() {
            if c == '\n' {
                break;
            }
            self.chars.next();
        }
    }

    /// Statements until `}` (depth > 0) or the end of input (depth 0).
    fn statements(&mut self, depth: usize) -> Result<Vec<Statement>, DnsError> {
        let mut out = Vec::new();
        let mut current: Option<Statement> = None;
        loop {
            let line = self.line;
            let tok = self.next_tok()?;
            let st = current.get_or_insert_with(|| Statement {
                line,
                words: Vec::new(),
                block: None,
            });
            match tok {
                None if depth == 0 => {
                    if current.is_some_and(|s| !s.words.is_empty() || s.block.is_some()) {
                        return Err(self.err("missing `;` at end of input"));
                    }
                    return Ok(out);
                }
                None => return Err(self.err("missing `}`")),
                Some(Tok::Word(w)) => {
                    if st.block.is_some() {
                        return Err(self.err(&format!("missing `;` before `{w}`")));
                    }
                    st.words.push(w);
                }
                Some(Tok::Open) => {
                    if st.block.is_some() {
                        return Err(self.err("missing `;` between blocks"));
                    }
                    st.block = Some(self.statements(depth + 1)?);
                }
                Some(Tok::Semi) => {
                    if let Some(st) = current.take() {
                        if !st.words.is_empty() || st.block.is_some() {
                            out.push(st);
                        }
                    }
                }
                Some(Tok::Close) if depth > 0 => {
                    if current.is_some_and(|s| !s.words.is_empty() || s.block.is_some()) {
                        return Err(self.err("missing `;` before `}`"));
                    }
                    return Ok(out);
                }
                Some(Tok::Close) => return Err(self.err("unbalanced `}`")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMED_CONF: &str = r#"
// A typical split-horizon setup.
options {
    directory "/var/cache/bind";
    recursion no;
    allow-transfer { none; };
    listen-on { any; };
    dnssec-validation auto;
};

key "xfr-key" {
    algorithm hmac-sha256;
    secret "cG9zdGVybi1leGFtcGxlLXRzaWcta2V5LTAxMjM0NTY3";
};
key legacy { algorithm hmac-md5; secret "eA=="; };

acl "internal-nets" { 10/8; 172.16.0.0/12; 192.168.0.0/16; !192.168.99.0/24; localhost; };
acl secondaries { 192.0.2.53; key xfr-key; };

view "internal" {
    match-clients { !192.168.99.0/24; internal-nets; key xfr-key; };
    match-destinations { 10.0.0.1; };
    recursion no;
    allow-transfer { secondaries; };
    zone "example.test" {
        type master;
        file "internal/example.test.zone";
        also-notify { 192.0.2.53; 192.0.2.54 port 5353; };
    };
    zone "10.in-addr.arpa" IN { type primary; file "internal/10.rev"; notify yes; };
    zone "example.net" { type slave; masters { 192.0.2.1; }; file "s/example.net"; };
};

view external {
    match-clients { any; };
    /* shared zone */
    zone "example.test" { type master; file "external/example.test.zone"; allow-transfer { key "xfr-key"; }; };
    zone "example.org" { in-view "internal"; };
    rate-limit { responses-per-second 5; };
};

logging { channel default_log { file "/var/log/named.log"; }; };
"#;

    #[derive(serde::Deserialize)]
    struct File {
        dns: DnsConfig,
    }

    #[test]
    fn converts_two_views() {
        let (toml_text, warnings) = import_bind(NAMED_CONF).expect("parses");
        let config = toml::from_str::<File>(&toml_text).expect("valid TOML").dns;
        assert_eq!(
            config.zones_dir,
            std::path::PathBuf::from("/var/cache/bind")
        );
        assert_eq!(config.tsig_key.len(), 1, "hmac-md5 key skipped");
        assert_eq!(config.acl[0].elements[0], MatchElement::from("10.0.0.0/8"));
        assert_eq!(
            config.acl[0].elements[3],
            MatchElement::from("!192.168.99.0/24")
        );
        assert_eq!(config.acl[1].elements[1], MatchElement::from("key:xfr-key"));
        let internal = &config.view[0];
        assert_eq!(
            internal.match_clients,
            vec![
                MatchElement::from("!192.168.99.0/24"),
                MatchElement::from("internal-nets"),
                MatchElement::from("key:xfr-key")
            ]
        );
        assert_eq!(
            internal.match_destinations,
            vec![MatchElement::from("10.0.0.1")]
        );
        assert_eq!(
            internal.allow_transfer,
            vec![MatchElement::from("secondaries")]
        );
        assert_eq!(internal.zone.len(), 2, "the slave zone is skipped");
        assert_eq!(
            internal.zone[0].also_notify,
            vec!["192.0.2.53:53", "192.0.2.54:5353"]
        );
        let external = &config.view[1];
        assert_eq!(
            external.allow_transfer,
            vec![MatchElement::from("none")],
            "from options"
        );
        assert_eq!(
            external.zone[0].allow_transfer,
            Some(vec![MatchElement::from("key:xfr-key")])
        );
        assert_eq!(external.zone[1].in_view.as_deref(), Some("internal"));
        let all = warnings.join("\n");
        for expected in [
            "hmac-md5",
            "type slave",
            "rate-limit",
            "logging",
            "dnssec-validation",
            "listen-on",
        ] {
            assert!(
                all.contains(expected),
                "missing warning about {expected}:\n{all}"
            );
        }
        // The converted ACLs, keys and views compile.
        let keys = crate::tsig::Keyring::from_config(&config.tsig_key).expect("keys");
        let names = keys.names();
        let mut compiler =
            crate::acl::AclCompiler::new(&config.acl, &names, crate::acl::LocalAddrs::detect())
                .expect("acls");
        for view in &config.view {
            compiler
                .compile(&view.match_clients, "test")
                .expect("match-clients");
        }
    }

    #[test]
    fn syntax_errors_have_lines() {
        let err = import_bind("acl a { 10/8; };\nview x {\n zone \"y\" { type master; }\n};\n")
            .expect_err("missing semicolon");
        assert!(err.to_string().contains("line 4"), "{err}");
        assert!(import_bind("/* never closed").is_err());
        assert!(import_bind("zone \"z\" { file \"f\"; };").is_ok());
    }
}
