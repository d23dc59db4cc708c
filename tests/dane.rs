//! Outbound DANE (RFC 7672) end to end: a sending Postern whose resolver (the test DNS, playing a
//! validating resolver with the AD bit) serves TLSA records for the MX hosts of a receiving
//! Postern. Matching DANE-EE and DANE-TA records let mail through; a mismatch keeps it queued;
//! records in an unvalidated answer are ignored.

mod common;
mod smtp_support;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Db, Instance, Server};
use sha2::{Digest, Sha256};
use smtp_support::{python, wait_inbox, Rr, TestDns, PASSWORD};

both_backends!(dane_decides_which_servers_get_mail);

/// Receiving domains; each has the MX host `mx.<domain>`.
const DOMAINS: [&str; 5] = [
    "ee.test",
    "ta.test",
    "bad.test",
    "tawrong.test",
    "insecure.test",
];

/// A CA and a certificate from it naming `mx.ta.test` only; writes chain.pem (leaf, then CA)
/// and key.pem to `dir`. Returns (leaf DER, CA DER).
fn certificates(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Postern DANE test CA");
    let ca = ca_params.self_signed(&ca_key).expect("CA");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().expect("key");
    let leaf = rcgen::CertificateParams::new(vec!["mx.ta.test".to_owned()])
        .expect("params")
        .signed_by(&key, &issuer)
        .expect("leaf");
    std::fs::write(dir.join("chain.pem"), format!("{}{}", leaf.pem(), ca.pem())).expect("write");
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).expect("write");
    (leaf.der().to_vec(), ca.der().to_vec())
}

/// The SubjectPublicKeyInfo of a certificate.
fn spki(cert: &[u8]) -> Vec<u8> {
    x509_parser::parse_x509_certificate(cert)
        .expect("certificate")
        .1
        .public_key()
        .raw
        .to_vec()
}

fn zone(leaf: &[u8], ca: &[u8]) -> HashMap<String, Vec<Rr>> {
    let leaf_spki = Sha256::digest(spki(leaf)).to_vec();
    let ca_hash = Sha256::digest(ca).to_vec();
    let mut z = HashMap::new();
    for domain in DOMAINS {
        z.insert(domain.to_owned(), vec![Rr::Mx(10, format!("mx.{domain}"))]);
        z.insert(format!("mx.{domain}"), vec![Rr::A(Ipv4Addr::LOCALHOST)]);
    }
    let tlsa = |z: &mut HashMap<String, Vec<Rr>>, domain: &str, rr: Rr| {
        z.insert(format!("_25._tcp.mx.{domain}"), vec![rr]);
    };
    // DANE-EE(3) SPKI(1) SHA-256(1): the server's own key.
    tlsa(&mut z, "ee.test", Rr::Tlsa(3, 1, 1, leaf_spki.clone()));
    // DANE-TA(2) Cert(0) SHA-256(1): the CA; the leaf must name the MX host.
    tlsa(&mut z, "ta.test", Rr::Tlsa(2, 0, 1, ca_hash.clone()));
    // Another key: no match.
    tlsa(&mut z, "bad.test", Rr::Tlsa(3, 1, 1, vec![0xab; 32]));
    // The right CA, but the certificate does not name mx.tawrong.test.
    tlsa(&mut z, "tawrong.test", Rr::Tlsa(2, 0, 1, ca_hash));
    // A mismatching record in an unvalidated MX answer: DANE does not apply.
    tlsa(&mut z, "insecure.test", Rr::Tlsa(3, 1, 1, vec![0xab; 32]));
    z.get_mut("insecure.test")
        .expect("insecure.test")
        .push(Rr::Insecure);
    z
}

/// Waits until the queue holds exactly these recipients, each with a last error containing
/// the given text.
async fn wait_deferred(inst: &Instance, expected: &[(&str, &str)]) {
    let store = postern_store::Store::open(&inst.db.url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let queue = store.list_queue().await.unwrap();
        let ok = queue.len() == expected.len()
            && expected.iter().all(|(rcpt, why)| {
                queue.iter().any(|e| {
                    e.recipient == *rcpt
                        && e.last_error.as_deref().is_some_and(|err| err.contains(why))
                })
            });
        if ok {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "queue {queue:#?}, want {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    store.close().await;
}

async fn receiver(db: Db, dir: &Path) -> (Instance, Server) {
    let extra = format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        dir.join("chain.pem").display(),
        dir.join("key.pem").display()
    );
    let inst = Instance::new(db, &["smtp"], &extra).await;
    for domain in DOMAINS {
        inst.ok(&["domain", "add", domain], "");
        inst.ok(
            &["user", "add", &format!("u@{domain}")],
            &format!("{PASSWORD}\n"),
        );
    }
    let server = inst.start();
    (inst, server)
}

async fn dane_decides_which_servers_get_mail(db: Db) {
    let dir = tempfile::tempdir().expect("dir");
    let (leaf, ca) = certificates(dir.path());
    let (receiving, mx) = receiver(db, dir.path()).await;
    let dns = TestDns::start(zone(&leaf, &ca));
    let extra = format!(
        "[smtp]\nresolver = \"{}\"\noutbound_port = {}\nretry_initial_secs = 1\nretry_max_secs = 1\nqueue_scan_secs = 1\noutbound_timeout_secs = 5\n",
        dns.addr,
        mx.addr("smtp").port()
    );
    let sending = Instance::new(db, &["submissions"], &extra).await;
    sending.ok(&["domain", "add", "example.test"], "");
    sending.ok(
        &["user", "add", "alice@example.test"],
        &format!("{PASSWORD}\n"),
    );
    let out = sending.start();
    const SUBMIT: &str = r#"
import smtplib, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP_SSL('127.0.0.1', int(sys.argv[1]), context=ctx, timeout=20)
s.login('alice@example.test', sys.argv[2])
rcpts = sys.argv[3].split(',')
print(s.sendmail('alice@example.test', rcpts, 'From: alice@example.test\r\nSubject: dane\r\n\r\nhi\r\n'))
s.quit()
"#;
    let rcpts: Vec<String> = DOMAINS.iter().map(|d| format!("u@{d}")).collect();
    let (ok, text) = python(
        SUBMIT,
        &[
            &out.addr("submissions").port().to_string(),
            PASSWORD,
            &rcpts.join(","),
        ],
    );
    assert!(ok && text.trim() == "{}", "{text}");

    for delivered in ["u@ee.test", "u@ta.test", "u@insecure.test"] {
        wait_inbox(&receiving, delivered, 1).await;
    }
    wait_deferred(
        &sending,
        &[
            ("u@bad.test", "matches none of the TLSA records"),
            ("u@tawrong.test", "matches none of the TLSA records"),
        ],
    )
    .await;
    let log = out.log();
    assert!(log.contains("DANE"), "{log}");
    for refused in ["u@bad.test", "u@tawrong.test"] {
        assert!(smtp_support::inbox(&receiving, refused).await.is_empty());
    }
}
