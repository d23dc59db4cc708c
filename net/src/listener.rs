//! The one accept loop: every TCP listener of the process runs [`Edge::serve`].

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::limits::{Limits, Refusal, Slot};
use crate::proxy::{read_header, ProxyTrust};
use crate::stream::NetStream;

/// Shortest and longest pause after a failed accept (out of descriptors, out of memory).
const BACKOFF_MIN: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// What the edge needs to know about one listener.
pub struct ListenerSpec {
    /// Caps (and the service name used in spans and metrics).
    pub limits: Arc<Limits>,
    /// Implicit TLS (RFC 8314): the handshake completes before the protocol sees the connection.
    pub tls: Option<TlsAcceptor>,
    /// One line the protocol sends to a client refused on a plaintext listener (SMTP `421`, IMAP
    /// `* BYE`); empty to just close. Never sent on implicit-TLS listeners.
    pub refusal: Vec<u8>,
    /// Sources allowed to (and required to) send a PROXY header, when the service uses it.
    pub proxy: Option<Arc<ProxyTrust>>,
    /// Time allowed for the PROXY header and the TLS handshake.
    pub handshake_timeout: Duration,
}

/// An admitted client connection, handed to the protocol.
pub struct Connection {
    /// The bytes, TLS already established on implicit-TLS listeners.
    pub stream: NetStream,
    /// The client: the socket peer, or the address a trusted PROXY header named.
    pub peer: SocketAddr,
    /// The address the client connected to (from the PROXY header when there is one).
    pub local: SocketAddr,
    /// The connection's place under the listener's caps; held until the connection ends.
    pub slot: Slot,
}

/// Accept loops and connection tasks of one service; shutdown waits on them.
#[derive(Clone)]
pub struct Edge {
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

impl Edge {
    /// An edge whose accept loops stop when `shutdown` is cancelled.
    pub fn new(shutdown: CancellationToken) -> Edge {
        Edge {
            tasks: TaskTracker::new(),
            shutdown,
        }
    }

    /// The shutdown token connections watch.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Accepts connections on `listener` until shutdown, admits them under `spec`'s caps, and
    /// runs `handler` for each admitted one inside a `conn` span (service, peer, and a `user`
    /// field the protocol records after login).
    pub fn serve<H, F>(&self, listener: TcpListener, spec: ListenerSpec, handler: H)
    where
        H: Fn(Connection) -> F + Send + Sync + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let edge = self.clone();
        self.tasks.spawn(accept_loop(
            edge,
            listener,
            Arc::new(spec),
            Arc::new(handler),
        ));
    }

    /// Completes when every accept loop has stopped and every connection has ended.
    pub async fn wait(self) {
        self.tasks.close();
        self.tasks.wait().await;
    }
}

fn count(service: &'static str, result: &'static str) {
    metrics::counter!("postern_connections_total", "service" => service, "result" => result)
        .increment(1);
}

async fn accept_loop<H, F>(
    edge: Edge,
    listener: TcpListener,
    spec: Arc<ListenerSpec>,
    handler: Arc<H>,
) where
    H: Fn(Connection) -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let service = spec.limits.service();
    let mut backoff = BACKOFF_MIN;
    loop {
        let (tcp, peer) = tokio::select! {
            _ = edge.shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => {
                    backoff = BACKOFF_MIN;
                    a
                }
                Err(e) => {
                    tracing::warn!(service, error = %e, "accept failed; backing off");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
            },
        };
        // Behind a load balancer the socket peer is the balancer: the client is known only once
        // its header is read, in the connection's task.
        let proxied = spec.proxy.is_some();
        let slot = match spec.limits.admit((!proxied).then_some(peer.ip())) {
            Ok(slot) => slot,
            Err(why) => {
                refuse(&spec, tcp, why);
                continue;
            }
        };
        let (spec, handler) = (spec.clone(), handler.clone());
        edge.tasks.spawn(async move {
            if let Some(conn) = admit(&spec, tcp, peer, slot).await {
                let span = tracing::info_span!(
                    "conn",
                    service,
                    peer = %conn.peer,
                    user = tracing::field::Empty
                );
                handler(conn).instrument(span).await;
            }
        });
    }
}

/// Sends the protocol's refusal on a plaintext listener (without waiting: a fresh socket's send
/// buffer takes one line) and closes.
fn refuse(spec: &ListenerSpec, tcp: TcpStream, why: Refusal) {
    count(spec.limits.service(), why.label());
    if spec.tls.is_none() && !spec.refusal.is_empty() {
        let _ = tcp.try_write(&spec.refusal);
    }
    tracing::debug!(
        service = spec.limits.service(),
        reason = why.label(),
        "connection refused"
    );
}

/// Reads the PROXY header (if the listener uses one), applies the per-client cap and performs
/// the implicit TLS handshake; `None` when the connection is refused or fails on the way.
async fn admit(
    spec: &ListenerSpec,
    mut tcp: TcpStream,
    peer: SocketAddr,
    mut slot: Slot,
) -> Option<Connection> {
    let service = spec.limits.service();
    let _ = tcp.set_nodelay(true);
    let mut client = peer;
    let mut local = tcp.local_addr().ok()?;
    if let Some(trust) = &spec.proxy {
        if !trust.trusts(peer.ip()) {
            count(service, "refused_proxy_untrusted");
            tracing::warn!(service, %peer, "connection without a trusted PROXY source refused");
            return None;
        }
        match read_header(&mut tcp, spec.handshake_timeout).await {
            Ok(Some((src, dst))) => (client, local) = (src, dst),
            Ok(None) => {}
            Err(e) => {
                count(service, "refused_proxy_invalid");
                tracing::debug!(service, %peer, error = %e, "bad PROXY header");
                return None;
            }
        }
        if let Err(why) = spec.limits.admit_client(&mut slot, client.ip()) {
            refuse(spec, tcp, why);
            return None;
        }
    }
    let mut stream = NetStream::Plain(tcp);
    if let Some(acceptor) = &spec.tls {
        if let Err(e) = stream.start_tls(acceptor, spec.handshake_timeout).await {
            count(service, "tls_failed");
            tracing::debug!(service, peer = %client, error = %e, "TLS handshake failed");
            return None;
        }
    }
    count(service, "accepted");
    Some(Connection {
        stream,
        peer: client,
        local,
        slot,
    })
}
