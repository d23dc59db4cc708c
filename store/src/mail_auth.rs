//! DKIM keys per hosted domain and greylisting state.
//!
//! Every domain gets an RSA-2048 key (the signature large receivers verify) and an Ed25519 key
//! (RFC 8463, an additional signature) when it is added. Rotation is two-step so that DNS caches
//! never see a signature before its key: `rotate_dkim` first publishes a `next` pair, the second
//! call makes it `active` and retires the old pair, which stays published until
//! `purge_retired_dkim` removes it.

use base64::Engine;
use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};

use crate::changes::Change;
use crate::db::{get, Store};
use crate::error::{Result, StoreError};
use crate::{normalize_domain, unix_now};

/// A DKIM signing algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DkimAlgorithm {
    /// rsa-sha256 with a 2048-bit key.
    Rsa,
    /// ed25519-sha256 (RFC 8463).
    Ed25519,
}

impl DkimAlgorithm {
    fn as_str(self) -> &'static str {
        match self {
            DkimAlgorithm::Rsa => "rsa",
            DkimAlgorithm::Ed25519 => "ed25519",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "rsa" => Some(DkimAlgorithm::Rsa),
            "ed25519" => Some(DkimAlgorithm::Ed25519),
            _ => None,
        }
    }
}

/// Where a key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DkimState {
    /// Published in DNS, not yet used for signing.
    Next,
    /// Published and used for signing.
    Active,
    /// No longer signing; still published so mail in flight verifies.
    Retired,
}

impl DkimState {
    fn as_str(self) -> &'static str {
        match self {
            DkimState::Next => "next",
            DkimState::Active => "active",
            DkimState::Retired => "retired",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "next" => Some(DkimState::Next),
            "active" => Some(DkimState::Active),
            "retired" => Some(DkimState::Retired),
            _ => None,
        }
    }
}

/// One DKIM key of a domain.
#[derive(Clone, PartialEq, Eq)]
pub struct DkimKey {
    /// The domain (d= tag).
    pub domain: String,
    /// The selector (s= tag); published at `<selector>._domainkey.<domain>`.
    pub selector: String,
    /// Signing algorithm.
    pub algorithm: DkimAlgorithm,
    /// The private key, PKCS#8 DER.
    pub private_pkcs8: Vec<u8>,
    /// The public key as it goes into the p= tag (base64).
    pub public_key: String,
    /// Life-cycle state.
    pub state: DkimState,
}

impl std::fmt::Debug for DkimKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimKey")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .field("algorithm", &self.algorithm)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl DkimKey {
    /// The DKIM key record's text (RFC 6376 §3.6.1), one string: callers that publish it split it
    /// into 255-byte character-strings.
    pub fn txt(&self) -> String {
        format!(
            "v=DKIM1; k={}; p={}",
            self.algorithm.as_str(),
            self.public_key
        )
    }
}

fn key_from_row(r: &AnyRow) -> Result<DkimKey> {
    let algorithm: String = get(r, "algorithm")?;
    let state: String = get(r, "state")?;
    Ok(DkimKey {
        domain: get(r, "domain")?,
        selector: get(r, "selector")?,
        algorithm: DkimAlgorithm::parse(&algorithm)
            .ok_or_else(|| StoreError::invalid("DKIM algorithm", algorithm.clone()))?,
        private_pkcs8: get(r, "private_key")?,
        public_key: get(r, "public_key")?,
        state: DkimState::parse(&state)
            .ok_or_else(|| StoreError::invalid("DKIM key state", state.clone()))?,
    })
}

/// A selector is one DNS label of letters, digits and `-` (RFC 6376 §3.1 allows dotted
/// sub-domains too; one label is what every system in practice uses).
fn check_selector(selector: &str) -> Result<()> {
    let ok = !selector.is_empty()
        && selector.len() <= 63
        && selector
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::invalid("DKIM selector", selector.to_owned()))
    }
}

/// An RSA private key from PEM (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`): its PKCS#8
/// DER and the base64 SubjectPublicKeyInfo for p=.
fn rsa_from_pem(pem: &str) -> Result<(Vec<u8>, String)> {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(pem)
        .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(pem))
        .map_err(|_| {
            StoreError::invalid(
                "DKIM key",
                "not an RSA private key in PEM (PKCS#8 or PKCS#1)",
            )
        })?;
    rsa_parts(&key)
}

/// An RSA key as stored: its PKCS#8 DER and the base64 SubjectPublicKeyInfo for p=.
fn rsa_parts(key: &rsa::RsaPrivateKey) -> Result<(Vec<u8>, String)> {
    use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey};
    let failed = || StoreError::invalid("DKIM key", "encoding the RSA key failed");
    let private = key.to_pkcs8_der().map_err(|_| failed())?;
    let public = key
        .to_public_key()
        .to_public_key_der()
        .map_err(|_| failed())?;
    let b64 = base64::engine::general_purpose::STANDARD;
    Ok((private.as_bytes().to_vec(), b64.encode(public.as_bytes())))
}

/// A new key pair: (algorithm, PKCS#8 DER private key, base64 public key for p=).
type NewKey = (DkimAlgorithm, Vec<u8>, String);

/// Generates an RSA-2048 and an Ed25519 key pair (on the blocking pool: RSA generation is slow).
pub(crate) async fn generate_pair() -> Result<[NewKey; 2]> {
    tokio::task::spawn_blocking(|| {
        let b64 = base64::engine::general_purpose::STANDARD;
        let failed = |what: &str| {
            StoreError::invalid("DKIM key", format!("generating the {what} key failed"))
        };
        let rsa_key =
            rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).map_err(|_| failed("RSA"))?;
        let (rsa_private, rsa_public) = rsa_parts(&rsa_key)?;
        let rng = ring::rand::SystemRandom::new();
        let ed_private =
            ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| failed("Ed25519"))?;
        let ed_pair = ring::signature::Ed25519KeyPair::from_pkcs8(ed_private.as_ref())
            .map_err(|_| failed("Ed25519"))?;
        let ed_public = ring::signature::KeyPair::public_key(&ed_pair)
            .as_ref()
            .to_vec();
        Ok([
            (DkimAlgorithm::Rsa, rsa_private, rsa_public),
            (
                DkimAlgorithm::Ed25519,
                ed_private.as_ref().to_vec(),
                b64.encode(ed_public),
            ),
        ])
    })
    .await
    .map_err(|_| StoreError::invalid("DKIM key", "key generation task failed"))?
}

/// Stores a generated pair for a domain with selectors `pst<N>r` / `pst<N>e`, N one more than any
/// before, so a rotated key never reuses a selector.
pub(crate) async fn insert_pair(
    tx: &mut Transaction<'static, Any>,
    domain_id: i64,
    keys: [NewKey; 2],
    state: DkimState,
) -> Result<()> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM dkim_keys WHERE domain_id = $1 AND selector LIKE 'pst%'",
    )
    .bind(domain_id)
    .fetch_one(&mut **tx)
    .await?;
    let generation = get::<i64>(&row, "n")? / 2 + 1;
    for (algorithm, private, public) in keys {
        let suffix = if algorithm == DkimAlgorithm::Rsa {
            'r'
        } else {
            'e'
        };
        sqlx::query(
            "INSERT INTO dkim_keys (domain_id, selector, algorithm, private_key, public_key, state, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(domain_id)
        .bind(format!("pst{generation}{suffix}"))
        .bind(algorithm.as_str())
        .bind(private)
        .bind(public)
        .bind(state.as_str())
        .bind(unix_now())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// What greylisting says about a delivery attempt (RFC 6647).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Greylist {
    /// Accept: the triplet retried after the delay, or passed before.
    Pass,
    /// Answer 451 and wait for a retry; the seconds until a retry will pass.
    Defer(i64),
}

/// A static SELECT of DKIM keys with their domain name, followed by `$tail`.
macro_rules! select_keys {
    ($tail:literal) => {
        concat!(
            "SELECT d.name AS domain, k.selector, k.algorithm, k.private_key, k.public_key, k.state ",
            "FROM dkim_keys k JOIN domains d ON d.id = k.domain_id ",
            $tail
        )
    };
}

impl Store {
    /// Every published DKIM key of a domain (next, active and retired), by selector.
    pub async fn dkim_keys(&self, domain: &str) -> Result<Vec<DkimKey>> {
        let domain = normalize_domain(domain)?;
        let rows = sqlx::query(select_keys!("WHERE d.name = $1 ORDER BY k.selector"))
            .bind(&domain)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(key_from_row).collect()
    }

    /// The keys to sign a domain's outgoing mail with: RSA first, then Ed25519.
    pub async fn signing_keys(&self, domain: &str) -> Result<Vec<DkimKey>> {
        let mut keys: Vec<DkimKey> = self
            .dkim_keys(domain)
            .await?
            .into_iter()
            .filter(|k| k.state == DkimState::Active)
            .collect();
        keys.sort_by_key(|k| k.algorithm != DkimAlgorithm::Rsa);
        Ok(keys)
    }

    /// Rotates a domain's keys in two steps: without a `next` pair, generates and publishes one
    /// (returns false: not signing with it yet); with one, makes it active and retires the old
    /// pair (returns true). Call the second step once DNS caches hold the new keys (a day).
    pub async fn rotate_dkim(&self, domain: &str) -> Result<bool> {
        let name = normalize_domain(domain)?;
        let keys = self.dkim_keys(&name).await?;
        let domain_id = self
            .domain(&name)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("domain {name}")))?
            .id;
        let has_next = keys.iter().any(|k| k.state == DkimState::Next);
        let pair = if has_next {
            None
        } else {
            Some(generate_pair().await?)
        };
        let mut tx = self.write_tx().await?;
        match pair {
            Some(pair) => insert_pair(&mut tx, domain_id, pair, DkimState::Next).await?,
            None => {
                sqlx::query("UPDATE dkim_keys SET state = 'retired', retired_at = $1 WHERE domain_id = $2 AND state = 'active'")
                    .bind(unix_now())
                    .bind(domain_id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "UPDATE dkim_keys SET state = 'active' WHERE domain_id = $1 AND state = 'next'",
                )
                .bind(domain_id)
                .execute(&mut *tx)
                .await?;
            }
        }
        self.commit(tx, vec![Change::MailDomains]).await?;
        Ok(has_next)
    }

    /// Adopts an RSA private key another system signed with (PEM, PKCS#8 or PKCS#1) under its
    /// `selector`, so the DNS record already published for it stays valid: it becomes the
    /// domain's active RSA key and the active RSA key it replaces is retired (still published).
    /// Returns false if the domain already has this key under this selector; a different key
    /// under the selector is `Exists`.
    pub async fn import_dkim_key(&self, domain: &str, selector: &str, pem: &str) -> Result<bool> {
        let name = normalize_domain(domain)?;
        check_selector(selector)?;
        let (private, public) = rsa_from_pem(pem)?;
        let domain_id = self
            .domain(&name)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("domain {name}")))?
            .id;
        let mut tx = self.write_tx().await?;
        let same =
            sqlx::query("SELECT public_key FROM dkim_keys WHERE domain_id = $1 AND selector = $2")
                .bind(domain_id)
                .bind(selector)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(row) = same {
            if get::<String>(&row, "public_key")? == public {
                return Ok(false);
            }
            return Err(StoreError::Exists(format!(
                "another DKIM key with selector {selector} in {name}"
            )));
        }
        sqlx::query(
            "UPDATE dkim_keys SET state = 'retired', retired_at = $1 \
             WHERE domain_id = $2 AND state = 'active' AND algorithm = 'rsa'",
        )
        .bind(unix_now())
        .bind(domain_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO dkim_keys (domain_id, selector, algorithm, private_key, public_key, state, created_at) \
             VALUES ($1, $2, 'rsa', $3, $4, 'active', $5)",
        )
        .bind(domain_id)
        .bind(selector)
        .bind(private)
        .bind(public)
        .bind(unix_now())
        .execute(&mut *tx)
        .await?;
        self.commit(tx, vec![Change::MailDomains]).await?;
        Ok(true)
    }

    /// Removes keys retired before `before` (Unix seconds) from DNS and the store.
    pub async fn purge_retired_dkim(&self, before: i64) -> Result<u64> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("DELETE FROM dkim_keys WHERE state = 'retired' AND retired_at < $1")
            .bind(before)
            .execute(&mut *tx)
            .await?;
        let changes = if done.rows_affected() > 0 {
            vec![Change::MailDomains]
        } else {
            vec![]
        };
        self.commit(tx, changes).await?;
        Ok(done.rows_affected())
    }

    /// Greylisting (RFC 6647): a triplet (client network, sender, recipient) seen for the first time
    /// is deferred for `delay` seconds; a retry after that passes, and the triplet keeps passing
    /// while it is used at least every `lifetime` seconds.
    pub async fn greylist(
        &self,
        network: &str,
        sender: &str,
        recipient: &str,
        delay: i64,
        lifetime: i64,
    ) -> Result<Greylist> {
        use sha2::{Digest, Sha256};
        let triplet = hex::encode(Sha256::digest(format!(
            "{network}\0{}\0{}",
            sender.to_lowercase(),
            recipient.to_lowercase()
        )));
        let now = unix_now();
        let mut tx = self.write_tx().await?;
        let row =
            sqlx::query("SELECT first_seen, last_seen, passed FROM greylist WHERE triplet = $1")
                .bind(&triplet)
                .fetch_optional(&mut *tx)
                .await?;
        let verdict = match row {
            Some(r) if now - get::<i64>(&r, "last_seen")? <= lifetime => {
                let first: i64 = get(&r, "first_seen")?;
                if get::<i64>(&r, "passed")? != 0 || now - first >= delay {
                    sqlx::query(
                        "UPDATE greylist SET last_seen = $1, passed = 1 WHERE triplet = $2",
                    )
                    .bind(now)
                    .bind(&triplet)
                    .execute(&mut *tx)
                    .await?;
                    Greylist::Pass
                } else {
                    Greylist::Defer(first + delay - now)
                }
            }
            _ => {
                sqlx::query(
                    "INSERT INTO greylist (triplet, first_seen, last_seen, passed) VALUES ($1, $2, $2, 0) \
                     ON CONFLICT (triplet) DO UPDATE SET first_seen = $2, last_seen = $2, passed = 0",
                )
                .bind(&triplet)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM greylist WHERE last_seen < $1")
                    .bind(now - lifetime)
                    .execute(&mut *tx)
                    .await?;
                Greylist::Defer(delay)
            }
        };
        self.commit(tx, vec![]).await?;
        Ok(verdict)
    }
}
