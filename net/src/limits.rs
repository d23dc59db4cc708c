//! Connection admission for one listener: a cap on all connections and a cap per client address,
//! counted by [`Slot`]s that give their place back when dropped. At the cap a listener either
//! refuses newcomers or, for DNS over TCP, closes its oldest idle connection to make room
//! (RFC 7766 §6.2.2).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio_util::sync::CancellationToken;

/// What a listener does when all its connections are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtCapacity {
    /// Refuse the newcomer.
    Refuse,
    /// Close the oldest connection that is idle and take the newcomer (RFC 7766 §6.2.2); refuse
    /// it when every connection is busy.
    EvictOldestIdle,
}

/// Why a connection was not admitted; the label is the metric's `result`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The listener's cap is reached.
    Full,
    /// This client already holds its share.
    Client,
}

impl Refusal {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Refusal::Full => "refused_limit",
            Refusal::Client => "refused_client_limit",
        }
    }
}

/// What the protocol tells the edge about a live connection, and how the edge asks it to close.
#[derive(Debug, Default)]
pub struct Activity {
    idle: AtomicBool,
    evict: CancellationToken,
}

impl Activity {
    /// Marks the connection idle (waiting for the client's next request) or busy.
    pub fn set_idle(&self, idle: bool) {
        self.idle.store(idle, Ordering::Relaxed);
    }

    /// Completes when the edge wants this connection closed to make room for another.
    pub async fn evicted(&self) {
        self.evict.cancelled().await
    }
}

/// A client's key for the per-client cap: the IPv4 address, or the IPv6 /64.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
    }
}

#[derive(Default)]
struct State {
    total: usize,
    by_client: HashMap<IpAddr, usize>,
    next_id: u64,
    /// Live connections by age, kept only under [`AtCapacity::EvictOldestIdle`].
    live: BTreeMap<u64, Arc<Activity>>,
}

/// The caps of one listener.
pub struct Limits {
    service: &'static str,
    max: usize,
    per_client: usize,
    policy: AtCapacity,
    state: Mutex<State>,
}

impl Limits {
    /// Limits for a listener of `service`: `max` connections, `per_client` from one client.
    pub fn new(
        service: &'static str,
        max: usize,
        per_client: usize,
        policy: AtCapacity,
    ) -> Arc<Limits> {
        Arc::new(Limits {
            service,
            max,
            per_client,
            policy,
            state: Mutex::default(),
        })
    }

    /// The service name used in spans and metrics.
    pub fn service(&self) -> &'static str {
        self.service
    }

    /// The connections held now.
    pub fn active(&self) -> usize {
        self.lock().total
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits a connection against the listener cap, and against the per-client cap when the
    /// client is already known (`None` when a PROXY header must name it first).
    pub(crate) fn admit(self: &Arc<Self>, client: Option<IpAddr>) -> Result<Slot, Refusal> {
        let mut s = self.lock();
        if let Some(ip) = client {
            if s.by_client.get(&client_key(ip)).copied().unwrap_or(0) >= self.per_client {
                return Err(Refusal::Client);
            }
        }
        if s.total >= self.max {
            if self.policy == AtCapacity::Refuse {
                return Err(Refusal::Full);
            }
            let oldest_idle = s
                .live
                .iter()
                .find(|(_, a)| a.idle.load(Ordering::Relaxed))
                .map(|(id, _)| *id);
            let Some(id) = oldest_idle else {
                return Err(Refusal::Full);
            };
            if let Some(victim) = s.live.remove(&id) {
                victim.evict.cancel();
                metrics::counter!("postern_connections_evicted_total", "service" => self.service)
                    .increment(1);
            }
        }
        s.total += 1;
        s.next_id += 1;
        let id = s.next_id;
        let activity = Arc::new(Activity::default());
        if self.policy == AtCapacity::EvictOldestIdle {
            s.live.insert(id, activity.clone());
        }
        let key = client.map(client_key);
        if let Some(k) = key {
            *s.by_client.entry(k).or_default() += 1;
        }
        metrics::gauge!("postern_connections_active", "service" => self.service).increment(1.0);
        Ok(Slot {
            limits: self.clone(),
            id,
            client: key,
            activity,
        })
    }

    /// Counts `slot` against the cap of `client` (after a PROXY header named it).
    pub(crate) fn admit_client(&self, slot: &mut Slot, client: IpAddr) -> Result<(), Refusal> {
        let key = client_key(client);
        let mut s = self.lock();
        let held = s.by_client.entry(key).or_default();
        if *held >= self.per_client {
            return Err(Refusal::Client);
        }
        *held += 1;
        slot.client = Some(key);
        Ok(())
    }

    fn release(&self, id: u64, client: Option<IpAddr>) {
        let mut s = self.lock();
        s.total = s.total.saturating_sub(1);
        s.live.remove(&id);
        if let Some(k) = client {
            if let Some(n) = s.by_client.get_mut(&k) {
                *n -= 1;
                if *n == 0 {
                    s.by_client.remove(&k);
                }
            }
        }
        metrics::gauge!("postern_connections_active", "service" => self.service).decrement(1.0);
    }
}

/// One admitted connection's place; dropping it frees the place.
pub struct Slot {
    limits: Arc<Limits>,
    id: u64,
    client: Option<IpAddr>,
    activity: Arc<Activity>,
}

impl Slot {
    /// The connection's activity marker and eviction signal.
    pub fn activity(&self) -> &Arc<Activity> {
        &self.activity
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.limits.release(self.id, self.client);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn one_client_cannot_take_every_place() {
        let limits = Limits::new("t", 10, 3, AtCapacity::Refuse);
        let held: Vec<_> = (0..3)
            .map(|_| limits.admit(Some(ip("127.0.0.20"))).unwrap())
            .collect();
        assert_eq!(
            limits.admit(Some(ip("127.0.0.20"))).err(),
            Some(Refusal::Client)
        );
        assert!(limits.admit(Some(ip("127.0.0.21"))).is_ok());
        drop(held);
        assert_eq!(limits.active(), 0);
        assert!(limits.admit(Some(ip("127.0.0.20"))).is_ok());
    }

    #[test]
    fn ipv6_clients_are_counted_per_64() {
        let limits = Limits::new("t", 10, 1, AtCapacity::Refuse);
        let _a = limits.admit(Some(ip("2001:db8::1"))).unwrap();
        assert!(limits.admit(Some(ip("2001:db8::2"))).is_err());
        assert!(limits.admit(Some(ip("2001:db8:0:1::2"))).is_ok());
    }

    #[test]
    fn the_cap_refuses_or_evicts_the_oldest_idle() {
        let limits = Limits::new("t", 2, 10, AtCapacity::Refuse);
        let _a = limits.admit(None).unwrap();
        let _b = limits.admit(None).unwrap();
        assert_eq!(limits.admit(None).err(), Some(Refusal::Full));

        let limits = Limits::new("t", 2, 10, AtCapacity::EvictOldestIdle);
        let a = limits.admit(None).unwrap();
        let b = limits.admit(None).unwrap();
        assert_eq!(limits.admit(None).err(), Some(Refusal::Full), "all busy");
        b.activity().set_idle(true);
        a.activity().set_idle(false);
        let _c = limits.admit(None).unwrap();
        assert!(b.activity().evict.is_cancelled());
        assert!(!a.activity().evict.is_cancelled());
    }

    #[test]
    fn a_proxied_client_is_counted_once_named() {
        let limits = Limits::new("t", 10, 1, AtCapacity::Refuse);
        let mut a = limits.admit(None).unwrap();
        limits.admit_client(&mut a, ip("10.0.0.1")).unwrap();
        let mut b = limits.admit(None).unwrap();
        assert_eq!(
            limits.admit_client(&mut b, ip("10.0.0.1")).err(),
            Some(Refusal::Client)
        );
        drop(a);
        assert!(limits.admit_client(&mut b, ip("10.0.0.1")).is_ok());
    }
}
