//! Query counters: kept here for [`DnsServer::counters`](crate::DnsServer::counters) and reported
//! through the `metrics` facade, which the binary exports on `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::engine::Transport;
use crate::state::View;

/// Live counters, updated by the query path.
#[derive(Debug, Default)]
pub struct DnsStats {
    handles: Handles,
    queries: AtomicU64,
    refused: AtomicU64,
    nxdomain: AtomicU64,
    formerr: AtomicU64,
    truncated: AtomicU64,
    transfers: AtomicU64,
    tsig_failures: AtomicU64,
    rrl_dropped: AtomicU64,
    rrl_slipped: AtomicU64,
    updates: AtomicU64,
}

/// A snapshot of the counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DnsCounters {
    /// Requests answered (all opcodes), excluding dropped packets.
    pub queries: u64,
    /// REFUSED answers (no view, no zone, transfer denied...).
    pub refused: u64,
    /// NXDOMAIN answers.
    pub nxdomain: u64,
    /// FORMERR answers.
    pub formerr: u64,
    /// UDP answers sent with TC=1.
    pub truncated: u64,
    /// Zone transfers served (AXFR and IXFR).
    pub transfers: u64,
    /// Requests whose TSIG failed to verify.
    pub tsig_failures: u64,
    /// UDP responses withheld by response-rate limiting (dropped plus slipped).
    pub rrl_limited: u64,
    /// Rate-limited responses not sent at all.
    pub rrl_dropped: u64,
    /// Rate-limited responses sent truncated (TC=1) instead ("slip").
    pub rrl_slipped: u64,
    /// Dynamic UPDATEs applied (RFC 2136).
    pub updates: u64,
}

/// Which counter to bump.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Counter {
    Query,
    Refused,
    NxDomain,
    FormErr,
    Truncated,
    Transfer,
    TsigFailure,
    RrlDropped,
    RrlSlipped,
    Update,
}

/// Each [`Counter`]'s metric, in the enum's order: name, label and label value.
const METRICS: [(&str, &str, &str); 10] = [
    ("postern_dns_responses_total", "kind", "all"),
    ("postern_dns_responses_total", "kind", "refused"),
    ("postern_dns_responses_total", "kind", "nxdomain"),
    ("postern_dns_responses_total", "kind", "formerr"),
    ("postern_dns_responses_total", "kind", "truncated"),
    ("postern_dns_responses_total", "kind", "transfer"),
    ("postern_dns_responses_total", "kind", "tsig_failure"),
    ("postern_dns_rrl_total", "action", "dropped"),
    ("postern_dns_rrl_total", "action", "slipped"),
    ("postern_dns_responses_total", "kind", "update"),
];

/// The `metrics` facade's handles, registered once (with the recorder installed when the
/// server starts) so that the query path looks nothing up.
#[derive(Debug)]
struct Handles {
    counters: [metrics::Counter; 10],
    rrl_limited: metrics::Counter,
    unrouted: metrics::Counter,
    udp: metrics::Histogram,
    tcp: metrics::Histogram,
}

impl Default for Handles {
    fn default() -> Handles {
        let latency = |transport: &'static str| metrics::histogram!("postern_dns_query_duration_seconds", "transport" => transport);
        Handles {
            counters: METRICS.map(|(name, label, value)| metrics::counter!(name, label => value)),
            rrl_limited: metrics::counter!("postern_dns_rrl_total", "action" => "limited"),
            unrouted: metrics::counter!("postern_dns_queries_total", "view" => "none"),
            udp: latency("udp"),
            tcp: latency("tcp"),
        }
    }
}

impl DnsStats {
    pub(crate) fn bump(&self, counter: Counter) {
        let c = match counter {
            Counter::Query => &self.queries,
            Counter::Refused => &self.refused,
            Counter::NxDomain => &self.nxdomain,
            Counter::FormErr => &self.formerr,
            Counter::Truncated => &self.truncated,
            Counter::Transfer => &self.transfers,
            Counter::TsigFailure => &self.tsig_failures,
            Counter::RrlDropped => &self.rrl_dropped,
            Counter::RrlSlipped => &self.rrl_slipped,
            Counter::Update => &self.updates,
        };
        c.fetch_add(1, Ordering::Relaxed);
        self.handles.counters[counter as usize].increment(1);
        if matches!(counter, Counter::RrlDropped | Counter::RrlSlipped) {
            self.handles.rrl_limited.increment(1);
        }
    }

    /// Counts a query routed to `view` (`None`: no view matched the client). View names come
    /// from the configuration, so the label's values are bounded.
    pub(crate) fn routed(&self, view: Option<&View>) {
        match view {
            Some(view) => view.queries.increment(1),
            None => self.handles.unrouted.increment(1),
        }
    }

    /// Records how long one request took to answer, from the received packet to the responses.
    pub(crate) fn answered(&self, transport: Transport, took: Duration) {
        let histogram = match transport {
            Transport::Udp => &self.handles.udp,
            Transport::Tcp => &self.handles.tcp,
        };
        histogram.record(took.as_secs_f64());
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> DnsCounters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        DnsCounters {
            queries: get(&self.queries),
            refused: get(&self.refused),
            nxdomain: get(&self.nxdomain),
            formerr: get(&self.formerr),
            truncated: get(&self.truncated),
            transfers: get(&self.transfers),
            tsig_failures: get(&self.tsig_failures),
            rrl_limited: get(&self.rrl_dropped) + get(&self.rrl_slipped),
            rrl_dropped: get(&self.rrl_dropped),
            rrl_slipped: get(&self.rrl_slipped),
            updates: get(&self.updates),
        }
    }
}

/// Describes the DNS metrics (HELP lines) and starts the fixed label sets at zero, so that rates
/// are defined from the first scrape; call once after installing the recorder.
pub fn describe_metrics() {
    for (name, label, value) in METRICS {
        metrics::counter!(name, label => value).increment(0);
    }
    metrics::counter!("postern_dns_rrl_total", "action" => "limited").increment(0);
    metrics::describe_counter!(
        "postern_dns_responses_total",
        "DNS requests answered (kind=all) and, of them, by kind of answer."
    );
    metrics::describe_counter!(
        "postern_dns_rrl_total",
        "UDP responses withheld by response-rate limiting: dropped, slipped (sent truncated), limited (both)."
    );
    metrics::describe_counter!(
        "postern_dns_queries_total",
        "DNS queries by the view that answered them (none: no view matched the client)."
    );
    metrics::describe_counter!(
        "postern_dns_zone_builds_total",
        "Zones built (parsed, merged with the store's records, signed) by view and zone: a change rebuilds only the zones it touches."
    );
    metrics::describe_histogram!(
        "postern_dns_query_duration_seconds",
        metrics::Unit::Seconds,
        "Time to answer one DNS request, by transport."
    );
}
