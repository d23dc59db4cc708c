//! Outbound DANE (RFC 7672) end to end: a sending Postern whose resolver (the test DNS, playing a
//! validating resolver with the AD bit) serves TLSA records for the MX hosts of a receiving
//! Postern. Matching DANE-EE and DANE-TA records let mail through; a mismatch keeps it queued;
//! records are ignored when the MX answer or the MX host's address answer is not validated
//! (RFC 7672 §2.2).

mod common;
mod smtp_support;

use std::collections::HashMap;
use std::net::Ipv4Addr;

use common::Db;
use sha2::{Digest, Sha256};
use smtp_support::{
    receiving_server, sending_server, submit_as_alice, wait_deferred, wait_inbox, Rr, TestCa,
    TestDns,
};

both_backends!(dane_decides_which_servers_get_mail);

/// Receiving domains; each has the MX host `mx.<domain>`.
const DOMAINS: [&str; 6] = [
    "ee.test",
    "ta.test",
    "bad.test",
    "tawrong.test",
    "insecure.test",
    "insecurea.test",
];

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
    // A validated MX answer, but the MX host's address answer is not: DANE does not apply.
    tlsa(&mut z, "insecurea.test", Rr::Tlsa(3, 1, 1, vec![0xab; 32]));
    z.get_mut("mx.insecurea.test")
        .expect("mx.insecurea.test")
        .push(Rr::Insecure);
    z
}

async fn dane_decides_which_servers_get_mail(db: Db) {
    let dir = tempfile::tempdir().expect("dir");
    // One certificate naming mx.ta.test only, sent with its CA.
    let ca = TestCa::new();
    let leaf = ca.issue(&["mx.ta.test".to_owned()], dir.path(), "mx");
    let (receiving, mx) = receiving_server(db, dir.path(), "mx", &DOMAINS).await;
    let dns = TestDns::start(zone(&leaf, &ca.der));
    let extra = format!(
        "[smtp]\nresolver = \"{}\"\noutbound_port = {}\nretry_initial_secs = 1\nretry_max_secs = 1\nqueue_scan_secs = 1\noutbound_timeout_secs = 5\n",
        dns.addr,
        mx.addr("smtp").port()
    );
    let (sending, out) = sending_server(db, &extra).await;
    let rcpts: Vec<String> = DOMAINS.iter().map(|d| format!("u@{d}")).collect();
    submit_as_alice(out.addr("submissions").port(), &rcpts, "dane");

    for delivered in [
        "u@ee.test",
        "u@ta.test",
        "u@insecure.test",
        "u@insecurea.test",
    ] {
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
