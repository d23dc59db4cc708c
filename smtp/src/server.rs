//! The I/O shell around [`Session`]: binds the MX, submission and submissions listeners and hands
//! them to the shared network edge (`postern-net`: caps, PROXY protocol, implicit TLS), drives
//! each session with idle (shorter before AUTH on submission) and total timeouts, performs
//! STARTTLS, and performs the session's actions through the store.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use postern_net::{AtCapacity, Connection, Edge, ListenerSpec, NetConfig, SessionGauge};
use postern_store::Store;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::backend::Backend;
use crate::config::SmtpConfig;
use crate::error::SmtpError;
use crate::message::Receiving;
use crate::reply::Reply;
use crate::resolver::Resolver;
use crate::session::{Event, Listener, Session, SessionConfig};
use crate::srs::Srs;
use crate::telemetry::{command_name, command_took};

/// Bytes read from the client at a time; the session consumes each read whole before the next.
const READ_BUFFER: usize = 16 * 1024;

struct Shared {
    backend: Backend,
    /// The session limits; SIGHUP replaces them through [`SmtpLimits`], new sessions see the
    /// new value, running ones keep theirs.
    session: Arc<ArcSwap<SessionConfig>>,
    tls: TlsAcceptor,
    idle: Duration,
    preauth_idle: Duration,
    handshake: Duration,
    total: Duration,
}

/// The addresses each SMTP listener kind binds.
#[derive(Debug, Clone, Copy, Default)]
pub struct SmtpAddrs<'a> {
    /// MX, normally port 25.
    pub mx: &'a [SocketAddr],
    /// Submission with STARTTLS, normally port 587.
    pub submission: &'a [SocketAddr],
    /// Submission over implicit TLS, normally port 465 (RFC 8314).
    pub submissions: &'a [SocketAddr],
}

/// The running SMTP listeners.
pub struct SmtpServer {
    mx: Vec<SocketAddr>,
    submission: Vec<SocketAddr>,
    submissions: Vec<SocketAddr>,
    edge: Edge,
    limits: SmtpLimits,
}

/// A handle on the running server's per-session limits (`max_message_size`, `max_recipients`,
/// `max_line_length`, `max_errors`, `require_tls_for_auth`, `bare_line_endings`), for configuration reloads.
#[derive(Clone)]
pub struct SmtpLimits {
    hostname: String,
    current: Arc<ArcSwap<SessionConfig>>,
}

impl SmtpLimits {
    /// The `[smtp]` keys [`SmtpLimits::apply`] takes over; every other key needs a restart.
    pub const KEYS: [&'static str; 6] = [
        "max_message_size",
        "max_recipients",
        "max_line_length",
        "max_errors",
        "require_tls_for_auth",
        "bare_line_endings",
    ];

    /// Takes the limits of `config` for every session that starts from now on.
    pub fn apply(&self, config: &SmtpConfig) {
        self.current
            .store(Arc::new(session_config(&self.hostname, config)));
    }
}

/// The session limits `config` asks for, clamped to what the protocol allows.
fn session_config(hostname: &str, config: &SmtpConfig) -> SessionConfig {
    SessionConfig {
        hostname: hostname.to_owned(),
        max_message_size: config.max_message_size,
        max_recipients: config.max_recipients.max(1),
        max_line_length: config
            .max_line_length
            .clamp(512, smtp_proto::request::receiver::MAX_LINE_LENGTH),
        max_errors: config.max_errors.max(1),
        max_auth_failures: 3,
        require_tls_for_auth: config.require_tls_for_auth,
        bare_line_endings: config.bare_line_endings,
    }
}

impl SmtpServer {
    /// Binds every listener (port 0 picks a free port) and serves through the shared network
    /// edge until `shutdown` is cancelled. `tls` serves STARTTLS (RFC 3207) and implicit TLS
    /// (RFC 8314); `net` gives the per-client caps, timeouts and PROXY sources.
    pub async fn start(
        config: SmtpConfig,
        net: &NetConfig,
        hostname: String,
        store: Store,
        tls: Arc<rustls::ServerConfig>,
        addrs: SmtpAddrs<'_>,
        shutdown: CancellationToken,
    ) -> Result<SmtpServer, SmtpError> {
        let session = Arc::new(ArcSwap::from_pointee(session_config(&hostname, &config)));
        let limits = SmtpLimits {
            hostname: hostname.clone(),
            current: session.clone(),
        };
        let resolver = Resolver::new(&config)?;
        let max_connections = config.max_connections.max(1);
        let acceptor = TlsAcceptor::from(tls);
        let srs = Srs::new(config.srs_secret.as_deref().unwrap_or_default().as_bytes());
        let shared = Arc::new(Shared {
            session,
            tls: acceptor.clone(),
            idle: Duration::from_secs(config.idle_timeout_secs.max(1)),
            preauth_idle: net.preauth_idle_timeout(),
            handshake: net.tls_handshake_timeout(),
            total: Duration::from_secs(config.session_timeout_secs.max(1)),
            backend: Backend {
                store,
                config: Arc::new(config),
                hostname: hostname.clone(),
                resolver,
                srs,
            },
        });
        let edge = Edge::new(shutdown);
        let mut bound = [Vec::new(), Vec::new(), Vec::new()];
        let refusal = {
            let mut out = Vec::new();
            Reply::new(
                421,
                (4, 7, 0),
                format!("{hostname} Too many connections, try later"),
            )
            .write(&mut out);
            out
        };
        for (i, (kind, addrs)) in [
            (Listener::Mx, addrs.mx),
            (Listener::Submission, addrs.submission),
            (Listener::Submissions, addrs.submissions),
        ]
        .into_iter()
        .enumerate()
        {
            for addr in addrs {
                let listener = TcpListener::bind(addr)
                    .await
                    .map_err(|source| SmtpError::Bind {
                        addr: *addr,
                        source,
                    })?;
                bound[i].push(listener.local_addr()?);
                let spec = ListenerSpec {
                    limits: net.limits(kind.name(), max_connections, AtCapacity::Refuse),
                    tls: (kind == Listener::Submissions).then(|| acceptor.clone()),
                    refusal: refusal.clone(),
                    proxy: net.proxy(kind.name()),
                    handshake_timeout: net.tls_handshake_timeout(),
                };
                let (shared, shutdown) = (shared.clone(), edge.shutdown().clone());
                edge.serve(listener, spec, move |conn| {
                    let (shared, shutdown) = (shared.clone(), shutdown.clone());
                    async move {
                        if let Err(e) = connection(conn, kind, &shared, &shutdown).await {
                            tracing::debug!(error = %e, "session ended with an error");
                        }
                    }
                });
            }
        }
        let [mx, submission, submissions] = bound;
        Ok(SmtpServer {
            mx,
            submission,
            submissions,
            edge,
            limits,
        })
    }

    /// The addresses bound for one listener kind.
    pub fn local_addrs(&self, kind: Listener) -> &[SocketAddr] {
        match kind {
            Listener::Mx => &self.mx,
            Listener::Submission => &self.submission,
            Listener::Submissions => &self.submissions,
        }
    }

    /// The handle that changes the limits of new sessions at run time.
    pub fn limits(&self) -> SmtpLimits {
        self.limits.clone()
    }

    /// Completes when every listener has stopped and every session has ended after shutdown.
    pub async fn wait(self) {
        self.edge.wait().await;
    }
}

/// Why [`drive`] returned.
enum Outcome {
    Closed,
    StartTls,
}

async fn connection(
    conn: Connection,
    kind: Listener,
    shared: &Shared,
    shutdown: &CancellationToken,
) -> Result<(), SmtpError> {
    let Connection {
        mut stream, peer, ..
    } = conn;
    let deadline = Instant::now() + shared.total;
    let mut session = Session::new(shared.session.load_full(), kind, peer, stream.is_tls());
    // Counts the session in `postern_sessions_active` from its login to its end.
    let mut logged_in = None;
    let first = drive(
        &mut stream,
        &mut session,
        shared,
        peer,
        deadline,
        shutdown,
        &mut logged_in,
    );
    if let Outcome::StartTls = first.await? {
        stream.start_tls(&shared.tls, shared.handshake).await?;
        session.tls_started();
        drive(
            &mut stream,
            &mut session,
            shared,
            peer,
            deadline,
            shutdown,
            &mut logged_in,
        )
        .await?;
    }
    Ok(())
}

/// Runs the session over `stream` until it closes or asks for TLS.
async fn drive<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    session: &mut Session,
    shared: &Shared,
    peer: SocketAddr,
    deadline: Instant,
    shutdown: &CancellationToken,
    logged_in: &mut Option<SessionGauge>,
) -> Result<Outcome, SmtpError> {
    let mut buf = vec![0u8; READ_BUFFER];
    // The data of the message being received, as the session hands it out.
    let mut receiving = Receiving::default();
    loop {
        match session.next_event() {
            Event::NeedInput => {
                flush(stream, session, shared.idle).await?;
                // Submission clients log in at once; MX clients never log in and get RFC 5321's
                // full timeout (§4.5.3.2.7).
                let idle = if session.user().is_none() && session.listener() != Listener::Mx {
                    shared.idle.min(shared.preauth_idle)
                } else {
                    shared.idle
                };
                let wait = idle.min(deadline.saturating_duration_since(Instant::now()));
                // A message being received is let finish: shutdown waits for its end (within
                // the grace period) and then answers the next command with 421.
                let read = tokio::select! {
                    _ = shutdown.cancelled(), if !session.in_message() => {
                        session.shutdown(Reply::new(421, (4, 3, 2), format!("{} Service shutting down", shared.backend.hostname)));
                        flush(stream, session, shared.idle).await?;
                        return Ok(Outcome::Closed);
                    }
                    read = tokio::time::timeout(wait, stream.read(&mut buf)) => read,
                };
                match read {
                    Ok(Ok(0)) => return Ok(Outcome::Closed),
                    Ok(Ok(n)) => session.receive(&buf[..n]),
                    Ok(Err(e)) => return Err(e.into()),
                    Err(_) => {
                        session.shutdown(Reply::new(
                            421,
                            (4, 4, 2),
                            format!("{} Timeout, closing connection", shared.backend.hostname),
                        ));
                        flush(stream, session, shared.idle).await?;
                        return Ok(Outcome::Closed);
                    }
                }
            }
            Event::MessageData(bytes) => {
                let dir = shared.backend.config.spool_dir.as_deref();
                receiving.write(&bytes, dir).await;
            }
            Event::DiscardMessage => receiving = Receiving::default(),
            Event::Action(action) => {
                let (command, started) = (command_name(&action), Instant::now());
                shared
                    .backend
                    .perform(session, action, peer.ip(), &mut receiving)
                    .await;
                command_took(command, session.listener(), started.elapsed());
                if let Some(user) = session.user() {
                    if logged_in.is_none() {
                        tracing::Span::current().record("user", user);
                        *logged_in = Some(SessionGauge::logged_in("smtp"));
                    }
                }
            }
            Event::StartTls => {
                flush(stream, session, shared.idle).await?;
                return Ok(Outcome::StartTls);
            }
            Event::Close => {
                flush(stream, session, shared.idle).await?;
                let _ = stream.shutdown().await;
                return Ok(Outcome::Closed);
            }
        }
    }
}

async fn flush<S: AsyncWrite + Unpin>(
    stream: &mut S,
    session: &mut Session,
    timeout: Duration,
) -> Result<(), SmtpError> {
    let out = session.take_output();
    if out.is_empty() {
        return Ok(());
    }
    let write = async {
        stream.write_all(&out).await?;
        stream.flush().await
    };
    match tokio::time::timeout(timeout, write).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(SmtpError::Io(std::io::ErrorKind::TimedOut.into())),
    }
}
