//! The UDP listener: blocking worker threads that answer each query inline.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use hickory_proto::op::ResponseCode;
use tokio_util::sync::CancellationToken;

use super::mmsg::Batch;
use super::{unix_now, Core};
use crate::engine::{respond_full, Outcome, Request, Transport};
use crate::update::UpdateRequest;
use crate::wire::{self, Writer};

/// One of a few threads answering a UDP socket with blocking calls (one per core, like
/// Knot and NSD): the queries waiting are taken together ([`Batch`]) and answered inline, so
/// the number of threads caps the work in flight, and the query path never waits for the
/// async runtime.
pub(super) fn udp_worker(
    core: &Arc<Core>,
    socket: &std::net::UdpSocket,
    local: SocketAddr,
    shutdown: &CancellationToken,
) {
    let mut batch = Batch::new();
    let mut writer = Writer::default();
    while !shutdown.is_cancelled() {
        let received = match batch.recv(socket) {
            Ok(n) => n,
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
        let state = core.state.load();
        for i in 0..received {
            let Some((packet, src)) = batch.packet(i) else {
                continue;
            };
            let started = Instant::now();
            let request = Request {
                packet,
                src,
                dst: local,
                transport: Transport::Udp,
                now: unix_now(),
            };
            if wire::respond(&state, &core.stats, &request, &mut writer) {
                core.stats.answered(Transport::Udp, started.elapsed());
                batch.queue(i, writer.message());
                continue;
            }
            let outcome = respond_full(&state, &core.stats, request);
            core.stats.answered(Transport::Udp, started.elapsed());
            let responses = match outcome {
                Outcome::Reply(responses) => responses,
                Outcome::Transfer(transfer) => transfer.collect(),
                Outcome::Update(request) => update(core, socket, *request, src),
            };
            for response in responses {
                batch.queue(i, &response);
            }
        }
        drop(state);
        batch.send(socket);
    }
}

/// Applies an UPDATE received over UDP from a task (the store write is async and may take a
/// while) that sends the answer; SERVFAIL at once, returned, when too many are in flight.
fn update(
    core: &Arc<Core>,
    socket: &std::net::UdpSocket,
    request: UpdateRequest,
    src: SocketAddr,
) -> Vec<Vec<u8>> {
    let Ok(permit) = core.pending_updates.clone().try_acquire_owned() else {
        tracing::warn!(%src, "too many dynamic updates in flight; SERVFAIL");
        return request.reply(&core.stats, ResponseCode::ServFail);
    };
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
    Vec::new()
}
