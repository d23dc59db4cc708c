//! The I/O shell: UDP and TCP listeners, the atomically swapped serving state, reloads
//! and NOTIFY on serial changes.

mod mmsg;
mod tcp;
mod udp;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use postern_net::{AtCapacity, Edge, ListenerSpec, NetConfig};
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::DnsConfig;
use crate::dnssec::{StoredSigned, ZoneKey};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::LowerName;

use crate::error::DnsError;
use crate::journal::JournalEntry;
use crate::managed::{ManagedRecord, ServedRecord};
use crate::memory::release_freed_memory;
use crate::notify::spawn_notifies;
use crate::serial::ZoneSerial;
use crate::state::{build, log_unplaced, Changes, Inputs, OnZoneError, ServingState};
use crate::stats::{DnsCounters, DnsStats};
use crate::update::{UpdateHandler, UpdateRequest};
use crate::watch::{spawn_watcher, WatchMsg};
use crate::zone::rdata_text;
use tcp::tcp_connection;
use udp::udp_worker;

/// Time allowed to read the rest of a TCP message or to write a response.
const TCP_IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How often blocking UDP workers look at the shutdown token.
const SHUTDOWN_POLL: Duration = Duration::from_millis(250);
/// Requested UDP receive buffer (the kernel caps it at `net.core.rmem_max`).
const UDP_RECV_BUFFER: usize = 4 << 20;
/// UPDATEs received over UDP that may wait for the store at once; more are answered SERVFAIL
/// (the client retries), so that a burst cannot pile up tasks.
const MAX_PENDING_UDP_UPDATES: usize = 64;
/// How often signed zones are looked at for signatures to renew.
const RESIGN_INTERVAL: Duration = Duration::from_secs(3600);
/// Transfer messages built ahead of the socket (about 16 KiB each).
const TRANSFER_BACKLOG: usize = 4;
/// Attempts to find a port free for both UDP and TCP when binding port 0.
const BIND_ATTEMPTS: usize = 20;

/// State shared by listeners, the watcher and the handle.
pub(crate) struct Core {
    state: ArcSwap<ServingState>,
    inputs: Mutex<Inputs>,
    stats: DnsStats,
    runtime: tokio::runtime::Handle,
    watcher: Mutex<Option<Sender<WatchMsg>>>,
    updates: Mutex<Option<Arc<dyn UpdateHandler>>>,
    /// Held while an UPDATE is evaluated and applied: updates are serialised (RFC 2136 §3.7).
    update_lock: tokio::sync::Mutex<()>,
    /// Permits for UDP updates waiting to be applied.
    pending_updates: Arc<tokio::sync::Semaphore>,
    /// Permits for outgoing zone transfers (`[dns] max_transfers`).
    transfers: Arc<tokio::sync::Semaphore>,
    /// Told every served serial that changed, to persist it.
    serial_listener: Mutex<Option<SerialListener>>,
}

/// Receives the served serials and signed zones that changed (to keep them across restarts).
pub type SerialListener = Arc<dyn Fn(Changes) + Send + Sync>;

/// What the first build should already include, so that a start serves the same zones (and
/// serials) as the run before: store-managed records, update journals and served serials.
#[derive(Default)]
pub struct Seed {
    /// Managed records per view.
    pub managed: HashMap<String, Vec<ManagedRecord>>,
    /// Update journals per view, oldest first.
    pub journals: HashMap<String, Vec<JournalEntry>>,
    /// The serials served before.
    pub serials: Vec<ZoneSerial>,
    /// The DNSSEC keys of the signed zones.
    pub dnssec_keys: Vec<ZoneKey>,
    /// The signatures and journals of the signed zones.
    pub signed: Vec<StoredSigned>,
    /// Whether signings work out what they changed for the store and hand it to the serial
    /// listener ([`Changes::signed`]); without a store nothing is kept.
    pub keep_signed: bool,
}

impl Core {
    pub(crate) fn inputs(&self) -> MutexGuard<'_, Inputs> {
        self.inputs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Rebuilds from the current inputs, keeping old zones whose files are broken.
    pub(crate) fn reload_files(&self) {
        let mut inputs = self.inputs();
        if let Err(e) = self.rebuild(&mut inputs, false) {
            tracing::error!("zone reload failed, still serving the previous data: {e}");
        }
    }

    fn rebuild(&self, inputs: &mut Inputs, strict: bool) -> Result<(), DnsError> {
        let old = self.state.load_full();
        let on_error = if strict {
            OnZoneError::Fail
        } else {
            OnZoneError::KeepOld(&old)
        };
        let (mut new, _) = build(inputs, on_error)?;
        new.adopt_rrl(&old);
        let old_serials = old.serials();
        let new = Arc::new(new);
        self.state.store(new.clone());
        self.report_serials(inputs);
        for view in &new.views {
            for served in view.zones().filter(|z| z.owner_view == view.name) {
                let key = (view.name.clone(), served.zone.lower_origin().clone());
                let Some(old_serial) = old_serials.get(&key) else {
                    continue;
                };
                if *old_serial == served.zone.serial() {
                    continue;
                }
                tracing::info!(
                    view = %view.name,
                    zone = %served.zone.origin(),
                    serial = served.zone.serial(),
                    "zone serial changed"
                );
                if !served.also_notify.is_empty() {
                    spawn_notifies(
                        &self.runtime,
                        served.zone.origin().clone(),
                        served.zone.soa().clone(),
                        served.also_notify.clone(),
                    );
                }
            }
        }
        drop(old);
        release_freed_memory();
        Ok(())
    }

    /// Evaluates an UPDATE against the current state and applies it through the handler,
    /// one update at a time, and returns the response.
    async fn update(&self, request: &UpdateRequest) -> Vec<Vec<u8>> {
        let _serial = self.update_lock.lock().await;
        let state = self.state.load_full();
        let rcode = match request.evaluate(&state) {
            Err(rcode) => rcode,
            Ok(update) if update.rrsets.is_empty() => ResponseCode::NoError,
            Ok(update) => {
                let handler = self
                    .updates
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                match handler {
                    None => ResponseCode::Refused,
                    Some(handler) => {
                        let (view, zone, key) =
                            (update.view.clone(), update.zone.clone(), update.key.clone());
                        let (added, removed) = (update.added.len(), update.removed.len());
                        match handler.apply(update).await {
                            Ok(()) => {
                                tracing::info!(client = %request.src(), %view, %zone, %key, added, removed, "dynamic update applied");
                                ResponseCode::NoError
                            }
                            Err(e) => {
                                tracing::error!(client = %request.src(), %view, %zone, "dynamic update failed: {e}");
                                ResponseCode::ServFail
                            }
                        }
                    }
                }
            }
        };
        request.reply(&self.stats, rcode)
    }

    /// Hands the served serials and signings that changed to the listener, if one is set.
    fn report_serials(&self, inputs: &mut Inputs) {
        let listener = self
            .serial_listener
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(listener) = listener {
            let changed = inputs.take_changes();
            if !changed.is_empty() {
                listener(changed);
            }
        }
    }

    fn resync_watcher(&self) {
        if let Some(tx) = self
            .watcher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            let _ = tx.send(WatchMsg::Resync);
        }
    }
}

/// Keys grouped by the zone they sign.
fn by_zone(keys: Vec<ZoneKey>) -> HashMap<LowerName, Vec<ZoneKey>> {
    let mut out: HashMap<LowerName, Vec<ZoneKey>> = HashMap::new();
    for key in keys {
        out.entry(LowerName::new(&key.zone)).or_default().push(key);
    }
    out
}

/// Rebuilds every [`RESIGN_INTERVAL`] while a zone is signed, so that signatures are renewed
/// long before they expire (the cache re-signs those past half their validity).
async fn resign(core: Arc<Core>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(RESIGN_INTERVAL);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let signed = core
            .state
            .load()
            .views
            .iter()
            .any(|v| v.zones().any(|z| z.signed.is_some()));
        if signed {
            let core = core.clone();
            if let Err(e) = tokio::task::spawn_blocking(move || core.reload_files()).await {
                tracing::error!("re-signing failed: {e}");
            }
        }
    }
}

/// A running DNS server: its bound addresses, counters and reload entry points.
#[derive(Clone)]
pub struct DnsServer {
    core: Arc<Core>,
    addrs: Vec<SocketAddr>,
    tracker: TaskTracker,
    edge: Edge,
    shutdown: CancellationToken,
}

impl DnsServer {
    /// Loads every zone (any error fails the start), binds UDP and TCP on each address
    /// (for port 0, UDP first and TCP on the same port, retrying on a clash) and serves
    /// until `shutdown` is cancelled; TCP connections go through the shared network edge
    /// (`net`'s per-client cap and PROXY sources).
    pub async fn start(
        config: DnsConfig,
        base_dir: PathBuf,
        listen: Vec<SocketAddr>,
        net: &NetConfig,
        shutdown: CancellationToken,
    ) -> Result<DnsServer, DnsError> {
        Self::start_with(config, base_dir, listen, net, shutdown, Seed::default()).await
    }

    /// [`DnsServer::start`] with store data the first build includes.
    pub async fn start_with(
        config: DnsConfig,
        base_dir: PathBuf,
        listen: Vec<SocketAddr>,
        net: &NetConfig,
        shutdown: CancellationToken,
        seed: Seed,
    ) -> Result<DnsServer, DnsError> {
        let mut inputs = Inputs::new(config, base_dir);
        inputs.managed = seed.managed;
        inputs.journals = seed.journals;
        inputs.remember_serials(seed.serials);
        inputs.remember_signed(seed.signed);
        inputs.keep_signed = seed.keep_signed;
        inputs.dnssec_keys = by_zone(seed.dnssec_keys);
        let (state, _) = build(&mut inputs, OnZoneError::Fail)?;
        let watch = inputs.config.watch;
        let idle = Duration::from_secs(inputs.config.tcp_idle_timeout_secs.max(1));
        let max_tcp = inputs.config.max_tcp_connections.max(1);
        let max_transfers = inputs.config.max_transfers;
        let core = Arc::new(Core {
            state: ArcSwap::from_pointee(state),
            inputs: Mutex::new(inputs),
            stats: DnsStats::default(),
            runtime: tokio::runtime::Handle::current(),
            watcher: Mutex::new(None),
            updates: Mutex::new(None),
            update_lock: tokio::sync::Mutex::new(()),
            pending_updates: Arc::new(tokio::sync::Semaphore::new(MAX_PENDING_UDP_UPDATES)),
            transfers: Arc::new(tokio::sync::Semaphore::new(max_transfers)),
            serial_listener: Mutex::new(None),
        });
        let tracker = TaskTracker::new();
        let edge = Edge::new(shutdown.clone());
        let mut addrs = Vec::new();
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
        for addr in listen {
            let (udp, tcp) = bind_pair(addr).await?;
            let local = udp
                .local_addr()
                .map_err(|source| DnsError::Bind { addr, source })?;
            tracing::info!(%local, "DNS listening on UDP and TCP");
            addrs.push(local);
            let udp = udp
                .into_std()
                .and_then(|s| {
                    s.set_nonblocking(false)?;
                    s.set_read_timeout(Some(SHUTDOWN_POLL))?;
                    Ok(s)
                })
                .map_err(|source| DnsError::Bind { addr, source })?;
            for _ in 0..workers {
                let socket = udp
                    .try_clone()
                    .map_err(|source| DnsError::Bind { addr, source })?;
                let (core, shutdown) = (core.clone(), shutdown.clone());
                tracker.spawn_blocking(move || udp_worker(&core, &socket, local, &shutdown));
            }
            // At the cap the oldest idle connection makes room (RFC 7766 §6.2.2).
            let spec = ListenerSpec {
                limits: net.limits("dns", max_tcp, AtCapacity::EvictOldestIdle),
                tls: None,
                refusal: Vec::new(),
                proxy: net.proxy("dns"),
                handshake_timeout: net.tls_handshake_timeout(),
            };
            let (core, shutdown) = (core.clone(), shutdown.clone());
            edge.serve(tcp, spec, move |conn| {
                tcp_connection(core.clone(), conn, idle, shutdown.clone())
            });
        }
        // The parsed files are gone: their memory goes back too, once answers are served.
        tracker.spawn_blocking(release_freed_memory);
        tracker.spawn(resign(core.clone(), shutdown.clone()));
        if watch {
            let tx = spawn_watcher(core.clone(), shutdown.clone())?;
            *core.watcher.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
        }
        tracker.close();
        Ok(DnsServer {
            core,
            addrs,
            tracker,
            edge,
            shutdown,
        })
    }

    /// The bound addresses (UDP and TCP share each).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Replaces config and zones atomically (SIGHUP). On any config or zone error the old
    /// config and zones stay in service and the error is returned.
    pub fn reload(&self, config: DnsConfig) -> Result<(), DnsError> {
        let mut inputs = self.core.inputs();
        let old = std::mem::replace(&mut inputs.config, config);
        match self.core.rebuild(&mut inputs, true) {
            Ok(()) => {
                drop(inputs);
                self.core.resync_watcher();
                Ok(())
            }
            Err(e) => {
                inputs.config = old;
                Err(e)
            }
        }
    }

    /// Sets the store-managed records of a view. Each record joins the zone of the view that
    /// contains its name (others are logged and ignored); per RRset the zone file wins. Only
    /// the zones whose records changed are built again, each served with the next serial (and
    /// NOTIFY sent).
    pub fn set_managed_records(&self, view: &str, records: Vec<ManagedRecord>) {
        let mut inputs = self.core.inputs();
        log_unplaced(&inputs.config, view, &records);
        inputs.managed.insert(view.to_owned(), records);
        if let Err(e) = self.core.rebuild(&mut inputs, false) {
            tracing::error!(view, "managed records not applied: {e}");
        }
    }

    /// Sets the DNSSEC keys of every zone (by zone name: every view signing a zone uses
    /// them) and re-signs when they changed.
    pub fn set_dnssec_keys(&self, keys: Vec<ZoneKey>) {
        let keys = by_zone(keys);
        let mut inputs = self.core.inputs();
        if inputs.dnssec_keys == keys {
            return;
        }
        inputs.dnssec_keys = keys;
        if let Err(e) = self.core.rebuild(&mut inputs, false) {
            tracing::error!("DNSSEC keys not applied: {e}");
        }
    }

    /// Serves the signed version another node stored for a zone (its signatures and journal
    /// entry, where the records are the same) in place of this node's own: every node then
    /// serves the same signed zone, so IXFR from any of them applies to a secondary's copy.
    pub fn adopt_signed(&self, stored: StoredSigned) {
        let mut inputs = self.core.inputs();
        inputs.remember_signed(vec![stored]);
        if let Err(e) = self.core.rebuild(&mut inputs, false) {
            tracing::error!("signed zone of another node not adopted: {e}");
        }
    }

    /// Checks a record before it is stored for `view`, next to the view's `current` records:
    /// refused, with the reason, if it would not be served or would stop its zone loading
    /// (see [`crate::validate`]).
    pub fn check_record(
        &self,
        view: &str,
        record: &ManagedRecord,
        current: &[ManagedRecord],
    ) -> Result<(), String> {
        crate::validate::check_served(&mut self.core.inputs(), view, record, current)
    }

    /// Sets the journal of a view's dynamic updates (used by IXFR from the next rebuild on:
    /// call it before [`DnsServer::set_managed_records`]).
    pub fn set_journal(&self, view: &str, entries: Vec<JournalEntry>) {
        self.core.inputs().journals.insert(view.to_owned(), entries);
    }

    /// Sets who is told the served serials that change (at once about those of the builds so
    /// far), so that they can be kept across restarts.
    pub fn set_serial_listener(&self, listener: SerialListener) {
        *self
            .core
            .serial_listener
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(listener);
        self.core.report_serials(&mut self.core.inputs());
    }

    /// Sets where dynamic UPDATEs go (RFC 2136); without a handler they are REFUSED.
    pub fn set_update_handler(&self, handler: Arc<dyn UpdateHandler>) {
        *self.core.updates.lock().unwrap_or_else(|e| e.into_inner()) = Some(handler);
    }

    /// The served SOA serial of a zone in a view, if that view serves it.
    pub fn zone_serial(&self, view: &str, zone: &str) -> Option<u32> {
        let mut name = hickory_proto::rr::Name::from_ascii(zone).ok()?;
        name.set_fqdn(true);
        let state = self.core.state.load();
        let view = state.views.iter().find(|v| v.name == view)?;
        let served = view.find_zone(&name)?;
        (served.zone.origin() == &name).then(|| served.zone.serial())
    }

    /// Every record `view` serves, zone by zone in origin order, each zone's SOA first (as
    /// served, with the served serial). `from_file` tells the zone
    /// file's RRsets (which win over store-managed ones) from the rest. A record whose data
    /// cannot be written as text is left out.
    pub fn served_records(&self, view: &str) -> Vec<ServedRecord> {
        let state = self.core.state.load();
        let Some(view) = state.views.iter().find(|v| v.name == view) else {
            return Vec::new();
        };
        let mut zones: Vec<_> = view.zones().collect();
        zones.sort_by(|a, b| a.zone.origin().cmp(b.zone.origin()));
        let mut out = Vec::new();
        for served in zones {
            let zone = &served.zone;
            let sets = zone.rrsets_for_transfer();
            let records = std::iter::once(zone.soa().clone())
                .chain(sets.into_iter().flat_map(|(owner, s)| s.records(&owner)));
            for r in records {
                let Some(data) = rdata_text(&r.data) else {
                    continue;
                };
                let rtype = r.record_type();
                out.push(ServedRecord {
                    from_file: served
                        .file_rrsets
                        .contains(zone, &LowerName::new(&r.name), rtype),
                    record: ManagedRecord {
                        name: r.name.to_string(),
                        ttl: r.ttl,
                        rtype: rtype.to_string(),
                        data,
                        synthesised: false,
                    },
                });
            }
        }
        out
    }

    /// Query counters.
    pub fn counters(&self) -> DnsCounters {
        self.core.stats.snapshot()
    }

    /// Waits until the shutdown token is cancelled and every listener and connection ended.
    pub async fn wait(&self) {
        self.shutdown.cancelled().await;
        self.tracker.wait().await;
        self.edge.clone().wait().await;
    }
}

async fn bind_pair(addr: SocketAddr) -> Result<(UdpSocket, TcpListener), DnsError> {
    let mut last = None;
    for _ in 0..BIND_ATTEMPTS {
        let udp = UdpSocket::bind(addr)
            .await
            .map_err(|source| DnsError::Bind { addr, source })?;
        let port = udp
            .local_addr()
            .map_err(|source| DnsError::Bind { addr, source })?
            .port();
        match TcpListener::bind(SocketAddr::new(addr.ip(), port)).await {
            Ok(tcp) => {
                // Bursts of queries queue here while the workers are busy.
                if let Err(e) = socket2::SockRef::from(&udp).set_recv_buffer_size(UDP_RECV_BUFFER) {
                    tracing::debug!("cannot enlarge the UDP receive buffer: {e}");
                }
                return Ok((udp, tcp));
            }
            Err(e) if addr.port() == 0 && e.kind() == std::io::ErrorKind::AddrInUse => {
                last = Some(e)
            }
            Err(source) => return Err(DnsError::Bind { addr, source }),
        }
    }
    Err(DnsError::Bind {
        addr,
        source: last.unwrap_or_else(|| std::io::Error::other("no free port")),
    })
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
