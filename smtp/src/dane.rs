//! DANE for outbound SMTP (RFC 7672): the usable TLSA records of an MX host, taken only from an
//! answer the resolver validated (RFC 7672 §2.1: its AD bit, see [`crate::resolver`]), and the
//! check of the server's certificate chain against them (RFC 6698 §2.1, RFC 7671). Only
//! DANE-TA(2) and DANE-EE(3) are usable for SMTP (RFC 7672 §3.1.3).

use std::sync::Arc;

use hickory_resolver::proto::rr::rdata::tlsa::{CertUsage, Matching, Selector};
use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::RootCertStore;
use sha2::{Digest, Sha256, Sha512};

use crate::resolver::{LookupError, Resolver};

/// One usable TLSA record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlsa {
    /// DANE-TA (trust anchor in the chain) or DANE-EE (the server's own certificate).
    pub trust_anchor: bool,
    /// Match the whole certificate (false) or its SubjectPublicKeyInfo (true).
    pub spki: bool,
    /// 0 exact, 1 SHA-256, 2 SHA-512.
    pub matching: u8,
    /// The association data.
    pub data: Vec<u8>,
}

/// What the DNS says about an MX host's TLSA records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsaLookup {
    /// Validated records with at least one usable: TLS is required and must match.
    Required(Vec<Tlsa>),
    /// No validated TLSA records (none, insecure, or only unusable ones): DANE does not apply.
    None,
    /// The lookup failed: the host must not be used for now (RFC 7672 §2.2).
    Failed(String),
}

/// The TLSA records of `_25._tcp.<host>` (RFC 7672 §2.2.2), asked only for an MX host whose MX
/// and address answers were validated (RFC 7672 §2.2).
pub(crate) async fn tlsa(resolver: &Resolver, host: &str) -> TlsaLookup {
    let name = format!("_25._tcp.{}", host.trim_end_matches('.'));
    let answer = match resolver.tlsa(&name).await {
        Ok(answer) => answer,
        Err(LookupError::NxDomain { .. }) => return TlsaLookup::None,
        Err(LookupError::Failed(e)) => {
            return TlsaLookup::Failed(format!("TLSA lookup for {name}: {e}"))
        }
    };
    if !answer.authenticated {
        return TlsaLookup::None;
    }
    let usable: Vec<Tlsa> = answer
        .records
        .into_iter()
        .filter_map(|t| {
            let trust_anchor = match t.cert_usage {
                CertUsage::DaneTa => true,
                CertUsage::DaneEe => false,
                _ => return None,
            };
            let spki = match t.selector {
                Selector::Full => false,
                Selector::Spki => true,
                _ => return None,
            };
            let matching = match t.matching {
                Matching::Raw => 0,
                Matching::Sha256 => 1,
                Matching::Sha512 => 2,
                _ => return None,
            };
            Some(Tlsa {
                trust_anchor,
                spki,
                matching,
                data: t.cert_data,
            })
        })
        .collect();
    if usable.is_empty() {
        TlsaLookup::None
    } else {
        TlsaLookup::Required(usable)
    }
}

/// Whether a certificate (DER) matches one TLSA record's selector and matching type.
fn matches(record: &Tlsa, cert: &[u8]) -> bool {
    let selected: Vec<u8> = if record.spki {
        match x509_parser::parse_x509_certificate(cert) {
            Ok((_, parsed)) => parsed.public_key().raw.to_vec(),
            Err(_) => return false,
        }
    } else {
        cert.to_vec()
    };
    match record.matching {
        0 => selected == record.data,
        1 => Sha256::digest(&selected)[..] == record.data[..],
        2 => Sha512::digest(&selected)[..] == record.data[..],
        _ => false,
    }
}

/// Checks the server's chain (leaf first, DER) against the TLSA records of MX host `host`.
/// DANE-EE: the leaf matches; names and dates are not checked (RFC 7672 §3.1.1). DANE-TA: a
/// certificate of the chain matches, and the leaf chains to it and is valid for `host` (RFC 7672
/// §3.1.2, §3.2.2).
pub(crate) fn verify(records: &[Tlsa], chain: &[Vec<u8>], host: &str) -> Result<(), String> {
    let Some(leaf) = chain.first() else {
        return Err("no certificate presented".into());
    };
    if records.iter().any(|r| !r.trust_anchor && matches(r, leaf)) {
        return Ok(());
    }
    for r in records.iter().filter(|r| r.trust_anchor) {
        for anchor in chain.iter().filter(|c| matches(r, c)) {
            if chains_to(anchor, chain, host).is_ok() {
                return Ok(());
            }
        }
    }
    Err("the certificate matches none of the TLSA records".into())
}

/// PKIX validation of `chain` for `host` with `anchor` as the only trust anchor.
fn chains_to(anchor: &[u8], chain: &[Vec<u8>], host: &str) -> Result<(), String> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(anchor.to_vec()))
        .map_err(|e| e.to_string())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| e.to_string())?;
    let certs: Vec<CertificateDer<'_>> = chain
        .iter()
        .map(|c| CertificateDer::from(c.as_slice()))
        .collect();
    let name =
        ServerName::try_from(host.trim_end_matches('.').to_owned()).map_err(|e| e.to_string())?;
    verifier
        .verify_server_cert(&certs[0], &certs[1..], &name, &[], UnixTime::now())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed(name: &str) -> Vec<u8> {
        let rcgen::CertifiedKey { cert, .. } =
            rcgen::generate_simple_self_signed(vec![name.to_owned()]).expect("cert");
        cert.der().to_vec()
    }

    fn spki(cert: &[u8]) -> Vec<u8> {
        x509_parser::parse_x509_certificate(cert)
            .expect("parse")
            .1
            .public_key()
            .raw
            .to_vec()
    }

    #[test]
    fn dane_ee_matches_the_leaf_only() {
        let leaf = self_signed("mx.example.test");
        let other = self_signed("mx.example.test");
        let ee = |data: Vec<u8>, spki: bool, matching: u8| Tlsa {
            trust_anchor: false,
            spki,
            matching,
            data,
        };
        let chain = vec![leaf.clone()];
        for record in [
            ee(Sha256::digest(spki(&leaf)).to_vec(), true, 1),
            ee(Sha512::digest(spki(&leaf)).to_vec(), true, 2),
            ee(Sha256::digest(&leaf).to_vec(), false, 1),
            ee(leaf.clone(), false, 0),
        ] {
            // The name is not checked for DANE-EE: any host name passes.
            assert_eq!(verify(&[record], &chain, "unrelated.test"), Ok(()));
        }
        let wrong = ee(Sha256::digest(spki(&other)).to_vec(), true, 1);
        assert!(verify(std::slice::from_ref(&wrong), &chain, "mx.example.test").is_err());
        assert!(verify(&[wrong], &[], "mx.example.test").is_err());
    }
}
