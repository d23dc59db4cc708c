//! TLS certificates for every listener: loaded from the configured PEM files, or a self-signed pair
//! created with rcgen on first start. Listeners share one rustls `ServerConfig` whose certificate
//! resolver reads the current certificates through an atomic pointer, so a reload (SIGHUP, later
//! ACME renewal) swaps certificates without restarting any listener.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::crypto::ring::sign::any_supported_type;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsFiles;

/// A certificate error, naming the file involved.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Reading or writing a PEM file failed.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Generating the self-signed certificate failed.
    #[error("cannot create a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

fn file_error(path: &Path, reason: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// The certificates in force: one per host name (SNI), and a default for clients without SNI or
/// with an unknown name. `base` is the configured or self-signed certificate; ACME certificates
/// take precedence for the names they cover, and the one covering `hostname` becomes the default.
#[derive(Debug)]
struct CertSet {
    by_name: HashMap<String, Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
    base: Arc<CertifiedKey>,
    /// The base certificate is Postern's own self-signed one (trusted by nobody).
    self_signed: bool,
    hostname: String,
}

/// Shared, hot-swappable certificates, and the rustls configuration that serves them.
#[derive(Debug, Clone)]
pub struct Certificates {
    current: Arc<ArcSwap<CertSet>>,
    server_config: Arc<rustls::ServerConfig>,
    /// Counts swaps, for those who publish something that depends on the certificates.
    swaps: Arc<tokio::sync::watch::Sender<u64>>,
}

#[derive(Debug)]
struct Resolver(Arc<ArcSwap<CertSet>>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let set = self.0.load();
        let by_sni = hello
            .server_name()
            .and_then(|n| set.by_name.get(&n.to_ascii_lowercase()));
        Some(by_sni.unwrap_or(&set.default).clone())
    }
}

impl Certificates {
    /// Loads the configured files, or the self-signed pair in `<data_dir>/tls/` (created if missing,
    /// for `hostname`, `localhost` and the loopback addresses).
    pub fn load(
        files: Option<&TlsFiles>,
        data_dir: &Path,
        hostname: &str,
    ) -> Result<Certificates, TlsError> {
        let key = load_certified_key(files, data_dir, hostname)?;
        let current = Arc::new(ArcSwap::from_pointee(cert_set(
            key,
            files.is_none(),
            acme_keys(data_dir),
            hostname,
        )));
        let mut server_config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Resolver(current.clone())));
        server_config.alpn_protocols.clear();
        Ok(Certificates {
            current,
            server_config: Arc::new(server_config),
            swaps: Arc::new(tokio::sync::watch::channel(0).0),
        })
    }

    /// Re-reads the certificate files and swaps them in; connections already open keep theirs.
    pub fn reload(
        &self,
        files: Option<&TlsFiles>,
        data_dir: &Path,
        hostname: &str,
    ) -> Result<(), TlsError> {
        let key = load_certified_key(files, data_dir, hostname)?;
        self.current.store(Arc::new(cert_set(
            key,
            files.is_none(),
            acme_keys(data_dir),
            hostname,
        )));
        self.swaps.send_modify(|n| *n += 1);
        Ok(())
    }

    /// Re-reads the ACME certificates (after one was obtained or renewed) and swaps them in.
    pub fn reload_acme(&self, data_dir: &Path) -> Result<(), TlsError> {
        let now = self.current.load();
        self.current.store(Arc::new(cert_set(
            now.base.clone(),
            now.self_signed,
            acme_keys(data_dir),
            &now.hostname,
        )));
        self.swaps.send_modify(|n| *n += 1);
        Ok(())
    }

    /// Whether a certificate that clients can accept for `name` is served: one whose names cover
    /// it (exactly, or by a wildcard for one label) and that is valid now; Postern's own
    /// self-signed certificate does not count. MTA-STS needs this for `mta-sts.<domain>`
    /// (RFC 8461 §3.3).
    pub fn serves_valid(&self, name: &str) -> bool {
        let set = self.current.load();
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let wildcard = name.split_once('.').map(|(_, rest)| format!("*.{rest}"));
        [Some(name), wildcard]
            .into_iter()
            .flatten()
            .filter_map(|n| set.by_name.get(&n))
            .filter(|k| !(set.self_signed && Arc::ptr_eq(k, &set.base)))
            .any(|k| k.cert.first().is_some_and(valid_now))
    }

    /// Tells when the served certificates change.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.swaps.subscribe()
    }

    /// The rustls configuration every TLS listener uses.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        self.server_config.clone()
    }
}

/// Whether the current time lies within the certificate's validity period (RFC 5280 §4.1.2.5).
fn valid_now(cert: &CertificateDer<'_>) -> bool {
    use x509_parser::prelude::{FromDer, X509Certificate};
    X509Certificate::from_der(cert).is_ok_and(|(_, c)| c.validity().is_valid())
}

/// Indexes the base certificate and then the ACME ones under every DNS name each is valid for.
fn cert_set(
    base: Arc<CertifiedKey>,
    self_signed: bool,
    acme: Vec<Arc<CertifiedKey>>,
    hostname: &str,
) -> CertSet {
    let mut by_name = HashMap::new();
    for key in std::iter::once(&base).chain(&acme) {
        if let Some(leaf) = key.cert.first() {
            for name in dns_names(leaf) {
                by_name.insert(name, key.clone());
            }
        }
    }
    let covers_host = |k: &&Arc<CertifiedKey>| {
        k.cert.first().is_some_and(|c| {
            dns_names(c)
                .iter()
                .any(|n| n.eq_ignore_ascii_case(hostname))
        })
    };
    let default = acme
        .iter()
        .find(covers_host)
        .cloned()
        .unwrap_or_else(|| base.clone());
    CertSet {
        by_name,
        default,
        base,
        self_signed,
        hostname: hostname.to_owned(),
    }
}

/// Every readable certificate in `<data_dir>/acme/*/`; a broken one is logged and skipped.
fn acme_keys(data_dir: &Path) -> Vec<Arc<CertifiedKey>> {
    let Ok(dirs) = std::fs::read_dir(data_dir.join("acme")) else {
        return Vec::new();
    };
    let mut keys = Vec::new();
    for dir in dirs.flatten().map(|e| e.path()).filter(|p| p.is_dir()) {
        match load_pem(&dir.join("cert.pem"), &dir.join("key.pem")) {
            Ok(k) => keys.push(k),
            Err(e) => tracing::warn!("ignoring ACME certificate in {}: {e}", dir.display()),
        }
    }
    keys
}

/// The expiry (notAfter, Unix seconds) of the first certificate in a PEM file.
pub fn expiry(path: &Path) -> Option<i64> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let der = CertificateDer::pem_file_iter(path).ok()?.next()?.ok()?;
    let (_, cert) = X509Certificate::from_der(&der).ok()?;
    Some(cert.validity().not_after.timestamp())
}

/// DNS subject alternative names of a DER certificate, lower-case.
fn dns_names(cert: &CertificateDer<'_>) -> Vec<String> {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let Ok((_, parsed)) = X509Certificate::from_der(cert) else {
        return Vec::new();
    };
    let Ok(Some(san)) = parsed.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(d) => Some(d.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

fn load_certified_key(
    files: Option<&TlsFiles>,
    data_dir: &Path,
    hostname: &str,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let (cert_path, key_path) = match files {
        Some(f) => (f.cert.clone(), f.key.clone()),
        None => {
            let dir = data_dir.join("tls");
            let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
            if !cert.exists() || !key.exists() {
                create_self_signed(&dir, &cert, &key, hostname)?;
            }
            (cert, key)
        }
    };
    load_pem(&cert_path, &key_path)
}

/// Loads a certificate chain and its key from PEM files and checks that they belong together.
fn load_pem(cert_path: &Path, key_path: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .map_err(|e| file_error(cert_path, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(cert_path, e))?;
    if chain.is_empty() {
        return Err(file_error(cert_path, "no certificate in the file"));
    }
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| file_error(key_path, e))?;
    let signing_key = any_supported_type(&key).map_err(|e| file_error(key_path, e))?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified
        .keys_match()
        .map_err(|e| file_error(key_path, format!("does not match the certificate: {e}")))?;
    Ok(Arc::new(certified))
}

/// Writes a self-signed ECDSA P-256 certificate; the key file is readable by the owner only.
fn create_self_signed(
    dir: &Path,
    cert_path: &Path,
    key_path: &Path,
    hostname: &str,
) -> Result<(), TlsError> {
    std::fs::create_dir_all(dir).map_err(|e| file_error(dir, e))?;
    let names = vec![
        hostname.to_owned(),
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let rcgen::CertifiedKey { cert, signing_key } = rcgen::generate_simple_self_signed(names)?;
    write_private(key_path, signing_key.serialize_pem().as_bytes())?;
    std::fs::write(cert_path, cert.pem()).map_err(|e| file_error(cert_path, e))?;
    tracing::warn!(
        cert = %cert_path.display(),
        "created a self-signed TLS certificate for {hostname}; clients will not trust it: \
         configure [tls] cert/key for production"
    );
    Ok(())
}

/// Writes a secret file readable by its owner only.
pub fn write_private(path: &Path, data: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| file_error(path, e))?;
    f.write_all(data).map_err(|e| file_error(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// Completes a TLS handshake over an in-memory pipe and returns the leaf certificate the server sent.
    async fn handshake(certs: &Certificates, sni: &str) -> CertificateDer<'static> {
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let acceptor = tokio_rustls::TlsAcceptor::from(certs.server_config());
        let server = tokio::spawn(async move { acceptor.accept(server_io).await.map(|_| ()) });
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(certs.current.load().default.cert[0].clone())
            .unwrap();
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let name = rustls_pki_types::ServerName::try_from(sni.to_owned()).unwrap();
        let stream = connector
            .connect(name, client_io)
            .await
            .expect("client handshake verifies");
        server.await.unwrap().expect("server handshake");
        stream.get_ref().1.peer_certificates().unwrap()[0]
            .clone()
            .into_owned()
    }

    #[tokio::test]
    async fn self_signed_is_created_once_and_serves() {
        let dir = tempfile::tempdir().unwrap();
        let certs = Certificates::load(None, dir.path(), "mail.example.test").unwrap();
        let key_path = dir.path().join("tls/key.pem");
        assert_eq!(
            std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let first = handshake(&certs, "mail.example.test").await;
        assert!(dns_names(&first).contains(&"mail.example.test".to_owned()));
        handshake(&certs, "localhost").await;
        // A second start reuses the same certificate.
        let again = Certificates::load(None, dir.path(), "mail.example.test").unwrap();
        assert_eq!(handshake(&again, "localhost").await, first);
    }

    #[tokio::test]
    async fn reload_swaps_certificate_without_new_config() {
        let dir = tempfile::tempdir().unwrap();
        let certs = Certificates::load(None, dir.path(), "a.example.test").unwrap();
        let config_before = certs.server_config();
        let before = handshake(&certs, "localhost").await;
        std::fs::remove_file(dir.path().join("tls/cert.pem")).unwrap();
        certs.reload(None, dir.path(), "b.example.test").unwrap();
        assert!(
            Arc::ptr_eq(&config_before, &certs.server_config()),
            "listeners keep their config"
        );
        let after = handshake(&certs, "b.example.test").await;
        assert_ne!(before, after);
    }

    #[tokio::test]
    async fn acme_certificate_wins_for_its_names_and_becomes_default() {
        let dir = tempfile::tempdir().unwrap();
        let certs = Certificates::load(None, dir.path(), "mail.example.test").unwrap();
        let base = handshake(&certs, "localhost").await;
        // Put an "ACME" certificate for the host name in place, as acme::obtain does.
        let acme_dir = dir.path().join("acme/mail.example.test");
        std::fs::create_dir_all(&acme_dir).unwrap();
        let rcgen::CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(vec!["mail.example.test".to_owned()]).unwrap();
        std::fs::write(acme_dir.join("cert.pem"), cert.pem()).unwrap();
        write_private(
            &acme_dir.join("key.pem"),
            signing_key.serialize_pem().as_bytes(),
        )
        .unwrap();
        assert!(expiry(&acme_dir.join("cert.pem")).unwrap() > postern_store::unix_now());
        certs.reload_acme(dir.path()).unwrap();
        let set = certs.current.load();
        assert_eq!(
            set.default.cert[0],
            *cert.der(),
            "the ACME certificate for the host name is the default"
        );
        assert_eq!(
            set.by_name["localhost"].cert[0], base,
            "other names keep the base certificate"
        );
    }

    #[test]
    fn configured_files_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let files = TlsFiles {
            cert: dir.path().join("missing.pem"),
            key: dir.path().join("missing-key.pem"),
        };
        let e = Certificates::load(Some(&files), dir.path(), "x.test")
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.pem"), "{e}");
        // A key that does not belong to the certificate is refused.
        Certificates::load(None, &dir.path().join("one"), "x.test").unwrap();
        Certificates::load(None, &dir.path().join("two"), "x.test").unwrap();
        let mismatched = TlsFiles {
            cert: dir.path().join("one/tls/cert.pem"),
            key: dir.path().join("two/tls/key.pem"),
        };
        let e = Certificates::load(Some(&mismatched), dir.path(), "x.test")
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not match"), "{e}");
    }
}
