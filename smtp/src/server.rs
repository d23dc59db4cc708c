//! The I/O shell around [`Session`]: binds the MX, submission and submissions listeners, accepts
//! connections up to a limit, does TLS (implicit on submissions, STARTTLS elsewhere), enforces idle
//! and total session timeouts, and performs the session's actions through the store.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mail_auth::MessageAuthenticator;
use postern_store::Store;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::backend::Backend;
use crate::config::SmtpConfig;
use crate::error::SmtpError;
use crate::reply::Reply;
use crate::session::{Event, Listener, Session, SessionConfig};

/// Bytes read from the client at a time; the session consumes each read whole before the next.
const READ_BUFFER: usize = 16 * 1024;

struct Shared {
    backend: Backend,
    session: Arc<SessionConfig>,
    tls: TlsAcceptor,
    idle: Duration,
    total: Duration,
    connections: Arc<Semaphore>,
}

/// The running SMTP listeners.
pub struct SmtpServer {
    mx: Vec<SocketAddr>,
    submission: Vec<SocketAddr>,
    submissions: Vec<SocketAddr>,
    tasks: TaskTracker,
}

impl SmtpServer {
    /// Binds every listener (port 0 picks a free port) and starts accepting connections until
    /// `shutdown` is cancelled. `tls` serves STARTTLS (RFC 3207) and implicit TLS (RFC 8314).
    #[allow(clippy::too_many_arguments)]
    pub async fn start(
        config: SmtpConfig,
        hostname: String,
        store: Store,
        tls: Arc<rustls::ServerConfig>,
        mx: &[SocketAddr],
        submission: &[SocketAddr],
        submissions: &[SocketAddr],
        shutdown: CancellationToken,
    ) -> Result<SmtpServer, SmtpError> {
        let session = Arc::new(SessionConfig {
            hostname: hostname.clone(),
            max_message_size: config.max_message_size,
            max_recipients: config.max_recipients.max(1),
            max_line_length: config
                .max_line_length
                .clamp(512, smtp_proto::request::receiver::MAX_LINE_LENGTH),
            max_errors: config.max_errors.max(1),
            max_auth_failures: 3,
            require_tls_for_auth: config.require_tls_for_auth,
        });
        let authenticator = MessageAuthenticator(crate::outbound::resolver(&config)?);
        let shared = Arc::new(Shared {
            session,
            tls: TlsAcceptor::from(tls),
            idle: Duration::from_secs(config.idle_timeout_secs.max(1)),
            total: Duration::from_secs(config.session_timeout_secs.max(1)),
            connections: Arc::new(Semaphore::new(config.max_connections.max(1))),
            backend: Backend {
                store,
                config: Arc::new(config),
                hostname,
                authenticator,
            },
        });
        let tasks = TaskTracker::new();
        let mut bound = [Vec::new(), Vec::new(), Vec::new()];
        for (i, (kind, addrs)) in [
            (Listener::Mx, mx),
            (Listener::Submission, submission),
            (Listener::Submissions, submissions),
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
                tasks.spawn(accept_loop(
                    listener,
                    kind,
                    shared.clone(),
                    shutdown.clone(),
                    tasks.clone(),
                ));
            }
        }
        let [mx, submission, submissions] = bound;
        Ok(SmtpServer {
            mx,
            submission,
            submissions,
            tasks,
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

    /// Completes when every listener has stopped and every session has ended after shutdown.
    pub async fn wait(self) {
        self.tasks.close();
        self.tasks.wait().await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    kind: Listener,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
) {
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        let span = tracing::info_span!("smtp", service = kind.name(), %peer);
        tasks.spawn(
            async move {
                let Ok(_permit) = shared.connections.clone().try_acquire_owned() else {
                    let mut stream = stream;
                    let mut out = Vec::new();
                    Reply::new(
                        421,
                        (4, 7, 0),
                        format!(
                            "{} Too many connections, try later",
                            shared.session.hostname
                        ),
                    )
                    .write(&mut out);
                    let _ =
                        tokio::time::timeout(Duration::from_secs(5), stream.write_all(&out)).await;
                    return;
                };
                if let Err(e) = connection(stream, peer, kind, &shared, &shutdown).await {
                    tracing::debug!(error = %e, "session ended with an error");
                }
            }
            .instrument(span),
        );
    }
}

/// Why [`drive`] returned.
enum Outcome {
    Closed,
    StartTls,
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    kind: Listener,
    shared: &Shared,
    shutdown: &CancellationToken,
) -> Result<(), SmtpError> {
    let _ = stream.set_nodelay(true);
    let deadline = Instant::now() + shared.total;
    if kind == Listener::Submissions {
        let mut tls = handshake(shared, stream).await?;
        let mut session = Session::new(shared.session.clone(), kind, peer, true);
        drive(&mut tls, &mut session, shared, peer, deadline, shutdown).await?;
        return Ok(());
    }
    let mut plain = stream;
    let mut session = Session::new(shared.session.clone(), kind, peer, false);
    match drive(&mut plain, &mut session, shared, peer, deadline, shutdown).await? {
        Outcome::Closed => Ok(()),
        Outcome::StartTls => {
            let mut tls = handshake(shared, plain).await?;
            session.tls_started();
            drive(&mut tls, &mut session, shared, peer, deadline, shutdown).await?;
            Ok(())
        }
    }
}

async fn handshake(
    shared: &Shared,
    stream: TcpStream,
) -> Result<tokio_rustls::server::TlsStream<TcpStream>, SmtpError> {
    match tokio::time::timeout(shared.idle, shared.tls.accept(stream)).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(SmtpError::Io(std::io::ErrorKind::TimedOut.into())),
    }
}

/// Runs the session over `stream` until it closes or asks for TLS.
async fn drive<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    session: &mut Session,
    shared: &Shared,
    peer: SocketAddr,
    deadline: Instant,
    shutdown: &CancellationToken,
) -> Result<Outcome, SmtpError> {
    let mut buf = vec![0u8; READ_BUFFER];
    loop {
        match session.next_event() {
            Event::NeedInput => {
                flush(stream, session, shared.idle).await?;
                let wait = shared
                    .idle
                    .min(deadline.saturating_duration_since(Instant::now()));
                let read = tokio::select! {
                    _ = shutdown.cancelled() => {
                        session.shutdown(Reply::new(421, (4, 3, 2), format!("{} Service shutting down", shared.session.hostname)));
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
                            format!("{} Timeout, closing connection", shared.session.hostname),
                        ));
                        flush(stream, session, shared.idle).await?;
                        return Ok(Outcome::Closed);
                    }
                }
            }
            Event::Action(action) => shared.backend.perform(session, action, peer.ip()).await,
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
