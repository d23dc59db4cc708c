//! Limiter tests with an injected clock: every call takes the `now` it should see.

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn limiter() -> Limiter {
    Limiter::new(LoginConfig::default())
}

fn allowed(d: Decision) -> (Slot, Duration) {
    match d {
        Decision::Allowed { slot, wait } => (slot, wait),
        other => panic!("expected Allowed, got {other:?}"),
    }
}

fn throttled(d: Decision) -> (Duration, Rule) {
    match d {
        Decision::Throttled { retry_after, rule } => (retry_after, rule),
        other => panic!("expected Throttled, got {other:?}"),
    }
}

#[test]
fn parallel_reservations_never_exceed_the_address_limit() {
    let l = limiter();
    let t = Instant::now();
    let a = ip("192.0.2.1");
    let mut slots = Vec::new();
    let mut refused = 0;
    // 100 attempts in flight at once (none reported yet), each on its own account so that only
    // the address rule applies.
    for i in 0..100 {
        match l.reserve_at(a, &format!("user{i}@example.test"), t) {
            Decision::Allowed { slot, wait } => {
                assert_eq!(wait, Duration::ZERO);
                slots.push(slot);
            }
            Decision::Throttled { rule, .. } => {
                assert_eq!(rule, Rule::Address);
                refused += 1;
            }
        }
    }
    assert_eq!(slots.len(), 10, "reservations count before any verdict");
    assert_eq!(refused, 90);
    assert!(
        !slots[0].suspect(),
        "the first attempt came from a clean address"
    );
    assert!(slots[1].suspect());
    // All ten fail: still refused, until the window has passed since the failures.
    let failed_at = t + Duration::from_secs(5);
    for s in slots {
        l.failure_at(s, failed_at);
    }
    let (retry, rule) =
        throttled(l.reserve_at(a, "user0@example.test", t + Duration::from_secs(60)));
    assert_eq!(rule, Rule::Address);
    assert_eq!(retry, Duration::from_secs(15 * 60 + 5 - 60));
    let (s, _) = allowed(l.reserve_at(
        a,
        "user0@example.test",
        failed_at + Duration::from_secs(15 * 60),
    ));
    l.release(s);
}

#[test]
fn a_success_frees_its_slot_but_keeps_earlier_failures() {
    let l = limiter();
    let t = Instant::now();
    let a = ip("192.0.2.2");
    for i in 0..9 {
        let (s, _) = allowed(l.reserve_at(a, &format!("victim{i}"), t));
        l.failure_at(s, t);
    }
    // The guesser owns an account and logs in to it: that success costs no slot...
    for _ in 0..5 {
        let (s, _) = allowed(l.reserve_at(a, "own", t));
        l.success_at(s, t);
    }
    // ...but does not reset the count either: one more failure and the address is done.
    let (s, _) = allowed(l.reserve_at(a, "victim9", t));
    l.failure_at(s, t);
    throttled(l.reserve_at(a, "own", t));
}

#[test]
fn release_frees_the_slot() {
    let l = Limiter::new(LoginConfig {
        failures_per_address: 1,
        ..LoginConfig::default()
    });
    let t = Instant::now();
    let a = ip("192.0.2.3");
    let (s, _) = allowed(l.reserve_at(a, "alice", t));
    throttled(l.reserve_at(a, "alice", t));
    l.release(s);
    let (s, _) = allowed(l.reserve_at(a, "alice", t));
    l.release(s);
}

#[test]
fn account_bucket_slows_unknown_addresses_with_failures() {
    let l = limiter();
    let t = Instant::now();
    // A distributed guesser: every address already failed once elsewhere.
    let guessers: Vec<IpAddr> = (0..20).map(|i| ip(&format!("203.0.113.{i}"))).collect();
    for g in &guessers {
        let (s, _) = allowed(l.reserve_at(*g, "warmup", t));
        l.failure_at(s, t);
    }
    let mut results = Vec::new();
    for g in &guessers {
        results.push(l.reserve_at(*g, "alice@example.test", t));
    }
    let waits: Vec<Duration> = results
        .iter()
        .filter_map(|d| match d {
            Decision::Allowed { wait, .. } => Some(*wait),
            _ => None,
        })
        .collect();
    // Burst of 6 at once, the 7th waits 10 s (6 per minute), the rest are refused for now.
    assert_eq!(waits.len(), 7, "{results:?}");
    assert!(waits[..6].iter().all(|w| w.is_zero()));
    assert_eq!(waits[6], Duration::from_secs(10));
    let (retry, rule) = match &results[7] {
        Decision::Throttled { retry_after, rule } => (*retry_after, *rule),
        other => panic!("{other:?}"),
    };
    assert_eq!(rule, Rule::Account);
    assert!(
        retry <= Duration::from_secs(10) && retry >= Duration::from_secs(1),
        "{retry:?}"
    );
    // A minute later the bucket has refilled.
    let later = t + Duration::from_secs(90);
    let (_, wait) = allowed(l.reserve_at(ip("203.0.113.19"), "alice@example.test", later));
    assert_eq!(wait, Duration::ZERO);
}

#[test]
fn the_real_user_is_never_slowed_by_others() {
    let l = limiter();
    let t = Instant::now();
    let home = ip("198.51.100.7");
    let (s, _) = allowed(l.reserve_at(home, "alice", t));
    l.success_at(s, t);
    // Drain alice's bucket from guessers with failures.
    for i in 0..40 {
        let g = ip(&format!("203.0.113.{i}"));
        let (s, _) = allowed(l.reserve_at(g, "warmup", t));
        l.failure_at(s, t);
        if let Decision::Allowed { slot, .. } = l.reserve_at(g, "alice", t) {
            l.failure_at(slot, t);
        }
    }
    let g = ip("203.0.113.200");
    let (s, _) = allowed(l.reserve_at(g, "warmup", t));
    l.failure_at(s, t);
    assert_eq!(
        throttled(l.reserve_at(g, "alice", t)).1,
        Rule::Account,
        "a guesser address with a failure finds alice's bucket empty"
    );
    // The known-good address gets in at once, even after a typo of its own.
    let (s, wait) = allowed(l.reserve_at(home, "alice", t));
    assert!(wait.is_zero() && !s.suspect());
    l.failure_at(s, t);
    let (s, wait) = allowed(l.reserve_at(home, "alice", t));
    assert!(wait.is_zero() && !s.suspect());
    l.success_at(s, t);
    // A new address without failures (the user travelling) also gets in at once.
    let (s, wait) = allowed(l.reserve_at(ip("192.0.2.99"), "alice", t));
    assert!(wait.is_zero() && !s.suspect());
    l.success_at(s, t);
}

#[test]
fn a_success_refunds_the_token() {
    let l = Limiter::new(LoginConfig {
        account_attempts_per_minute: 1,
        max_slowdown_secs: 0,
        ..LoginConfig::default()
    });
    let t = Instant::now();
    let a = ip("192.0.2.5");
    let (s, _) = allowed(l.reserve_at(a, "other", t));
    l.failure_at(s, t);
    let (s, _) = allowed(l.reserve_at(a, "alice", t));
    assert!(s.suspect());
    l.success_at(s, t);
    // Known good now; and the token came back for the next unknown address.
    let b = ip("192.0.2.6");
    let (s, _) = allowed(l.reserve_at(b, "other", t));
    l.failure_at(s, t);
    let (s, _) = allowed(l.reserve_at(b, "alice", t));
    l.failure_at(s, t);
    assert_eq!(throttled(l.reserve_at(b, "alice", t)).1, Rule::Account);
}

#[test]
fn ipv6_clients_are_keyed_by_their_64() {
    let l = Limiter::new(LoginConfig {
        failures_per_address: 2,
        ..LoginConfig::default()
    });
    let t = Instant::now();
    let (s, _) = allowed(l.reserve_at(ip("2001:db8:1:2::1"), "a", t));
    l.failure_at(s, t);
    let (s, _) = allowed(l.reserve_at(ip("2001:db8:1:2:ffff::9"), "b", t));
    l.failure_at(s, t);
    throttled(l.reserve_at(ip("2001:db8:1:2::abcd"), "c", t));
    let (s, _) = allowed(l.reserve_at(ip("2001:db8:1:3::1"), "c", t));
    l.release(s);
    assert_eq!(
        ClientKey::from(ip("::ffff:192.0.2.1")),
        ClientKey::from(ip("192.0.2.1"))
    );
}
