//! The one DNS client of mail: MX selection, address lookups, DNS block lists, MTA-STS discovery
//! and DANE ask through [`Resolver`], and mail-auth's SPF/DKIM/DMARC lookups go to the same name
//! servers with the same timeout through [`Resolver::authenticator`].
//!
//! Every query sets the AD bit and the EDNS DO bit, so that a validating resolver reports whether
//! it validated the answer (RFC 6840 §5.7, RFC 4035 §3.2.3); each answer carries that verdict as
//! `authenticated`. As RFC 7672 §2.1 says, the AD bit is only worth trusting from a resolver on
//! this host or on a trusted path. Queries go over UDP and again over TCP when the answer is
//! truncated (RFC 7766 §5); answers are cached for their TTL (negative ones for the SOA's
//! negative TTL, RFC 2308 §5) in a cache of bounded size.
//!
//! The exchanges use hickory's UDP and TCP clients rather than hickory-resolver's `Resolver`: the
//! latter sets DO only when it validates itself, and turns NXDOMAIN and NODATA answers into errors
//! without their header, losing the AD bit DANE needs for a validated denial (RFC 7672 §2.2.1).
//! mail-auth 0.13 cannot use this client: its `MessageAuthenticator` is a tuple struct around a
//! concrete hickory `TokioResolver` (no resolver trait; its `ResolverCache` parameters only cache
//! parsed records), so it gets a `TokioResolver` built from the same settings.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::tcp::TcpClientStream;
use hickory_resolver::net::udp::UdpClientStream;
use hickory_resolver::net::xfer::{DnsHandle, FirstAnswer};
use hickory_resolver::net::NetError;
use hickory_resolver::proto::op::{DnsRequest, DnsRequestOptions, Message, Query, ResponseCode};
use hickory_resolver::proto::rr::rdata::TLSA;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::TokioResolver;
use mail_auth::MessageAuthenticator;
use moka::sync::Cache;

use crate::config::SmtpConfig;
use crate::error::SmtpError;

/// Time allowed for one server to answer one query (UDP retries and the TCP retry included).
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
/// Answers kept at most.
const CACHE_CAPACITY: u64 = 10_000;
/// Longest time a positive answer is kept, whatever its TTL (one day, as common resolvers do).
const MAX_TTL: u32 = 86_400;
/// Longest time a negative answer is kept (RFC 2308 §5 suggests one to three hours).
const MAX_NEGATIVE_TTL: u32 = 3 * 3600;

/// The records of one answer and whether the resolver validated it (the AD bit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer<T> {
    /// The records of the asked type in the answer section; empty for NODATA.
    pub records: Vec<T>,
    /// The resolver set AD: the answer (or the denial) is DNSSEC-validated.
    pub authenticated: bool,
}

/// Why a lookup gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LookupError {
    /// The name does not exist (NXDOMAIN, RFC 1035 §4.1.1).
    #[error("no such domain")]
    NxDomain {
        /// The denial is DNSSEC-validated.
        authenticated: bool,
    },
    /// No server gave a usable answer (timeout, SERVFAIL, REFUSED...): try again later.
    #[error("{0}")]
    Failed(String),
}

/// A cached answer: NXDOMAIN or the answer's records of every type, with the AD bit.
#[derive(Debug, Clone)]
struct Cached {
    nxdomain: bool,
    authenticated: bool,
    records: Arc<[RData]>,
    expires: Instant,
}

/// Drops cache entries when their TTL runs out.
struct UntilExpiry;

impl moka::Expiry<(Name, RecordType), Cached> for UntilExpiry {
    fn expire_after_create(
        &self,
        _key: &(Name, RecordType),
        value: &Cached,
        created_at: Instant,
    ) -> Option<Duration> {
        Some(value.expires.saturating_duration_since(created_at))
    }
}

/// The DNS client of mail: cheap to clone, all clones share one cache.
#[derive(Clone)]
pub(crate) struct Resolver {
    servers: Arc<[SocketAddr]>,
    timeout: Duration,
    cache: Cache<(Name, RecordType), Cached>,
    authenticator: MessageAuthenticator,
}

/// The name servers of `[smtp] resolver`, or those of `/etc/resolv.conf` (port 53).
fn name_servers(config: &SmtpConfig) -> Result<Vec<SocketAddr>, SmtpError> {
    if let Some(addr) = config.resolver {
        return Ok(vec![addr]);
    }
    let (system, _) = hickory_resolver::system_conf::read_system_conf()
        .map_err(|e| SmtpError::Resolver(e.to_string()))?;
    let servers: Vec<SocketAddr> = system
        .name_servers()
        .iter()
        .map(|ns| SocketAddr::new(ns.ip, 53))
        .collect();
    if servers.is_empty() {
        return Err(SmtpError::Resolver("no name server configured".into()));
    }
    Ok(servers)
}

impl Resolver {
    /// The resolver of `[smtp] resolver` (UDP and TCP to that server), or of the system's
    /// `/etc/resolv.conf`.
    pub fn new(config: &SmtpConfig) -> Result<Resolver, SmtpError> {
        Resolver::with_servers(name_servers(config)?, QUERY_TIMEOUT)
    }

    /// A resolver asking `servers` in order, allowing each `timeout` per query.
    pub(crate) fn with_servers(
        servers: Vec<SocketAddr>,
        timeout: Duration,
    ) -> Result<Resolver, SmtpError> {
        let configs = servers
            .iter()
            .map(|addr| {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
            })
            .collect();
        let mut options = ResolverOpts::default();
        options.timeout = timeout;
        let hickory = TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(configs),
            TokioRuntimeProvider::default(),
        )
        .with_options(options)
        .build()
        .map_err(|e| SmtpError::Resolver(e.to_string()))?;
        Ok(Resolver {
            servers: servers.into(),
            timeout,
            cache: Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .expire_after(UntilExpiry)
                .build(),
            authenticator: MessageAuthenticator(hickory),
        })
    }

    /// mail-auth's checker, asking the same name servers (see the module documentation).
    pub fn authenticator(&self) -> &MessageAuthenticator {
        &self.authenticator
    }

    /// The mail exchangers of `domain` as (preference, host) (RFC 5321 §5.1); empty when the
    /// domain has none. The null MX (RFC 7505) is a host `"."`.
    pub async fn mx(&self, domain: &str) -> Result<Answer<(u16, String)>, LookupError> {
        self.typed(domain, RecordType::MX, |data| match data {
            RData::MX(mx) => Some((mx.preference, mx.exchange.to_ascii())),
            _ => None,
        })
        .await
    }

    /// The IPv4 and IPv6 addresses of `host`; authenticated only when both answers are.
    pub async fn ips(&self, host: &str) -> Result<Answer<IpAddr>, LookupError> {
        let (v4, v6) = tokio::join!(
            self.typed(host, RecordType::A, |data| match data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                _ => None,
            }),
            self.typed(host, RecordType::AAAA, |data| match data {
                RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                _ => None,
            }),
        );
        match (v4, v6) {
            (Ok(mut v4), Ok(v6)) => {
                v4.records.extend(v6.records);
                v4.authenticated &= v6.authenticated;
                Ok(v4)
            }
            // One family answered: use it, but do not call the pair validated.
            (Ok(mut one), Err(_)) | (Err(_), Ok(mut one)) => {
                one.authenticated = false;
                Ok(one)
            }
            (Err(e), Err(_)) => Err(e),
        }
    }

    /// The IPv4 addresses of `name` (block list answers, RFC 5782 §2.1).
    pub async fn ipv4(&self, name: &str) -> Result<Answer<Ipv4Addr>, LookupError> {
        self.typed(name, RecordType::A, |data| match data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .await
    }

    /// The TXT records of `name`, each one's strings joined (RFC 7208 §3.3).
    pub async fn txt(&self, name: &str) -> Result<Answer<String>, LookupError> {
        self.typed(name, RecordType::TXT, |data| match data {
            RData::TXT(txt) => Some(
                txt.txt_data
                    .iter()
                    .map(|part| String::from_utf8_lossy(part))
                    .collect(),
            ),
            _ => None,
        })
        .await
    }

    /// The TLSA records of `name` (RFC 6698 §2).
    pub async fn tlsa(&self, name: &str) -> Result<Answer<TLSA>, LookupError> {
        self.typed(name, RecordType::TLSA, |data| match data {
            RData::TLSA(t) => Some(t.clone()),
            _ => None,
        })
        .await
    }

    async fn typed<T>(
        &self,
        name: &str,
        rtype: RecordType,
        pick: impl Fn(&RData) -> Option<T>,
    ) -> Result<Answer<T>, LookupError> {
        let cached = self.lookup_at(name, rtype, Instant::now()).await?;
        Ok(Answer {
            records: cached.records.iter().filter_map(pick).collect(),
            authenticated: cached.authenticated,
        })
    }

    /// The answer for `name`/`rtype` as of `now`: from the cache while it is fresh, else asked.
    async fn lookup_at(
        &self,
        name: &str,
        rtype: RecordType,
        now: Instant,
    ) -> Result<Cached, LookupError> {
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        // UTF-8 names (SMTPUTF8 domains) are asked in their A-label form (RFC 5890 §2.3.2.1).
        let name = Name::from_str_relaxed(&fqdn)
            .map_err(|e| LookupError::Failed(format!("bad name {fqdn}: {e}")))?
            .to_lowercase();
        let key = (name, rtype);
        let cached = match self.cache.get(&key).filter(|c| c.expires > now) {
            Some(c) => c,
            None => {
                let (cached, ttl) = self.ask(&key.0, rtype, now).await?;
                if ttl > 0 {
                    self.cache.insert(key, cached.clone());
                }
                cached
            }
        };
        if cached.nxdomain {
            return Err(LookupError::NxDomain {
                authenticated: cached.authenticated,
            });
        }
        Ok(cached)
    }

    /// Asks the servers in turn until one answers NOERROR or NXDOMAIN; returns the answer and
    /// its TTL in seconds (0: not to be cached).
    async fn ask(
        &self,
        name: &Name,
        rtype: RecordType,
        now: Instant,
    ) -> Result<(Cached, u32), LookupError> {
        let mut last = String::from("no name server");
        for &server in self.servers.iter() {
            let reply = match self.exchange(server, name, rtype).await {
                Ok(reply) => reply,
                Err(e) => {
                    tracing::debug!(%server, %name, ?rtype, error = %e, "DNS query failed");
                    last = format!("{name} {rtype}: {e}");
                    continue;
                }
            };
            let rcode = reply.metadata.response_code;
            let nxdomain = match rcode {
                ResponseCode::NoError => false,
                ResponseCode::NXDomain => true,
                _ => {
                    last = format!("{name} {rtype}: {rcode}");
                    continue;
                }
            };
            let ttl = ttl(&reply);
            let cached = Cached {
                nxdomain,
                authenticated: reply.metadata.authentic_data,
                records: reply.answers.into_iter().map(|r| r.data).collect(),
                expires: now + Duration::from_secs(ttl.into()),
            };
            return Ok((cached, ttl));
        }
        Err(LookupError::Failed(last))
    }

    /// One query to `server` with AD and DO set, over UDP and again over TCP if truncated.
    async fn exchange(
        &self,
        server: SocketAddr,
        name: &Name,
        rtype: RecordType,
    ) -> Result<Message, NetError> {
        let mut options = DnsRequestOptions::default();
        options.edns_set_dnssec_ok = true;
        options.edns_payload_len = 1232;
        let mut request = DnsRequest::from_query(Query::query(name.clone(), rtype), options);
        request.metadata.authentic_data = true;
        let provider = TokioRuntimeProvider::default();
        let udp = UdpClientStream::builder(server, provider.clone())
            .with_timeout(Some(self.timeout))
            .exchange();
        let reply = udp.send(request.clone()).first_answer().await?;
        if !reply.truncation {
            return Ok(reply.into_message());
        }
        tracing::debug!(%server, %name, ?rtype, "truncated answer; asking over TCP");
        let tcp = TcpClientStream::exchange(server, None, self.timeout, None, provider).await?;
        let reply = tcp.send(request).first_answer().await?;
        Ok(reply.into_message())
    }
}

/// How long an answer may be cached: the smallest TTL of its answer records (RFC 2181 §5.2), or
/// for a denial the SOA's negative TTL (RFC 2308 §5); capped.
fn ttl(reply: &Message) -> u32 {
    if let Some(ttl) = reply.answers.iter().map(|r| r.ttl).min() {
        return ttl.min(MAX_TTL);
    }
    reply
        .authorities
        .iter()
        .find_map(|r| match &r.data {
            RData::SOA(soa) => Some(r.ttl.min(soa.minimum)),
            _ => None,
        })
        .map_or(0, |ttl| ttl.min(MAX_NEGATIVE_TTL))
}

#[cfg(test)]
mod tests;
