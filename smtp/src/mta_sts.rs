//! MTA-STS for outbound delivery (RFC 8461): discovery through the `_mta-sts` TXT record, the
//! policy fetched over HTTPS with a validated certificate, cached until `max_age` (and reused
//! when a refresh fails, §5.1), and the MX host patterns a delivery must match (§4.1).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::error::SmtpError;
use crate::resolver::Resolver;

/// Largest policy body read (RFC 8461 §3.3 suggests 64 KiB).
const MAX_POLICY_BYTES: usize = 64 * 1024;
/// Longest `max_age` honoured (RFC 8461 §3.2: 31557600 seconds).
const MAX_AGE_CAP: u64 = 31_557_600;

/// How a domain wants TLS used (RFC 8461 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Deliver only to matching MX hosts over validated TLS.
    Enforce,
    /// Deliver as usual; failures are only reported.
    Testing,
    /// No policy.
    None,
}

/// A parsed policy (RFC 8461 §3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// What the sender must do.
    pub mode: Mode,
    /// MX host patterns: exact names or `*.` followed by a domain (one label wildcard).
    pub mx: Vec<String>,
    /// Seconds the policy may be cached.
    pub max_age: u64,
}

impl Policy {
    /// Parses the `key: value` lines of a policy body; `None` if it is invalid.
    pub fn parse(text: &str) -> Option<Policy> {
        let (mut version, mut mode, mut max_age) = (None, None, None);
        let mut mx = Vec::new();
        for line in text.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match key.trim() {
                "version" => version = Some(value == "STSv1"),
                "mode" => {
                    mode = Some(match value {
                        "enforce" => Mode::Enforce,
                        "testing" => Mode::Testing,
                        "none" => Mode::None,
                        _ => return None,
                    })
                }
                "max_age" => max_age = Some(value.parse::<u64>().ok()?.min(MAX_AGE_CAP)),
                "mx" => mx.push(value.trim_end_matches('.').to_ascii_lowercase()),
                // Unknown keys are ignored (§3.2).
                _ => {}
            }
        }
        let mode = mode?;
        if version != Some(true) || (mode != Mode::None && mx.is_empty()) {
            return None;
        }
        Some(Policy {
            mode,
            mx,
            max_age: max_age?,
        })
    }

    /// Whether the MX host `host` matches one of the policy's patterns (RFC 8461 §4.1: a
    /// wildcard stands for exactly one leftmost label).
    pub fn matches(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.mx
            .iter()
            .any(|pattern| match pattern.strip_prefix("*.") {
                Some(parent) => host
                    .split_once('.')
                    .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
                None => *pattern == host,
            })
    }
}

/// The policy id from a `_mta-sts` TXT record (RFC 8461 §3.1), if it is a valid STSv1 record.
pub fn record_id(txt: &str) -> Option<String> {
    let mut fields = txt.split(';').map(str::trim);
    if fields.next()? != "v=STSv1" {
        return None;
    }
    fields
        .filter_map(|f| f.strip_prefix("id="))
        .map(str::to_owned)
        .find(|id| {
            !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_alphanumeric())
        })
}

struct Cached {
    id: String,
    policy: Policy,
    expires: Instant,
}

/// Finds and caches the MTA-STS policies of recipient domains.
pub(crate) struct MtaSts {
    resolver: Resolver,
    tls: TlsConnector,
    port: u16,
    timeout: Duration,
    cache: Mutex<HashMap<String, Arc<Cached>>>,
}

impl MtaSts {
    /// A policy finder using `resolver`, trusting `roots`, fetching from `port` (443 except in
    /// tests).
    pub fn new(
        resolver: Resolver,
        roots: RootCertStore,
        port: u16,
        timeout: Duration,
    ) -> Result<Self, SmtpError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| SmtpError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(MtaSts {
            resolver,
            tls: TlsConnector::from(Arc::new(config)),
            port,
            timeout,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The policy in force for `domain`: a fresh one when the TXT record's id changed, the cached
    /// one while it is valid and the record is unchanged or unreachable (§5.1), none otherwise.
    pub async fn policy(&self, domain: &str) -> Option<Policy> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let cached = self.cached(&domain);
        let Some(id) = self.discover(&domain).await else {
            return cached.map(|c| c.policy.clone());
        };
        if let Some(c) = cached.as_ref().filter(|c| c.id == id) {
            return Some(c.policy.clone());
        }
        match self.fetch(&domain).await {
            Ok(policy) => {
                let entry = Arc::new(Cached {
                    id,
                    policy: policy.clone(),
                    expires: Instant::now() + Duration::from_secs(policy.max_age),
                });
                if let Ok(mut cache) = self.cache.lock() {
                    cache.insert(domain, entry);
                }
                Some(policy)
            }
            Err(e) => {
                tracing::warn!(domain, error = e, "MTA-STS policy fetch failed");
                cached.map(|c| c.policy.clone())
            }
        }
    }

    fn cached(&self, domain: &str) -> Option<Arc<Cached>> {
        let mut cache = self.cache.lock().ok()?;
        match cache.get(domain) {
            Some(c) if c.expires > Instant::now() => Some(c.clone()),
            Some(_) => {
                cache.remove(domain);
                None
            }
            None => None,
        }
    }

    /// The id of the domain's `_mta-sts` record; none if absent, invalid or not unique.
    async fn discover(&self, domain: &str) -> Option<String> {
        let name = format!("_mta-sts.{domain}.");
        let answer = self.resolver.txt(&name).await.ok()?;
        let ids: Vec<Option<String>> = answer
            .records
            .iter()
            .filter(|text| text.starts_with("v=STSv1"))
            .map(|text| record_id(text))
            .collect();
        // More than one STSv1 record means no policy (§3.1).
        match ids.as_slice() {
            [Some(id)] => Some(id.clone()),
            _ => None,
        }
    }

    /// GET `https://mta-sts.<domain>/.well-known/mta-sts.txt` (RFC 8461 §3.3): validated
    /// certificate, no redirects, 200 with `text/plain`, at most 64 KiB.
    async fn fetch(&self, domain: &str) -> Result<Policy, String> {
        tokio::time::timeout(self.timeout, self.fetch_inner(domain))
            .await
            .map_err(|_| "timed out".to_owned())?
    }

    async fn fetch_inner(&self, domain: &str) -> Result<Policy, String> {
        let host = format!("mta-sts.{domain}");
        let ip = *self
            .resolver
            .ips(&host)
            .await
            .map_err(|e| e.to_string())?
            .records
            .first()
            .ok_or("no address")?;
        let tcp = TcpStream::connect(SocketAddr::new(ip, self.port))
            .await
            .map_err(|e| e.to_string())?;
        let name = ServerName::try_from(host.clone()).map_err(|e| e.to_string())?;
        let tls = self
            .tls
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let request = hyper::Request::get("/.well-known/mta-sts.txt")
            .header(hyper::header::HOST, host.as_str())
            .header(hyper::header::USER_AGENT, "Postern")
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        if response.status() != hyper::StatusCode::OK {
            return Err(format!("HTTP status {}", response.status()));
        }
        let media_type = response
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase());
        if media_type.as_deref() != Some("text/plain") {
            return Err(format!("content type {media_type:?} is not text/plain"));
        }
        let body = Limited::new(response.into_body(), MAX_POLICY_BYTES)
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let text = std::str::from_utf8(&body).map_err(|e| e.to_string())?;
        Policy::parse(text).ok_or_else(|| "invalid policy".to_owned())
    }
}

/// The root certificates outbound TLS trusts: the Mozilla set plus the PEM certificates in
/// `extra` (a private CA).
pub(crate) fn roots(extra: &[rustls::pki_types::CertificateDer<'static>]) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for cert in extra {
        if let Err(e) = roots.add(cert.clone()) {
            tracing::warn!(error = %e, "ignoring an extra root certificate");
        }
    }
    roots
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_policies() {
        let p = Policy::parse(
            "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.Example.NET.\r\nmax_age: 99999999999\r\nfuture: x\r\n",
        )
        .expect("valid");
        assert_eq!(p.mode, Mode::Enforce);
        assert_eq!(p.mx, ["mail.example.com", "*.example.net"]);
        assert_eq!(p.max_age, MAX_AGE_CAP);
        let none = Policy::parse("version: STSv1\nmode: none\nmax_age: 86400\n").expect("valid");
        assert_eq!(none.mode, Mode::None);
        for bad in [
            "mode: enforce\nmx: a.test\nmax_age: 1\n",
            "version: STSv2\nmode: enforce\nmx: a.test\nmax_age: 1\n",
            "version: STSv1\nmode: strict\nmx: a.test\nmax_age: 1\n",
            "version: STSv1\nmode: enforce\nmax_age: 1\n",
            "version: STSv1\nmode: enforce\nmx: a.test\n",
            "version: STSv1\nmode: enforce\nmx: a.test\nmax_age: -1\n",
            "",
        ] {
            assert_eq!(Policy::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn wildcards_match_one_label() {
        let p = Policy {
            mode: Mode::Enforce,
            mx: vec!["mail.example.com".into(), "*.example.net".into()],
            max_age: 1,
        };
        assert!(p.matches("mail.example.com."));
        assert!(p.matches("MX1.example.net"));
        assert!(!p.matches("example.net"));
        assert!(!p.matches("a.b.example.net"));
        assert!(!p.matches("mail.example.com.evil.test"));
        assert!(!p.matches("xmail.example.com"));
    }

    #[test]
    fn record_ids() {
        assert_eq!(
            record_id("v=STSv1; id=20240101T1").as_deref(),
            Some("20240101T1")
        );
        assert_eq!(record_id("v=STSv1;id=abc;"), Some("abc".into()));
        assert_eq!(record_id("v=STSv1; id=a-b"), None);
        assert_eq!(record_id("v=STSv1;"), None);
        assert_eq!(record_id("v=spf1 -all"), None);
    }
}
