//! Building what is served: views with compiled ACLs and loaded zones, from the config,
//! the zone files (parsed once per content, shared between views via `in_view`) and the
//! managed records.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use hickory_proto::rr::{LowerName, Name};

use crate::acl::{Acl, AclCompiler, LocalAddrs, Who};
use crate::config::{DnsConfig, ZoneConfig};
use crate::dnssec::{SignedChange, SignedZone, StoredSigned, ZoneKey};
use crate::error::DnsError;
use crate::journal::{differences, Difference, JournalEntry};
pub use crate::load::FileRrsets;
use crate::load::{load_zone, Built, Load};
use crate::managed::ManagedRecord;
use crate::rrl::RateLimiter;
use crate::serial::{SerialBook, ZoneSerial};
use crate::tsig::Keyring;
use crate::update::Grant;
use crate::zone::{NameKey, NameMap, Problem, Severity, Zone};

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

/// One view: match lists and zones by origin.
pub struct View {
    /// The view's name.
    pub name: String,
    clients: Acl,
    destinations: Acl,
    zones: HashMap<LowerName, Arc<ServedZone>>,
    /// The same zones by the lower-cased wire form of their origin, for the wire answer path.
    by_key: NameMap<Arc<ServedZone>>,
    rrl: Option<Arc<RateLimiter>>,
    grants: Vec<Grant>,
    /// `postern_dns_queries_total` for this view, registered once.
    pub(crate) queries: metrics::Counter,
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

    /// The zone whose origin is the longest suffix of the lower-cased wire name `key`, and
    /// where its origin starts in `key`.
    pub(crate) fn find_zone_key(&self, key: &[u8]) -> Option<(&Arc<ServedZone>, usize)> {
        let mut start = 0;
        loop {
            let suffix = key.get(start..)?;
            if let Some(zone) = self.by_key.get(suffix) {
                return Some((zone, start));
            }
            start += 1 + usize::from(*suffix.first().filter(|&&len| len > 0)?);
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

/// The inputs a state is built from; kept so that a rebuild loads again only the zones whose
/// sources changed.
pub struct Inputs {
    /// The `[dns]` config.
    pub config: DnsConfig,
    /// Directory relative paths are resolved against.
    pub base_dir: PathBuf,
    /// Managed records per view.
    pub managed: HashMap<String, Vec<ManagedRecord>>,
    /// The update journal per view, oldest entry first.
    pub journals: HashMap<String, Vec<JournalEntry>>,
    /// DNSSEC keys by zone name, shared by every view that signs the zone.
    pub dnssec_keys: HashMap<LowerName, Vec<ZoneKey>>,
    /// The last load of each owned zone by (view, origin), reused while its sources are the
    /// same (signatures too, while fresh).
    pub(crate) built: HashMap<(String, LowerName), Built>,
    /// What each zone served last ([`crate::serial`]).
    pub(crate) serials: SerialBook,
    /// What the store kept of each signed zone by (view, origin), until its first signing.
    pub(crate) stored_signed: HashMap<(String, LowerName), StoredSigned>,
    /// What signings changed since [`Inputs::take_changes`], for the store.
    pub(crate) signed_changes: Vec<SignedChange>,
    /// Whether signings record their changes in `signed_changes` (a store keeps them).
    pub(crate) keep_signed: bool,
}

impl Inputs {
    /// New inputs: every zone is loaded by the first build.
    pub fn new(config: DnsConfig, base_dir: PathBuf) -> Self {
        Inputs {
            config,
            base_dir,
            managed: HashMap::new(),
            journals: HashMap::new(),
            dnssec_keys: HashMap::new(),
            built: HashMap::new(),
            serials: SerialBook::default(),
            stored_signed: HashMap::new(),
            signed_changes: Vec::new(),
            keep_signed: false,
        }
    }

    /// Remembers serials served by an earlier run, so that the next build never serves changed
    /// content under a serial a secondary already holds.
    pub fn remember_serials(&mut self, serials: Vec<ZoneSerial>) {
        self.serials.remember(serials);
    }

    /// Remembers what the store kept of signed zones (signatures and journals), for their
    /// first signing in this process.
    pub fn remember_signed(&mut self, stored: Vec<StoredSigned>) {
        for s in stored {
            if let Ok(origin) = Name::from_ascii(&s.zone) {
                self.stored_signed
                    .insert((s.view.clone(), LowerName::new(&origin)), s);
            }
        }
    }

    /// The served serials and signed zones that changed in builds since the last call.
    pub fn take_changes(&mut self) -> Changes {
        Changes {
            serials: self.serials.take_changed(),
            signed: std::mem::take(&mut self.signed_changes),
        }
    }

    /// The zones directory, resolved.
    pub fn zones_dir(&self) -> PathBuf {
        self.base_dir.join(&self.config.zones_dir)
    }

    /// Every file the current zones were read from.
    pub fn watched_files(&self) -> Vec<PathBuf> {
        self.built
            .values()
            .flat_map(Built::files)
            .map(PathBuf::from)
            .collect()
    }
}

/// What builds changed that the store keeps: served serials, and signed zones' signatures and
/// journals.
#[derive(Debug, Default)]
pub struct Changes {
    /// Served serials that changed.
    pub serials: Vec<ZoneSerial>,
    /// Signings.
    pub signed: Vec<SignedChange>,
}

impl Changes {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.serials.is_empty() && self.signed.is_empty()
    }
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

pub(crate) fn zone_name(text: &str) -> Result<Name, DnsError> {
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
    let mut owned = HashSet::new();
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
                    let Load {
                        loaded,
                        report,
                        file_rrsets,
                    } = load_zone(inputs, &vc.name, zc, &origin);
                    owned.insert((vc.name.clone(), lower.clone()));
                    reports.push(report.clone());
                    let ((zone, signed), file_rrsets) = match (loaded, on_error) {
                        (Some(loaded), _) => (loaded, file_rrsets),
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
        let by_key = zones
            .values()
            .map(|z| (NameKey::new(z.zone.origin()).as_bytes().into(), z.clone()))
            .collect();
        views.push(View {
            name: vc.name.clone(),
            clients,
            destinations,
            zones,
            by_key,
            rrl,
            grants,
            queries: metrics::counter!("postern_dns_queries_total", "view" => vc.name.clone()),
        });
    }
    for view in inputs.managed.keys() {
        if !view_names.contains(view.as_str()) {
            tracing::warn!(view = %view, "managed records for a view that is not configured");
        }
    }
    // Zones no longer configured are forgotten; one that failed keeps its last load.
    inputs.built.retain(|key, _| owned.contains(key));
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
