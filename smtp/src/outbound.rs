//! Outbound delivery of one queued message to one remote recipient: MX lookup through the
//! one [`Resolver`] (RFC 5321 §5.1: preference order, A/AAAA fallback, null MX per RFC 7505; an
//! address literal is connected to directly, RFC 5321 §5.1), then SMTP with lettre, upgrading with
//! STARTTLS whenever the server offers it (RFC 3207; opportunistic, without certificate checks, as
//! RFC 7435 allows), unless the recipient domain's MTA-STS policy (RFC 8461) is `enforce`: then
//! only matching MX hosts, STARTTLS required and the certificate validated for the MX host name.
//! DANE (RFC 7672) comes first: an MX host with validated TLSA records gets TLS checked against
//! them, and MTA-STS is not used for the domain.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::extension::ClientId;

use postern_store::DsnRequest;

use crate::config::SmtpConfig;
use crate::dane::{self, Tlsa, TlsaLookup};
use crate::error::SmtpError;
use crate::message::Message;
use crate::mta_sts::{self, Mode, MtaSts};
use crate::resolver::{LookupError, Resolver};
use crate::session::literal_ip;

mod data;
mod dsn;

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// The remote server accepted the message.
    Delivered {
        /// The host that took it.
        host: String,
        /// Whether the sender's DSN parameters went with it (the host offers DSN, RFC 3461).
        dsn_passed: bool,
    },
    /// Try again later (4xx, connection or DNS trouble).
    Transient(Problem),
    /// Give up and bounce (5xx, no such domain, null MX).
    Permanent(Problem),
}

/// Why an attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    /// Enhanced status code for the DSN (RFC 3463).
    pub status: String,
    /// The reply or error text.
    pub diagnostic: String,
    /// The host that answered, if one did.
    pub remote_mta: Option<String>,
}

fn problem(status: &str, diagnostic: impl Into<String>, host: Option<&str>) -> Problem {
    Problem {
        status: status.to_owned(),
        diagnostic: diagnostic.into(),
        remote_mta: host.map(str::to_owned),
    }
}

/// The outbound SMTP client.
pub(crate) struct Outbound {
    resolver: Resolver,
    hello: ClientId,
    port: u16,
    timeout: Duration,
    mta_sts: Option<MtaSts>,
    /// Extra trusted CA certificates (DER) for validated TLS.
    extra_roots: Vec<Vec<u8>>,
    /// Use DANE (RFC 7672) where the resolver validated the answers.
    dane: bool,
}

/// The hosts to try for a recipient domain, best first.
struct Exchangers {
    hosts: Vec<Exchanger>,
    /// The MX answer (or the validated denial of one) is DNSSEC-validated (RFC 7672 §2.2.1);
    /// false for an address literal.
    authenticated: bool,
}

/// One mail exchanger and its addresses.
struct Exchanger {
    /// Its name without the final dot, or the address literal as written.
    host: String,
    ips: Vec<IpAddr>,
    /// Its address answers are DNSSEC-validated (RFC 7672 §2.2.2).
    authenticated: bool,
}

/// An MX host, its addresses and how TLS must be used with it (an error: not to be used now).
type Target = (String, Vec<IpAddr>, Result<Security, String>);

/// How TLS to one MX host is used.
enum Security {
    /// STARTTLS when offered, any certificate (RFC 7435).
    Opportunistic,
    /// STARTTLS required, certificate valid for the host name (MTA-STS enforce).
    Pkix,
    /// STARTTLS required, the chain must match these TLSA records (DANE).
    Dane(Vec<Tlsa>),
}

/// Why one SMTP conversation failed.
enum SendError {
    /// The server or the connection failed (lettre's view).
    Smtp(lettre::transport::smtp::Error),
    /// TLS required by DANE or an MTA-STS policy was not offered or did not validate.
    Tls(String),
}

impl From<lettre::transport::smtp::Error> for SendError {
    fn from(e: lettre::transport::smtp::Error) -> Self {
        SendError::Smtp(e)
    }
}

/// The certificates (DER) in the PEM file `path`.
fn load_ca_file(path: &std::path::Path) -> Result<Vec<Vec<u8>>, SmtpError> {
    use rustls_pki_types::pem::PemObject;
    let certs: Result<Vec<_>, _> = rustls_pki_types::CertificateDer::pem_file_iter(path)
        .map_err(|e| SmtpError::Tls(format!("{}: {e}", path.display())))?
        .collect();
    let certs = certs.map_err(|e| SmtpError::Tls(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(SmtpError::Tls(format!(
            "{}: no certificates",
            path.display()
        )));
    }
    Ok(certs.into_iter().map(|c| c.to_vec()).collect())
}

impl Outbound {
    /// A client using the configured resolver (or the system's) and port.
    pub fn new(config: &SmtpConfig, hostname: &str) -> Result<Outbound, SmtpError> {
        let resolver = Resolver::new(config)?;
        let timeout = Duration::from_secs(config.outbound_timeout_secs.max(1));
        let extra_roots = match &config.outbound_ca_file {
            Some(path) => load_ca_file(path)?,
            None => Vec::new(),
        };
        let mta_sts = if config.mta_sts {
            let extra: Vec<_> = extra_roots
                .iter()
                .map(|der| rustls_pki_types::CertificateDer::from(der.clone()))
                .collect();
            Some(MtaSts::new(
                resolver.clone(),
                mta_sts::roots(&extra),
                config.mta_sts_port,
                timeout,
            )?)
        } else {
            None
        };
        Ok(Outbound {
            resolver,
            hello: ClientId::Domain(hostname.to_owned()),
            port: config.outbound_port,
            timeout,
            mta_sts,
            extra_roots,
            dane: config.dane,
        })
    }

    /// The hosts to try for `domain`, best first, with their addresses: the address of an
    /// address literal, else the MX hosts, else the domain itself (RFC 5321 §5.1).
    async fn exchangers(&self, domain: &str) -> Result<Exchangers, Attempt> {
        if domain.starts_with('[') {
            return match literal_ip(domain) {
                Some(ip) => Ok(Exchangers {
                    hosts: vec![Exchanger {
                        host: domain.to_owned(),
                        ips: vec![ip],
                        authenticated: false,
                    }],
                    authenticated: false,
                }),
                None => Err(Attempt::Permanent(problem(
                    "5.1.2",
                    format!("bad address literal {domain}"),
                    None,
                ))),
            };
        }
        let domain = domain.trim_end_matches('.');
        let (names, authenticated) = match self.resolver.mx(domain).await {
            Ok(answer) => {
                let mut mx: Vec<(u16, u32, String)> = answer
                    .records
                    .into_iter()
                    .map(|(preference, host)| (preference, rand::random::<u32>(), host))
                    .collect();
                if mx.iter().any(|(_, _, host)| host == "." || host.is_empty()) {
                    return Err(Attempt::Permanent(problem(
                        "5.1.10",
                        format!("556 5.1.10 {domain} accepts no mail (null MX, RFC 7505)"),
                        None,
                    )));
                }
                // Lowest preference first; equal preferences in random order (RFC 5321 §5.1).
                mx.sort();
                let names: Vec<String> = if mx.is_empty() {
                    // No MX records: the domain itself is the implicit MX (RFC 5321 §5.1).
                    vec![domain.to_owned()]
                } else {
                    mx.into_iter().map(|(_, _, h)| h).collect()
                };
                (names, answer.authenticated)
            }
            Err(LookupError::NxDomain { .. }) => {
                return Err(Attempt::Permanent(problem(
                    "5.1.2",
                    format!("domain {domain} does not exist"),
                    None,
                )));
            }
            Err(e @ LookupError::Failed(_)) => {
                return Err(Attempt::Transient(problem(
                    "4.4.3",
                    format!("MX lookup for {domain} failed: {e}"),
                    None,
                )));
            }
        };
        let mut hosts = Vec::new();
        for name in names {
            let host = name.trim_end_matches('.').to_owned();
            match self.resolver.ips(&host).await {
                Ok(answer) if !answer.records.is_empty() => hosts.push(Exchanger {
                    host,
                    ips: answer.records,
                    authenticated: answer.authenticated,
                }),
                Ok(_) => tracing::debug!(host, "mail exchanger has no address"),
                Err(e) => tracing::debug!(host, error = %e, "no address for mail exchanger"),
            }
        }
        if hosts.is_empty() {
            return Err(Attempt::Transient(problem(
                "4.4.4",
                format!("no mail exchanger of {domain} has an address"),
                None,
            )));
        }
        Ok(Exchangers {
            hosts,
            authenticated,
        })
    }

    /// Delivers `message` from `sender` (empty: null reverse-path) to `recipient`, passing on the
    /// DSN parameters of `dsn` when the next hop offers DSN. The data goes out in pieces (see
    /// [`data`]), so a large message is never copied whole.
    pub async fn deliver(
        &self,
        sender: &str,
        recipient: &str,
        message: &Message,
        dsn: &DsnRequest,
    ) -> Attempt {
        let to = match envelope_address(recipient) {
            Ok(a) => a,
            Err(e) => {
                return Attempt::Permanent(problem(
                    "5.1.3",
                    format!("bad recipient address: {e}"),
                    None,
                ))
            }
        };
        let from = if sender.is_empty() {
            None
        } else {
            match envelope_address(sender) {
                Ok(a) => Some(a),
                Err(e) => {
                    return Attempt::Permanent(problem(
                        "5.1.7",
                        format!("bad sender address: {e}"),
                        None,
                    ))
                }
            }
        };
        let envelope = match Envelope::new(from, vec![to]) {
            Ok(e) => e,
            Err(e) => return Attempt::Permanent(problem("5.1.3", e.to_string(), None)),
        };
        let domain = recipient.rsplit_once('@').map_or("", |(_, d)| d);
        let targets = match self.exchangers(domain).await {
            Ok(t) => t,
            Err(a) => return a,
        };
        let targets = match self.secure_targets(domain, targets).await {
            Ok(t) => t,
            Err(a) => return a,
        };
        let mut last = problem(
            "4.4.1",
            format!("no mail exchanger of {domain} could be reached"),
            None,
        );
        for (host, ips, security) in targets {
            let security = match security {
                Ok(s) => s,
                Err(reason) => {
                    tracing::warn!(host, reason, "DANE: MX host skipped");
                    last = problem("4.7.5", format!("{host}: {reason}"), Some(&host));
                    continue;
                }
            };
            for ip in ips {
                let addr = SocketAddr::new(ip, self.port);
                let attempt = tokio::time::timeout(
                    self.timeout * 10,
                    self.send_to(&host, addr, (&envelope, dsn), message, &security),
                )
                .await;
                match attempt {
                    Ok(Ok(dsn_passed)) => return Attempt::Delivered { host, dsn_passed },
                    Ok(Err(SendError::Tls(reason))) => {
                        let by = match security {
                            Security::Dane(_) => format!("the TLSA records (DANE) of {host}"),
                            _ => format!("the MTA-STS policy of {domain}"),
                        };
                        tracing::warn!(%addr, host, reason, by, "no valid TLS");
                        last = problem(
                            "4.7.5",
                            format!("{host}: {reason} (required by {by})"),
                            Some(&host),
                        );
                    }
                    Ok(Err(SendError::Smtp(e))) if e.is_permanent() || e.is_client() => {
                        // A 5xx reply is final: other exchangers would say the same (RFC 5321 §5.1).
                        // So is a message the server cannot take (8-bit data without 8BITMIME).
                        let text = describe(&e);
                        let status = enhanced_code(&text).unwrap_or_else(|| "5.0.0".into());
                        return Attempt::Permanent(problem(&status, text, Some(&host)));
                    }
                    Ok(Err(SendError::Smtp(e))) => {
                        tracing::debug!(%addr, error = %e, "delivery attempt failed");
                        let text = describe(&e);
                        let status = enhanced_code(&text).unwrap_or_else(|| "4.4.1".into());
                        last = problem(&status, text, Some(&host));
                    }
                    Err(_) => last = problem("4.4.2", format!("{host} timed out"), Some(&host)),
                }
            }
        }
        Attempt::Transient(last)
    }

    /// The MX hosts to use with how TLS must be used with each (an error: the host is not to be
    /// used now). DANE first (RFC 7672 §2.2: TLSA records count only for a host whose MX and
    /// address answers are validated); for a domain without DANE, its MTA-STS policy (RFC 8461
    /// §2: DANE wins when both exist). Neither applies to an address literal.
    async fn secure_targets(
        &self,
        domain: &str,
        exchangers: Exchangers,
    ) -> Result<Vec<Target>, Attempt> {
        let literal = domain.starts_with('[');
        let mut lookups: Vec<TlsaLookup> = vec![TlsaLookup::None; exchangers.hosts.len()];
        if self.dane && exchangers.authenticated {
            for (i, exchanger) in exchangers.hosts.iter().enumerate() {
                if exchanger.authenticated {
                    lookups[i] = dane::tlsa(&self.resolver, &exchanger.host).await;
                }
            }
        }
        let dane_domain = lookups.iter().any(|l| !matches!(l, TlsaLookup::None));
        let policy = match &self.mta_sts {
            Some(sts) if !literal && !dane_domain => sts.policy(domain).await,
            _ => None,
        };
        let enforce = policy.as_ref().is_some_and(|p| p.mode == Mode::Enforce);
        let mut out = Vec::new();
        for (Exchanger { host, ips, .. }, lookup) in exchangers.hosts.into_iter().zip(lookups) {
            let security = match lookup {
                TlsaLookup::Required(records) => Ok(Security::Dane(records)),
                TlsaLookup::Failed(e) => Err(e),
                TlsaLookup::None if enforce => Ok(Security::Pkix),
                TlsaLookup::None => Ok(Security::Opportunistic),
            };
            if let Some(policy) = policy.as_ref().filter(|p| p.mode != Mode::None) {
                if !policy.matches(&host) {
                    tracing::warn!(domain, host, mode = ?policy.mode, "MX host not in the MTA-STS policy");
                    if enforce {
                        continue;
                    }
                }
            }
            out.push((host, ips, security));
        }
        if out.is_empty() {
            return Err(Attempt::Transient(problem(
                "4.7.5",
                format!("no MX host of {domain} matches its MTA-STS policy (RFC 8461 §4.1)"),
                None,
            )));
        }
        Ok(out)
    }

    /// One SMTP conversation with one address: EHLO, STARTTLS (required unless `security` is
    /// opportunistic), MAIL, RCPT, DATA; returns whether the DSN parameters were passed on.
    async fn send_to(
        &self,
        host: &str,
        addr: SocketAddr,
        (envelope, dsn): (&Envelope, &DsnRequest),
        message: &Message,
        security: &Security,
    ) -> Result<bool, SendError> {
        let mut conn = self.connect(addr).await?;
        match security {
            Security::Opportunistic => {
                if conn.can_starttls() {
                    if let Err(e) = conn
                        .starttls(self.any_certificate(host)?, &self.hello)
                        .await
                    {
                        // Opportunistic TLS: a failed handshake falls back to a clear connection.
                        tracing::info!(%addr, error = %e, "STARTTLS failed; retrying without TLS");
                        conn = self.connect(addr).await?;
                    }
                }
            }
            Security::Pkix | Security::Dane(_) => {
                if !conn.can_starttls() {
                    conn.abort().await;
                    return Err(SendError::Tls("STARTTLS not offered".into()));
                }
                let params = if let Security::Dane(_) = security {
                    // The chain is checked against the TLSA records after the handshake (which
                    // still proves the server holds the leaf's key).
                    self.any_certificate(host)?
                } else {
                    let mut params = TlsParameters::builder(host.to_owned());
                    for der in &self.extra_roots {
                        params = params.add_root_certificate(Certificate::from_der(der.clone())?);
                    }
                    params.build_rustls()?
                };
                if let Err(e) = conn.starttls(params, &self.hello).await {
                    return Err(SendError::Tls(format!("TLS handshake failed: {e}")));
                }
                if let Security::Dane(records) = security {
                    let chain = conn.certificate_chain()?;
                    if let Err(reason) = dane::verify(records, &chain, host) {
                        conn.abort().await;
                        return Err(SendError::Tls(reason));
                    }
                }
            }
        }
        let sent = dsn::send(&mut conn, &self.hello, envelope, message, dsn).await;
        match sent {
            Ok(dsn_passed) => {
                // The 250 after the data is what counts: the caller records the delivery now,
                // while QUIT (RFC 5321 §4.1.1.10) goes on in the background.
                tokio::spawn(async move {
                    let _ = conn.quit().await;
                });
                Ok(dsn_passed)
            }
            Err(e) => {
                conn.abort().await;
                Err(SendError::Smtp(e))
            }
        }
    }

    /// TLS parameters accepting any certificate for `host` (an address literal's server is named
    /// by its address).
    fn any_certificate(&self, host: &str) -> Result<TlsParameters, SendError> {
        let name = literal_ip(host).map_or_else(|| host.to_owned(), |ip| ip.to_string());
        Ok(TlsParameters::builder(name)
            .dangerous_accept_invalid_certs(true)
            .dangerous_accept_invalid_hostnames(true)
            .build_rustls()?)
    }

    async fn connect(
        &self,
        addr: SocketAddr,
    ) -> Result<AsyncSmtpConnection, lettre::transport::smtp::Error> {
        AsyncSmtpConnection::connect_tokio1(addr, Some(self.timeout), &self.hello, None, None).await
    }
}

/// An envelope address for lettre, whose parser refuses `[IPv6:…]` literals (RFC 5321 §4.1.3):
/// a literal domain is checked here and the local part by lettre.
fn envelope_address(address: &str) -> Result<lettre::Address, lettre::address::AddressError> {
    match address.rsplit_once('@') {
        Some((local, domain)) if literal_ip(domain).is_some() => {
            lettre::Address::new(local, "address-literal.invalid")?;
            Ok(lettre::Address::new_dangerous(local, domain))
        }
        _ => address.parse(),
    }
}

/// A lettre error as the remote server (`550 5.1.1 text`) where there was one.
fn describe(e: &lettre::transport::smtp::Error) -> String {
    let text = e.to_string();
    match (e.status(), text.split_once("): ")) {
        (Some(code), Some((_, reply))) => format!("{code} {reply}"),
        _ => text,
    }
}

/// The first `d.d.d` enhanced status code in a reply text (RFC 3463), if any.
fn enhanced_code(text: &str) -> Option<String> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .find(|w| {
            let parts: Vec<&str> = w.split('.').collect();
            parts.len() == 3
                && matches!(parts[0], "2" | "4" | "5")
                && parts[1..].iter().all(|p| !p.is_empty() && p.len() <= 3)
        })
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn address_literals_are_envelope_addresses_and_tls_names() {
        let config = SmtpConfig {
            resolver: Some(([127, 0, 0, 1], 9).into()),
            ..SmtpConfig::default()
        };
        let outbound = Outbound::new(&config, "mx.example.test").expect("outbound");
        for (host, name) in [("[IPv6:::1]", "::1"), ("[127.0.0.1]", "127.0.0.1")] {
            let params = outbound.any_certificate(host).ok().expect("parameters");
            assert_eq!(params.domain(), name);
            let address = envelope_address(&format!("u@{host}")).expect("address");
            assert_eq!(address.domain(), host);
        }
        assert!(envelope_address("a b@[IPv6:::1]").is_err());
        let exchangers = outbound.exchangers("[IPv6:::1]").await.expect("literal");
        assert_eq!(
            exchangers.hosts[0].ips,
            [IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1])]
        );
        assert!(!exchangers.authenticated);
        assert!(matches!(
            outbound.exchangers("[IPv6:192.0.2.1]").await,
            Err(Attempt::Permanent(_))
        ));
    }

    #[test]
    fn finds_enhanced_codes() {
        assert_eq!(
            enhanced_code("permanent error (550): 5.1.1 no such user").as_deref(),
            Some("5.1.1")
        );
        assert_eq!(
            enhanced_code("transient error (451): 4.3.0 try later").as_deref(),
            Some("4.3.0")
        );
        assert_eq!(enhanced_code("connection refused"), None);
        assert_eq!(enhanced_code("version 1.2.3 of 9.9.9"), None);
    }
}
