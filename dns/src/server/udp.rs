//! The UDP listener: blocking worker threads that answer each query inline.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use hickory_proto::op::ResponseCode;
use tokio_util::sync::CancellationToken;

use super::{unix_now, Core};
use crate::engine::{respond_full, Outcome, Request, Transport};
use crate::wire::{self, Writer};

/// One of a few threads answering a UDP socket with blocking calls (one per core, like
/// Knot and NSD): each query is answered inline, so the number of threads caps the work in
/// flight, and the query path never waits for the async runtime.
pub(super) fn udp_worker(
    core: &Arc<Core>,
    socket: &std::net::UdpSocket,
    local: SocketAddr,
    shutdown: &CancellationToken,
) {
    let mut buf = vec![0u8; 65535];
    let mut writer = Writer::default();
    while !shutdown.is_cancelled() {
        let (len, src) = match socket.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) => {
                tracing::debug!("UDP receive: {e}");
                continue;
            }
        };
        let started = Instant::now();
        let state = core.state.load();
        let request = Request {
            packet: &buf[..len],
            src,
            dst: local,
            transport: Transport::Udp,
            now: unix_now(),
        };
        if wire::respond(&state, &core.stats, &request, &mut writer) {
            core.stats.answered(Transport::Udp, started.elapsed());
            if let Err(e) = socket.send_to(writer.message(), src) {
                tracing::debug!(%src, "UDP send: {e}");
            }
            continue;
        }
        let outcome = respond_full(&state, &core.stats, request);
        drop(state);
        core.stats.answered(Transport::Udp, started.elapsed());
        let responses = match outcome {
            Outcome::Reply(responses) => responses,
            Outcome::Transfer(transfer) => transfer.collect(),
            Outcome::Update(request) => {
                let Ok(permit) = core.pending_updates.clone().try_acquire_owned() else {
                    tracing::warn!(%src, "too many dynamic updates in flight; SERVFAIL");
                    for response in request.reply(&core.stats, ResponseCode::ServFail) {
                        let _ = socket.send_to(&response, src);
                    }
                    continue;
                };
                // The store write is async and may take a while: answer from a task.
                match socket.try_clone() {
                    Ok(socket) => {
                        let core = core.clone();
                        core.runtime.clone().spawn(async move {
                            let _permit = permit;
                            for response in core.update(&request).await {
                                if let Err(e) = socket.send_to(&response, src) {
                                    tracing::debug!(%src, "UDP send: {e}");
                                }
                            }
                        });
                    }
                    Err(e) => tracing::warn!("cannot answer UPDATE: {e}"),
                }
                continue;
            }
        };
        for response in responses {
            if let Err(e) = socket.send_to(&response, src) {
                tracing::debug!(%src, "UDP send: {e}");
            }
        }
    }
}
