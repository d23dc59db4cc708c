//! `postern serve`: builds the shared services once (store, certificates, shutdown token), starts
//! every configured listener, publishes the bound addresses, and handles signals: SIGTERM/SIGINT
//! drain and exit 0, SIGHUP reloads configuration, zones and certificates.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio_util::sync::CancellationToken;

use crate::config::Loaded;
use crate::dns_service::DnsService;
use crate::events::RecentEvents;
use crate::logging::LogHandle;
use crate::mail_dns::{PolicyHttps, Publish, PublishedRecords};
use crate::reload::Running;
use crate::tls::Certificates;

/// How long sessions may take to finish after SIGTERM before the process exits anyway.
const GRACE_PERIOD: Duration = Duration::from_secs(10);

/// The file, in the data directory, that lists the addresses really bound (port 0 resolved).
pub const LISTENERS_FILE: &str = "listeners.json";

/// The signals `serve` reacts to, registered before anything else starts: until a handler is
/// installed, SIGHUP's default action ends the process, and a large zone can take seconds to load
/// while DNS already answers. A signal that arrives during start-up waits here and is handled
/// once every service runs.
pub struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

impl Signals {
    /// Installs the handlers for SIGTERM, SIGINT and SIGHUP.
    pub fn install() -> anyhow::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            hup: signal(SignalKind::hangup()).context("installing the SIGHUP handler")?,
        })
    }
}

/// Runs every configured service until SIGTERM or SIGINT.
pub async fn run(
    loaded: Loaded,
    log: LogHandle,
    recent: RecentEvents,
    signals: Signals,
) -> anyhow::Result<()> {
    let metrics = crate::metrics::Metrics::install()?;
    let data_dir = loaded.config.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating data_dir {}", data_dir.display()))?;
    let spool_dir = data_dir.join("spool");
    clear_spool(&spool_dir)?;
    let store =
        postern_store::Store::open_with(&loaded.database_url(), loaded.config.login.clone())
            .await
            .context("opening the database")?;
    let certs = Certificates::load(
        loaded.config.tls.as_ref(),
        &data_dir,
        &loaded.config.hostname,
    )?;
    let shutdown = CancellationToken::new();
    metrics.spawn_upkeep(shutdown.clone());
    let tasks = tokio_util::task::TaskTracker::new();
    let net = descriptor_budget(&loaded);

    // Each service binds its listeners here, records the addresses it got under its service name,
    // and hands its handle's completion future to `tasks` so shutdown waits for its sessions.
    let mut bound: BTreeMap<&str, Vec<SocketAddr>> = BTreeMap::new();
    let status_listeners: Arc<OnceLock<BTreeMap<String, Vec<SocketAddr>>>> = Arc::default();

    // What hosted mail domains publish, in DNS and on the admin listener: one snapshot.
    let admin_addrs = loaded.config.listeners.admin.get_ref();
    let https = loaded.config.tls.is_some() || loaded.config.admin.https_with_self_signed;
    let policy_https = if !admin_addrs.is_empty() && https {
        PolicyHttps::Served(certs.clone())
    } else {
        PolicyHttps::NotServed
    };
    let publish = Arc::new(ArcSwap::from_pointee(Publish::from_config(
        &loaded,
        &loaded,
        policy_https,
    )));

    let dns_addrs = loaded.config.listeners.dns.get_ref().clone();
    let dns = if dns_addrs.is_empty() {
        None
    } else {
        let dns = DnsService::start(
            &loaded,
            &net,
            store.clone(),
            dns_addrs,
            shutdown.clone(),
            publish.clone(),
            certs.subscribe(),
        )
        .await?;
        bound.insert("dns", dns.local_addrs().to_vec());
        tasks.spawn(dns.clone().wait());
        Some(dns)
    };

    if !admin_addrs.is_empty() {
        crate::manage::ensure_admin(&store).await?;
        let status = {
            let (listeners, recent) = (status_listeners.clone(), recent.clone());
            Arc::new(move || postern_admin_web::Status {
                listeners: listeners.get().cloned().unwrap_or_default(),
                recent_events: recent.snapshot(),
            })
        };
        let services = postern_admin_web::Services {
            store: store.clone(),
            dns: dns.as_ref().map(DnsService::admin),
            metrics: metrics.source(store.clone()),
            status,
            client: Some({
                let publish = publish.clone();
                Arc::new(move || publish.load().client.clone())
            }),
            mail_records: Arc::new(PublishedRecords {
                publish: publish.clone(),
                store: store.clone(),
            }),
        };
        let tls = https.then(|| certs.server_config());
        let admin = postern_admin_web::AdminServer::start(
            loaded.config.admin.clone(),
            &net,
            services,
            tls,
            admin_addrs,
            shutdown.clone(),
        )
        .await?;
        bound.insert("admin", admin.local_addrs().to_vec());
        tasks.spawn(admin.wait());
    }

    let mut imap_settings = None;
    let imap_plain = loaded.config.listeners.imap.get_ref().clone();
    let imap_tls = loaded.config.listeners.imaps.get_ref().clone();
    if !imap_plain.is_empty() || !imap_tls.is_empty() {
        let imap_config = postern_imap::ImapConfig {
            spool_dir: Some(spool_dir.clone()),
            ..loaded.config.imap.clone()
        };
        let imap = postern_imap::ImapServer::start(
            imap_config,
            &net,
            store.clone(),
            certs.server_config(),
            imap_plain,
            imap_tls,
            shutdown.clone(),
        )
        .await?;
        if !imap.plain_addrs().is_empty() {
            bound.insert("imap", imap.plain_addrs().to_vec());
        }
        if !imap.tls_addrs().is_empty() {
            bound.insert("imaps", imap.tls_addrs().to_vec());
        }
        imap_settings = Some(imap.settings());
        tasks.spawn(imap.wait());
    }

    let sieve_addrs = loaded.config.listeners.managesieve.get_ref().clone();
    if !sieve_addrs.is_empty() {
        let sieve = postern_sieve::managesieve::ManageSieveServer::start(
            loaded.config.managesieve.clone(),
            &net,
            store.clone(),
            certs.server_config(),
            sieve_addrs,
            shutdown.clone(),
        )
        .await?;
        bound.insert("managesieve", sieve.local_addrs().to_vec());
        tasks.spawn(sieve.wait());
    }

    let mut smtp_limits = None;
    let listeners = &loaded.config.listeners;
    let smtp_addrs = postern_smtp::SmtpAddrs {
        mx: listeners.smtp.get_ref(),
        submission: listeners.submission.get_ref(),
        submissions: listeners.submissions.get_ref(),
    };
    if !smtp_addrs.mx.is_empty()
        || !smtp_addrs.submission.is_empty()
        || !smtp_addrs.submissions.is_empty()
    {
        let mut smtp_config = loaded.config.smtp.clone();
        smtp_config.spool_dir = Some(spool_dir.clone());
        if smtp_config.srs_secret.is_none() {
            smtp_config.srs_secret = Some(crate::node_id::srs_secret(&data_dir)?);
        }
        let smtp = postern_smtp::SmtpServer::start(
            smtp_config,
            &net,
            loaded.config.hostname.clone(),
            store.clone(),
            certs.server_config(),
            smtp_addrs,
            shutdown.clone(),
        )
        .await?;
        for kind in [
            postern_smtp::Listener::Mx,
            postern_smtp::Listener::Submission,
            postern_smtp::Listener::Submissions,
        ] {
            if !smtp.local_addrs(kind).is_empty() {
                bound.insert(kind.name(), smtp.local_addrs(kind).to_vec());
            }
        }
        smtp_limits = Some(smtp.limits());
        tasks.spawn(smtp.wait());
    }
    // The outbound queue worker runs on every node: queue entries may come from any of them.
    let node = crate::node_id::load_or_create(&data_dir, &loaded.config.hostname)?;
    match postern_smtp::QueueWorker::start(
        loaded.config.smtp.clone(),
        loaded.config.hostname.clone(),
        node,
        store.clone(),
        shutdown.clone(),
    ) {
        Ok(worker) => {
            tasks.spawn(worker.wait());
        }
        Err(e) => tracing::error!("outbound queue not started: {e}"),
    }

    for (service, addrs) in loaded.config.listeners.tcp_services() {
        if !addrs.get_ref().is_empty() && !bound.contains_key(service) {
            tracing::warn!("listeners.{service} is configured but this build has no {service} service; ignored");
        }
    }
    if let Some(acme) = loaded.config.acme.clone() {
        let names = if acme.names.is_empty() {
            vec![loaded.config.hostname.clone()]
        } else {
            acme.names.clone()
        };
        let task = crate::acme::run(
            store.clone(),
            certs.clone(),
            acme,
            names,
            data_dir.clone(),
            shutdown.clone(),
        );
        tasks.spawn(task);
    }
    let _ = status_listeners.set(
        bound
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    );
    write_listeners(&data_dir, &bound)?;
    tracing::info!(config = %loaded.path.display(), listeners = ?bound, "postern started");
    tasks.spawn(index_backlog(store.clone(), shutdown.clone()));

    let running = Running {
        log,
        certs,
        publish,
        dns,
        smtp: smtp_limits,
        imap: imap_settings,
    };
    let mut current = loaded;
    let Signals {
        mut term,
        mut int,
        mut hup,
    } = signals;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => match running.reload(&current).await {
                Ok(next) => {
                    current = next;
                    tracing::info!(config = %current.path.display(), "configuration reloaded");
                }
                Err(e) => tracing::error!("reload refused, keeping the running configuration: {e:#}"),
            },
        }
    }
    tracing::info!("shutting down");
    shutdown.cancel();
    tasks.close();
    if tokio::time::timeout(GRACE_PERIOD, tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("sessions still open after {GRACE_PERIOD:?}; exiting anyway");
    }
    store.close().await;
    let _ = std::fs::remove_file(data_dir.join(LISTENERS_FILE));
    tracing::info!("stopped");
    Ok(())
}

/// The `[net]` settings with each listener's share of the descriptor limit, raised to the hard
/// limit first: however many connections one service is asked for, the others keep theirs.
fn descriptor_budget(loaded: &Loaded) -> postern_net::NetConfig {
    let limit = postern_net::raise_fd_limit();
    let listeners = loaded
        .config
        .listeners
        .tcp_services()
        .iter()
        .map(|(_, addrs)| addrs.get_ref().len())
        .sum::<usize>();
    let mut net = loaded.config.net.get_ref().clone();
    net.descriptor_share = Some(postern_net::descriptor_share(limit, listeners.max(1)));
    tracing::debug!(limit, listeners, share = ?net.descriptor_share, "descriptor budget");
    net
}

/// Writes `listeners.json` atomically (temp file + rename), so readers never see half a file.
/// Removes what a crash may have left in the spool directory. Spool files have no name while in
/// use (`postern_store::Spool`), but a file system without `O_TMPFILE` gives a new one a name for
/// a moment, and nothing else writes there; nothing is in use before the services start.
fn clear_spool(dir: &Path) -> anyhow::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    for entry in entries {
        let path = entry?.path();
        if path.is_file() {
            tracing::warn!(file = %path.display(), "removing a spool file left by a crash");
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    Ok(())
}

fn write_listeners(data_dir: &Path, bound: &BTreeMap<&str, Vec<SocketAddr>>) -> anyhow::Result<()> {
    let json = serde_json::json!({
        "pid": std::process::id(),
        "listeners": bound,
    });
    let tmp: PathBuf = data_dir.join(format!("{LISTENERS_FILE}.tmp"));
    std::fs::write(&tmp, serde_json::to_vec_pretty(&json)?)?;
    std::fs::rename(&tmp, data_dir.join(LISTENERS_FILE))?;
    Ok(())
}

/// Builds the search index of messages stored before it existed (SEARCH and header FETCH also
/// index what they need on first use, so results are right meanwhile); stops at shutdown.
async fn index_backlog(store: postern_store::Store, shutdown: CancellationToken) {
    tokio::select! {
        result = store.index_backlog() => match result {
            Ok(0) => {}
            Ok(n) => tracing::info!(messages = n, "search index built for stored messages"),
            Err(e) => tracing::warn!("search index of stored messages: {e}"),
        },
        () = shutdown.cancelled() => {}
    }
}
