use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering::Relaxed};

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);
static COUNT: AtomicUsize = AtomicUsize::new(0);
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let n = LIVE.fetch_add(l.size() as isize, Relaxed) + l.size() as isize;
        PEAK.fetch_max(n, Relaxed);
        COUNT.fetch_add(1, Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Relaxed);
        System.dealloc(p, l)
    }
}
#[global_allocator]
static A: Counting = Counting;

fn mib(n: isize) -> f64 {
    n as f64 / 1048576.0
}
fn rss() -> String {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .filter(|l| l.starts_with("VmRSS") || l.starts_with("VmHWM"))
        .collect::<Vec<_>>()
        .join(" ")
}

use postern_dns::dnssec::{generate, KeyRole, KeyState, ZoneKey, ECDSAP256SHA256};
use postern_dns::state::{build, Inputs, OnZoneError};

fn main() {
    println!(
        "sizes: Record {} Name {} RData {} ",
        std::mem::size_of::<hickory_proto::rr::Record>(),
        std::mem::size_of::<hickory_proto::rr::Name>(),
        std::mem::size_of::<hickory_proto::rr::RData>()
    );
    let dir = std::path::PathBuf::from(std::env::args().nth(1).unwrap());
    let signed = std::env::args().nth(2).is_some();
    let config: postern_dns::DnsConfig = toml::from_str(&format!(
        "zones_dir = \".\"\nwatch = false\n[[view]]\nname = \"all\"\nmatch_clients = [\"any\"]\n[[view.zone]]\nname = \"bench.test\"\nfile = \"bench.test.zone\"\ndnssec = {signed}\n")).unwrap();
    let mut inputs = Inputs::new(config, dir);
    if signed {
        let pkcs8 = generate(ECDSAP256SHA256).unwrap();
        inputs.dnssec_keys.insert(
            hickory_proto::rr::LowerName::new(
                &hickory_proto::rr::Name::from_ascii("bench.test.").unwrap(),
            ),
            vec![ZoneKey::new(
                "bench.test",
                ECDSAP256SHA256,
                KeyRole::Csk,
                KeyState::Active,
                pkcs8,
            )
            .unwrap()],
        );
    }
    let base = LIVE.load(Relaxed);
    let t = std::time::Instant::now();
    let (state, _) = build(&mut inputs, OnZoneError::Fail).unwrap();
    println!(
        "build {:?}: live {:.1} MiB peak {:.1} MiB allocs {} | {}",
        t.elapsed(),
        mib(LIVE.load(Relaxed) - base),
        mib(PEAK.load(Relaxed) - base),
        COUNT.load(Relaxed),
        rss()
    );
    drop(inputs);
    println!(
        "state only: live {:.1} MiB | {}",
        mib(LIVE.load(Relaxed) - base),
        rss()
    );
    drop(state);
}
