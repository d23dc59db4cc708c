//! Loading one zone of a view from its sources (the zone file and its `$INCLUDE`s, the
//! managed records placed in it, its DNSSEC keys), and reusing the last load while none of
//! them changed: an edit rebuilds only the zone it touches, and the other zones of the
//! serving state are the same `Arc`s as before.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use hickory_proto::rr::{LowerName, Name, RecordType};

use crate::config::ZoneConfig;
use crate::dnssec::{
    prepare_signing, sign_zone, Basis, Previous, SignedZone, Stored, ZoneKey, SIGNING_APEX_TYPES,
};
use crate::managed::{changed_owners, merge, ManagedRecord};
use crate::serial::digest;
use crate::server::unix_now;
use crate::state::{zone_name, Inputs, ZoneReport};
use crate::zone::parse::{content_hash, parse_file};
use crate::zone::{Draft, Problem, Severity, SourceRecord, Zone};

/// Which RRsets of a loaded zone come from its zone file (dynamic UPDATE may not change them,
/// the admin UI marks them). Only the others are kept (store-managed records, DNSSEC keys): few,
/// where an index of the file's RRsets would cost a big zone a second copy of its names.
#[derive(Debug, Default)]
pub struct FileRrsets {
    others: HashSet<(LowerName, RecordType)>,
}

impl FileRrsets {
    /// The RRsets `(name, type)` of `candidates` (the records added to the file's: managed
    /// records, DNSKEY and the like) that are not among `file`'s.
    fn new(mut candidates: HashSet<(LowerName, RecordType)>, file: &[SourceRecord]) -> Self {
        if !candidates.is_empty() {
            for r in file {
                candidates.remove(&(LowerName::new(&r.record.name), r.record.record_type()));
            }
        }
        FileRrsets { others: candidates }
    }

    /// True when `zone` (the zone these were loaded with) has the RRset `(name, rtype)` from its
    /// zone file.
    pub fn contains(&self, zone: &Zone, name: &LowerName, rtype: RecordType) -> bool {
        zone.node(name).is_some_and(|n| n.get(rtype).is_some())
            && !self.others.contains(&(name.clone(), rtype))
    }
}

/// Records of a zone above which freeing them is left to another thread.
const DROP_LATER_MIN: usize = 10_000;

/// A loaded zone and, when it is signed, its signatures.
pub(crate) type Loaded = (Arc<Zone>, Option<Arc<SignedZone>>);

/// What one zone was built from: while these are the same, so is the zone.
#[derive(PartialEq, Eq)]
struct Sources {
    /// Every file read, the zone file first, with a hash of its content.
    files: Vec<(PathBuf, u64)>,
    /// The managed records placed in the zone.
    managed: Vec<ManagedRecord>,
    /// The keys signing the zone, when it is signed.
    keys: Option<Vec<ZoneKey>>,
}

/// The last successful load of one zone of one view.
pub(crate) struct Built {
    sources: Sources,
    /// The zone and its signatures.
    pub(crate) loaded: Loaded,
    /// The zone file's RRsets.
    pub(crate) file_rrsets: Arc<FileRrsets>,
    report: ZoneReport,
}

impl Built {
    /// Every file the zone was read from.
    pub(crate) fn files(&self) -> impl Iterator<Item = &Path> {
        self.sources.files.iter().map(|(p, _)| p.as_path())
    }
}

/// The result of [`load_zone`].
pub(crate) struct Load {
    /// The zone, unless an error kept it from loading.
    pub loaded: Option<Loaded>,
    /// What the load found.
    pub report: ZoneReport,
    /// The zone file's RRsets.
    pub file_rrsets: Arc<FileRrsets>,
}

/// Loads the zone `origin` that `view` owns, or takes its last load when no source changed
/// (and its signatures need no renewal); a zone actually built is logged and counted in
/// `postern_dns_zone_builds_total`.
pub(crate) fn load_zone(inputs: &mut Inputs, view: &str, zc: &ZoneConfig, origin: &Name) -> Load {
    let (path, display) = zone_file(inputs, view, zc, origin);
    let records = inputs.managed.get(view).map_or(&[][..], Vec::as_slice);
    let placed = place(inputs, view, origin, records);
    let keys = inputs
        .dnssec_keys
        .get(&LowerName::new(origin))
        .filter(|_| zc.dnssec)
        .cloned();
    let key = (view.to_owned(), LowerName::new(origin));
    if let Some(built) = inputs.built.get(&key) {
        let same = built.sources.files.first().is_some_and(|(p, _)| *p == path)
            && built.sources.managed.iter().eq(placed.iter().copied())
            && built.sources.keys == keys
            && built
                .sources
                .files
                .iter()
                .all(|(p, h)| fingerprint(p) == Some(*h));
        let renewing = built
            .loaded
            .1
            .as_ref()
            .is_some_and(|s| s.renewal_due(unix_now()));
        // Signatures stored by another node are adopted by signing again.
        let adopting = inputs.stored_signed.contains_key(&key);
        if same && !renewing && !adopting {
            return Load {
                loaded: Some(built.loaded.clone()),
                report: built.report.clone(),
                file_rrsets: built.file_rrsets.clone(),
            };
        }
    }
    let started = Instant::now();
    let mut report = ZoneReport {
        view: view.to_owned(),
        zone: origin.to_string(),
        file: display.clone(),
        serial: None,
        records: 0,
        problems: Vec::new(),
    };
    let parsed = match parse_file(&path, &display, origin) {
        Ok(parsed) => parsed,
        Err(e) => {
            report.problems.push(Problem::from_parse(e));
            return failed(report);
        }
    };
    // The hashes of the text parsed: a file changed since is read again at the next check.
    let files = parsed.files;
    report
        .problems
        .extend(parsed.warnings.into_iter().map(|w| Problem {
            severity: Severity::Warning,
            loc: Some(w.loc),
            message: w.message,
        }));
    let managed_records = parse_placed(&placed, view, origin, &mut report.problems);
    let mut added: HashSet<(LowerName, RecordType)> = managed_records
        .iter()
        .map(|(r, _)| (LowerName::new(&r.record.name), r.record.record_type()))
        .collect();
    if keys.is_some() {
        let apex = LowerName::new(origin);
        added.extend(SIGNING_APEX_TYPES.map(|t| (apex.clone(), t)));
    }
    let file_rrsets = Arc::new(FileRrsets::new(added, &parsed.records));
    let managed: Vec<ManagedRecord> = placed.into_iter().cloned().collect();
    let (mut records, merge_problems) = merge(parsed.records, managed_records);
    report.problems.extend(merge_problems);
    let signing = match &keys {
        Some(keys) => match prepare_signing(keys, origin, &mut records) {
            Ok(keys) => Some(keys),
            Err(e) => return error(report, e.to_string()),
        },
        // Without keys (`postern check`, or `DnsServer` without a store): served unsigned.
        None => None,
    };
    // The DNSKEY, CDS and CDNSKEY records count in the content digest: a key change is a
    // new serial. Renewed signatures are new content too: a new serial, so secondaries pick
    // them up; so are signatures made anew at start when the store kept none (a new store, a
    // restored backup).
    let stored = inputs.stored_signed.remove(&key).map(Stored::parse);
    let renewing = signing.is_some()
        && match previous(inputs, &key) {
            Some(p) => p.signed.renewal_due(unix_now()),
            None => stored.as_ref().is_none_or(|s| s.renewal_due(unix_now())),
        };
    // The content digest is worked out while the records are grouped and checked.
    let (choice, (zone, problems)) = std::thread::scope(|scope| {
        let digest = scope.spawn(|| digest(&records));
        let draft = Draft::new(origin, &records);
        let digest = digest
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        let choice = inputs
            .serials
            .choose(view, origin, &records, digest, renewing);
        let built = draft.finish(choice.offset);
        (choice, built)
    });
    if records.len() >= DROP_LATER_MIN {
        crate::memory::drop_later(records);
    }
    report.problems.extend(problems);
    let Some(zone) = zone else {
        return failed(report);
    };
    inputs.serials.served(view, origin, choice);
    report.serial = Some(zone.serial());
    report.records = zone.record_count();
    let signing_started = Instant::now();
    let signed = match signing {
        None => None,
        Some(signing) => {
            // Only the managed records changed: only their owners are signed again.
            let touched = inputs
                .built
                .get(&key)
                .filter(|b| b.sources.files == files && b.sources.keys == keys && !renewing)
                .and_then(|b| changed_owners(&b.sources.managed, &managed));
            let basis = Basis {
                previous: previous(inputs, &key),
                stored: stored.as_ref(),
                max_changes: inputs.config.journal_max_changes,
                changes: inputs.keep_signed,
                touched: touched.as_deref(),
            };
            match sign_zone(&zone, &signing, basis, unix_now()) {
                Ok((signed, delta)) => {
                    // Adopting another node's version of the same records changes nothing to store.
                    let adopted = stored.is_some() && previous(inputs, &key).is_some();
                    if inputs.keep_signed && !delta.is_empty() && !adopted {
                        match delta.into_change(view, origin, zone.serial(), &signed) {
                            Ok(change) => inputs.signed_changes.push(change),
                            Err(e) => {
                                tracing::error!(view, zone = %origin, "signed zone not stored: {e}")
                            }
                        }
                    }
                    Some(Arc::new(signed))
                }
                Err(e) => return error(report, e.to_string()),
            }
        }
    };
    let loaded = (Arc::new(zone), signed);
    for p in &report.problems {
        tracing::warn!(view, zone = %origin, "{p}");
    }
    tracing::info!(
        view,
        zone = %origin,
        records = report.records,
        bytes = loaded.0.data_size(),
        serial = report.serial,
        ms = started.elapsed().as_millis(),
        sign_ms = signing_started.elapsed().as_millis(),
        "zone built"
    );
    metrics::counter!("postern_dns_zone_builds_total", "view" => view.to_owned(), "zone" => origin.to_string())
        .increment(1);
    let sources = Sources {
        files,
        managed,
        keys,
    };
    inputs.built.insert(
        key,
        Built {
            sources,
            loaded: loaded.clone(),
            file_rrsets: file_rrsets.clone(),
            report: report.clone(),
        },
    );
    Load {
        loaded: Some(loaded),
        report,
        file_rrsets,
    }
}

fn failed(report: ZoneReport) -> Load {
    Load {
        loaded: None,
        report,
        file_rrsets: Arc::default(),
    }
}

fn error(mut report: ZoneReport, message: String) -> Load {
    report.problems.push(Problem {
        severity: Severity::Error,
        loc: None,
        message,
    });
    failed(report)
}

/// A hash of a file's content; `None` when it cannot be read.
fn fingerprint(path: &Path) -> Option<u64> {
    std::fs::read(path).ok().map(|bytes| content_hash(&bytes))
}

/// The last signed version of a view's zone.
fn previous<'a>(inputs: &'a Inputs, key: &(String, LowerName)) -> Option<Previous<'a>> {
    let (zone, signed) = &inputs.built.get(key)?.loaded;
    Some(Previous {
        zone,
        signed: signed.as_deref()?,
    })
}

/// The path of a zone's file and the name it is reported under.
pub(crate) fn zone_file(
    inputs: &Inputs,
    view: &str,
    zc: &ZoneConfig,
    origin: &Name,
) -> (PathBuf, String) {
    let relative = zc.file.clone().unwrap_or_else(|| {
        PathBuf::from(view).join(format!("{}.zone", origin.to_string().trim_end_matches('.')))
    });
    (
        inputs.zones_dir().join(&relative),
        relative.display().to_string(),
    )
}

/// The `records` of `view` whose owner is in the zone `origin` and in no child zone of the
/// view; a record with a bad owner name is placed in every zone (and reported when parsed).
fn place<'a>(
    inputs: &Inputs,
    view: &str,
    origin: &Name,
    records: &'a [ManagedRecord],
) -> Vec<&'a ManagedRecord> {
    let lower = LowerName::new(origin);
    records
        .iter()
        .filter(|m| match m.owner() {
            Some(owner) => {
                lower.zone_of(&LowerName::new(&owner))
                    && !more_specific_zone(inputs, view, &owner, &lower)
            }
            None => true,
        })
        .collect()
}

/// Parses the placed records; those that do not parse are reported in `problems`, left out.
fn parse_placed(
    placed: &[&ManagedRecord],
    view: &str,
    origin: &Name,
    problems: &mut Vec<Problem>,
) -> Vec<(SourceRecord, bool)> {
    let mut parsed_records = Vec::new();
    for m in placed {
        if m.owner().is_none() {
            problems.push(Problem {
                severity: Severity::Warning,
                loc: None,
                message: format!("managed record `{}`: bad owner name, ignored", m.name),
            });
            continue;
        }
        match m.parse(view, origin) {
            Ok(r) => parsed_records.push((r, m.synthesised)),
            Err(p) => problems.push(p),
        }
    }
    parsed_records
}

/// The parsed `records` of `view` that belong to the zone `origin`; records that do not
/// parse are reported in `problems` and left out.
pub(crate) fn managed_in_zone(
    inputs: &Inputs,
    view: &str,
    origin: &Name,
    records: &[ManagedRecord],
    problems: &mut Vec<Problem>,
) -> Vec<(SourceRecord, bool)> {
    parse_placed(
        &place(inputs, view, origin, records),
        view,
        origin,
        problems,
    )
}

/// True when another zone of the view is closer to `owner` than `origin` (a child zone).
fn more_specific_zone(inputs: &Inputs, view: &str, owner: &Name, origin: &LowerName) -> bool {
    inputs
        .config
        .view
        .iter()
        .filter(|v| v.name == view)
        .flat_map(|v| v.zone.iter())
        .filter_map(|z| zone_name(&z.name).ok())
        .map(|n| LowerName::new(&n))
        .any(|z| z != *origin && origin.zone_of(&z) && z.zone_of(&LowerName::new(owner)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{build, OnZoneError, ServingState};

    /// The zone `origin` as view `view` serves it.
    fn served(state: &ServingState, view: &str, origin: &str) -> Arc<Zone> {
        let name = Name::from_ascii(origin).expect("name");
        let view = state.views.iter().find(|v| v.name == view).expect("view");
        view.find_zone(&name).expect("zone").zone.clone()
    }

    fn zone_text(serial: u32, hosts: u32, net: u8) -> String {
        let mut text = format!("$TTL 300\n@ SOA ns h {serial} 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n");
        for i in 0..hosts {
            text.push_str(&format!("h{i} A 10.{net}.{}.{}\n", i / 250, i % 250));
        }
        text
    }

    #[test]
    fn an_edit_rebuilds_only_the_zone_it_touches() {
        let dir = tempfile::tempdir().expect("tmp");
        let zones = dir.path().join("zones/inside");
        std::fs::create_dir_all(&zones).expect("mkdir");
        std::fs::write(zones.join("big.test.zone"), zone_text(1, 5000, 1)).expect("write");
        std::fs::write(zones.join("small.test.zone"), zone_text(7, 5, 2)).expect("write");
        let config: crate::DnsConfig = toml::from_str(
            "[[view]]\nname = \"inside\"\nmatch_clients = [\"127.0.0.0/8\"]\n\
             [[view.zone]]\nname = \"big.test\"\n[[view.zone]]\nname = \"small.test\"\n\
             [[view]]\nname = \"outside\"\n\
             [[view.zone]]\nname = \"big.test\"\nin_view = \"inside\"\n",
        )
        .expect("config");
        let mut inputs = Inputs::new(config, dir.path().to_path_buf());
        let (first, _) = build(&mut inputs, OnZoneError::Fail).expect("builds");
        let big = served(&first, "inside", "big.test.");
        let small = served(&first, "inside", "small.test.");
        assert_eq!(big.record_count(), 5003);

        // Nothing changed: nothing is built again.
        let (again, _) = build(&mut inputs, OnZoneError::KeepOld(&first)).expect("builds");
        assert!(Arc::ptr_eq(&big, &served(&again, "inside", "big.test.")));
        assert!(Arc::ptr_eq(
            &small,
            &served(&again, "inside", "small.test.")
        ));

        // A one-record edit of the small zone's file (same file serial).
        std::fs::write(zones.join("small.test.zone"), zone_text(7, 5, 3)).expect("write");
        let (edited, _) = build(&mut inputs, OnZoneError::KeepOld(&again)).expect("builds");
        let small_edited = served(&edited, "inside", "small.test.");
        assert!(!Arc::ptr_eq(&small, &small_edited), "the small zone is new");
        assert_eq!(small_edited.serial(), 8, "changed content, next serial");
        assert!(Arc::ptr_eq(&big, &served(&edited, "inside", "big.test.")));
        assert!(Arc::ptr_eq(&big, &served(&edited, "outside", "big.test.")));

        // A managed record placed in the small zone: again only that zone.
        inputs.managed.insert(
            "inside".into(),
            vec![ManagedRecord {
                name: "admin.small.test.".into(),
                ttl: 60,
                rtype: "A".into(),
                data: "192.0.2.9".into(),
                synthesised: false,
            }],
        );
        let (managed, _) = build(&mut inputs, OnZoneError::KeepOld(&edited)).expect("builds");
        assert_eq!(served(&managed, "inside", "small.test.").serial(), 9);
        assert!(Arc::ptr_eq(&big, &served(&managed, "inside", "big.test.")));
        assert_eq!(served(&managed, "inside", "big.test.").serial(), 1);

        // A broken edit of the big zone keeps the old one; a good one replaces it.
        std::fs::write(zones.join("big.test.zone"), "@ SOA broken\n").expect("write");
        let (broken, _) = build(&mut inputs, OnZoneError::KeepOld(&managed)).expect("builds");
        assert!(Arc::ptr_eq(&big, &served(&broken, "inside", "big.test.")));
        std::fs::write(zones.join("big.test.zone"), zone_text(2, 5000, 1)).expect("write");
        let (fixed, _) = build(&mut inputs, OnZoneError::KeepOld(&broken)).expect("builds");
        let big_fixed = served(&fixed, "inside", "big.test.");
        assert!(!Arc::ptr_eq(&big, &big_fixed));
        assert_eq!(big_fixed.serial(), 2);
        assert!(Arc::ptr_eq(
            &big_fixed,
            &served(&fixed, "outside", "big.test.")
        ));
    }
}
