//! Listeners: plain HTTP, or HTTPS with the shared rustls configuration, served by hyper with
//! graceful shutdown (open requests finish, keep-alive connections close).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::config::AdminConfig;
use crate::error::AdminError;
use crate::state::{AppState, Services};

/// A TLS handshake must finish within this time.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The running admin server.
pub struct AdminServer {
    addrs: Vec<SocketAddr>,
    tasks: TaskTracker,
}

impl AdminServer {
    /// Binds every address (port 0 allowed) and starts serving until `shutdown` is cancelled.
    /// With `tls`, every listener speaks HTTPS.
    pub async fn start(
        config: AdminConfig,
        services: Services,
        tls: Option<Arc<rustls::ServerConfig>>,
        listen: &[SocketAddr],
        shutdown: CancellationToken,
    ) -> Result<AdminServer, AdminError> {
        let state = Arc::new(AppState {
            services,
            config,
            limiter: postern_store::AuthLimiter::default(),
            https: tls.is_some(),
            started: Instant::now(),
        });
        let router = crate::pages::router()
            .merge(crate::api::router())
            .merge(crate::autoconfig::router())
            .layer(crate::headers::layer(state.https))
            .with_state(state);
        let tasks = TaskTracker::new();
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
            tasks.spawn(accept_loop(
                listener,
                router.clone(),
                tls.clone(),
                shutdown.clone(),
            ));
        }
        tasks.close();
        Ok(AdminServer { addrs, tasks })
    }

    /// The addresses really bound.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Completes when every listener has stopped and its connections have closed.
    pub async fn wait(self) {
        self.tasks.wait().await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    router: axum::Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: CancellationToken,
) {
    let graceful = GracefulShutdown::new();
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let service = router.clone().map_request(
            move |mut req: axum::extract::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            },
        );
        let service = TowerToHyperService::new(service);
        let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        match &tls {
            None => {
                let conn = builder
                    .serve_connection_with_upgrades(TokioIo::new(tcp), service)
                    .into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(%peer, error = %e, "admin connection ended");
                    }
                });
            }
            Some(config) => {
                let acceptor = tokio_rustls::TlsAcceptor::from(config.clone());
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp))
                        .await
                    {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            return tracing::debug!(%peer, error = %e, "admin TLS handshake failed")
                        }
                        Err(_) => return tracing::debug!(%peer, "admin TLS handshake timed out"),
                    };
                    let conn = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .into_owned();
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!(%peer, error = %e, "admin connection ended");
                    }
                });
            }
        }
    }
    graceful.shutdown().await;
}
