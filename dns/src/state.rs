//! Building what is served: views with compiled ACLs and loaded zones, from the config,
//! the zone files (parsed once per content, shared between views via `in_view`) and the
//! managed records.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hickory_proto::rr::{LowerName, Name, RecordType};

use crate::acl::{Acl, AclCompiler, LocalAddrs, Who};
use crate::config::{DnsConfig, ZoneConfig};
use crate::dnssec::{prepare_signing, sign_zone, Previous, SignedZone, ZoneKey};
use crate::error::DnsError;
use crate::journal::{differences, Difference, JournalEntry};
use crate::managed::{merge, ManagedRecord};
use crate::rrl::RateLimiter;
use crate::serial::{SerialBook, ZoneSerial};
use crate::server::unix_now;
use crate::tsig::Keyring;
use crate::update::Grant;
use crate::zone::parse::{parse_file, ParsedFile};
use crate::zone::{Problem, Severity, SourceRecord, Zone};

/// A zone as served by a view, with its transfer and notify settings.
pub struct ServedZone {
    /// The zone data.
    pub zone: Arc<Zone>,
    /// Who may transfer it (RFC 5936 §6).
    pub allow_transfer: Acl,
    /// Where NOTIFY goes when the serial changes (RFC 1996).
    pub also_notify: Vec<SocketAddr>,
    /// The view that owns the zone (differs from the serving view for `in_view`).
    pub owner_view: String,
    /// The (name, type) RRsets that come from the zone file: dynamic UPDATE may not change
    /// them (the file stays authoritative).
    pub file_rrsets: Arc<FileRrsets>,
    /// The journal of dynamic updates, oldest first, for IXFR (RFC 1995).
    pub journal: Arc<Vec<Difference>>,
    /// The zone's signatures and NSEC3 chain, when it is signed.
    pub signed: Option<Arc<SignedZone>>,
}

/// The RRsets of a zone file, by lower-case owner and type.
pub type FileRrsets = HashSet<(LowerName, RecordType)>;

/// One view: match lists and zones by origin.
pub struct View {
    /// The view's name.
    pub name: String,
    clients: Acl,
    destinations: Acl,
    zones: HashMap<LowerName, Arc<ServedZone>>,
    rrl: Option<Arc<RateLimiter>>,
    grants: Vec<Grant>,
}

impl View {
    /// The zone whose origin is the longest suffix of `name`, if any.
    pub fn find_zone(&self, name: &Name) -> Option<&Arc<ServedZone>> {
        let mut candidate = LowerName::new(name);
        loop {
            if let Some(zone) = self.zones.get(&candidate) {
                return Some(zone);
            }
            if candidate.is_root() {
                return None;
            }
            candidate = candidate.base_name();
        }
    }

    /// The view's zones.
    pub fn zones(&self) -> impl Iterator<Item = &Arc<ServedZone>> {
        self.zones.values()
    }

    /// The `update_policy` grants of `key` that touch the zone `origin` (RFC 2136 §3.3).
    pub fn update_grants(&self, key: &Name, origin: &LowerName) -> Vec<&Grant> {
        let key = key.to_lowercase();
        self.grants
            .iter()
            .filter(|g| g.key == key && g.touches_zone(origin))
            .collect()
    }

    /// The view's response-rate limiter, when `rrl` is configured.
    pub fn rrl(&self) -> Option<&RateLimiter> {
        self.rrl.as_deref()
    }
}

/// Everything the query path reads, swapped whole on reload.
pub struct ServingState {
    /// Views in configuration order.
    pub views: Vec<View>,
    /// TSIG keys.
    pub keys: Keyring,
}

impl ServingState {
    /// The first view whose `match_clients` and `match_destinations` match (BIND9 semantics).
    pub fn route(&self, src: SocketAddr, dst: SocketAddr, key: Option<&Name>) -> Option<&View> {
        self.views.iter().find(|v| {
            v.clients.allows(Who { ip: src.ip(), key })
                && v.destinations.allows(Who { ip: dst.ip(), key })
        })
    }

    /// Takes over the rate-limit tables of `old`'s views of the same name and config, so
    /// that a reload (or a managed-records refresh) does not reset a flood's buckets.
    pub fn adopt_rrl(&mut self, old: &ServingState) {
        for view in &mut self.views {
            let Some(ours) = &view.rrl else { continue };
            let previous = old
                .views
                .iter()
                .find(|v| v.name == view.name)
                .and_then(|v| v.rrl.as_ref())
                .filter(|r| r.config() == ours.config());
            if let Some(previous) = previous {
                view.rrl = Some(previous.clone());
            }
        }
    }

    /// The served serial of every owned zone, by (view, origin).
    pub fn serials(&self) -> HashMap<(String, LowerName), u32> {
        self.views
            .iter()
            .flat_map(|v| v.zones.iter().map(move |(o, z)| (v, o, z)))
            .filter(|(v, _, z)| z.owner_view == v.name)
            .map(|(v, o, z)| ((v.name.clone(), o.clone()), z.zone.serial()))
            .collect()
    }
}

/// What one zone load found, for `check` and logs.
#[derive(Debug, Clone)]
pub struct ZoneReport {
    /// View owning the zone.
    pub view: String,
    /// Zone origin.
    pub zone: String,
    /// Zone file as configured.
    pub file: String,
    /// Served serial when the zone loaded.
    pub serial: Option<u32>,
    /// Number of records loaded.
    pub records: usize,
    /// Errors and warnings, with file:line.
    pub problems: Vec<Problem>,
}

impl ZoneReport {
    /// True when an error kept the zone from loading.
    pub fn failed(&self) -> bool {
        self.problems.iter().any(|p| p.severity == Severity::Error)
    }
}

struct CachedFile {
    fingerprint: Vec<(PathBuf, u64)>,
    parsed: Arc<ParsedFile>,
}

/// The inputs a state is built from; kept so that reloads re-parse only what changed.
pub struct Inputs {
    /// The `[dns]` config.
    pub config: DnsConfig,
    /// Directory relative paths are resolved against.
    pub base_dir: PathBuf,
    /// Managed records per view: (generation, records).
    pub managed: HashMap<String, (u32, Vec<ManagedRecord>)>,
    /// The update journal per view, oldest entry first.
    pub journals: HashMap<String, Vec<JournalEntry>>,
    /// DNSSEC keys by zone name, shared by every view that signs the zone.
    pub dnssec_keys: HashMap<LowerName, Vec<ZoneKey>>,
    /// The signed zones of the last build by (view, origin): their signatures are reused
    /// while fresh.
    signed: HashMap<(String, LowerName), Loaded>,
    cache: HashMap<(PathBuf, LowerName), CachedFile>,
    /// What each zone served last ([`crate::serial`]).
    serials: SerialBook,
}

impl Inputs {
    /// New inputs with an empty parse cache.
    pub fn new(config: DnsConfig, base_dir: PathBuf) -> Self {
        Inputs {
            config,
            base_dir,
            managed: HashMap::new(),
            journals: HashMap::new(),
            dnssec_keys: HashMap::new(),
            signed: HashMap::new(),
            cache: HashMap::new(),
            serials: SerialBook::default(),
        }
    }

    /// Remembers serials served by an earlier run, so that the next build never serves changed
    /// content under a serial a secondary already holds.
    pub fn remember_serials(&mut self, serials: Vec<ZoneSerial>) {
        self.serials.remember(serials);
    }

    /// The served serials that changed in builds since the last call.
    pub fn take_changed_serials(&mut self) -> Vec<ZoneSerial> {
        self.serials.take_changed()
    }

    /// The zones directory, resolved.
    pub fn zones_dir(&self) -> PathBuf {
        self.base_dir.join(&self.config.zones_dir)
    }

    /// Every file the current zones were read from.
    pub fn watched_files(&self) -> Vec<PathBuf> {
        self.cache
            .values()
            .flat_map(|c| c.fingerprint.iter().map(|(p, _)| p.clone()))
            .collect()
    }

    pub(crate) fn parse_cached(
        &mut self,
        path: &Path,
        display: &str,
        origin: &Name,
    ) -> Result<Arc<ParsedFile>, Problem> {
        let key = (path.to_path_buf(), LowerName::new(origin));
        if let Some(cached) = self.cache.get(&key) {
            if cached
                .fingerprint
                .iter()
                .all(|(p, h)| fingerprint(p) == Some(*h))
            {
                return Ok(cached.parsed.clone());
            }
        }
        let parsed = parse_file(path, display, origin).map_err(Problem::from_parse)?;
        let fp = parsed
            .files
            .iter()
            .map(|p| (p.clone(), fingerprint(p).unwrap_or_default()))
            .collect();
        let parsed = Arc::new(parsed);
        self.cache.insert(
            key,
            CachedFile {
                fingerprint: fp,
                parsed: parsed.clone(),
            },
        );
        Ok(parsed)
    }
}

fn fingerprint(path: &Path) -> Option<u64> {
    let bytes = std::fs::read(path).ok()?;
    let mut hasher = DefaultHasher::new();
    bytes.hash(&mut hasher);
    Some(hasher.finish())
}

/// What to do with a zone that fails to load.
#[derive(Clone, Copy)]
pub enum OnZoneError<'a> {
    /// Fail the whole build (start, explicit reload).
    Fail,
    /// Keep serving the previous zone (file watcher, managed records).
    KeepOld(&'a ServingState),
    /// Leave it out and report it (`check`).
    Report,
}

fn zone_name(text: &str) -> Result<Name, DnsError> {
    let mut name = Name::from_ascii(text.trim())
        .map_err(|e| DnsError::config(format!("bad zone name `{text}`: {e}")))?;
    name.set_fqdn(true);
    Ok(name)
}

/// Builds a new serving state from the inputs.
pub fn build(
    inputs: &mut Inputs,
    on_error: OnZoneError<'_>,
) -> Result<(ServingState, Vec<ZoneReport>), DnsError> {
    let keys = Keyring::from_config(&inputs.config.tsig_key)?;
    let key_names = keys.names();
    let config = inputs.config.clone();
    let mut compiler = AclCompiler::new(&config.acl, &key_names, LocalAddrs::detect())?;
    let mut views: Vec<View> = Vec::new();
    let mut reports = Vec::new();
    let mut view_names = HashSet::new();
    for vc in &config.view {
        if !view_names.insert(vc.name.as_str()) {
            return Err(DnsError::config(format!("duplicate view `{}`", vc.name)));
        }
        let ctx = format!("view `{}`", vc.name);
        let clients = compiler.compile(&vc.match_clients, &format!("{ctx} match_clients"))?;
        let destinations =
            compiler.compile(&vc.match_destinations, &format!("{ctx} match_destinations"))?;
        let mut zones: HashMap<LowerName, Arc<ServedZone>> = HashMap::new();
        for zc in &vc.zone {
            let origin = zone_name(&zc.name)?;
            let lower = LowerName::new(&origin);
            if zones.contains_key(&lower) {
                return Err(DnsError::config(format!(
                    "{ctx}: duplicate zone `{}`",
                    zc.name
                )));
            }
            let served = match &zc.in_view {
                Some(other) => shared_zone(&views, other, &lower, zc, &ctx)?,
                None => {
                    let transfer_list = zc.allow_transfer.as_ref().unwrap_or(&vc.allow_transfer);
                    let allow_transfer = compiler.compile(
                        transfer_list,
                        &format!("{ctx} zone `{}` allow_transfer", zc.name),
                    )?;
                    let also_notify = zc.notify_targets().map_err(|e| {
                        DnsError::config(format!("{ctx} zone `{}` also_notify: {e}", zc.name))
                    })?;
                    let (loaded, report, file_rrsets) = load_zone(inputs, &vc.name, zc, &origin);
                    let failed = report.failed();
                    reports.push(report.clone());
                    let ((zone, signed), file_rrsets) = match (loaded, on_error) {
                        (Some(loaded), _) => (loaded, Arc::new(file_rrsets)),
                        (None, OnZoneError::Fail) => {
                            return Err(DnsError::Zone {
                                zone: origin.to_string(),
                                message: describe_errors(&report),
                            })
                        }
                        (None, OnZoneError::KeepOld(previous)) => {
                            tracing::error!(
                                view = %vc.name,
                                zone = %origin,
                                "zone not reloaded, keeping the previous version: {}",
                                describe_errors(&report)
                            );
                            match previous
                                .views
                                .iter()
                                .find(|v| v.name == vc.name)
                                .and_then(|v| v.zones.get(&lower))
                            {
                                Some(old) => (
                                    (old.zone.clone(), old.signed.clone()),
                                    old.file_rrsets.clone(),
                                ),
                                None => continue,
                            }
                        }
                        (None, OnZoneError::Report) => continue,
                    };
                    if !failed {
                        for p in &report.problems {
                            tracing::warn!(view = %vc.name, zone = %origin, "{p}");
                        }
                    }
                    Arc::new(ServedZone {
                        zone,
                        allow_transfer,
                        also_notify,
                        owner_view: vc.name.clone(),
                        file_rrsets,
                        journal: Arc::new(differences(
                            &vc.name,
                            &origin,
                            inputs.journals.get(&vc.name).map_or(&[], Vec::as_slice),
                        )),
                        signed,
                    })
                }
            };
            zones.insert(lower, served);
        }
        let grants = vc
            .update_policy
            .iter()
            .map(|g| Grant::compile(g, &key_names))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| DnsError::config(format!("{ctx}: {e}")))?;
        let rrl = match &vc.rrl {
            Some(config) => {
                config
                    .validate()
                    .map_err(|e| DnsError::config(format!("{ctx} rrl: {e}")))?;
                Some(Arc::new(RateLimiter::new(config.clone())))
            }
            None => None,
        };
        views.push(View {
            name: vc.name.clone(),
            clients,
            destinations,
            zones,
            rrl,
            grants,
        });
    }
    for view in inputs.managed.keys() {
        if !view_names.contains(view.as_str()) {
            tracing::warn!(view = %view, "managed records for a view that is not configured");
        }
    }
    inputs.signed = views
        .iter()
        .flat_map(|v| v.zones.iter().map(move |(o, z)| (v, o, z)))
        .filter(|(v, _, z)| z.owner_view == v.name)
        .filter_map(|(v, o, z)| {
            let signed = z.signed.clone()?;
            Some(((v.name.clone(), o.clone()), (z.zone.clone(), Some(signed))))
        })
        .collect();
    Ok((ServingState { views, keys }, reports))
}

fn describe_errors(report: &ZoneReport) -> String {
    report
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn shared_zone(
    views: &[View],
    other: &str,
    origin: &LowerName,
    zc: &ZoneConfig,
    ctx: &str,
) -> Result<Arc<ServedZone>, DnsError> {
    if zc.file.is_some() || zc.allow_transfer.is_some() || !zc.also_notify.is_empty() {
        return Err(DnsError::config(format!(
            "{ctx} zone `{}`: in_view zones take no file, allow_transfer or also_notify",
            zc.name
        )));
    }
    let view = views.iter().find(|v| v.name == other).ok_or_else(|| {
        DnsError::config(format!(
            "{ctx} zone `{}`: in_view `{other}` is not an earlier view",
            zc.name
        ))
    })?;
    let served = view.zones.get(origin).ok_or_else(|| {
        DnsError::config(format!(
            "{ctx} zone `{}`: view `{other}` has no such zone",
            zc.name
        ))
    })?;
    if served.owner_view != other {
        return Err(DnsError::config(format!(
            "{ctx} zone `{}`: view `{other}` itself takes it from view `{}`",
            zc.name, served.owner_view
        )));
    }
    Ok(served.clone())
}

/// A loaded zone and, when it is signed, its signatures.
type Loaded = (Arc<Zone>, Option<Arc<SignedZone>>);

fn load_zone(
    inputs: &mut Inputs,
    view: &str,
    zc: &ZoneConfig,
    origin: &Name,
) -> (Option<Loaded>, ZoneReport, FileRrsets) {
    let (path, display) = zone_file(inputs, view, zc, origin);
    let mut report = ZoneReport {
        view: view.to_owned(),
        zone: origin.to_string(),
        file: display.clone(),
        serial: None,
        records: 0,
        problems: Vec::new(),
    };
    let parsed = match inputs.parse_cached(&path, &display, origin) {
        Ok(parsed) => parsed,
        Err(problem) => {
            report.problems.push(problem);
            return (None, report, FileRrsets::new());
        }
    };
    let file_rrsets: FileRrsets = parsed
        .records
        .iter()
        .map(|r| (LowerName::new(&r.record.name), r.record.record_type()))
        .collect();
    report
        .problems
        .extend(parsed.warnings.iter().cloned().map(|w| Problem {
            severity: Severity::Warning,
            loc: Some(w.loc),
            message: w.message,
        }));
    let (generation, managed) = match inputs.managed.get(view) {
        Some((generation, records)) => (
            *generation,
            managed_in_zone(inputs, view, origin, records, &mut report.problems),
        ),
        None => (0, Vec::new()),
    };
    let (mut records, merge_problems) = merge(parsed.records.clone(), managed);
    report.problems.extend(merge_problems);
    let keys = match inputs.dnssec_keys.get(&LowerName::new(origin)) {
        Some(keys) if zc.dnssec => match prepare_signing(keys, origin, &mut records) {
            Ok(keys) => Some(keys),
            Err(e) => {
                report.problems.push(Problem {
                    severity: Severity::Error,
                    loc: None,
                    message: e.to_string(),
                });
                return (None, report, file_rrsets);
            }
        },
        // Without keys (`postern check`, or `DnsServer` without a store): served unsigned.
        _ => None,
    };
    // The DNSKEY, CDS and CDNSKEY records count in the content digest: a key change is a
    // new serial.
    // Renewed signatures are new content too: a new serial, so secondaries pick them up.
    let renewing = keys.is_some()
        && previous(inputs, view, origin).is_some_and(|p| p.signed.renewal_due(unix_now()));
    let choice = inputs
        .serials
        .choose(view, origin, &records, generation, renewing);
    let (zone, problems) = Zone::build(origin, records, choice.offset);
    report.problems.extend(problems);
    if zone.is_some() {
        inputs.serials.served(view, origin, choice);
    }
    report.serial = zone.as_ref().map(Zone::serial);
    report.records = zone.as_ref().map_or(0, Zone::record_count);
    let Some(zone) = zone else {
        return (None, report, file_rrsets);
    };
    let signed = match keys {
        None => None,
        Some(keys) => match sign_zone(&zone, &keys, previous(inputs, view, origin), unix_now()) {
            Ok(signed) => Some(Arc::new(signed)),
            Err(e) => {
                report.problems.push(Problem {
                    severity: Severity::Error,
                    loc: None,
                    message: e.to_string(),
                });
                return (None, report, file_rrsets);
            }
        },
    };
    (Some((Arc::new(zone), signed)), report, file_rrsets)
}

/// The last signed version of a view's zone.
fn previous<'a>(inputs: &'a Inputs, view: &str, origin: &Name) -> Option<Previous<'a>> {
    let (zone, signed) = inputs
        .signed
        .get(&(view.to_owned(), LowerName::new(origin)))?;
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

/// The parsed `records` of `view` that belong to the zone `origin`; records that do not
/// parse are reported in `problems` and left out.
pub(crate) fn managed_in_zone(
    inputs: &Inputs,
    view: &str,
    origin: &Name,
    records: &[ManagedRecord],
    problems: &mut Vec<Problem>,
) -> Vec<(SourceRecord, bool)> {
    let mut parsed_records = Vec::new();
    let lower = LowerName::new(origin);
    for m in records {
        let Some(owner) = m.owner() else {
            problems.push(Problem {
                severity: Severity::Warning,
                loc: None,
                message: format!("managed record `{}`: bad owner name, ignored", m.name),
            });
            continue;
        };
        if !lower.zone_of(&LowerName::new(&owner))
            || more_specific_zone(inputs, view, &owner, &lower)
        {
            continue;
        }
        match m.parse(view, origin) {
            Ok(r) => parsed_records.push((r, m.synthesised)),
            Err(p) => problems.push(p),
        }
    }
    parsed_records
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

/// Logs managed records that fall in no zone of their view (they are ignored).
pub fn log_unplaced(config: &DnsConfig, view: &str, records: &[ManagedRecord]) {
    let zones: Vec<LowerName> = config
        .view
        .iter()
        .filter(|v| v.name == view)
        .flat_map(|v| v.zone.iter())
        .filter(|z| z.in_view.is_none())
        .filter_map(|z| zone_name(&z.name).ok())
        .map(|n| LowerName::new(&n))
        .collect();
    for record in records {
        let placed = record
            .owner()
            .is_some_and(|o| zones.iter().any(|z| z.zone_of(&LowerName::new(&o))));
        if !placed {
            tracing::warn!(view, name = %record.name, rtype = %record.rtype, "managed record outside the view's own zones, ignored");
        }
    }
}
