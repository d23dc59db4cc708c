//! Records managed in the store (admin UI), merged into a view's zones at load.

use std::collections::HashSet;
use std::sync::Arc;

use hickory_proto::rr::{LowerName, Name, RecordType};

use crate::zone::parse::{parse_text, parse_type, Loc};
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

impl ManagedRecord {
    /// The owner as an absolute domain name.
    pub(crate) fn owner(&self) -> Option<Name> {
        let mut name = Name::from_ascii(self.name.trim()).ok()?;
        name.set_fqdn(true);
        Some(name)
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
        let text = format!("{owner} {} IN {rtype} {}\n", self.ttl, self.data);
        let parsed = parse_text(&text, &loc.file, origin).map_err(|e| fail(e.message))?;
        match <[SourceRecord; 1]>::try_from(parsed.records) {
            Ok([mut record]) => {
                record.loc = loc;
                Ok(record)
            }
            Err(_) => Err(fail("data must be exactly one record".into())),
        }
    }
}

/// Merges managed records into a zone's file records: per RRset (name, type) the zone file
/// wins, and CNAME exclusivity (RFC 1034 §3.6.2) is kept against the file's data. Each managed
/// record comes with its [`ManagedRecord::synthesised`] flag: only an administrator's record
/// that the file overrides is a problem worth a warning.
pub(crate) fn merge(
    mut file: Vec<SourceRecord>,
    managed: Vec<(SourceRecord, bool)>,
) -> (Vec<SourceRecord>, Vec<Problem>) {
    let mut keys: HashSet<(LowerName, RecordType)> = HashSet::new();
    let mut names: HashSet<LowerName> = HashSet::new();
    let mut cnames: HashSet<LowerName> = HashSet::new();
    for r in &file {
        let name = LowerName::new(&r.record.name);
        keys.insert((name.clone(), r.record.record_type()));
        if r.record.record_type() == RecordType::CNAME {
            cnames.insert(name.clone());
        }
        names.insert(name);
    }
    let mut problems = Vec::new();
    for (r, synthesised) in managed {
        let name = LowerName::new(&r.record.name);
        let rtype = r.record.record_type();
        let reason = if keys.contains(&(name.clone(), rtype)) {
            Some("the zone file has this RRset")
        } else if cnames.contains(&name) {
            Some("the zone file has a CNAME at this name")
        } else if rtype == RecordType::CNAME && names.contains(&name) {
            Some("the zone file has other data at this name")
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
            None => file.push(r),
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
}
