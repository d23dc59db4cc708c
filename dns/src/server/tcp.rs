//! The TCP listener's connections (RFC 7766): pipelined queries answered in order, and zone
//! transfers streamed without holding up the threads that answer queries.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use postern_net::Connection;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio_util::sync::CancellationToken;

use super::{unix_now, Core, TCP_IO_TIMEOUT, TRANSFER_BACKLOG};
use crate::engine::{respond_full, Outcome, Request, Transport};
use crate::transfer::Outgoing;

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
    loop {
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
        let mut packet = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if !matches!(
            tokio::time::timeout(TCP_IO_TIMEOUT, reader.read_exact(&mut packet)).await,
            Ok(Ok(_))
        ) {
            break;
        }
        let started = Instant::now();
        let outcome = {
            let state = core.state.load();
            respond_full(
                &state,
                &core.stats,
                Request {
                    packet: &packet,
                    src: peer,
                    dst: local,
                    transport: Transport::Tcp,
                    now: unix_now(),
                },
            )
        };
        core.stats.answered(Transport::Tcp, started.elapsed());
        let responses = match outcome {
            Outcome::Reply(responses) => responses,
            Outcome::Update(request) => core.update(&request).await,
            Outcome::Transfer(transfer) => match core.transfers.clone().try_acquire_owned() {
                Ok(permit) => {
                    if send_transfer(*transfer, permit, &mut writer, peer, &shutdown).await {
                        continue;
                    }
                    return;
                }
                Err(_) => {
                    tracing::warn!(%peer, "too many zone transfers running; SERVFAIL");
                    transfer.busy()
                }
            },
        };
        for response in responses {
            if !write_message(&mut writer, &response, peer).await {
                return;
            }
        }
    }
    let _ = writer.shutdown().await;
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
    let Ok(len) = u16::try_from(message.len()) else {
        tracing::warn!(%peer, "response longer than 65535 bytes dropped");
        return true;
    };
    let mut frame = Vec::with_capacity(message.len() + 2);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(message);
    matches!(
        tokio::time::timeout(TCP_IO_TIMEOUT, writer.write_all(&frame)).await,
        Ok(Ok(()))
    )
}
