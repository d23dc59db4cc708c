//! Serves the `[dns]` section of a TOML file, alone, until Ctrl-C or SIGTERM.
//!
//! `cargo run -p postern-dns --example serve -- zones/dns.example.toml 127.0.0.1:5353 [more addresses]`
//!
//! Relative paths in the file are resolved against its directory; the bound addresses are
//! printed on stdout, one per line, then `ready`. Zones with `dnssec = true` are signed with a
//! throw-away ECDSA P-256 CSK generated at start (`postern serve` keeps keys in its store);
//! the time spent loading and signing is printed on stderr.

use std::net::SocketAddr;
use std::path::PathBuf;

use postern_dns::dnssec::{generate, KeyRole, KeyState, ZoneKey, ECDSAP256SHA256};
use postern_dns::{DnsConfig, DnsServer, Seed};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    dns: DnsConfig,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    postern_dns::limit_allocator_arenas();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut args = std::env::args().skip(1);
    let path = PathBuf::from(args.next().ok_or("usage: serve CONFIG.toml ADDR...")?);
    let listen: Vec<SocketAddr> = args.map(|a| a.parse()).collect::<Result<_, _>>()?;
    let listen = if listen.is_empty() {
        vec!["127.0.0.1:5353".parse()?]
    } else {
        listen
    };
    let file: File = toml::from_str(&std::fs::read_to_string(&path)?)?;
    let base = path
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let mut keys = Vec::new();
    for zone in file.dns.view.iter().flat_map(|v| v.zone.iter()) {
        if zone.dnssec && !keys.iter().any(|k: &ZoneKey| k.zone_name() == zone.name) {
            let pkcs8 = generate(ECDSAP256SHA256)?;
            keys.push(ZoneKey::new(
                &zone.name,
                ECDSAP256SHA256,
                KeyRole::Csk,
                KeyState::Active,
                pkcs8,
            )?);
        }
    }
    let shutdown = CancellationToken::new();
    let started = std::time::Instant::now();
    let server = DnsServer::start_with(
        file.dns,
        base,
        listen,
        &postern_net::NetConfig::default(),
        shutdown.clone(),
        Seed {
            dnssec_keys: keys,
            ..Seed::default()
        },
    )
    .await?;
    for addr in server.local_addrs() {
        println!("{addr}");
    }
    eprintln!("zones loaded in {:.2} s", started.elapsed().as_secs_f64());
    println!("ready");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    shutdown.cancel();
    server.wait().await;
    let c = server.counters();
    eprintln!(
        "queries {} refused {} nxdomain {}",
        c.queries, c.refused, c.nxdomain
    );
    Ok(())
}
