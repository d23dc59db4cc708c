//! The I/O shell: listeners on the IMAP (STARTTLS) and IMAPS (implicit TLS, RFC 8314) ports,
//! served through the shared network edge (`postern-net`), framing with imap-codec's
//! `Fragmentizer` (literals, continuation requests, LITERAL+, size limits checked before a
//! literal is read, much smaller before login), the TLS upgrade, IDLE waiting and timeouts. Everything the
//! protocol decides is in [`Session`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use imap_codec::encode::Encoder;
use imap_codec::fragmentizer::{FragmentInfo, Fragmentizer, LiteralAnnouncement};
use imap_codec::imap_types::core::LiteralMode;
use imap_codec::imap_types::IntoStatic;
use imap_codec::{AuthenticateDataCodec, GreetingCodec, IdleDoneCodec};
use postern_net::{AtCapacity, Connection, Edge, ListenerSpec, NetConfig, SessionGauge};
use postern_store::{Change, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use arc_swap::ArcSwap;

use crate::compress::Link;
use crate::config::ImapConfig;
use crate::decode;
use crate::error::ImapError;
use crate::response::encode_all as encode;
use crate::session::{ChangeFeed, Next, Session};
use crate::stream::{
    receive_literal, spooled_append, streamable_append, Input, Received, SpooledAppend,
};
use crate::telemetry::count_completed;

/// Room for a command's own text around its largest literal.
const COMMAND_OVERHEAD: u32 = 64 * 1024;

/// Largest command (line plus literals) and largest literal accepted before login: enough for
/// LOGIN/AUTHENTICATE with long names and passwords and for the largest ID a client may send
/// (RFC 2971 §3.3: 30 pairs of 30-octet fields and 1024-octet values, about 32 KiB), small enough
/// that thousands of strangers cannot hold much memory.
const PREAUTH_MAX_INPUT: u32 = 40 * 1024;

/// Bytes read from the client at a time.
const READ_BUFFER: usize = 16 * 1024;

/// Literals up to this size are read without asking the shared literal budget.
const SMALL_LITERAL: u32 = 64 * 1024;

/// APPEND literals larger than this are streamed to a spool file instead of being buffered.
const STREAM_LITERAL: u32 = 256 * 1024;

/// Unit of the literal budget's semaphore permits.
const BUDGET_UNIT: u64 = 1024;

/// A running IMAP server.
pub struct ImapServer {
    plain: Vec<SocketAddr>,
    tls: Vec<SocketAddr>,
    edge: Edge,
    settings: ImapSettings,
}

/// A handle on the running server's per-connection settings, for configuration reloads.
#[derive(Clone)]
pub struct ImapSettings(Arc<ArcSwap<ImapConfig>>);

impl ImapSettings {
    /// The `[imap]` keys [`ImapSettings::apply`] takes over; `max_connections` and
    /// `literal_memory_budget` are sized at start and need a restart.
    pub const KEYS: [&'static str; 4] = [
        "max_message_size",
        "login_disabled_without_tls",
        "idle_timeout_secs",
        "inactivity_timeout_secs",
    ];

    /// Takes `config` for every connection that starts from now on; the literal memory budget
    /// stays the one sized at start (a literal never takes more than all of it).
    pub fn apply(&self, config: &ImapConfig) {
        self.0.store(Arc::new(config.clone()));
    }
}

/// What every connection shares.
struct Shared {
    store: Store,
    config: Arc<ArcSwap<ImapConfig>>,
    acceptor: TlsAcceptor,
    handshake: Duration,
    preauth_idle: Duration,
    shutdown: CancellationToken,
    /// [`ImapConfig::literal_memory_budget`] in [`BUDGET_UNIT`]s, shared by every connection.
    literal_budget: Arc<Semaphore>,
    budget_units: u32,
}

impl ImapServer {
    /// Binds `plain` (port 143 style, STARTTLS) and `implicit_tls` (port 993 style) listeners and
    /// serves them through the shared network edge until `shutdown` is cancelled. Port 0 picks
    /// a free port.
    pub async fn start(
        config: ImapConfig,
        net: &NetConfig,
        store: Store,
        tls: Arc<rustls::ServerConfig>,
        plain: Vec<SocketAddr>,
        implicit_tls: Vec<SocketAddr>,
        shutdown: CancellationToken,
    ) -> Result<ImapServer, ImapError> {
        let max_connections = config.max_connections;
        let acceptor = TlsAcceptor::from(tls);
        let budget_units = u32::try_from(
            config
                .literal_memory_budget
                .max(u64::from(config.max_message_size))
                / BUDGET_UNIT,
        )
        .unwrap_or(u32::MAX)
        .min(Semaphore::MAX_PERMITS as u32);
        let shared = Arc::new(Shared {
            store,
            config: Arc::new(ArcSwap::from_pointee(config)),
            acceptor: acceptor.clone(),
            handshake: net.tls_handshake_timeout(),
            preauth_idle: net.preauth_idle_timeout(),
            shutdown: shutdown.clone(),
            literal_budget: Arc::new(Semaphore::new(budget_units as usize)),
            budget_units,
        });
        let edge = Edge::new(shutdown);
        let mut server = ImapServer {
            plain: Vec::new(),
            tls: Vec::new(),
            edge: edge.clone(),
            settings: ImapSettings(shared.config.clone()),
        };
        for (addrs, implicit) in [(plain, false), (implicit_tls, true)] {
            let service = if implicit { "imaps" } else { "imap" };
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
                let spec = ListenerSpec {
                    limits: net.limits(service, max_connections, AtCapacity::Refuse),
                    tls: implicit.then(|| acceptor.clone()),
                    refusal: b"* BYE Too many connections\r\n".to_vec(),
                    proxy: net.proxy(service),
                    handshake_timeout: net.tls_handshake_timeout(),
                };
                let shared = shared.clone();
                edge.serve(listener, spec, move |conn| {
                    let shared = shared.clone();
                    async move {
                        if let Err(e) = connection(conn, &shared).await {
                            tracing::debug!(error = %e, "imap connection ended");
                        }
                    }
                });
            }
        }
        Ok(server)
    }

    /// The handle that changes the settings of new connections at run time.
    pub fn settings(&self) -> ImapSettings {
        self.settings.clone()
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
        self.edge.wait().await;
    }
}

async fn write(stream: &mut Link, bytes: &[u8]) -> std::io::Result<()> {
    stream.write_all(bytes).await?;
    stream.flush().await
}

/// A subscription, once there is one (from login on).
impl ChangeFeed for Option<broadcast::Receiver<Change>> {
    fn received(&mut self) -> (Vec<Change>, bool) {
        let mut seen = Vec::new();
        let mut lost = false;
        if let Some(rx) = self.as_mut() {
            loop {
                match rx.try_recv() {
                    Ok(c) => seen.push(c),
                    Err(broadcast::error::TryRecvError::Lagged(_)) => lost = true,
                    Err(_) => break,
                }
            }
        }
        (seen, lost)
    }
}

/// Completes when the session has something to push: while idling (RFC 2177) any change to the
/// selected mailbox, with NOTIFY (RFC 5465) what it asks for. Each change received is passed to
/// the session as it arrives; lost changes are pushed at once. Never completes while the session
/// watches nothing or has no subscription. Cancel-safe, for use in a `select!`.
async fn wait_push(
    changes: &mut Option<broadcast::Receiver<Change>>,
    session: &mut Session,
    idle: bool,
) {
    loop {
        let (Some(rx), true) = (changes.as_mut(), session.watching()) else {
            return std::future::pending().await;
        };
        match rx.recv().await {
            Ok(c) => {
                session.changes(std::slice::from_ref(&c));
                if session.push_due(idle) {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {
                session.changes_lost();
                return;
            }
            Err(broadcast::error::RecvError::Closed) => {
                return std::future::pending().await;
            }
        }
    }
}

/// Which streamed FETCH responses [`send_batches`] writes.
#[derive(Debug, Clone, Copy)]
enum Batches {
    /// A FETCH command's ([`Session::fetch_batch`]).
    Fetch,
    /// NOTIFY's of new messages ([`Session::notify_fetch_batch`], RFC 5465 §5.2).
    Notify,
}

/// Writes FETCH responses one bounded batch at a time: each is written (a client that does not
/// read fills the socket's buffers and holds the writer) before the next messages are read from
/// the store. `false` when the connection is to end: a client that stopped reading for
/// `timeout`, or a shutdown, ends it mid-reply.
async fn send_batches(
    conn: &mut Link,
    session: &mut Session,
    shared: &Shared,
    timeout: Duration,
    which: Batches,
) -> Result<bool, ImapError> {
    loop {
        let batch = match which {
            Batches::Fetch => session.fetch_batch().await,
            Batches::Notify => session.notify_fetch_batch().await,
        };
        let Some(bytes) = batch else {
            return Ok(true);
        };
        if bytes.is_empty() {
            continue;
        }
        let sent = tokio::select! {
            r = tokio::time::timeout(timeout, write(conn, &bytes)) => r.ok(),
            _ = shared.shutdown.cancelled() => None,
        };
        match sent {
            Some(r) => r?,
            None => return Ok(false),
        }
    }
}

/// What the connection expects next from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Command,
    Authenticate,
    Idle,
}

async fn connection(conn: Connection, shared: &Shared) -> Result<(), ImapError> {
    let Connection { stream, peer, .. } = conn;
    let mut conn = Link::new(stream);
    let config = shared.config.load_full();
    let mut session = Session::new(
        shared.store.clone(),
        config.clone(),
        peer.ip(),
        conn.is_tls(),
        postern_store::unix_now,
    );
    // The session's subscription to the store's change bus, from its login on.
    let mut changes: Option<broadcast::Receiver<Change>> = None;
    let limit = config.max_message_size;
    let new_fragmentizer = || Fragmentizer::new(limit.saturating_add(COMMAND_OVERHEAD));
    let mut frag = new_fragmentizer();
    write(
        &mut conn,
        &GreetingCodec::default().encode(&session.greeting()).dump(),
    )
    .await?;
    let mut mode = Mode::Command;
    let mut buf = vec![0u8; READ_BUFFER];
    // Bytes read from the client that the fragmentizer has not been given yet: it is fed only
    // up to the end of the fragment it parses next, so that when a line announces a literal the
    // shell itself still holds every byte after that line and can divert the literal.
    let mut input = Input::default();
    let mut spooled: Option<SpooledAppend> = None;
    // Counts the session in `postern_sessions_active` from its login to its end.
    let mut logged_in = None;
    let mut budget: Vec<OwnedSemaphorePermit> = Vec::new();
    loop {
        while let Some(info) = input.progress(&mut frag) {
            let literal_cap = if session.user().is_some() {
                limit
            } else {
                PREAUTH_MAX_INPUT
            };
            if let FragmentInfo::Line {
                announcement: Some(LiteralAnnouncement { mode: lit, length }),
                ..
            } = info
            {
                if spooled.is_some() {
                    // A streamed message must be its APPEND's only one: a further literal
                    // (MULTIAPPEND, RFC 3502) is refused with NO [LIMIT].
                    if lit == LiteralMode::Sync {
                        let tag = spooled.take().and_then(|s| s.tag);
                        input.skip(&mut frag);
                        let no = Session::streamed_not_alone(tag.as_ref());
                        write(&mut conn, &encode(&[no])).await?;
                    } else {
                        frag.poison_message();
                    }
                } else if length > literal_cap {
                    if lit == LiteralMode::Sync {
                        // RFC 9051 §7.1 TOOBIG, answered instead of the continuation request,
                        // so the client never sends the literal.
                        let tag = frag.decode_tag();
                        let refusal = Session::literal_too_big(tag.as_ref());
                        input.skip(&mut frag);
                        write(&mut conn, &encode(&[refusal])).await?;
                    } else if session.user().is_some() {
                        // A non-synchronizing literal is already on its way (RFC 7888 §4): a
                        // logged-in client's is read and dropped (memory stays at the
                        // fragmentizer's cap), then the command is refused with TOOBIG.
                        frag.poison_message();
                    } else {
                        // Before login, nobody is owed that much reading: say why and close.
                        let bye = Session::bye("Literal size too large");
                        write(&mut conn, &encode(&[bye])).await?;
                        return Ok(());
                    }
                } else if length > STREAM_LITERAL
                    && mode == Mode::Command
                    && session.user().is_some()
                    && input.literals().is_some_and(|l| l.is_empty())
                    && streamable_append(frag.message_bytes())
                {
                    // A large APPEND message goes to a spool file as it arrives, never into
                    // the fragmentizer. Client and server agree that the literal is exactly
                    // `length` bytes, so skipping it in the fragmentizer is safe; what follows
                    // it is parsed as the rest of the command.
                    let head = frag.message_bytes().to_vec();
                    let tag = frag.decode_tag().map(IntoStatic::into_static);
                    input.skip(&mut frag);
                    if lit == LiteralMode::Sync {
                        write(&mut conn, b"+ Ready for literal data\r\n").await?;
                    }
                    let spool = match receive_literal(
                        &mut conn,
                        &mut input,
                        length,
                        config.spool_dir.as_deref(),
                        &shared.shutdown,
                        config.inactivity_timeout(),
                    )
                    .await?
                    {
                        Received::Spool(spool) => spool,
                        Received::End(bye) => {
                            if let Some(bye) = bye {
                                write(&mut conn, &encode(&[bye])).await?;
                            }
                            return Ok(());
                        }
                    };
                    spooled = Some(SpooledAppend { head, tag, spool });
                } else {
                    if length > SMALL_LITERAL {
                        // Hold the socket (TCP then holds the client) until the literal fits
                        // in the memory all connections share for large literals.
                        let units = u32::try_from(u64::from(length).div_ceil(BUDGET_UNIT))
                            .unwrap_or(u32::MAX)
                            .min(shared.budget_units);
                        tokio::select! {
                            permit = shared.literal_budget.clone().acquire_many_owned(units) => {
                                budget.extend(permit.ok());
                            }
                            _ = shared.shutdown.cancelled() => {
                                write(&mut conn, &encode(&[Session::bye("Server shutting down")])).await?;
                                return Ok(());
                            }
                        }
                    }
                    if lit == LiteralMode::Sync {
                        write(&mut conn, b"+ Ready for literal data\r\n").await?;
                    }
                }
                continue;
            }
            if !frag.is_message_complete() {
                continue;
            }
            let mut reply = match (spooled.take(), mode) {
                (Some(append), _) => {
                    spooled_append(&mut session, append, &frag, &mut changes).await
                }
                (None, Mode::Command) => {
                    decode::command(&mut session, &frag, &input, &mut changes).await
                }
                (None, Mode::Authenticate) => {
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
                (None, Mode::Idle) => match frag.decode_message(&IdleDoneCodec::default()) {
                    Ok(_) => session.idle_done(&mut changes).await,
                    Err(_) => {
                        let mut r = session.idle_done(&mut changes).await;
                        r.responses
                            .insert(0, Session::syntax_error(None, "Expected DONE"));
                        r
                    }
                },
            };
            if changes.is_none() && session.user().is_some() {
                changes = Some(shared.store.subscribe());
            }
            let timeout = config.inactivity_timeout();
            if reply.next == Next::Fetch {
                if !send_batches(&mut conn, &mut session, shared, timeout, Batches::Fetch).await? {
                    return Ok(());
                }
                reply = session.fetch_done(&mut changes).await;
            }
            count_completed(&reply.responses);
            // NOTIFY's FETCH of new messages (RFC 5465 §5.2) follows the EXISTS that announced
            // them, before the tagged status.
            let status = if session.notify_fetch_due() {
                reply.responses.pop()
            } else {
                None
            };
            let mut out = std::mem::take(&mut reply.raw);
            out.extend(encode(&reply.responses));
            write(&mut conn, &out).await?;
            if let Some(status) = status {
                if !send_batches(&mut conn, &mut session, shared, timeout, Batches::Notify).await? {
                    return Ok(());
                }
                write(&mut conn, &encode(&[status])).await?;
            }
            if !budget.is_empty() || frag.message_bytes().len() > SMALL_LITERAL as usize {
                // Give the large message's memory back: the budget, and the buffer's capacity.
                // The fragmentizer holds no byte past the finished message (`input` feeds it one
                // fragment at a time), so a new one loses nothing.
                budget.clear();
                frag = new_fragmentizer();
            }
            if logged_in.is_none() {
                if let Some(user) = session.user() {
                    tracing::Span::current().record("user", user.address.to_string());
                    logged_in = Some(SessionGauge::logged_in("imap"));
                }
            }
            mode = match reply.next {
                Next::Continue | Next::Fetch => Mode::Command,
                Next::Compress => {
                    // What the client sent after COMPRESS and was already read is compressed.
                    conn.start_deflate(std::mem::take(&mut input.pending));
                    Mode::Command
                }
                Next::Authenticate => Mode::Authenticate,
                Next::Idle => Mode::Idle,
                Next::Logout => return Ok(()),
                Next::StartTls => {
                    // Anything pipelined after STARTTLS was sent in clear text: discard it
                    // (RFC 3501 §6.2.1, CVE-2011-0411 class of injection).
                    frag = new_fragmentizer();
                    input = Input::default();
                    conn.stream()
                        .start_tls(&shared.acceptor, shared.handshake)
                        .await?;
                    session.tls_established();
                    Mode::Command
                }
            };
            if reply.next == Next::StartTls {
                break;
            }
        }
        // Before login, a command may hold at most PREAUTH_MAX_INPUT bytes; after it, the
        // fragmentizer's own cap (the largest message plus room) applies. A command that runs
        // past its cap ends the connection: nothing useful can follow it.
        let input_cap = if session.user().is_some() {
            limit.saturating_add(COMMAND_OVERHEAD)
        } else {
            PREAUTH_MAX_INPUT
        };
        let overflow = frag.is_max_message_size_exceeded() && !frag.is_message_poisoned();
        if overflow || frag.message_bytes().len() > input_cap as usize {
            write(&mut conn, &encode(&[Session::bye("Input buffer full")])).await?;
            return Ok(());
        }
        let timeout = if mode == Mode::Idle {
            config.idle_timeout()
        } else if session.user().is_none() {
            shared.preauth_idle
        } else {
            config.inactivity_timeout()
        };
        tokio::select! {
            r = conn.read(&mut buf) => {
                let n = r?;
                if n == 0 {
                    return Ok(());
                }
                input.pending.extend_from_slice(&buf[..n]);
            }
            _ = wait_push(&mut changes, &mut session, mode == Mode::Idle),
                if mode == Mode::Idle || (mode == Mode::Command && session.notifying()) => {
                let updates = if mode == Mode::Idle {
                    session.idle_updates(&mut changes).await
                } else {
                    session.push_updates(&mut changes).await
                };
                if !updates.is_empty() {
                    write(&mut conn, &updates).await?;
                }
                let timeout = config.inactivity_timeout();
                if !send_batches(&mut conn, &mut session, shared, timeout, Batches::Notify).await? {
                    return Ok(());
                }
            }
            _ = tokio::time::sleep(timeout) => {
                write(&mut conn, &encode(&[Session::bye("Autologout; idle for too long")])).await?;
                return Ok(());
            }
            _ = shared.shutdown.cancelled() => {
                write(&mut conn, &encode(&[Session::bye("Server shutting down")])).await?;
                return Ok(());
            }
        }
    }
}
