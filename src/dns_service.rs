//! The DNS server inside `postern serve`, fed from the store: per view, the admin-managed records
//! and the records synthesised for hosted mail domains, merged so that an admin record overrides a
//! synthesised one per RRset (zone files override both, inside the DNS crate). The store's change
//! bus triggers a refresh, so a record added in the admin UI, or a domain added anywhere (on
//! PostgreSQL, on any node), is served at once and the zone serial goes up.

use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use postern_dns::{DnsConfig, DnsServer, ManagedRecord, ZoneUpdate};
use postern_store::{Change, DnsJournal, DnsRrset, Store};
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
    /// Starts the server on `listen`, loads the store-fed records of every view, and keeps them
    /// current until `shutdown`.
    pub async fn start(
        loaded: &Loaded,
        net: &postern_net::NetConfig,
        store: Store,
        listen: Vec<SocketAddr>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<DnsService> {
        let keys = crate::dnssec_keys::load(&store, &loaded.config.dns).await?;
        let server = DnsServer::start(
            loaded.config.dns.clone(),
            loaded.base_dir.clone(),
            listen,
            keys,
            net,
            shutdown.clone(),
        )
        .await
        .map_err(|e| loaded.locate_dns_error(e))?;
        let service = DnsService {
            server,
            config: Arc::new(ArcSwap::from_pointee(loaded.config.dns.clone())),
            publish: Arc::new(ArcSwap::from_pointee(Publish::from_config(loaded))),
            store,
        };
        service
            .server
            .set_update_handler(Arc::new(Updates(service.clone())));
        let changes = service.store.subscribe();
        service.refresh_all().await;
        tokio::spawn(service.clone().follow(changes, shutdown));
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

    /// Applies a reloaded configuration (SIGHUP): views and zones, then the records.
    pub async fn reload(&self, loaded: &Loaded) -> anyhow::Result<()> {
        self.server.reload(loaded.config.dns.clone())?;
        self.config.store(Arc::new(loaded.config.dns.clone()));
        self.publish.store(Arc::new(Publish::from_config(loaded)));
        self.refresh_all().await;
        Ok(())
    }

    /// Query counters in Prometheus text format.
    pub fn metrics(&self) -> String {
        let c = self.server.counters();
        let mut out = String::from("# TYPE postern_dns_responses_total counter\n");
        for (kind, n) in [
            ("all", c.queries),
            ("refused", c.refused),
            ("nxdomain", c.nxdomain),
            ("formerr", c.formerr),
            ("truncated", c.truncated),
            ("transfer", c.transfers),
            ("tsig_failure", c.tsig_failures),
            ("update", c.updates),
        ] {
            out.push_str(&format!(
                "postern_dns_responses_total{{kind=\"{kind}\"}} {n}\n"
            ));
        }
        out.push_str("# TYPE postern_dns_rrl_total counter\n");
        for (action, n) in [
            ("limited", c.rrl_limited),
            ("dropped", c.rrl_dropped),
            ("slipped", c.rrl_slipped),
        ] {
            out.push_str(&format!(
                "postern_dns_rrl_total{{action=\"{action}\"}} {n}\n"
            ));
        }
        out
    }

    /// What the admin UI needs: views and record validation.
    pub fn admin(&self) -> Arc<dyn postern_admin_web::DnsAdmin> {
        Arc::new(Admin(self.config.clone()))
    }

    async fn follow(
        self,
        mut changes: tokio::sync::broadcast::Receiver<Change>,
        shutdown: CancellationToken,
    ) {
        loop {
            let first = tokio::select! {
                _ = shutdown.cancelled() => return,
                c = changes.recv() => c,
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
        match self.view_records(view).await {
            Ok((generation, records)) => self.server.set_managed_records(view, generation, records),
            Err(e) => tracing::error!(view, "DNS records not refreshed from the store: {e}"),
        }
    }

    async fn view_records(
        &self,
        view: &str,
    ) -> Result<(u32, Vec<ManagedRecord>), postern_store::StoreError> {
        let generation = self.store.dns_generation(view).await?;
        let mut records: Vec<ManagedRecord> = self
            .store
            .dns_records(Some(view))
            .await?
            .into_iter()
            .map(|r| ManagedRecord {
                name: r.name,
                ttl: r.ttl as u32,
                rtype: r.rtype,
                data: r.data,
            })
            .collect();
        let zones = postern_dns::view_zones(&self.config.load())
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
        let publish = self.publish.load();
        let mut seen = HashSet::new();
        for domain in self.store.list_domains().await? {
            for r in publish
                .records_for(&self.store, &domain.name, Some(view))
                .await?
            {
                let name = r.name.to_ascii_lowercase();
                let overridden = admin_keys.contains(&(name.clone(), r.rtype.to_owned()))
                    || admin_cnames.contains(&name)
                    || (r.rtype == "CNAME" && admin_names.contains(&name));
                if overridden || !in_zones(&name) || !seen.insert((name, r.rtype, r.data.clone())) {
                    continue;
                }
                records.push(ManagedRecord {
                    name: r.name,
                    ttl: r.ttl,
                    rtype: r.rtype.to_owned(),
                    data: r.data,
                });
            }
        }
        Ok((generation, records))
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
            // One generation step: the served serial goes from `serial` to `serial + 1`.
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

/// The admin UI's view of DNS: configured views and record checks against the current config.
struct Admin(Arc<ArcSwap<DnsConfig>>);

impl postern_admin_web::DnsAdmin for Admin {
    fn views(&self) -> Vec<postern_admin_web::DnsView> {
        postern_dns::view_zones(&self.0.load())
            .into_iter()
            .map(|(name, zones)| postern_admin_web::DnsView { name, zones })
            .collect()
    }

    fn validate(
        &self,
        view: &str,
        name: &str,
        rtype: &str,
        ttl: u32,
        data: &str,
    ) -> Result<(), String> {
        let record = ManagedRecord {
            name: name.to_owned(),
            ttl,
            rtype: rtype.to_owned(),
            data: data.to_owned(),
        };
        postern_dns::validate_managed(&self.0.load(), view, &record)
    }
}
