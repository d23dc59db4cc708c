//! Shared helpers: a temp copy of the example zones, a server on a free port, and dig.
#![allow(dead_code)] // Each test file uses a different part of the helpers.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use postern_dns::{DnsConfig, DnsServer};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

/// The TSIG secret of `xfr-key` in the test config.
pub const SECRET: &str = "cG9zdGVybi1leGFtcGxlLXRzaWcta2V5LTAxMjM0NTY3";

/// A server over a private copy of `zones/`.
pub struct TestServer {
    pub server: DnsServer,
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub shutdown: CancellationToken,
}

impl TestServer {
    pub fn zone_path(&self, view: &str) -> PathBuf {
        self.dir
            .path()
            .join("zones")
            .join(view)
            .join("example.test.zone")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

#[derive(Deserialize)]
struct File {
    dns: DnsConfig,
}

pub fn parse_config(text: &str) -> DnsConfig {
    toml::from_str::<File>(text)
        .expect("test config parses")
        .dns
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read zones") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

/// The default test config: internal for 127.0.0.1/127.0.0.2, external for everyone else.
pub fn default_config(extra_zone_options: &str) -> String {
    format!(
        r#"
[dns]
zones_dir = "zones"
tcp_idle_timeout_secs = 2

[[dns.tsig_key]]
name = "xfr-key"
secret = "{SECRET}"

[[dns.view]]
name = "internal"
match_clients = ["!127.0.0.3", "127.0.0.2", "localhost", "10.0.0.0/8"]
allow_transfer = ["key:xfr-key"]

[[dns.view.zone]]
name = "example.test"
file = "internal/example.test.zone"
{extra_zone_options}

[[dns.view]]
name = "external"
match_clients = ["!127.0.0.9", "any"]

[[dns.view.zone]]
name = "example.test"
file = "external/example.test.zone"
allow_transfer = ["127.0.0.4"]
"#
    )
}

pub async fn start(config_text: &str) -> TestServer {
    let dir = tempfile::tempdir().expect("tempdir");
    let zones = Path::new(env!("CARGO_MANIFEST_DIR")).join("../zones");
    copy_dir(&zones, &dir.path().join("zones"));
    let config = parse_config(config_text);
    let shutdown = CancellationToken::new();
    let server = DnsServer::start(
        config,
        dir.path().to_path_buf(),
        vec!["127.0.0.1:0".parse().expect("addr")],
        &postern_net::NetConfig::default(),
        shutdown.clone(),
    )
    .await
    .expect("server starts");
    let port = server.local_addrs()[0].port();
    TestServer {
        server,
        port,
        dir,
        shutdown,
    }
}

/// Runs dig against the test server from a given source address.
pub async fn dig(port: u16, source: &str, args: &[&str]) -> String {
    let out = tokio::process::Command::new("dig")
        .args([
            "-p",
            &port.to_string(),
            "@127.0.0.1",
            "-b",
            source,
            "+norec",
            "+time=2",
            "+tries=1",
        ])
        .args(args)
        .output()
        .await
        .expect("dig is installed (bind9-dnsutils)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn status(out: &str) -> &str {
    out.split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or("")
}

pub fn flags(out: &str) -> Vec<&str> {
    out.lines()
        .find_map(|l| l.strip_prefix(";; flags: "))
        .and_then(|l| l.split(';').next())
        .map(|f| f.split_whitespace().collect())
        .unwrap_or_default()
}

/// Record lines of a section, e.g. `section(out, "ANSWER")`.
pub fn section<'a>(out: &'a str, name: &str) -> Vec<&'a str> {
    let header = format!(";; {name} SECTION:");
    out.lines()
        .skip_while(|l| *l != header)
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect()
}

/// The last field of each record line of a section.
pub fn rdata<'a>(out: &'a str, name: &str) -> Vec<&'a str> {
    section(out, name)
        .into_iter()
        .filter_map(|l| l.split('\t').next_back())
        .collect()
}

/// Waits until `f` returns true or the deadline passes.
pub async fn eventually<F, Fut>(mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..50 {
        if f().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}

pub fn server_addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}
