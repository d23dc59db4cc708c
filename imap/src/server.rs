//! The I/O shell: listeners on the IMAP (STARTTLS) and IMAPS (implicit TLS, RFC 8314) ports,
//! framing with imap-codec's `Fragmentizer` (literals, continuation requests, LITERAL+, size limits
//! checked before a literal is read), the TLS upgrade, IDLE waiting and timeouts. Everything the
//! protocol decides is in [`Session`].

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use imap_codec::decode::Decoder;
use imap_codec::encode::Encoder;
use imap_codec::fragmentizer::{FragmentInfo, Fragmentizer, LiteralAnnouncement};
use imap_codec::imap_types::core::LiteralMode;
use imap_codec::imap_types::response::Response;
use imap_codec::{
    AuthenticateDataCodec, CommandCodec, GreetingCodec, IdleDoneCodec, ResponseCodec,
};
use postern_store::Store;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::config::ImapConfig;
use crate::error::ImapError;
use crate::list_extended;
use crate::session::{Next, Reply, Session};

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Room for a command's own text around its largest literal.
const COMMAND_OVERHEAD: u32 = 64 * 1024;

/// A running IMAP server.
pub struct ImapServer {
    plain: Vec<SocketAddr>,
    tls: Vec<SocketAddr>,
    all: Vec<SocketAddr>,
    tasks: TaskTracker,
}

/// What every connection shares.
struct Shared {
    store: Store,
    config: Arc<ImapConfig>,
    acceptor: TlsAcceptor,
    shutdown: CancellationToken,
    slots: Arc<Semaphore>,
}

impl ImapServer {
    /// Binds `plain` (port 143 style, STARTTLS) and `implicit_tls` (port 993 style) listeners and
    /// serves until `shutdown` is cancelled. Port 0 picks a free port.
    pub async fn start(
        config: ImapConfig,
        store: Store,
        tls: Arc<rustls::ServerConfig>,
        plain: Vec<SocketAddr>,
        implicit_tls: Vec<SocketAddr>,
        shutdown: CancellationToken,
    ) -> Result<ImapServer, ImapError> {
        let shared = Arc::new(Shared {
            store,
            slots: Arc::new(Semaphore::new(config.max_connections)),
            config: Arc::new(config),
            acceptor: TlsAcceptor::from(tls),
            shutdown,
        });
        let tasks = TaskTracker::new();
        let mut server = ImapServer {
            plain: Vec::new(),
            tls: Vec::new(),
            all: Vec::new(),
            tasks: tasks.clone(),
        };
        for (addrs, implicit) in [(plain, false), (implicit_tls, true)] {
            for addr in addrs {
                let listener = TcpListener::bind(addr)
                    .await
                    .map_err(|source| ImapError::Bind { addr, source })?;
                let local = listener
                    .local_addr()
                    .map_err(|source| ImapError::Bind { addr, source })?;
                tracing::info!(addr = %local, implicit_tls = implicit, "imap listening");
                if implicit {
                    server.tls.push(local);
                } else {
                    server.plain.push(local);
                }
                server.all.push(local);
                tasks.spawn(accept_loop(
                    listener,
                    implicit,
                    shared.clone(),
                    tasks.clone(),
                ));
            }
        }
        tasks.close();
        Ok(server)
    }

    /// Every bound address.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.all
    }

    /// Bound addresses of the STARTTLS listeners.
    pub fn plain_addrs(&self) -> &[SocketAddr] {
        &self.plain
    }

    /// Bound addresses of the implicit-TLS listeners.
    pub fn tls_addrs(&self) -> &[SocketAddr] {
        &self.tls
    }

    /// Completes when the listeners have stopped and every session has ended after shutdown.
    pub async fn wait(self) {
        self.tasks.wait().await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    implicit: bool,
    shared: Arc<Shared>,
    tasks: TaskTracker,
) {
    loop {
        let (stream, peer) = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "imap accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let shared = shared.clone();
        let span = tracing::info_span!("imap", peer = %peer, tls = implicit);
        tasks.spawn(
            async move {
                let Ok(_permit) = shared.slots.clone().try_acquire_owned() else {
                    let mut stream = stream;
                    let _ = stream.write_all(b"* BYE Too many connections\r\n").await;
                    return;
                };
                if let Err(e) = connection(stream, peer.ip(), implicit, &shared).await {
                    tracing::debug!(error = %e, "imap connection ended");
                }
            }
            .instrument(span),
        );
    }
}

/// A connection before or after TLS.
enum Conn {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    Closed,
}

impl Conn {
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf).await,
            Conn::Tls(s) => s.read(buf).await,
            Conn::Closed => Ok(0),
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        async fn go<S: AsyncWrite + AsyncRead + Unpin>(s: &mut S, b: &[u8]) -> std::io::Result<()> {
            s.write_all(b).await?;
            s.flush().await
        }
        match self {
            Conn::Plain(s) => go(s, bytes).await,
            Conn::Tls(s) => go(s.as_mut(), bytes).await,
            Conn::Closed => Ok(()),
        }
    }

    async fn start_tls(&mut self, acceptor: &TlsAcceptor) -> std::io::Result<()> {
        let Conn::Plain(tcp) = std::mem::replace(self, Conn::Closed) else {
            return Err(std::io::Error::other("TLS already active"));
        };
        let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp))
            .await
            .map_err(|_| std::io::Error::other("TLS handshake timed out"))??;
        *self = Conn::Tls(Box::new(tls));
        Ok(())
    }
}

fn encode(responses: &[Response<'static>]) -> Vec<u8> {
    let codec = ResponseCodec::default();
    let mut out = Vec::new();
    for r in responses {
        out.extend(codec.encode(r).dump());
    }
    out
}

/// What the connection expects next from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Command,
    Authenticate,
    Idle,
}

async fn connection(
    stream: TcpStream,
    peer: IpAddr,
    implicit: bool,
    shared: &Shared,
) -> Result<(), ImapError> {
    let _ = stream.set_nodelay(true);
    let mut conn = Conn::Plain(stream);
    if implicit {
        conn.start_tls(&shared.acceptor).await?;
    }
    let config = shared.config.clone();
    let mut session = Session::new(shared.store.clone(), config.clone(), peer, implicit);
    let limit = config.max_message_size;
    let new_fragmentizer = || Fragmentizer::new(limit.saturating_add(COMMAND_OVERHEAD));
    let mut frag = new_fragmentizer();
    conn.write(&GreetingCodec::default().encode(&session.greeting()).dump())
        .await?;
    let mut mode = Mode::Command;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        while let Some(info) = frag.progress() {
            if let FragmentInfo::Line {
                announcement: Some(LiteralAnnouncement { mode: lit, length }),
                ..
            } = info
            {
                if length > limit {
                    if lit == LiteralMode::Sync {
                        let tag = frag.decode_tag();
                        let refusal = Session::literal_too_big(tag.as_ref());
                        frag.skip_message();
                        conn.write(&encode(&[refusal])).await?;
                    } else {
                        frag.poison_message();
                    }
                } else if lit == LiteralMode::Sync {
                    conn.write(b"+ Ready for literal data\r\n").await?;
                }
                continue;
            }
            if !frag.is_message_complete() {
                continue;
            }
            let reply = match mode {
                Mode::Command => command(&mut session, &frag).await,
                Mode::Authenticate => {
                    match frag.decode_message(&AuthenticateDataCodec::default()) {
                        Ok(data) => session.authenticate_data(data).await,
                        Err(_) => {
                            session
                                .authenticate_data(
                                    imap_codec::imap_types::auth::AuthenticateData::Cancel,
                                )
                                .await
                        }
                    }
                }
                Mode::Idle => match frag.decode_message(&IdleDoneCodec::default()) {
                    Ok(_) => session.idle_done().await,
                    Err(_) => {
                        let mut r = session.idle_done().await;
                        r.responses
                            .insert(0, Session::syntax_error(None, "Expected DONE"));
                        r
                    }
                },
            };
            conn.write(&encode(&reply.responses)).await?;
            mode = match reply.next {
                Next::Continue => Mode::Command,
                Next::Authenticate => Mode::Authenticate,
                Next::Idle => Mode::Idle,
                Next::Logout => return Ok(()),
                Next::StartTls => {
                    // Anything pipelined after STARTTLS was sent in clear text: discard it
                    // (RFC 3501 §6.2.1, CVE-2011-0411 class of injection).
                    frag = new_fragmentizer();
                    conn.start_tls(&shared.acceptor).await?;
                    session.tls_established();
                    Mode::Command
                }
            };
            if reply.next == Next::StartTls {
                break;
            }
        }
        let timeout = if mode == Mode::Idle {
            config.idle_timeout()
        } else {
            config.inactivity_timeout()
        };
        tokio::select! {
            r = conn.read(&mut buf) => {
                let n = r?;
                if n == 0 {
                    return Ok(());
                }
                frag.enqueue_bytes(&buf[..n]);
            }
            _ = session.wait_change(), if mode == Mode::Idle => {
                let updates = session.idle_updates().await;
                if !updates.is_empty() {
                    conn.write(&encode(&updates)).await?;
                }
            }
            _ = tokio::time::sleep(timeout) => {
                conn.write(&encode(&[Session::bye("Autologout; idle for too long")])).await?;
                return Ok(());
            }
            _ = shared.shutdown.cancelled() => {
                conn.write(&encode(&[Session::bye("Server shutting down")])).await?;
                return Ok(());
            }
        }
    }
}

/// Decodes one complete command message and hands it to the session. Syntax errors get BAD with
/// the tag when one can be read (RFC 3501 §7.1.3); oversized messages get NO [TOOBIG].
async fn command(session: &mut Session, frag: &Fragmentizer) -> Reply {
    use imap_codec::fragmentizer::DecodeMessageError as E;
    let bad = |why: &str| Reply {
        responses: vec![Session::syntax_error(frag.decode_tag().as_ref(), why)],
        next: Next::Continue,
    };
    if frag.is_max_message_size_exceeded() || frag.is_message_poisoned() {
        return Reply {
            responses: vec![Session::literal_too_big(frag.decode_tag().as_ref())],
            next: Next::Continue,
        };
    }
    if let Some((plain, extras)) = list_extended::split(frag.message_bytes()) {
        return match CommandCodec::default().decode(&plain) {
            Ok((b"", cmd)) => session.command_with(cmd, extras).await,
            _ => bad("Malformed LIST"),
        };
    }
    match frag.decode_message(&CommandCodec::default()) {
        Ok(cmd) => session.command(cmd).await,
        Err(E::DecodingFailure(_)) | Err(E::DecodingRemainder { .. }) => bad("Syntax error"),
        Err(_) => Reply {
            responses: vec![Session::literal_too_big(frag.decode_tag().as_ref())],
            next: Next::Continue,
        },
    }
}
