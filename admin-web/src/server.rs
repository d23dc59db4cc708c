//! Listeners: plain HTTP, or HTTPS with the shared rustls configuration, accepted through the
//! shared network edge (`postern-net`: caps per listener and per client, PROXY protocol, the TLS
//! handshake) and served by hyper with header-read and idle timeouts and graceful shutdown (open
//! requests finish, keep-alive connections close).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use postern_net::{AtCapacity, Connection, Edge, IdleTimeout, ListenerSpec, NetConfig};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::config::AdminConfig;
use crate::error::AdminError;
use crate::state::{AppState, Services};

/// A request's header block must arrive within this time (a half-sent request is closed).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection that moves no byte for this long is closed: keep-alive idlers and slow bodies.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// What a client refused at the connection cap reads.
const REFUSAL: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\nRetry-After: 5\r\n\r\n";

/// The running admin server.
pub struct AdminServer {
    addrs: Vec<SocketAddr>,
    edge: Edge,
}

impl AdminServer {
    /// Binds every address (port 0 allowed) and starts serving until `shutdown` is cancelled.
    /// With `tls`, every listener speaks HTTPS.
    pub async fn start(
        config: AdminConfig,
        net: &NetConfig,
        services: Services,
        tls: Option<Arc<rustls::ServerConfig>>,
        listen: &[SocketAddr],
        shutdown: CancellationToken,
    ) -> Result<AdminServer, AdminError> {
        let max_connections = config.max_connections;
        let state = Arc::new(AppState {
            services,
            config,
            https: tls.is_some(),
            started: Instant::now(),
        });
        let router = crate::pages::router()
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                crate::pages::confirm::require,
            ))
            .merge(crate::api::router())
            .merge(crate::autoconfig::router())
            .merge(crate::probes::router())
            .layer(crate::headers::layer(state.https))
            .layer(axum::middleware::from_fn(
                crate::unread_body::close_if_unread,
            ))
            .with_state(state);
        let edge = Edge::new(shutdown);
        let mut addrs = Vec::new();
        for addr in listen {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| AdminError::Bind {
                    addr: *addr,
                    source,
                })?;
            let local = listener.local_addr().map_err(|source| AdminError::Bind {
                addr: *addr,
                source,
            })?;
            addrs.push(local);
            let spec = ListenerSpec {
                limits: net.limits("admin", max_connections, AtCapacity::Refuse),
                tls: tls.clone().map(tokio_rustls::TlsAcceptor::from),
                refusal: REFUSAL.to_vec(),
                proxy: net.proxy("admin"),
                handshake_timeout: net.tls_handshake_timeout(),
            };
            let (router, shutdown) = (router.clone(), edge.shutdown().clone());
            edge.serve(listener, spec, move |conn| {
                serve_http(conn, router.clone(), shutdown.clone())
            });
        }
        Ok(AdminServer { addrs, edge })
    }

    /// The addresses really bound.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Completes when every listener has stopped and its connections have closed.
    pub async fn wait(self) {
        self.edge.wait().await;
    }
}

/// Serves HTTP/1.1 or HTTP/2 on one admitted connection until it ends or shutdown asks it to
/// finish its open request and close.
async fn serve_http(conn: Connection, router: axum::Router, shutdown: CancellationToken) {
    let Connection { stream, peer, .. } = conn;
    let service = router.map_request(
        move |mut req: axum::extract::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            req
        },
    );
    let service = TowerToHyperService::new(service);
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let io = TokioIo::new(IdleTimeout::new(stream, IDLE_TIMEOUT));
    let conn = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "admin connection ended");
    }
}
