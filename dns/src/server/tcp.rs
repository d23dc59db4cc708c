//! The TCP listener's connections (RFC 7766): pipelined queries answered in order, and zone
//! transfers streamed without holding up the threads that answer queries.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use postern_net::Connection;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio_util::sync::CancellationToken;

use super::{unix_now, Core, TCP_IO_TIMEOUT, TRANSFER_BACKLOG};

/// Answers buffered past this many octets are written even while more queries wait.
const FLUSH_AT: usize = 16 * 1024;
use crate::engine::{respond_full, Outcome, Request, Transport};
use crate::transfer::Outgoing;
use crate::wire::{self, Writer};

/// One TCP connection (RFC 7766): length-prefixed messages, answered in order, so
/// pipelined queries work; closed after `idle` without a new query, or when the edge needs its
/// place for a newcomer while it waits for a query.
pub(super) async fn tcp_connection(
    core: Arc<Core>,
    conn: Connection,
    idle: Duration,
    shutdown: CancellationToken,
) {
    let Connection {
        stream,
        peer,
        local,
        slot,
    } = conn;
    let activity = slot.activity().clone();
    let (reader, mut writer) = tokio::io::split(stream);
    let mut reader = BufReader::new(reader);
    let mut packet = Vec::new();
    let mut answer = Writer::default();
    // Answers not written yet: while pipelined queries are already buffered, their answers
    // go out together in one write (RFC 7766 §6.2.1.1).
    let mut pending = Vec::new();
    loop {
        if !pending.is_empty()
            && (pending.len() >= FLUSH_AT || !whole_message(reader.buffer()))
            && !flush(&mut writer, &mut pending).await
        {
            return;
        }
        let mut len = [0u8; 2];
        activity.set_idle(true);
        let got = tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = activity.evicted() => break,
            r = tokio::time::timeout(idle, reader.read_exact(&mut len)) => r,
        };
        activity.set_idle(false);
        if !matches!(got, Ok(Ok(_))) {
            break;
        }
        packet.clear();
        packet.resize(usize::from(u16::from_be_bytes(len)), 0);
        if !matches!(
            tokio::time::timeout(TCP_IO_TIMEOUT, reader.read_exact(&mut packet)).await,
            Ok(Ok(_))
        ) {
            break;
        }
        let started = Instant::now();
        let request = Request {
            packet: &packet,
            src: peer,
            dst: local,
            transport: Transport::Tcp,
            now: unix_now(),
        };
        let outcome = {
            let state = core.state.load();
            if wire::respond(&state, &core.stats, &request, &mut answer) {
                None
            } else {
                Some(respond_full(&state, &core.stats, request))
            }
        };
        core.stats.answered(Transport::Tcp, started.elapsed());
        let responses = match outcome {
            None => {
                frame(&mut pending, answer.message(), peer);
                continue;
            }
            Some(Outcome::Reply(responses)) => responses,
            Some(other) => {
                // An update or a transfer may take a while: what is answered goes first.
                if !flush(&mut writer, &mut pending).await {
                    return;
                }
                match other {
                    Outcome::Update(request) => core.update(&request).await,
                    Outcome::Transfer(transfer) => {
                        match core.transfers.clone().try_acquire_owned() {
                            Ok(permit) => {
                                if send_transfer(*transfer, permit, &mut writer, peer, &shutdown)
                                    .await
                                {
                                    continue;
                                }
                                return;
                            }
                            Err(_) => {
                                tracing::warn!(%peer, "too many zone transfers running; SERVFAIL");
                                transfer.busy()
                            }
                        }
                    }
                    Outcome::Reply(responses) => responses,
                }
            }
        };
        for response in responses {
            frame(&mut pending, &response, peer);
        }
    }
    if flush(&mut writer, &mut pending).await {
        let _ = writer.shutdown().await;
    }
}

/// True when `buffered` starts with a whole length-prefixed message.
fn whole_message(buffered: &[u8]) -> bool {
    match buffered {
        [high, low, rest @ ..] => rest.len() >= usize::from(u16::from_be_bytes([*high, *low])),
        _ => false,
    }
}

/// Appends one length-prefixed message (RFC 1035 §4.2.2) to `pending`. A message longer than
/// 65535 octets is dropped.
fn frame(pending: &mut Vec<u8>, message: &[u8], peer: SocketAddr) {
    let Ok(len) = u16::try_from(message.len()) else {
        tracing::warn!(%peer, "response longer than 65535 bytes dropped");
        return;
    };
    pending.extend_from_slice(&len.to_be_bytes());
    pending.extend_from_slice(message);
}

/// Writes and empties `pending`; false when the connection failed.
async fn flush(writer: &mut (impl AsyncWriteExt + Unpin), pending: &mut Vec<u8>) -> bool {
    if pending.is_empty() {
        return true;
    }
    let written = tokio::time::timeout(TCP_IO_TIMEOUT, writer.write_all(pending)).await;
    pending.clear();
    matches!(written, Ok(Ok(())))
}

/// Sends a zone transfer: its messages are built on a blocking thread, so that a large zone
/// never holds up the threads that answer queries, and at most [`TRANSFER_BACKLOG`] wait
/// for the socket, so that a slow reader slows down only its own transfer. False when the
/// connection failed or the server is shutting down.
async fn send_transfer(
    transfer: Outgoing,
    permit: tokio::sync::OwnedSemaphorePermit,
    writer: &mut (impl AsyncWriteExt + Unpin),
    peer: SocketAddr,
    shutdown: &CancellationToken,
) -> bool {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(TRANSFER_BACKLOG);
    let builder = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        transfer.send(&mut |message| tx.blocking_send(message).is_ok());
    });
    let ok = loop {
        let message = tokio::select! {
            _ = shutdown.cancelled() => break false,
            m = rx.recv() => m,
        };
        // None: the builder is done and everything was sent.
        let Some(message) = message else { break true };
        if !write_message(writer, &message, peer).await {
            break false;
        }
    };
    // Dropping the receiver stops the builder at its next message.
    drop(rx);
    if let Err(e) = builder.await {
        tracing::error!("zone transfer failed: {e}");
        return false;
    }
    ok
}

/// Writes one length-prefixed message (RFC 1035 §4.2.2); false when the connection failed. A
/// message longer than 65535 octets is dropped.
async fn write_message(
    writer: &mut (impl AsyncWriteExt + Unpin),
    message: &[u8],
    peer: SocketAddr,
) -> bool {
    let mut framed = Vec::with_capacity(message.len() + 2);
    frame(&mut framed, message, peer);
    flush(writer, &mut framed).await
}
