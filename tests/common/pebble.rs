//! A local ACME CA for certificate tests: Pebble (Debian package `pebble`) on loopback, with its
//! own HTTPS certificate, asking a given DNS server (Postern's) for its DNS-01 checks.

use std::net::TcpStream;

use super::ports::free_port;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Writes a self-signed certificate for `names` and its key as `cert.pem` and `key.pem` in `dir`.
pub fn write_cert(dir: &Path, names: &[&str]) -> (PathBuf, PathBuf) {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("self-signed certificate");
    std::fs::create_dir_all(dir).expect("certificate dir");
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, cert.pem()).expect("write cert");
    std::fs::write(&k, signing_key.serialize_pem()).expect("write key");
    (c, k)
}

/// A running Pebble; killed on drop.
pub struct Pebble {
    child: Child,
    /// The ACME directory URL.
    pub directory: String,
    /// Pebble's HTTPS certificate (self-signed): what a client must trust to talk to it.
    pub https_cert: PathBuf,
}

impl Pebble {
    /// Starts Pebble with files under `dir`, sending its DNS-01 queries to `127.0.0.1:dns_port`,
    /// and waits until it accepts connections.
    pub fn start(dir: &Path, dns_port: u16) -> Pebble {
        assert!(
            Path::new("/usr/bin/pebble").exists(),
            "pebble is missing: apt-get install pebble (bash .ci/run does)"
        );
        let (https_cert, https_key) = write_cert(&dir.join("pebble"), &["localhost", "127.0.0.1"]);
        let port = free_port();
        let config = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{port}"),
            "managementListenAddress": format!("127.0.0.1:{}", free_port()),
            "certificate": https_cert, "privateKey": https_key,
            "httpPort": free_port(), "tlsPort": free_port(), "ocspResponderURL": "",
            "externalAccountBindingRequired": false
        }});
        let config_file = dir.join("pebble.json");
        std::fs::write(&config_file, config.to_string()).expect("write pebble.json");
        let child = Command::new("pebble")
            .arg("-config")
            .arg(&config_file)
            .args(["-dnsserver", &format!("127.0.0.1:{dns_port}")])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pebble");
        let pebble = Pebble {
            child,
            directory: format!("https://127.0.0.1:{port}/dir"),
            https_cert,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "pebble did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        pebble
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
