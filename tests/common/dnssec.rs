//! DNSSEC helpers shared by the signing tests: polling, `delv` with static trust anchors, and
//! the zone verifiers (`dnssec-verify`, `ldns-verify-zone`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Polls `check` until it returns true, for up to 60 s.
pub fn eventually(what: &str, check: impl FnMut() -> bool) {
    eventually_showing(what, check, String::new);
}

/// [`eventually`], with `context()` (e.g. the servers' logs) in the failure message.
pub fn eventually_showing(
    what: &str,
    mut check: impl FnMut() -> bool,
    context: impl Fn() -> String,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Writes a `delv -a` trust-anchor file holding the given `zone IN DS ...` lines.
pub fn anchors(dir: &Path, name: &str, ds_lines: &[&str]) -> PathBuf {
    let mut text = String::from("trust-anchors {\n");
    for line in ds_lines {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f.get(2), Some(&"DS"), "a DS line: {line}");
        text.push_str(&format!(
            "  {} static-ds {} {} {} \"{}\";\n",
            f[0],
            f[3],
            f[4],
            f[5],
            f[6..].concat()
        ));
    }
    text.push_str("};\n");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write anchors");
    path
}

/// Runs `delv` from `source` with the trust anchors; returns its output.
pub fn delv(server: SocketAddr, source: &str, anchors: &Path, qname: &str, qtype: &str) -> String {
    let out = Command::new("delv")
        .args(["-b", source, &format!("@{}", server.ip())])
        .args(["-p", &server.port().to_string()])
        .arg("-a")
        .arg(anchors)
        .args(["+root=example.test", "+tcp", qname, qtype])
        .output()
        .expect("delv (bind9-dnsutils) is installed");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts that delv validates the answer; `negative` for NXDOMAIN/NODATA.
pub fn validates(
    server: SocketAddr,
    source: &str,
    anchors: &Path,
    q: (&str, &str),
    negative: bool,
) {
    let text = delv(server, source, anchors, q.0, q.1);
    let want = if negative {
        "; negative response, fully validated"
    } else {
        "; fully validated"
    };
    assert!(
        text.lines().any(|l| l == want),
        "{q:?} from {source}: want {want:?}:\n{text}"
    );
}

pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .expect("tool is installed (bash .ci/run installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

/// Checks a transferred zone with BIND's and ldns' zone verifiers.
pub fn verify_zone(dir: &Path, name: &str, zone: &str) {
    let path = dir.join(name);
    std::fs::write(&path, zone).expect("write zone");
    // -z: a CSK signs everything; without it dnssec-verify wants a separate ZSK.
    run_ok(
        Command::new("dnssec-verify")
            .args(["-z", "-o", "example.test"])
            .arg(&path),
    );
    let ldns = run_ok(Command::new("ldns-verify-zone").arg(&path));
    assert!(ldns.contains("Zone is verified and complete"), "{ldns}");
}
