//! The I/O shell: ManageSieve listeners (port 4190, STARTTLS) served through the shared network
//! edge (`postern-net`: caps, TLS handshake timeout, connection span), reading into the
//! [`Framer`], writing what the [`Session`] answers, the TLS upgrade and the idle timeouts.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use postern_net::{AtCapacity, Connection, Edge, ListenerSpec, NetConfig, SessionGauge};
use postern_store::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::config::ManageSieveConfig;
use super::frame::Framer;
use super::session::{Next, Reply, Session, SessionConfig};

/// Bytes read from the client at a time.
const READ_BUFFER: usize = 16 * 1024;

/// Why the ManageSieve server could not start or a connection failed.
#[derive(Debug, thiserror::Error)]
pub enum ManageSieveError {
    /// Binding a listener failed.
    #[error("managesieve listener {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// Socket I/O failed.
    #[error("managesieve connection: {0}")]
    Io(#[from] std::io::Error),
}

/// A running ManageSieve server.
pub struct ManageSieveServer {
    addrs: Vec<SocketAddr>,
    edge: Edge,
}

/// What every connection shares.
struct Shared {
    store: Store,
    config: ManageSieveConfig,
    acceptor: TlsAcceptor,
    handshake: Duration,
    preauth_idle: Duration,
    shutdown: CancellationToken,
}

impl ManageSieveServer {
    /// Binds `addrs` (port 0 picks a free port) and serves them through the shared network edge
    /// until `shutdown` is cancelled.
    pub async fn start(
        config: ManageSieveConfig,
        net: &NetConfig,
        store: Store,
        tls: Arc<rustls::ServerConfig>,
        addrs: Vec<SocketAddr>,
        shutdown: CancellationToken,
    ) -> Result<ManageSieveServer, ManageSieveError> {
        let acceptor = TlsAcceptor::from(tls);
        let max = config.max_connections;
        let shared = Arc::new(Shared {
            store,
            config,
            acceptor,
            handshake: net.tls_handshake_timeout(),
            preauth_idle: net.preauth_idle_timeout(),
            shutdown: shutdown.clone(),
        });
        let edge = Edge::new(shutdown);
        let mut bound = Vec::new();
        for addr in addrs {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| ManageSieveError::Bind { addr, source })?;
            let local = listener
                .local_addr()
                .map_err(|source| ManageSieveError::Bind { addr, source })?;
            tracing::info!(addr = %local, "managesieve listening");
            bound.push(local);
            let spec = ListenerSpec {
                limits: net.limits("managesieve", max, AtCapacity::Refuse),
                tls: None,
                refusal: b"BYE \"Too many connections\"\r\n".to_vec(),
                proxy: net.proxy("managesieve"),
                handshake_timeout: net.tls_handshake_timeout(),
            };
            let shared = shared.clone();
            edge.serve(listener, spec, move |conn| {
                let shared = shared.clone();
                async move {
                    if let Err(e) = connection(conn, &shared).await {
                        tracing::debug!(error = %e, "managesieve connection ended");
                    }
                }
            });
        }
        Ok(ManageSieveServer { addrs: bound, edge })
    }

    /// The bound addresses.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Completes when the listeners have stopped and every session has ended after shutdown.
    pub async fn wait(self) {
        self.edge.wait().await;
    }
}

async fn connection(conn: Connection, shared: &Shared) -> Result<(), ManageSieveError> {
    let Connection {
        stream: mut conn,
        peer,
        ..
    } = conn;
    let mut session = Session::new(
        peer.ip(),
        conn.is_tls(),
        SessionConfig {
            require_tls_for_auth: shared.config.require_tls_for_auth,
        },
    );
    let (max, drop_oversized) = session.literal_limit();
    let mut framer = Framer::new(max, drop_oversized);
    conn.write_all(&session.capabilities()).await?;
    let mut buf = vec![0u8; READ_BUFFER];
    // Counts the session in `postern_sessions_active` while it is logged in.
    let mut logged_in: Option<SessionGauge> = None;
    loop {
        while let Some(frame) = framer.next_frame() {
            let reply: Reply = session.frame(&shared.store, frame).await;
            conn.write_all(&reply.bytes).await?;
            conn.flush().await?;
            match (&logged_in, session.user()) {
                (None, Some(user)) => {
                    tracing::Span::current().record("user", user.address.to_string());
                    logged_in = Some(SessionGauge::logged_in("managesieve"));
                }
                (Some(_), None) => logged_in = None,
                _ => {}
            }
            let (max, drop_oversized) = session.literal_limit();
            framer.set_literal_max(max, drop_oversized);
            match reply.next {
                Next::Continue => {}
                Next::Close => return Ok(()),
                Next::StartTls => {
                    // Anything pipelined after STARTTLS came in clear text: drop it (the
                    // injection class of CVE-2011-0411).
                    framer.clear();
                    conn.start_tls(&shared.acceptor, shared.handshake).await?;
                    conn.write_all(&session.tls_established()).await?;
                    conn.flush().await?;
                }
            }
        }
        let timeout = if session.user().is_none() {
            shared.preauth_idle
        } else {
            shared.config.inactivity_timeout()
        };
        tokio::select! {
            r = conn.read(&mut buf) => {
                let n = r?;
                if n == 0 {
                    return Ok(());
                }
                framer.push(&buf[..n]);
            }
            _ = tokio::time::sleep(timeout) => {
                conn.write_all(&Reply::bye("Idle for too long").bytes).await?;
                return Ok(());
            }
            _ = shared.shutdown.cancelled() => {
                conn.write_all(&Reply::bye("Server shutting down").bytes).await?;
                return Ok(());
            }
        }
    }
}
