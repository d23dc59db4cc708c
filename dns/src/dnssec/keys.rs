//! Zone keys: generation (ECDSA P-256, algorithm 13, or Ed25519, algorithm 15, the algorithms
//! RFC 8624 §3.1 recommends for signing), the DNSKEY, DS, CDS and CDNSKEY records derived from
//! them, and the set of signers a zone is signed with. The crypto is hickory-proto's (ring).

use std::time::Duration;

use hickory_proto::dnssec::crypto::{signing_key_from_der, EcdsaSigningKey, Ed25519SigningKey};
use hickory_proto::dnssec::rdata::{CDNSKEY, CDS, DNSKEY, DS};
use hickory_proto::dnssec::{Algorithm, DigestType, DnssecSigner, PublicKey};
use hickory_proto::rr::Name;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::error::DnsError;

/// DNSKEY flags: Zone Key (RFC 4034 §2.1.1).
const ZONE_KEY: u16 = 0x0100;
/// DNSKEY flags: Secure Entry Point, set on keys whose DS is at the parent (RFC 4034 §2.1.1).
const SECURE_ENTRY_POINT: u16 = 0x0001;
/// How long a signature is valid (RFC 6781 §4.4.2: long enough to ride out an outage).
pub const SIGNATURE_VALIDITY: Duration = Duration::from_secs(14 * 24 * 3600);

/// What a key signs (RFC 6781 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRole {
    /// Combined signing key: the DNSKEY RRset and the zone data.
    Csk,
    /// Key-signing key: the DNSKEY RRset; its DS is at the parent.
    Ksk,
    /// Zone-signing key: the zone data.
    Zsk,
}

impl KeyRole {
    /// True for keys whose DS belongs at the parent (KSK and CSK).
    pub fn is_entry_point(self) -> bool {
        matches!(self, KeyRole::Csk | KeyRole::Ksk)
    }
}

/// Where a key is in a rollover (RFC 7583 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Published in DNSKEY (and CDS/CDNSKEY for an entry point), not signing.
    Published,
    /// Published and signing.
    Active,
    /// Published, no longer signing (removed at the end of the rollover).
    Retired,
}

/// One key of a zone as kept in the store.
#[derive(Clone, PartialEq, Eq)]
pub struct ZoneKey {
    pub(crate) zone: Name,
    pub(crate) algorithm: Algorithm,
    pub(crate) role: KeyRole,
    pub(crate) state: KeyState,
    pkcs8: Vec<u8>,
}

impl std::fmt::Debug for ZoneKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZoneKey")
            .field("zone", &self.zone)
            .field("algorithm", &self.algorithm)
            .field("role", &self.role)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

fn dnssec_error(what: &str, e: impl std::fmt::Display) -> DnsError {
    DnsError::Dnssec(format!("{what}: {e}"))
}

/// ECDSA P-256 with SHA-256 (RFC 6605), the default.
pub const ECDSAP256SHA256: u8 = 13;
/// Ed25519 (RFC 8080).
pub const ED25519: u8 = 15;

/// The algorithm of a number, when it is one we sign with.
fn algorithm(number: u8) -> Result<Algorithm, DnsError> {
    match Algorithm::from_u8(number) {
        a @ (Algorithm::ECDSAP256SHA256 | Algorithm::ED25519) => Ok(a),
        _ => Err(DnsError::Dnssec(format!(
            "algorithm {number} is not supported (13 or 15)"
        ))),
    }
}

/// Generates a private key (PKCS#8 DER) for algorithm 13 or 15.
pub fn generate(number: u8) -> Result<Vec<u8>, DnsError> {
    let algorithm = algorithm(number)?;
    let key = match algorithm {
        Algorithm::ECDSAP256SHA256 => EcdsaSigningKey::generate_pkcs8(algorithm),
        Algorithm::ED25519 => Ed25519SigningKey::generate_pkcs8(),
        other => return Err(DnsError::Dnssec(format!("unsupported algorithm {other}"))),
    }
    .map_err(|e| dnssec_error("key generation", e))?;
    Ok(key.secret_pkcs8_der().to_vec())
}

impl ZoneKey {
    /// A key as stored: zone name, algorithm number, role, state and PKCS#8 private key.
    pub fn new(
        zone: &str,
        number: u8,
        role: KeyRole,
        state: KeyState,
        pkcs8: Vec<u8>,
    ) -> Result<ZoneKey, DnsError> {
        let mut zone = Name::from_ascii(zone)
            .map_err(|e| DnsError::Dnssec(format!("bad zone name `{zone}`: {e}")))?;
        zone.set_fqdn(true);
        let key = ZoneKey {
            zone,
            algorithm: algorithm(number)?,
            role,
            state,
            pkcs8,
        };
        key.signing_key()?;
        Ok(key)
    }

    /// The zone's name as given to [`ZoneKey::new`], without the trailing dot.
    pub fn zone_name(&self) -> String {
        self.zone.to_string().trim_end_matches('.').to_owned()
    }

    /// The DS record for the parent zone, in zone-file form.
    pub fn ds_line(&self) -> Result<String, DnsError> {
        Ok(format!("{} IN DS {}", self.zone, self.ds()?))
    }

    /// The DNSKEY record in zone-file form.
    pub fn dnskey_line(&self) -> Result<String, DnsError> {
        let dnskey = self.dnskey()?;
        Ok(format!(
            "{} IN DNSKEY {} 3 {} {}",
            self.zone,
            dnskey.flags(),
            u8::from(self.algorithm),
            data_encoding::BASE64.encode(dnskey.public_key().public_bytes())
        ))
    }

    fn signing_key(&self) -> Result<Box<dyn hickory_proto::dnssec::SigningKey>, DnsError> {
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.pkcs8.clone()));
        signing_key_from_der(&der, self.algorithm).map_err(|e| dnssec_error("private key", e))
    }

    /// The DNSKEY record data (flags 257 for KSK/CSK, 256 for ZSK).
    pub fn dnskey(&self) -> Result<DNSKEY, DnsError> {
        let public = self
            .signing_key()?
            .to_public_key()
            .map_err(|e| dnssec_error("public key", e))?;
        let flags = if self.role.is_entry_point() {
            ZONE_KEY | SECURE_ENTRY_POINT
        } else {
            ZONE_KEY
        };
        Ok(DNSKEY::with_flags(flags, public))
    }

    /// The key tag (RFC 4034 Appendix B).
    pub fn key_tag(&self) -> Result<u16, DnsError> {
        self.dnskey()?
            .calculate_key_tag()
            .map_err(|e| dnssec_error("key tag", e))
    }

    /// The DS record data for the parent, SHA-256 digest (RFC 4509, RFC 8624 §3.3).
    pub fn ds(&self) -> Result<DS, DnsError> {
        let dnskey = self.dnskey()?;
        let tag = dnskey
            .calculate_key_tag()
            .map_err(|e| dnssec_error("key tag", e))?;
        let digest = dnskey
            .to_digest(&self.zone, DigestType::SHA256)
            .map_err(|e| dnssec_error("DS digest", e))?;
        Ok(DS::new(
            tag,
            self.algorithm,
            DigestType::SHA256,
            digest.as_ref().to_vec(),
        ))
    }

    /// The CDS record data (RFC 7344 §3.1): the DS the parent should hold.
    pub fn cds(&self) -> Result<CDS, DnsError> {
        let ds = self.ds()?;
        Ok(CDS::new(
            ds.key_tag(),
            Some(ds.algorithm()),
            ds.digest_type(),
            ds.digest().to_vec(),
        ))
    }

    /// The CDNSKEY record data (RFC 7344 §3.2).
    pub fn cdnskey(&self) -> Result<CDNSKEY, DnsError> {
        let dnskey = self.dnskey()?;
        Ok(CDNSKEY::with_flags(
            dnskey.flags(),
            Some(self.algorithm),
            dnskey.public_key().clone().into_inner(),
        ))
    }
}

/// One active key, ready to sign.
pub(crate) struct Signer {
    pub(crate) signer: DnssecSigner,
    pub(crate) tag: u16,
    /// Signs the DNSKEY, CDS and CDNSKEY RRsets.
    pub(crate) signs_keys: bool,
    /// Signs every other RRset.
    pub(crate) signs_data: bool,
}

/// A zone's keys as the signer uses them: what to publish and who signs what.
pub struct ZoneKeys {
    /// Every published key (published, active and retired).
    pub(crate) published: Vec<ZoneKey>,
    pub(crate) signers: Vec<Signer>,
}

impl ZoneKeys {
    /// Prepares the keys of one zone. Entry-point keys sign the key RRsets; ZSKs and CSKs sign
    /// the data, and a KSK signs the data too when no ZSK or CSK is active. Errors if no key is
    /// active.
    pub fn new(keys: Vec<ZoneKey>) -> Result<ZoneKeys, DnsError> {
        let active: Vec<&ZoneKey> = keys
            .iter()
            .filter(|k| k.state == KeyState::Active)
            .collect();
        let data_key = active.iter().any(|k| k.role != KeyRole::Ksk);
        let mut signers = Vec::new();
        for key in active {
            let dnskey = key.dnskey()?;
            let tag = key.key_tag()?;
            signers.push(Signer {
                signer: DnssecSigner::new(
                    dnskey,
                    key.signing_key()?,
                    key.zone.clone(),
                    SIGNATURE_VALIDITY,
                ),
                tag,
                signs_keys: key.role.is_entry_point(),
                signs_data: key.role != KeyRole::Ksk || !data_key,
            });
        }
        if !signers.iter().any(|s| s.signs_keys) || !signers.iter().any(|s| s.signs_data) {
            return Err(DnsError::Dnssec(
                "no active key signs the DNSKEY RRset and the zone data".to_owned(),
            ));
        }
        Ok(ZoneKeys {
            published: keys,
            signers,
        })
    }
}
