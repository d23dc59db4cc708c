//! The sans-I/O query path: request bytes in, response messages out.
//!
//! Header and opcode checks (RFC 1035 §4.1.1), EDNS(0) (RFC 6891), TSIG (RFC 8945), view
//! routing, REFUSED for anything not authoritative here, the authoritative lookup with DNSSEC
//! records when the DO bit asks for them (RFC 4035 §3.2.1), zone
//! transfers, and UDP size limits with TC=1 (RFC 1035 §4.2.1, RFC 6891 §6.2.3, RFC 9471).

use std::net::SocketAddr;

use hickory_proto::op::{Edns, Header, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use crate::acl::Who;
use crate::dnssec::add_dnssec;
use crate::lookup::{lookup, Answer};
use crate::rrl::{Decision, RateLimiter, ResponseKind};
use crate::state::{ServingState, View};
use crate::stats::{Counter, DnsStats};
use crate::transfer::{self, Outgoing};
use crate::tsig::{sign_failure, Signed, Verification};
use crate::update::UpdateRequest;

/// UDP payload size without EDNS (RFC 1035 §4.2.1).
pub(crate) const CLASSIC_UDP: usize = 512;
/// The largest UDP payload we send or advertise (DNS Flag Day 2020 value, RFC 9715).
pub const MAX_UDP_PAYLOAD: u16 = 1232;
/// Room kept for the TSIG record when a response will be signed.
const TSIG_ROOM: usize = 160;

/// How the request arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP: size-limited, no zone transfers.
    Udp,
    /// TCP: up to 65535 bytes per message, transfers streamed over several messages.
    Tcp,
}

/// One request as received.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The raw message.
    pub packet: &'a [u8],
    /// Client address.
    pub src: SocketAddr,
    /// Local address the request arrived on.
    pub dst: SocketAddr,
    /// UDP or TCP.
    pub transport: Transport,
    /// Current time, seconds since the Unix epoch (for TSIG).
    pub now: u64,
}

/// What the shell must do with a request.
pub enum Outcome {
    /// Send these messages (none: send nothing; several: a zone transfer).
    Reply(Vec<Vec<u8>>),
    /// A dynamic UPDATE (RFC 2136): evaluate it against the current state with the other
    /// updates held off, apply it through the [`crate::UpdateHandler`], then reply.
    Update(Box<UpdateRequest>),
    /// A zone transfer over TCP: its messages are built while they are sent
    /// ([`Outgoing::send`]), where that delays no other query, or refused as busy
    /// ([`Outgoing::busy`]) when too many transfers are running.
    Transfer(Box<Outgoing>),
}

impl From<Vec<Vec<u8>>> for Outcome {
    fn from(messages: Vec<Vec<u8>>) -> Self {
        Outcome::Reply(messages)
    }
}

/// Answers one request. An empty result means "send nothing" (not a query, or too
/// broken to answer); several messages are a zone transfer. UPDATE is answered REFUSED
/// here: the server shell uses [`respond_full`] to apply updates.
pub fn respond(state: &ServingState, stats: &DnsStats, req: Request<'_>) -> Vec<Vec<u8>> {
    match respond_full(state, stats, req) {
        Outcome::Reply(messages) => messages,
        Outcome::Update(update) => update.reply(stats, ResponseCode::Refused),
        Outcome::Transfer(transfer) => transfer.collect(),
    }
}

/// Like [`respond`], but hands a decodable UPDATE (RFC 2136 §3), with its TSIG verified,
/// back to the caller; a failed TSIG is answered NOTAUTH here (RFC 8945 §5.2).
pub fn respond_full(state: &ServingState, stats: &DnsStats, req: Request<'_>) -> Outcome {
    let update = Header::read(&mut BinDecoder::new(req.packet))
        .is_ok_and(|h| h.message_type == MessageType::Query && h.op_code == OpCode::Update);
    if !update {
        return respond_query(state, stats, req);
    }
    stats.bump(Counter::Query);
    let msg = match Message::from_vec(req.packet) {
        Ok(msg) => msg,
        Err(_) => return Outcome::Reply(form_error(stats, req.packet)),
    };
    if let Some(edns) = &msg.edns {
        if edns.version() > 0 {
            return Outcome::Reply(error(stats, base_response(&msg), ResponseCode::BADVERS));
        }
    }
    match state.keys.verify(req.packet, &msg, req.now) {
        // Only signed updates are considered: refusing the others here costs an unsigned
        // flood no more than a query does.
        Verification::Unsigned => {
            tracing::debug!(client = %req.src, "unsigned UPDATE refused");
            Outcome::Reply(error(stats, base_response(&msg), ResponseCode::Refused))
        }
        Verification::Signed(signed) => Outcome::Update(Box::new(UpdateRequest::new(
            msg,
            Some(signed),
            req.src,
            req.dst,
            req.now,
        ))),
        Verification::Failed(context) => {
            Outcome::Reply(tsig_failure(stats, base_response(&msg), context))
        }
        Verification::Malformed => Outcome::Reply(form_error(stats, req.packet)),
    }
}

/// FORMERR for a message whose header decodes but whose body does not (RFC 1035 §4.1.1).
fn form_error(stats: &DnsStats, packet: &[u8]) -> Vec<Vec<u8>> {
    let Ok(header) = Header::read(&mut BinDecoder::new(packet)) else {
        return Vec::new();
    };
    stats.bump(Counter::FormErr);
    let mut resp = Message::error_msg(header.id, header.op_code, ResponseCode::FormErr);
    resp.metadata.recursion_desired = header.recursion_desired;
    encode(&resp).into_iter().collect()
}

/// NOTAUTH with the TSIG error (BADKEY, BADSIG, BADTIME) in a TSIG record (RFC 8945 §5.2).
fn tsig_failure(
    stats: &DnsStats,
    mut resp: Message,
    context: hickory_proto::rr::TSigResponseContext,
) -> Vec<Vec<u8>> {
    stats.bump(Counter::TsigFailure);
    resp.metadata.response_code = ResponseCode::NotAuth;
    let Some(mut bytes) = encode(&resp) else {
        return Vec::new();
    };
    match sign_failure(context, &mut bytes) {
        Ok(()) => vec![bytes],
        Err(e) => {
            tracing::warn!("cannot build TSIG error response: {e}");
            Vec::new()
        }
    }
}

/// The query path (every opcode but UPDATE).
fn respond_query(state: &ServingState, stats: &DnsStats, req: Request<'_>) -> Outcome {
    let Ok(header) = Header::read(&mut BinDecoder::new(req.packet)) else {
        return Vec::new().into();
    };
    if header.message_type != MessageType::Query {
        return Vec::new().into();
    }
    stats.bump(Counter::Query);
    let Ok(msg) = Message::from_vec(req.packet) else {
        return form_error(stats, req.packet).into();
    };
    let mut resp = base_response(&msg);
    let rcode = match msg.op_code {
        OpCode::Query => None,
        OpCode::Notify | OpCode::Update => Some(ResponseCode::Refused),
        _ => Some(ResponseCode::NotImp),
    };
    let rcode = rcode.or_else(|| match (msg.queries.len(), &msg.edns) {
        (n, _) if n != 1 => Some(ResponseCode::FormErr),
        (_, Some(edns)) if edns.version() > 0 => Some(ResponseCode::BADVERS),
        _ => None,
    });
    if let Some(rcode) = rcode {
        if rcode == ResponseCode::NotImp {
            // The flag bits of an unknown opcode mean nothing to us: none is echoed.
            resp.metadata.checking_disabled = false;
        }
        return error(stats, resp, rcode).into();
    }
    let signed = match state.keys.verify(req.packet, &msg, req.now) {
        Verification::Unsigned => None,
        Verification::Signed(signed) => Some(signed),
        Verification::Failed(context) => return tsig_failure(stats, resp, context).into(),
        Verification::Malformed => return form_error(stats, req.packet).into(),
    };
    let key = signed.as_ref().map(Signed::key);
    let query = &msg.queries[0];
    let qtype = query.query_type();
    let view = state.route(req.src, req.dst, key);
    stats.routed(view);
    // RRL applies to unsigned UDP requests in views that configure it.
    let rrl = (req.transport == Transport::Udp && signed.is_none())
        .then(|| view.and_then(View::rrl))
        .flatten();
    let limit = |kind: ResponseKind, name: &Name, out: Vec<Vec<u8>>| match rrl {
        None => out,
        Some(rrl) => rate_limit(stats, rrl, &req, kind, name, qtype, out),
    };
    let served = view
        .filter(|_| query.query_class() == DNSClass::IN)
        .and_then(|view| view.find_zone(query.name()));
    let Some(served) = served else {
        let out = finish(
            stats,
            resp,
            error_limit(&req),
            false,
            signed.as_ref(),
            req.now,
            ResponseCode::Refused,
        );
        return limit(ResponseKind::Error, query.name(), out).into();
    };
    if matches!(qtype, RecordType::AXFR | RecordType::IXFR) {
        let who = Who {
            ip: req.src.ip(),
            key,
        };
        return match transfer::transfer(&msg, served, req.transport, who) {
            Ok(transfer) => {
                stats.bump(Counter::Transfer);
                let outgoing = Outgoing::new(transfer, signed, req.now);
                if outgoing.is_single() {
                    limit(ResponseKind::Answer, query.name(), outgoing.collect()).into()
                } else {
                    Outcome::Transfer(Box::new(outgoing))
                }
            }
            Err(rcode) => {
                let out = finish(
                    stats,
                    resp,
                    error_limit(&req),
                    false,
                    signed.as_ref(),
                    req.now,
                    rcode,
                );
                limit(ResponseKind::Error, query.name(), out).into()
            }
        };
    }
    let mut answer = lookup(
        &served.zone,
        query.name(),
        qtype,
        req.transport == Transport::Udp,
    );
    let dnssec_ok = msg.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok);
    if let Some(signed) = served.signed.as_deref().filter(|_| dnssec_ok) {
        add_dnssec(&served.zone, signed, query.name(), &mut answer);
    }
    // What RRL keys this response by, worked out only when the view limits this request.
    let rrl_key = rrl.map(|_| rrl_key(&answer, served.zone.origin(), query.name()));
    resp.metadata.authoritative = answer.authoritative;
    resp.answers = answer.answers;
    resp.authorities = answer.authorities;
    resp.additionals = answer.additionals;
    let size = size_limit(&msg, req.transport);
    let out = finish(
        stats,
        resp,
        size,
        answer.required_glue,
        signed.as_ref(),
        req.now,
        answer.rcode,
    );
    match rrl_key {
        Some((kind, name)) => limit(kind, &name, out).into(),
        None => out.into(),
    }
}

/// The RRL class of an answer and the name it is keyed by: the zone for NXDOMAIN, the
/// delegation for a referral, else the query name.
fn rrl_key(answer: &Answer, origin: &Name, qname: &Name) -> (ResponseKind, Name) {
    if answer.rcode == ResponseCode::NXDomain {
        (ResponseKind::NxDomain, origin.clone())
    } else if !answer.authoritative && answer.answers.is_empty() {
        let cut = answer
            .authorities
            .first()
            .map_or_else(|| qname.clone(), |r| r.name.clone());
        (ResponseKind::Referral, cut)
    } else {
        (ResponseKind::Answer, qname.clone())
    }
}

/// Response-rate limiting (see [`crate::rrl`]), called only for UDP requests without TSIG
/// (a signed request's source is authenticated, so it cannot be reflected) in views with
/// `rrl` configured: with RRL off the query path pays one branch. A slipped response keeps
/// the header, question and OPT but no records, with TC=1 (RFC 1035 §4.2.1), so the client
/// retries over TCP.
fn rate_limit(
    stats: &DnsStats,
    rrl: &RateLimiter,
    req: &Request<'_>,
    kind: ResponseKind,
    name: &Name,
    qtype: RecordType,
    out: Vec<Vec<u8>>,
) -> Vec<Vec<u8>> {
    if out.is_empty() {
        return out;
    }
    match rrl.check(req.src.ip(), kind, name, qtype, req.now) {
        Decision::Send => out,
        Decision::Drop => {
            stats.bump(Counter::RrlDropped);
            Vec::new()
        }
        Decision::Slip => {
            stats.bump(Counter::RrlSlipped);
            let Ok(mut msg) = Message::from_vec(&out[0]) else {
                return Vec::new();
            };
            msg.answers.clear();
            msg.authorities.clear();
            msg.additionals.clear();
            msg.metadata.truncation = true;
            encode(&msg).into_iter().collect()
        }
    }
}

fn error(stats: &DnsStats, resp: Message, rcode: ResponseCode) -> Vec<Vec<u8>> {
    finish(stats, resp, usize::from(u16::MAX), false, None, 0, rcode)
}

fn error_limit(req: &Request<'_>) -> usize {
    match req.transport {
        Transport::Udp => CLASSIC_UDP,
        Transport::Tcp => usize::from(u16::MAX),
    }
}

/// The response skeleton: same ID, opcode, RD and CD, the question, and an OPT record if
/// the request had one (RFC 6891 §6.1.1).
pub(crate) fn base_response(req: &Message) -> Message {
    let mut resp = Message::response(req.id, req.op_code);
    resp.metadata.recursion_desired = req.recursion_desired;
    resp.metadata.checking_disabled = req.checking_disabled;
    resp.queries = req.queries.clone();
    if let Some(edns) = &req.edns {
        let mut ours = Edns::new();
        ours.set_max_payload(MAX_UDP_PAYLOAD);
        ours.set_dnssec_ok(edns.flags().dnssec_ok);
        resp.edns = Some(ours);
    }
    resp
}

/// The UDP size limit: 512 without EDNS, else the client's size clamped to [512, 1232].
fn size_limit(req: &Message, transport: Transport) -> usize {
    match (transport, &req.edns) {
        (Transport::Tcp, _) => usize::from(u16::MAX),
        (Transport::Udp, None) => CLASSIC_UDP,
        (Transport::Udp, Some(edns)) => usize::from(edns.max_payload().clamp(512, MAX_UDP_PAYLOAD)),
    }
}

/// Sets the RCODE, fits the message into `limit` and signs it.
///
/// Additional data that does not fit is dropped without TC (RFC 2181 §9) unless it is
/// glue a referral needs (RFC 9471); otherwise the answer is replaced by an empty one
/// with TC=1 so the client retries over TCP (RFC 1035 §4.2.1, RFC 7766 §5).
fn finish(
    stats: &DnsStats,
    mut resp: Message,
    limit: usize,
    required_glue: bool,
    signed: Option<&Signed>,
    now: u64,
    rcode: ResponseCode,
) -> Vec<Vec<u8>> {
    resp.metadata.response_code = rcode;
    match rcode {
        ResponseCode::Refused => stats.bump(Counter::Refused),
        ResponseCode::NXDomain => stats.bump(Counter::NxDomain),
        ResponseCode::FormErr => stats.bump(Counter::FormErr),
        _ => {}
    }
    let limit = if signed.is_some() {
        limit.saturating_sub(TSIG_ROOM)
    } else {
        limit
    };
    let Some(mut bytes) = encode(&resp) else {
        return Vec::new();
    };
    // hickory stops at 65535 octets with the records so far and TC set: too big as well.
    let too_big = |bytes: &[u8]| bytes.len() > limit || bytes.get(2).is_some_and(|b| b & 0x02 != 0);
    if too_big(&bytes) && !resp.additionals.is_empty() && !required_glue {
        resp.additionals.clear();
        match encode(&resp) {
            Some(b) => bytes = b,
            None => return Vec::new(),
        }
    }
    if too_big(&bytes) {
        stats.bump(Counter::Truncated);
        resp.answers.clear();
        resp.authorities.clear();
        resp.additionals.clear();
        resp.metadata.truncation = true;
        match encode(&resp) {
            Some(b) => bytes = b,
            None => return Vec::new(),
        }
    }
    let mut out = vec![bytes];
    if let Some(signed) = signed {
        if let Err(e) = signed.sign_all(&mut out, now) {
            tracing::warn!("cannot sign response: {e}");
            return Vec::new();
        }
    }
    out
}

pub(crate) fn encode(msg: &Message) -> Option<Vec<u8>> {
    match msg.to_vec() {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            tracing::warn!("cannot encode response: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DnsConfig;
    use crate::state::{build, Inputs, OnZoneError};
    use hickory_proto::op::Query;
    use hickory_proto::rr::Name;

    fn state() -> (tempfile::TempDir, ServingState) {
        state_with("")
    }

    fn state_with(view_options: &str) -> (tempfile::TempDir, ServingState) {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(dir.path().join("zones/v")).expect("mkdir");
        let mut zone = String::from("$TTL 300\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n");
        for i in 0..40 {
            zone.push_str(&format!("many A 192.0.2.{}\n", i + 10));
        }
        std::fs::write(dir.path().join("zones/v/t.test.zone"), zone).expect("write");
        let config: DnsConfig = toml::from_str(&format!(
            "[[view]]\nname = \"v\"\nmatch_clients = [\"127.0.0.0/8\"]\n{view_options}\n[[view.zone]]\nname = \"t.test\"\n"
        ))
        .expect("config");
        let mut inputs = Inputs::new(config, dir.path().to_path_buf());
        let (state, _) = build(&mut inputs, OnZoneError::Fail).expect("builds");
        (dir, state)
    }

    fn ask(state: &ServingState, msg: &Message, src: &str, transport: Transport) -> Vec<Message> {
        let packet = msg.to_vec().expect("encode");
        respond(
            state,
            &DnsStats::default(),
            Request {
                packet: &packet,
                src: src.parse().expect("addr"),
                dst: "127.0.0.1:53".parse().expect("addr"),
                transport,
                now: 1_800_000_000,
            },
        )
        .iter()
        .map(|b| Message::from_vec(b).expect("decodes"))
        .collect()
    }

    fn query(name: &str, rtype: RecordType) -> Message {
        let mut msg = Message::query();
        msg.metadata.id = 4242;
        msg.add_query(Query::query(Name::from_ascii(name).expect("name"), rtype));
        msg
    }

    #[test]
    fn rcodes_for_odd_requests() {
        let (_dir, state) = state();
        let local = "127.0.0.1:1000";
        let mut edns1 = query("t.test.", RecordType::SOA);
        let mut edns = Edns::new();
        edns.set_version(1);
        edns1.set_edns(edns);
        // BADVERS and BADSIG share code 16; hickory decodes it as BADSIG.
        let badvers = ask(&state, &edns1, local, Transport::Udp)[0].response_code;
        assert_eq!(u16::from(badvers), 16);
        let mut status = query("t.test.", RecordType::SOA);
        status.metadata.op_code = OpCode::Status;
        assert_eq!(
            ask(&state, &status, local, Transport::Udp)[0].response_code,
            ResponseCode::NotImp
        );
        let mut empty = query("t.test.", RecordType::SOA);
        empty.queries.clear();
        assert_eq!(
            ask(&state, &empty, local, Transport::Udp)[0].response_code,
            ResponseCode::FormErr
        );
        let outsider = ask(
            &state,
            &query("t.test.", RecordType::SOA),
            "192.0.2.9:1000",
            Transport::Udp,
        );
        assert_eq!(outsider[0].response_code, ResponseCode::Refused);
        let axfr_udp = ask(
            &state,
            &query("t.test.", RecordType::AXFR),
            local,
            Transport::Udp,
        );
        assert_eq!(axfr_udp[0].response_code, ResponseCode::FormErr);
        let mut response = query("t.test.", RecordType::SOA);
        response.metadata.message_type = MessageType::Response;
        assert!(
            ask(&state, &response, local, Transport::Udp).is_empty(),
            "responses are dropped"
        );
    }

    #[test]
    fn udp_size_limits() {
        let (_dir, state) = state();
        let local = "127.0.0.1:1000";
        let plain = ask(
            &state,
            &query("many.t.test.", RecordType::A),
            local,
            Transport::Udp,
        );
        assert!(plain[0].truncation, "40 A records exceed 512 bytes");
        assert!(plain[0].answers.is_empty());
        assert_eq!(plain[0].id, 4242);
        let mut with_edns = query("many.t.test.", RecordType::A);
        let mut edns = Edns::new();
        edns.set_max_payload(4096);
        with_edns.set_edns(edns);
        let big = ask(&state, &with_edns, local, Transport::Udp);
        assert!(!big[0].truncation, "fits in 1232 bytes");
        assert_eq!(big[0].answers.len(), 40);
        assert_eq!(
            big[0].edns.as_ref().map(Edns::max_payload),
            Some(MAX_UDP_PAYLOAD)
        );
        let tcp = ask(
            &state,
            &query("many.t.test.", RecordType::A),
            local,
            Transport::Tcp,
        );
        assert_eq!(tcp[0].answers.len(), 40);
    }

    #[test]
    fn rate_limit_applies_to_udp_only() {
        let (_dir, state) = state_with("rrl = { responses_per_second = 2, slip = 2 }");
        let stats = DnsStats::default();
        let packet = query("ns.t.test.", RecordType::A).to_vec().expect("encode");
        let send = |transport, now| {
            respond(
                &state,
                &stats,
                Request {
                    packet: &packet,
                    src: "127.0.0.7:5353".parse().expect("addr"),
                    dst: "127.0.0.1:53".parse().expect("addr"),
                    transport,
                    now,
                },
            )
        };
        let t0 = 1_800_000_000;
        assert_eq!(send(Transport::Udp, t0).len(), 1);
        assert_eq!(send(Transport::Udp, t0).len(), 1);
        assert!(send(Transport::Udp, t0).is_empty(), "third is dropped");
        let slip = send(Transport::Udp, t0);
        let slip = Message::from_vec(&slip[0]).expect("decodes");
        assert!(slip.truncation && slip.answers.is_empty(), "fourth slips");
        assert_eq!(slip.id, 4242);
        assert_eq!(send(Transport::Tcp, t0).len(), 1, "TCP is never limited");
        assert_eq!(send(Transport::Udp, t0 + 2).len(), 1, "refilled");
        let c = stats.snapshot();
        assert_eq!((c.rrl_limited, c.rrl_dropped, c.rrl_slipped), (2, 1, 1));
    }
}
