//! TLS certificates: obtained from an ACME CA (a local Pebble, Debian package `pebble`) through the
//! DNS-01 challenge answered by Postern's own DNS, and swapped into running TLS listeners without
//! dropping the connections already open.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{example_dns, repo_path, Db, Instance};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

/// Accepts any certificate: the tests inspect the certificate instead of trusting it.
#[derive(Debug)]
struct AnyCert;

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// Opens a TLS connection with SNI `name` and returns it with the leaf certificate's issuer and SANs.
fn connect(addr: SocketAddr, name: &str) -> (Tls, String, Vec<String>) {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(AnyCert))
    .with_no_client_auth();
    let conn = rustls::ClientConnection::new(
        Arc::new(config),
        ServerName::try_from(name.to_owned()).unwrap(),
    )
    .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, TcpStream::connect(addr).unwrap());
    tls.flush().unwrap();
    let mut greeting = String::new();
    BufReader::new(&mut tls).read_line(&mut greeting).unwrap();
    assert!(greeting.starts_with("* OK"), "{greeting}");
    let der = tls.conn.peer_certificates().unwrap()[0].clone();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let sans = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|s| {
            s.value
                .general_names
                .iter()
                .filter_map(|g| match g {
                    x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let issuer = cert.issuer().to_string();
    (tls, issuer, sans)
}

/// Sends one IMAP command and reads up to its tagged reply.
fn imap(tls: &mut Tls, tag: &str, command: &str) -> String {
    tls.write_all(format!("{tag} {command}\r\n").as_bytes())
        .unwrap();
    let mut reader = BufReader::new(tls);
    let mut all = String::new();
    loop {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "connection closed"
        );
        all.push_str(&line);
        if line.starts_with(tag) {
            return all;
        }
    }
}

fn write_cert(dir: &std::path::Path, names: &[&str]) -> (std::path::PathBuf, std::path::PathBuf) {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, signing_key.serialize_pem()).unwrap();
    (c, k)
}

#[tokio::test]
async fn sighup_swaps_certificates_without_dropping_connections() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = write_cert(
        &dir.path().join("one"),
        &["mail.example.test", "one.example.test"],
    );
    let tls = format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        cert.display(),
        key.display()
    );
    let inst = Instance::new(Db::Sqlite, &["imaps"], &tls).await;
    let server = inst.start();
    let addr = server.addr("imaps");
    let (mut old, _, sans) = connect(addr, "mail.example.test");
    assert!(sans.contains(&"one.example.test".to_owned()), "{sans:?}");
    // New files at the same paths, then SIGHUP.
    let (c2, k2) = write_cert(
        &dir.path().join("two"),
        &["mail.example.test", "two.example.test"],
    );
    std::fs::copy(c2, &cert).unwrap();
    std::fs::copy(k2, &key).unwrap();
    server.signal(libc::SIGHUP);
    server.wait_for_log("configuration reloaded");
    let (mut new, _, sans) = connect(addr, "mail.example.test");
    assert!(
        sans.contains(&"two.example.test".to_owned()),
        "new connections get the new certificate: {sans:?}"
    );
    assert!(
        imap(&mut old, "a1", "NOOP").contains("a1 OK"),
        "the connection opened before the swap still works"
    );
    assert!(imap(&mut new, "b1", "CAPABILITY").contains("b1 OK"));
    assert!(server.stop().success());
}

/// Pebble on loopback, trusting Postern's DNS for its DNS-01 checks.
struct Pebble(Child);

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn acme_dns01_through_our_own_dns_and_hot_swap() {
    assert!(
        std::path::Path::new("/usr/bin/pebble").exists(),
        "pebble is missing: apt-get install pebble (bash .ci/run does)"
    );
    let dir = tempfile::tempdir().unwrap();
    // Pebble's own HTTPS certificate; instant-acme trusts it as the root.
    let (pebble_cert, pebble_key) =
        write_cert(&dir.path().join("pebble"), &["localhost", "127.0.0.1"]);
    let acme_port = free_port();
    let config = serde_json::json!({"pebble": {
        "listenAddress": format!("127.0.0.1:{acme_port}"),
        "managementListenAddress": format!("127.0.0.1:{}", free_port()),
        "certificate": pebble_cert, "privateKey": pebble_key,
        "httpPort": free_port(), "tlsPort": free_port(), "ocspResponderURL": "", "externalAccountBindingRequired": false
    }});
    std::fs::write(dir.path().join("pebble.json"), config.to_string()).unwrap();

    // Postern: DNS for example.test (Pebble asks from 127.0.0.1, which the internal view matches),
    // an IMAPS listener to look at the certificate, and ACME for mail.example.test.
    let extra = format!(
        "{}\n[acme]\ndirectory = \"https://127.0.0.1:{acme_port}/dir\"\nview = \"internal\"\nca_root = \"{}\"\n",
        example_dns(&repo_path("zones")),
        pebble_cert.display()
    );
    let inst = Instance::new(Db::Sqlite, &["dns", "imaps"], &extra).await;
    // Pebble must be running (and know Postern's DNS port) before Postern's first ACME attempt,
    // so Postern's DNS gets a port chosen here instead of port 0.
    let dns_port = free_port();
    let text = std::fs::read_to_string(&inst.config).unwrap().replacen(
        "dns = [\"127.0.0.1:0\"]",
        &format!("dns = [\"127.0.0.1:{dns_port}\"]"),
        1,
    );
    std::fs::write(&inst.config, text).unwrap();
    let _pebble = Pebble(
        Command::new("pebble")
            .args([
                "-config",
                &dir.path().join("pebble.json").to_string_lossy(),
                "-dnsserver",
                &format!("127.0.0.1:{dns_port}"),
            ])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pebble"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", acme_port)).is_err() {
        assert!(Instant::now() < deadline, "pebble did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let server = inst.start();
    let addr = server.addr("imaps");
    let (_, issuer, _) = connect(addr, "localhost");
    assert!(
        !issuer.contains("Pebble"),
        "self-signed before ACME: {issuer}"
    );
    server.wait_for_log("installed a certificate from ACME");
    let (mut conn, issuer, sans) = connect(addr, "mail.example.test");
    assert!(issuer.contains("Pebble"), "issued by the ACME CA: {issuer}");
    assert_eq!(sans, ["mail.example.test"]);
    assert!(imap(&mut conn, "a1", "CAPABILITY").contains("a1 OK"));
    assert!(inst
        .data_dir()
        .join("acme/mail.example.test/cert.pem")
        .exists());
    // The challenge record is gone from the store afterwards.
    let store = postern_store::Store::open(&inst.db.url).await.unwrap();
    assert!(
        store.dns_records(None).await.unwrap().is_empty(),
        "challenge records removed"
    );
    store.close().await;
    assert!(server.stop().success());
}
