//! Records managed in the store (admin UI), merged into a view's zones at load.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use hickory_proto::rr::{LowerName, Name, RData, RecordType};

use crate::zone::parse::{parse_text, parse_type, type_name, Loc};
use crate::zone::token_name;
use crate::zone::{Problem, Severity, SourceRecord};

/// One record from the store, in presentation format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedRecord {
    /// Owner name, fully qualified (a missing trailing dot is implied).
    pub name: String,
    /// TTL in seconds.
    pub ttl: u32,
    /// Type mnemonic, e.g. `MX`.
    pub rtype: String,
    /// RDATA in presentation format, e.g. `10 mail.example.test.`.
    pub data: String,
    /// Synthesised by Postern (the records published for hosted mail domains) rather than
    /// entered by an administrator: a zone file RRset overriding it is intended, not reported.
    pub synthesised: bool,
}

/// The owner names whose records differ between `before` and `after` (in content or in
/// order: of two records that exclude each other the first is served), or `None` when an
/// owner name does not read.
pub(crate) fn changed_owners(
    before: &[ManagedRecord],
    after: &[ManagedRecord],
) -> Option<Vec<Name>> {
    let mut by_owner: HashMap<LowerName, (Vec<&ManagedRecord>, Vec<&ManagedRecord>)> =
        HashMap::new();
    for (record, side) in before
        .iter()
        .map(|r| (r, 0))
        .chain(after.iter().map(|r| (r, 1)))
    {
        let lists = by_owner
            .entry(LowerName::new(&record.owner()?))
            .or_default();
        if side == 0 {
            &mut lists.0
        } else {
            &mut lists.1
        }
        .push(record);
    }
    Some(
        by_owner
            .into_iter()
            .filter(|(_, (b, a))| b != a)
            .map(|(owner, _)| Name::from(owner))
            .collect(),
    )
}

/// A record as a view serves it (see [`crate::DnsServer::served_records`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedRecord {
    /// The record; the owner is absolute with a trailing dot.
    pub record: ManagedRecord,
    /// True when its RRset comes from the zone file (files win over the store per RRset).
    pub from_file: bool,
}

impl ManagedRecord {
    /// The owner as an absolute domain name, read like an owner name in a zone file (`\DDD`
    /// escapes, octets as written); a name with whitespace or quotes is refused.
    pub(crate) fn owner(&self) -> Option<Name> {
        let text = self.name.trim();
        if text.is_empty() || text.contains(|c: char| c.is_whitespace() || c == '"') {
            return None;
        }
        let absolute = if text.ends_with('.') && !text.ends_with("\\.") {
            text.to_owned()
        } else {
            format!("{text}.")
        };
        token_name(&absolute, &Name::root()).ok()
    }

    /// Parses the record; names in the data that are not absolute are relative to `origin`.
    pub(crate) fn parse(&self, view: &str, origin: &Name) -> Result<SourceRecord, Problem> {
        let loc = Loc {
            file: Arc::from(format!(
                "managed record [{view}] {} {}",
                self.name, self.rtype
            )),
            line: 0,
        };
        let fail = |message: String| Problem {
            severity: Severity::Warning,
            loc: Some(loc.clone()),
            message: format!("ignored: {message}"),
        };
        let owner = self.owner().ok_or_else(|| fail("bad owner name".into()))?;
        let rtype = parse_type(&self.rtype).map_err(&fail)?;
        if matches!(rtype, RecordType::SOA) {
            return Err(fail("SOA comes from the zone file".into()));
        }
        if self.data.contains(['\n', '\r']) {
            return Err(fail("data must be one line of RDATA".into()));
        }
        if has_comment(&self.data) {
            return Err(fail(
                "`;` outside quotes starts a comment in zone-file syntax (RFC 1035 §5.1): \
                 quote the text, e.g. \"v=DKIM1; k=rsa; p=...\""
                    .into(),
            ));
        }
        // The owner is set after parsing: only the data is zone-file text.
        let text = format!("@ {} IN {} {}\n", self.ttl, type_name(rtype), self.data);
        let parsed = parse_text(&text, &loc.file, origin).map_err(|e| fail(e.message))?;
        match <[SourceRecord; 1]>::try_from(parsed.records) {
            Ok([mut record]) => {
                record.record.name = owner;
                record.loc = loc;
                Ok(record)
            }
            Err(_) => Err(fail("data must be exactly one record".into())),
        }
    }
}

impl ManagedRecord {
    /// True for a TXT record that is an SPF record (RFC 7208 §4.5: the first string starts
    /// with `v=spf1`); such a record joins a TXT RRset that has none instead of being
    /// overridden by it, so that a domain always has exactly one SPF record.
    pub fn is_spf(&self) -> bool {
        self.rtype.eq_ignore_ascii_case("TXT")
            && self
                .parse("", &Name::root())
                .is_ok_and(|r| is_spf(&r.record.data))
    }
}

/// True for TXT RDATA whose text is an SPF record (RFC 7208 §4.5, §3.3: the strings joined).
pub fn is_spf(data: &RData) -> bool {
    let RData::TXT(txt) = data else {
        return false;
    };
    let text: Vec<u8> = txt
        .txt_data
        .iter()
        .flat_map(|s| s.iter().copied())
        .collect();
    text.strip_prefix(b"v=spf1")
        .is_some_and(|rest| rest.is_empty() || rest[0] == b' ')
}

/// True when `data` has a `;` outside double quotes that is not escaped.
fn has_comment(data: &str) -> bool {
    let mut quoted = false;
    let mut chars = data.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '"' => quoted = !quoted,
            ';' if !quoted => return true,
            _ => {}
        }
    }
    false
}

/// Merges managed records into a zone's file records: per RRset (name, type) the zone file
/// wins, except that an SPF record joins a file TXT RRset without one (taking its TTL), and
/// CNAME exclusivity (RFC 1034 §3.6.2) is kept against the file's data and between managed
/// records (the earlier one stays), so that one bad record never stops the zone loading. Each
/// managed record comes with its [`ManagedRecord::synthesised`] flag: only an administrator's
/// record that is overridden is a problem worth a warning.
pub(crate) fn merge(
    mut file: Vec<SourceRecord>,
    managed: Vec<(SourceRecord, bool)>,
) -> (Vec<SourceRecord>, Vec<Problem>) {
    if managed.is_empty() {
        return (file, Vec::new());
    }
    // What the file has at the managed records' names: a big zone's other names are not indexed.
    let wanted: HashSet<LowerName> = managed
        .iter()
        .map(|(r, _)| LowerName::new(&r.record.name))
        .collect();
    let mut keys: HashSet<(LowerName, RecordType)> = HashSet::new();
    let mut names: HashSet<LowerName> = HashSet::new();
    let mut cnames: HashSet<LowerName> = HashSet::new();
    let mut txt_ttl: HashMap<LowerName, (u32, bool)> = HashMap::new();
    for r in &file {
        let name = LowerName::new(&r.record.name);
        if !wanted.contains(&name) {
            continue;
        }
        keys.insert((name.clone(), r.record.record_type()));
        if r.record.record_type() == RecordType::CNAME {
            cnames.insert(name.clone());
        }
        if r.record.record_type() == RecordType::TXT {
            let entry = txt_ttl.entry(name.clone()).or_insert((r.record.ttl, false));
            entry.1 |= is_spf(&r.record.data);
        }
        names.insert(name);
    }
    let mut problems = Vec::new();
    let mut managed_names: HashSet<LowerName> = HashSet::new();
    let mut managed_cnames: HashSet<LowerName> = HashSet::new();
    for (mut r, synthesised) in managed {
        let name = LowerName::new(&r.record.name);
        let rtype = r.record.record_type();
        let joins = match txt_ttl.get(&name) {
            Some(&(ttl, false)) if is_spf(&r.record.data) => Some(ttl),
            _ => None,
        };
        let reason = if let Some(ttl) = joins {
            r.record.ttl = ttl;
            txt_ttl.insert(name.clone(), (ttl, true));
            None
        } else if keys.contains(&(name.clone(), rtype)) {
            Some("the zone file has this RRset")
        } else if cnames.contains(&name) {
            Some("the zone file has a CNAME at this name")
        } else if rtype == RecordType::CNAME && names.contains(&name) {
            Some("the zone file has other data at this name")
        } else if managed_cnames.contains(&name) {
            Some("an earlier record is a CNAME at this name (RFC 1034 §3.6.2)")
        } else if rtype == RecordType::CNAME && managed_names.contains(&name) {
            Some("earlier records hold other data at this name (RFC 1034 §3.6.2)")
        } else {
            None
        };
        match reason {
            Some(_) if synthesised => {}
            Some(reason) => problems.push(Problem {
                severity: Severity::Warning,
                loc: Some(r.loc.clone()),
                message: format!("overridden: {reason}"),
            }),
            None => {
                if rtype == RecordType::CNAME {
                    managed_cnames.insert(name);
                } else {
                    managed_names.insert(name);
                }
                file.push(r);
            }
        }
    }
    (file, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Name {
        Name::from_ascii("example.test.").expect("name")
    }

    fn rec(name: &str, rtype: &str, data: &str) -> ManagedRecord {
        ManagedRecord {
            name: name.into(),
            ttl: 300,
            rtype: rtype.into(),
            data: data.into(),
            synthesised: false,
        }
    }

    #[test]
    fn parses_presentation_data() {
        let r = rec("example.test", "MX", "10 mail.example.test.")
            .parse("v", &origin())
            .expect("parses");
        assert_eq!(r.record.record_type(), RecordType::MX);
        let txt = rec("example.test.", "TXT", "\"v=spf1 mx -all\"")
            .parse("v", &origin())
            .expect("parses");
        assert_eq!(txt.record.name, origin());
        assert!(rec("x.example.test.", "A", "192.0.2.1\nevil A 1.2.3.4")
            .parse("v", &origin())
            .is_err());
        assert!(rec("x.example.test.", "A", "not-an-ip")
            .parse("v", &origin())
            .is_err());
        let unquoted = rec("k._domainkey.example.test.", "TXT", "v=DKIM1; k=rsa; p=AB")
            .parse("v", &origin())
            .expect_err("a comment would cut it");
        assert!(unquoted.message.contains("quote the text"), "{unquoted:?}");
        assert!(rec("x.example.test.", "TXT", r#""a;b" c\;d"#)
            .parse("v", &origin())
            .is_ok());
    }

    #[test]
    fn owner_names_read_like_zone_files() {
        let escaped = rec(r"a\032b.example.test", "A", "192.0.2.1")
            .parse("v", &origin())
            .expect("escaped space");
        assert_eq!(escaped.record.name.iter().next(), Some(&b"a b"[..]));
        let raw = rec("café.example.test.", "A", "192.0.2.1")
            .parse("v", &origin())
            .expect("octets");
        assert_eq!(raw.record.name.iter().next(), Some("café".as_bytes()));
        assert!(rec("bad name.example.test", "A", "192.0.2.1")
            .owner()
            .is_none());
    }

    #[test]
    fn file_wins_per_rrset() {
        let file_text = "$TTL 60\nwww A 192.0.2.1\nalias CNAME www\n";
        let file = parse_text(file_text, "f", &origin()).expect("file").records;
        let managed: Vec<(SourceRecord, bool)> = [
            rec("www.example.test.", "A", "192.0.2.99"),
            rec("www.example.test.", "AAAA", "2001:db8::1"),
            rec("alias.example.test.", "TXT", "\"x\""),
            rec("www.example.test.", "CNAME", "elsewhere.example.test."),
        ]
        .iter()
        .map(|m| (m.parse("v", &origin()).expect("parses"), false))
        .collect();
        let (merged, problems) = merge(file.clone(), managed.clone());
        assert_eq!(merged.len(), 3);
        assert_eq!(merged[2].record.record_type(), RecordType::AAAA);
        assert_eq!(problems.len(), 3);
        // The same records synthesised for a mail domain: overridden just as well, silently.
        let synthesised = managed.into_iter().map(|(r, _)| (r, true)).collect();
        let (merged, problems) = merge(file, synthesised);
        assert_eq!(merged.len(), 3);
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn cname_exclusivity_between_managed_records() {
        let managed: Vec<(SourceRecord, bool)> = [
            rec("c1.example.test.", "CNAME", "www.example.test."),
            rec("c1.example.test.", "A", "192.0.2.1"),
            rec("c2.example.test.", "A", "192.0.2.2"),
            rec("c2.example.test.", "CNAME", "www.example.test."),
            rec("c2.example.test.", "AAAA", "2001:db8::2"),
        ]
        .iter()
        .map(|m| (m.parse("v", &origin()).expect("parses"), false))
        .collect();
        let (merged, problems) = merge(Vec::new(), managed);
        let kept: Vec<String> = merged
            .iter()
            .map(|r| format!("{} {}", r.record.name, r.record.record_type()))
            .collect();
        assert_eq!(
            kept,
            [
                "c1.example.test. CNAME",
                "c2.example.test. A",
                "c2.example.test. AAAA"
            ]
        );
        assert_eq!(problems.len(), 2, "{problems:?}");
    }

    #[test]
    fn spf_joins_a_file_txt_rrset_without_one() {
        let file_text = "$TTL 60\n@ TXT \"google-site-verification=x\"\nb TXT \"v=spf1 a -all\"\n";
        let file = parse_text(file_text, "f", &origin()).expect("file").records;
        let spf = rec("example.test.", "TXT", "\"v=spf1 mx -all\"");
        assert!(spf.is_spf());
        assert!(!rec("example.test.", "TXT", "\"v=spf10\"").is_spf());
        let managed: Vec<(SourceRecord, bool)> = [
            spf,
            rec("example.test.", "TXT", "\"other\""),
            rec("b.example.test.", "TXT", "\"v=spf1 mx -all\""),
        ]
        .iter()
        .map(|m| (m.parse("v", &origin()).expect("parses"), false))
        .collect();
        let (merged, problems) = merge(file, managed);
        assert_eq!(merged.len(), 3, "{merged:?}");
        assert!(is_spf(&merged[2].record.data));
        assert_eq!(merged[2].record.ttl, 60, "takes the file RRset's TTL");
        assert_eq!(problems.len(), 2, "{problems:?}");
    }
}
