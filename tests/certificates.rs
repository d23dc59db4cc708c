//! TLS certificates: obtained from an ACME CA (a local Pebble, Debian package `pebble`) through the
//! DNS-01 challenge answered by Postern's own DNS, by Postern itself or by certbot's RFC 2136
//! plugin, and swapped into running TLS listeners without dropping the connections already open.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use common::pebble::{write_cert, Pebble};
use common::ports::free_port;
use common::{assert_no_dns_records, dig, example_dns, repo_path, Db, Instance};
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

#[tokio::test]
async fn acme_dns01_through_our_own_dns_and_hot_swap() {
    let dir = tempfile::tempdir().unwrap();
    // Pebble must be running (and know Postern's DNS port) before Postern's first ACME attempt,
    // so Postern's DNS gets a port chosen here instead of port 0.
    let dns_port = free_port();
    let pebble = Pebble::start(dir.path(), dns_port);

    // Postern: DNS for example.test (Pebble asks from 127.0.0.1, which the internal view matches),
    // an IMAPS listener to look at the certificate, and ACME for mail.example.test.
    let extra = format!(
        "{}\n[acme]\ndirectory = \"{}\"\nview = \"internal\"\nca_root = \"{}\"\n",
        example_dns(&repo_path("zones")),
        pebble.directory,
        pebble.https_cert.display()
    );
    let inst = Instance::new(Db::Sqlite, &["dns", "imaps"], &extra).await;
    inst.set_dns_port(dns_port);
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
    assert_no_dns_records(&inst, "challenge records removed").await;
    assert!(server.stop().success());
}

both_backends!(certbot_rfc2136_through_our_dns);

/// The TSIG key certbot signs its updates with.
const ACME_KEY: &str = "Y2VydGJvdC1yZmMyMTM2LXRlc3Qta2V5LTAxMjM0NTY3";

/// certbot with its `dns-rfc2136` plugin (Debian `python3-certbot-dns-rfc2136`) gets a
/// certificate from Pebble: it finds the zone with TSIG-signed SOA queries, adds the
/// `_acme-challenge` TXT records by RFC 2136 UPDATE (allowed by an `update_policy` grant for
/// exactly those names), Pebble checks them through Postern's DNS, and certbot deletes them.
async fn certbot_rfc2136_through_our_dns(db: Db) {
    assert!(
        Path::new("/usr/bin/certbot").exists()
            && Path::new("/usr/lib/python3/dist-packages/certbot_dns_rfc2136").exists(),
        "certbot is missing: apt-get install certbot python3-certbot-dns-rfc2136 (bash .ci/run does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let dns_port = free_port();
    let pebble = Pebble::start(dir.path(), dns_port);
    let names = ["www.example.test", "mail.example.test"];
    let grants: String = names
        .iter()
        .map(|n| {
            format!(
                "\n[[dns.view.update_policy]]\nkey = \"acme-key\"\nname = \"_acme-challenge.{n}\"\n\
                 match = \"name\"\ntypes = [\"TXT\"]\n"
            )
        })
        .collect();
    let extra = example_dns(&repo_path("zones"))
        .replace(
            "[[dns.view]]\nname = \"internal\"",
            &format!(
                "[[dns.tsig_key]]\nname = \"acme-key\"\nsecret = \"{ACME_KEY}\"\n\n\
                 [[dns.view]]\nname = \"internal\""
            ),
        )
        .replace(
            "allow_transfer = [\"key:xfr-key\"]\n",
            &format!("allow_transfer = [\"key:xfr-key\"]\n{grants}"),
        );
    let inst = Instance::new(db, &["dns"], &extra).await;
    inst.set_dns_port(dns_port);
    let server = inst.start();

    let credentials = dir.path().join("rfc2136.ini");
    std::fs::write(
        &credentials,
        format!(
            "dns_rfc2136_server = 127.0.0.1\ndns_rfc2136_port = {dns_port}\n\
             dns_rfc2136_name = acme-key\ndns_rfc2136_secret = {ACME_KEY}\n\
             dns_rfc2136_algorithm = HMAC-SHA256\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&credentials, std::fs::Permissions::from_mode(0o600)).unwrap();
    let certbot_dir = dir.path().join("certbot");
    let sub = |d: &str| certbot_dir.join(d).to_string_lossy().into_owned();
    let mut args = vec![
        "300".to_owned(),
        "certbot".to_owned(),
        "certonly".to_owned(),
        "--non-interactive".to_owned(),
        "--agree-tos".to_owned(),
        "--register-unsafely-without-email".to_owned(),
        "--server".to_owned(),
        pebble.directory.clone(),
        "--config-dir".to_owned(),
        sub("config"),
        "--work-dir".to_owned(),
        sub("work"),
        "--logs-dir".to_owned(),
        sub("logs"),
        "--dns-rfc2136".to_owned(),
        "--dns-rfc2136-credentials".to_owned(),
        credentials.to_string_lossy().into_owned(),
        "--dns-rfc2136-propagation-seconds".to_owned(),
        "1".to_owned(),
        "--cert-name".to_owned(),
        "postern-test".to_owned(),
    ];
    for n in names {
        args.extend(["-d".to_owned(), n.to_owned()]);
    }
    let out = Command::new("timeout")
        .args(&args)
        .env("REQUESTS_CA_BUNDLE", &pebble.https_cert)
        .output()
        .expect("run certbot");
    let certbot_log =
        std::fs::read_to_string(certbot_dir.join("logs/letsencrypt.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "certbot failed: {}{}\n--- certbot log ---\n{certbot_log}\n--- postern log ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );

    let pem = std::fs::read(certbot_dir.join("config/live/postern-test/cert.pem"))
        .expect("certbot wrote the certificate");
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
    let cert = pem.parse_x509().unwrap();
    assert!(
        cert.issuer().to_string().contains("Pebble"),
        "issued by the ACME CA: {}",
        cert.issuer()
    );
    let mut sans: Vec<String> = cert
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .filter_map(|g| match g {
            x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_string()),
            _ => None,
        })
        .collect();
    sans.sort();
    assert_eq!(sans, ["mail.example.test", "www.example.test"]);

    // The challenges went through Postern's UPDATE path, and certbot removed them afterwards.
    let log = server.log();
    assert!(
        log.matches("dynamic update applied").count() >= 4,
        "two adds and two deletes: {log}"
    );
    let dns = server.addr("dns");
    for n in names {
        let txt = dig(dns, "127.0.0.2", &[&format!("_acme-challenge.{n}"), "TXT"]);
        assert!(txt.is_empty(), "challenge TXT of {n} still served: {txt:?}");
    }
    assert_no_dns_records(&inst, "challenge records removed from the store").await;
    assert!(server.stop().success());
}
