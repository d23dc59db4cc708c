//! The DNS server inside `postern serve`, fed from the store: per view, the admin-managed records
//! and the records synthesised for hosted mail domains, merged so that an admin record overrides a
//! synthesised one per RRset (zone files override both, inside the DNS crate). The store's change
//! bus triggers a refresh, so a record added in the admin UI, or a domain added anywhere (on
//! PostgreSQL, on any node), is served at once and the zone serial goes up.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use postern_dns::dnssec::{JournalRow, SignatureRow, SignedChange, StoredSigned};
use postern_dns::{
    Changes, DnsConfig, DnsServer, ManagedRecord, Seed, SerialListener, ServedSerial, ZoneSerial,
    ZoneUpdate,
};
use postern_store::{
    Change, DnsJournal, DnsRrset, DnsSignatureRow, DnsSignedChange, DnsSignedEntry, DnsSignedZone,
    JournalLimits, Store, ZoneSerialRow,
};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::config::Loaded;
use crate::mail_dns::Publish;

/// How long to gather a burst of changes before refreshing once.
const DEBOUNCE: Duration = Duration::from_millis(30);

/// The running DNS service.
#[derive(Clone)]
pub struct DnsService {
    server: DnsServer,
    config: Arc<ArcSwap<DnsConfig>>,
    publish: Arc<ArcSwap<Publish>>,
    store: Store,
}

impl DnsService {
    /// Starts the server on `listen` (synthesising mail records from `publish`, which
    /// [`DnsService::reload`] replaces), loads the store-fed records of every view, and keeps them
    /// current until `shutdown`.
    ///
    /// `publish` is the mail publication snapshot shared with the admin server; the records are
    /// recomputed when the store changes and when `certificates` are swapped (`_mta-sts` depends
    /// on them).
    pub async fn start(
        loaded: &Loaded,
        net: &postern_net::NetConfig,
        store: Store,
        listen: Vec<SocketAddr>,
        shutdown: CancellationToken,
        publish: Arc<ArcSwap<Publish>>,
        certificates: tokio::sync::watch::Receiver<u64>,
    ) -> anyhow::Result<DnsService> {
        let changes = store.subscribe();
        let config = Arc::new(ArcSwap::from_pointee(loaded.config.dns.clone()));
        // The first build already holds the store's records and the serials served before, so
        // a restart serves what the last run served, under the same serials.
        let mut seed = Seed {
            dnssec_keys: crate::dnssec_keys::load(&store, &loaded.config.dns).await?,
            keep_signed: true,
            ..Seed::default()
        };
        for view in &loaded.config.dns.view {
            let view = view.name.clone();
            let journal = store.dns_journal(&view).await?;
            seed.journals.insert(
                view.clone(),
                journal.into_iter().filter_map(journal_entry).collect(),
            );
            let records = view_records(&store, &config.load(), &publish.load(), &view).await?;
            seed.managed.insert(view, records);
        }
        seed.serials = store
            .dns_zone_serials()
            .await?
            .into_iter()
            .map(|(view, zone, serial, digest)| ZoneSerial {
                view,
                zone,
                served: ServedSerial { serial, digest },
            })
            .collect();
        seed.signed = store
            .dns_signed_zones()
            .await?
            .into_iter()
            .map(stored_signed)
            .collect();
        let server = DnsServer::start_with(
            loaded.config.dns.clone(),
            loaded.base_dir.clone(),
            listen,
            net,
            shutdown.clone(),
            seed,
        )
        .await
        .map_err(|e| loaded.locate_dns_error(e))?;
        server.set_serial_listener(remember(store.clone(), config.clone(), server.clone()));
        let service = DnsService {
            server,
            config,
            publish,
            store,
        };
        service
            .server
            .set_update_handler(Arc::new(Updates(service.clone())));
        tokio::spawn(service.clone().follow(changes, certificates, shutdown));
        Ok(service)
    }

    /// The bound addresses.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        self.server.local_addrs()
    }

    /// Waits for the listeners to finish after shutdown.
    pub async fn wait(self) {
        self.server.wait().await;
    }

    /// Applies a reloaded configuration (SIGHUP): views and zones, then the records (from the
    /// publication snapshot the caller has swapped already).
    pub async fn reload(&self, loaded: &Loaded) -> anyhow::Result<()> {
        self.server.reload(loaded.config.dns.clone())?;
        self.config.store(Arc::new(loaded.config.dns.clone()));
        self.refresh_all().await;
        Ok(())
    }

    /// What the admin UI needs: views, served records and record validation.
    pub fn admin(&self) -> Arc<dyn postern_admin_web::DnsAdmin> {
        Arc::new(Admin(self.clone()))
    }

    async fn follow(
        self,
        mut changes: tokio::sync::broadcast::Receiver<Change>,
        mut certificates: tokio::sync::watch::Receiver<u64>,
        shutdown: CancellationToken,
    ) {
        let mut watching_certificates = true;
        loop {
            let first = tokio::select! {
                _ = shutdown.cancelled() => return,
                c = changes.recv() => c,
                swapped = certificates.changed(), if watching_certificates => {
                    watching_certificates = swapped.is_ok();
                    self.refresh_all().await;
                    continue;
                }
            };
            let mut views: Option<HashSet<String>> = Some(HashSet::new());
            let note = |c: Result<Change, RecvError>, views: &mut Option<HashSet<String>>| match c {
                Ok(Change::Dns { view }) => {
                    if let Some(v) = views.as_mut() {
                        v.insert(view);
                    }
                }
                Ok(Change::MailDomains | Change::DnssecKeys) | Err(RecvError::Lagged(_)) => {
                    *views = None
                }
                Ok(_) => {}
                Err(RecvError::Closed) => {}
            };
            if matches!(first, Err(RecvError::Closed)) {
                return;
            }
            note(first, &mut views);
            let deadline = tokio::time::sleep(DEBOUNCE);
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    _ = &mut deadline => break,
                    c = changes.recv() => note(c, &mut views),
                }
            }
            match views {
                None => self.refresh_all().await,
                Some(views) => {
                    for view in views {
                        self.refresh(&view).await;
                    }
                }
            }
        }
    }

    async fn refresh_all(&self) {
        match crate::dnssec_keys::load(&self.store, &self.config.load()).await {
            Ok(keys) => self.server.set_dnssec_keys(keys),
            Err(e) => tracing::error!("DNSSEC keys not refreshed from the store: {e:#}"),
        }
        let views: Vec<String> = self
            .config
            .load()
            .view
            .iter()
            .map(|v| v.name.clone())
            .collect();
        for view in views {
            self.refresh(&view).await;
        }
    }

    /// Recomputes and installs the store-fed records and update journal of one view; a store
    /// error keeps the records in service and is logged.
    async fn refresh(&self, view: &str) {
        match self.store.dns_journal(view).await {
            Ok(entries) => self.server.set_journal(
                view,
                entries.into_iter().filter_map(journal_entry).collect(),
            ),
            Err(e) => tracing::error!(view, "DNS journal not refreshed from the store: {e}"),
        }
        match view_records(&self.store, &self.config.load(), &self.publish.load(), view).await {
            Ok(records) => self.server.set_managed_records(view, records),
            Err(e) => tracing::error!(view, "DNS records not refreshed from the store: {e}"),
        }
    }
}

/// The store-fed records of one view: its admin and UPDATE records, then the records published
/// for hosted mail domains that no admin record overrides (per RRset; an admin CNAME overrides
/// every type, and any admin record overrides a published CNAME).
async fn view_records(
    store: &Store,
    dns: &DnsConfig,
    publish: &Publish,
    view: &str,
) -> Result<Vec<ManagedRecord>, postern_store::StoreError> {
    let mut stored = store.dns_records(Some(view)).await?;
    // In the order they were added: of two records that exclude each other (a CNAME and
    // other data at one name) the older one is served.
    stored.sort_by_key(|r| r.id);
    let mut records: Vec<ManagedRecord> = stored
        .into_iter()
        .map(|r| ManagedRecord {
            name: r.name,
            ttl: r.ttl as u32,
            rtype: r.rtype,
            data: r.data,
            synthesised: false,
        })
        .collect();
    let zones = postern_dns::view_zones(dns)
        .into_iter()
        .find(|(v, _)| v == view)
        .map(|(_, z)| z)
        .unwrap_or_default();
    let in_zones = |name: &str| {
        let n = name.trim_end_matches('.').to_ascii_lowercase();
        zones
            .iter()
            .any(|z| n == *z || n.ends_with(&format!(".{z}")))
    };
    let admin_keys: HashSet<(String, String)> = records
        .iter()
        .map(|r| (r.name.to_ascii_lowercase(), r.rtype.clone()))
        .collect();
    let admin_names: HashSet<String> = admin_keys.iter().map(|(n, _)| n.clone()).collect();
    let admin_cnames: HashSet<String> = admin_keys
        .iter()
        .filter(|(_, t)| t == "CNAME")
        .map(|(n, _)| n.clone())
        .collect();
    // Admin TXT RRsets without an SPF record, by name, with their TTL: the published SPF
    // joins them (exactly one SPF per domain, RFC 7208 §3.2).
    let mut txt_without_spf: HashMap<String, u32> = HashMap::new();
    for r in records
        .iter()
        .filter(|r| r.rtype.eq_ignore_ascii_case("TXT"))
    {
        txt_without_spf
            .entry(r.name.to_ascii_lowercase())
            .or_insert(r.ttl);
    }
    for r in records.iter().filter(|r| r.is_spf()) {
        txt_without_spf.remove(&r.name.to_ascii_lowercase());
    }
    let mut seen = HashSet::new();
    for domain in store.list_domains().await? {
        for r in publish.records_for(store, &domain.name, Some(view)).await? {
            let name = r.name.to_ascii_lowercase();
            let mut record = ManagedRecord {
                name: r.name,
                ttl: r.ttl,
                rtype: r.rtype.to_owned(),
                data: r.data,
                synthesised: true,
            };
            let joins = txt_without_spf
                .get(&name)
                .copied()
                .filter(|_| record.is_spf());
            let overridden = admin_keys.contains(&(name.clone(), r.rtype.to_owned()))
                || admin_cnames.contains(&name)
                || (r.rtype == "CNAME" && admin_names.contains(&name));
            if let Some(ttl) = joins {
                record.ttl = ttl;
            } else if overridden {
                continue;
            }
            if !in_zones(&name) || !seen.insert((name, r.rtype, record.data.clone())) {
                continue;
            }
            records.push(record);
        }
    }
    Ok(records)
}

/// Keeps the served serials and the signed zones' signatures and journals in the store, in the
/// order they change (one writer task), the journals pruned to the `[dns]` limits.
fn remember(store: Store, config: Arc<ArcSwap<DnsConfig>>, server: DnsServer) -> SerialListener {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Changes>();
    tokio::spawn(async move {
        while let Some(changed) = rx.recv().await {
            let rows: Vec<ZoneSerialRow<'_>> = changed
                .serials
                .iter()
                .map(|s| ZoneSerialRow {
                    view: &s.view,
                    zone: &s.zone,
                    serial: s.served.serial,
                    digest: s.served.digest,
                })
                .collect();
            if !rows.is_empty() {
                if let Err(e) = store.save_dns_zone_serials(&rows).await {
                    tracing::error!("served zone serials not stored: {e}");
                }
            }
            let dns = config.load();
            let limits = JournalLimits {
                max_changes: dns.journal_max_changes,
                max_bytes: dns.journal_max_bytes,
            };
            for signed in changed.signed {
                let (view, zone, serial) =
                    (signed.view.clone(), signed.zone.clone(), signed.serial);
                match save_signed(&store, signed, limits).await {
                    Ok(true) => {}
                    // Another node signed this version first: serve its signatures.
                    Ok(false) => match store.dns_signed_version(&view, &zone, serial).await {
                        Ok(theirs) => server.adopt_signed(stored_signed(theirs)),
                        Err(e) => {
                            tracing::error!(view, zone, "signed zone of another node not read: {e}")
                        }
                    },
                    Err(e) => tracing::error!(
                        view,
                        zone,
                        "signed zone not stored (IXFR after a restart sends it in full): {e}"
                    ),
                }
            }
        }
    });
    Arc::new(move |changed| {
        let _ = tx.send(changed);
    })
}

/// Stores one signing's change; false when another node's version of it stands.
async fn save_signed(
    store: &Store,
    change: SignedChange,
    limits: JournalLimits,
) -> Result<bool, postern_store::StoreError> {
    let entry = change.entry.map(|e| DnsSignedEntry {
        from_serial: e.from,
        to_serial: e.to,
        removed: e.removed,
        added: e.added,
    });
    let upserts: Vec<DnsSignatureRow> = change
        .upserts
        .into_iter()
        .map(|r| DnsSignatureRow {
            owner: r.owner,
            rtype: r.rtype,
            digest: r.digest,
            rrsigs: r.rrsigs,
        })
        .collect();
    store
        .save_dns_signed_change(
            DnsSignedChange {
                view: &change.view,
                zone: &change.zone,
                serial: change.serial,
                entry: entry.as_ref(),
                upserts: &upserts,
                deletes: &change.deletes,
            },
            limits,
        )
        .await
}

/// A signed zone as the store kept it, for the DNS crate.
fn stored_signed(z: DnsSignedZone) -> StoredSigned {
    StoredSigned {
        view: z.view,
        zone: z.zone,
        signatures: z
            .signatures
            .into_iter()
            .map(|r| SignatureRow {
                owner: r.owner,
                rtype: r.rtype,
                digest: r.digest,
                rrsigs: r.rrsigs,
            })
            .collect(),
        journal: z
            .journal
            .into_iter()
            .map(|e| JournalRow {
                from: e.from_serial,
                to: e.to_serial,
                removed: e.removed,
                added: e.added,
            })
            .collect(),
    }
}

/// Dynamic UPDATEs (RFC 2136) validated by the DNS crate, written to the store as the view's
/// records and served before the client gets its answer (RFC 2136 §3.5); the change bus tells
/// the other nodes.
struct Updates(DnsService);

impl postern_dns::UpdateHandler for Updates {
    fn apply(
        &self,
        update: ZoneUpdate,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>> {
        Box::pin(async move {
            let rrsets: Vec<DnsRrset> = update
                .rrsets
                .into_iter()
                .map(|set| DnsRrset {
                    name: set.name,
                    rtype: set.rtype,
                    records: set
                        .records
                        .into_iter()
                        .map(|(ttl, data)| (i64::from(ttl), data))
                        .collect(),
                })
                .collect();
            let lines = |records: &[(String, u32, String, String)]| {
                records
                    .iter()
                    .map(|(name, ttl, rtype, data)| format!("{name} {ttl} {rtype} {data}\n"))
                    .collect::<String>()
            };
            // A content change: the served serial goes from `serial` to `serial + 1`.
            let journal = DnsJournal {
                zone: update.zone.clone(),
                from_serial: update.serial,
                to_serial: update.serial.wrapping_add(1),
                removed: lines(&update.removed),
                added: lines(&update.added),
            };
            self.0
                .store
                .replace_dns_rrsets(&update.view, &rrsets, &journal)
                .await
                .map_err(|e| e.to_string())?;
            self.0.refresh(&update.view).await;
            Ok(())
        })
    }
}

/// A stored journal entry for the DNS crate: `owner ttl type rdata` lines back to records.
/// An entry with a broken line is left out: the gap makes IXFR across it send the full zone.
fn journal_entry(j: DnsJournal) -> Option<postern_dns::JournalEntry> {
    let records = |text: &str| -> Option<Vec<ManagedRecord>> {
        text.lines()
            .map(|line| {
                let mut parts = line.splitn(4, ' ');
                let (name, ttl, rtype, data) =
                    (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
                Some(ManagedRecord {
                    name: name.to_owned(),
                    ttl: ttl.parse().ok()?,
                    rtype: rtype.to_owned(),
                    data: data.to_owned(),
                    synthesised: false,
                })
            })
            .collect()
    };
    Some(postern_dns::JournalEntry {
        removed: records(&j.removed)?,
        added: records(&j.added)?,
        zone: j.zone,
        from: j.from_serial,
        to: j.to_serial,
    })
}

/// The admin UI's view of DNS: configured views, what they serve, and record checks against the
/// current config.
struct Admin(DnsService);

impl postern_admin_web::DnsAdmin for Admin {
    fn views(&self) -> Vec<postern_admin_web::DnsView> {
        postern_dns::view_zones(&self.0.config.load())
            .into_iter()
            .map(|(name, zones)| postern_admin_web::DnsView { name, zones })
            .collect()
    }

    fn served(&self, view: &str) -> Vec<postern_admin_web::ServedRecord> {
        self.0
            .server
            .served_records(view)
            .into_iter()
            .map(|s| postern_admin_web::ServedRecord {
                name: s.record.name,
                ttl: s.record.ttl,
                rtype: s.record.rtype,
                data: s.record.data,
                from_file: s.from_file,
            })
            .collect()
    }

    /// Checked against the view's records as the store has them now (not as last served), so
    /// that a record added a moment ago counts.
    fn validate<'a>(
        &'a self,
        view: &'a str,
        name: &'a str,
        rtype: &'a str,
        ttl: u32,
        data: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(async move {
            let record = ManagedRecord {
                name: name.to_owned(),
                ttl,
                rtype: rtype.to_owned(),
                data: data.to_owned(),
                synthesised: false,
            };
            let current = view_records(
                &self.0.store,
                &self.0.config.load(),
                &self.0.publish.load(),
                view,
            )
            .await
            .map_err(|e| format!("the store cannot be read: {e}"))?;
            self.0.server.check_record(view, &record, &current)
        })
    }
}
