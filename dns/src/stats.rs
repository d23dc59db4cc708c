//! Query counters, exported by the binary on `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters, updated by the query path.
#[derive(Debug, Default)]
pub struct DnsStats {
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
