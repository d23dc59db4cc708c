//! DNSSEC online signing against the real `postern serve`, checked by real validators: the
//! example zone signed in both views with one key from the store, `delv` with the trust anchor
//! from `postern dns ds` validating positive, NXDOMAIN, NODATA, wildcard, CNAME and DS answers
//! in each view, the AXFR of each view passing `dnssec-verify` and `ldns-verify-zone`, a BIND
//! `named` resolver per view returning AD, a name added by `nsupdate` and a hosted mail domain's
//! records validating, IXFR sending the signed difference, and a CSK rollover (double DS) that
//! validates at every step.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::dnssec::{anchors, delv, eventually, run_ok, validates, verify_zone};
use common::{copy_zones, dig, example_dns, Db, Instance};

both_backends!(signed_zone_validates_in_both_views);

const INSIDE: &str = "127.0.0.2";
const OUTSIDE: &str = "127.0.0.3";
const XFR_KEY: &str = "hmac-sha256:xfr-key:cG9zdGVybi1leGFtcGxlLXRzaWcta2V5LTAxMjM0NTY3";
const DDNS_KEY: &str = "hmac-sha256:ddns-key:ZGRucy1leGFtcGxlLXNlY3JldC0wMTIzNDU2Nzg5YWI=";

/// The example `[dns]` on a copy of the zones (the internal one with an insecure delegation
/// added), both `example.test` zones signed, and `ddns-key` allowed under `dyn.example.test`.
fn config(zones: &Path) -> String {
    copy_zones(zones);
    let internal = zones.join("internal/example.test.zone");
    let mut text = std::fs::read_to_string(&internal).expect("zone");
    text.push_str("insecure IN NS ns.insecure\nns.insecure IN A 192.168.10.61\n");
    std::fs::write(&internal, text).expect("write zone");
    example_dns(zones)
        .replace(
            "[[dns.view]]\nname = \"internal\"",
            "[[dns.tsig_key]]\nname = \"ddns-key\"\nsecret = \"ZGRucy1leGFtcGxlLXNlY3JldC0wMTIzNDU2Nzg5YWI=\"\n\n\
             [[dns.view]]\nname = \"internal\"",
        )
        .replace(
            "allow_transfer = [\"key:xfr-key\"]\n",
            "allow_transfer = [\"key:xfr-key\"]\n\n[[dns.view.update_policy]]\nkey = \"ddns-key\"\n\
             name = \"dyn.example.test\"\ntypes = [\"A\", \"AAAA\", \"TXT\"]\n",
        )
        .replace(
            "file = \"internal/example.test.zone\"\n",
            "file = \"internal/example.test.zone\"\ndnssec = true\n",
        )
        .replace(
            "file = \"external/example.test.zone\"\n",
            "file = \"external/example.test.zone\"\ndnssec = true\n",
        )
}

/// The zone as AXFR sends it to `source` (its view), without the TSIG record.
fn axfr(server: SocketAddr, source: &str) -> String {
    dig(
        server,
        source,
        &[
            "-y",
            XFR_KEY,
            "+noshort",
            "+noall",
            "+answer",
            "example.test",
            "AXFR",
        ],
    )
    .into_iter()
    .filter(|l| !l.starts_with(';') && !l.contains("TSIG") && !l.is_empty())
    .map(|l| l + "\n")
    .collect()
}

/// A private BIND resolver on loopback that forwards `example.test` to Postern from `source`
/// (which selects the view) and validates with the trust anchor.
struct Named {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Named {
    fn start(dir: &Path, postern: SocketAddr, source: &str, ds_line: &str) -> Named {
        let dir = dir.join(format!("named-{source}"));
        std::fs::create_dir_all(&dir).expect("named dir");
        let port = common::ports::free_port();
        let anchor = std::fs::read_to_string(anchors(&dir, "anchor", &[ds_line])).expect("anchor");
        let conf = format!(
            "options {{\n  directory \"{d}\";\n  pid-file \"{d}/named.pid\";\n  listen-on port {port} {{ 127.0.0.1; }};\n  \
             listen-on-v6 {{ none; }};\n  recursion yes;\n  allow-query {{ any; }};\n  dnssec-validation yes;\n  \
             query-source address {source};\n}};\n{anchor}\
             zone \"example.test\" {{ type forward; forward only; forwarders {{ {ip} port {pport}; }}; }};\n",
            d = dir.display(),
            ip = postern.ip(),
            pport = postern.port(),
        );
        let conf_path = dir.join("named.conf");
        std::fs::write(&conf_path, conf).expect("named.conf");
        run_ok(Command::new("named-checkconf").arg(&conf_path));
        let child = Command::new("named")
            .args(["-g", "-4", "-c"])
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("named.log")).expect("log"))
            .spawn()
            .expect("named (bind9) is installed");
        let named = Named { child, port, dir };
        eventually("named to answer", || {
            Command::new("dig")
                .args([
                    "+time=1",
                    "+tries=1",
                    "@127.0.0.1",
                    "-p",
                    &port.to_string(),
                    "version.bind",
                    "CH",
                    "TXT",
                ])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("status:"))
        });
        named
    }

    /// The header flags and status of a recursive query through this resolver.
    fn ask(&self, qname: &str, qtype: &str) -> (String, String) {
        let out = Command::new("dig")
            .args([
                "+time=5",
                "+tries=2",
                "+dnssec",
                "@127.0.0.1",
                "-p",
                &self.port.to_string(),
                qname,
                qtype,
            ])
            .output()
            .expect("dig");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let flags = text
            .lines()
            .find_map(|l| l.strip_prefix(";; flags: "))
            .map(|l| l.split(';').next().unwrap_or_default().to_owned())
            .unwrap_or_default();
        let status = text
            .lines()
            .find_map(|l| l.split("status: ").nth(1))
            .map(|s| s.split(',').next().unwrap_or_default().to_owned())
            .unwrap_or_default();
        (flags, status)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("named.log")).unwrap_or_default()
    }
}

impl Drop for Named {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The number of DNSKEY records `source`'s view serves.
fn dnskeys(server: SocketAddr, source: &str) -> usize {
    dig(server, source, &["example.test", "DNSKEY"]).len()
}

async fn signed_zone_validates_in_both_views(db: Db) {
    let scratch = tempfile::tempdir().expect("tmp");
    let dir = scratch.path();
    let inst = Instance::new(db, &["dns"], &config(&dir.join("zones"))).await;
    let server = inst.start();
    let dns = server.addr("dns");

    // One key for both views, published by the running server (it created it at start).
    let ds = inst.ok(&["dns", "ds", "example.test"], "");
    let ds_lines: Vec<&str> = ds.lines().collect();
    assert_eq!(ds_lines.len(), 1, "one CSK: {ds}");
    assert!(
        ds_lines[0].contains(" IN DS ") && ds_lines[0].contains(" 13 2 "),
        "{ds}"
    );
    let anchor = anchors(dir, "anchors", &ds_lines);
    for source in [INSIDE, OUTSIDE] {
        eventually("the zone to be signed", || dnskeys(dns, source) == 1);
    }

    let positive = [
        ("www.example.test", "A"),
        ("example.test", "DNSKEY"),
        ("example.test", "MX"),
        ("x.apps.example.test", "A"),
        ("a.b.apps.example.test", "A"),
        ("webmail.example.test", "A"),
        ("dev.example.test", "DS"),
        ("_25._tcp.mail.example.test", "TLSA"),
    ];
    let negative = [
        ("nope.example.test", "A"),
        ("a.b.nope.example.test", "TXT"),
        ("www.example.test", "MX"),
        ("x.apps.example.test", "TXT"),
        ("exists.apps.example.test", "A"),
        ("lab.example.test", "A"),
    ];
    for source in [INSIDE, OUTSIDE] {
        for q in positive {
            validates(dns, source, &anchor, q, false);
        }
        for q in negative {
            validates(dns, source, &anchor, q, true);
        }
    }
    // The insecure delegation: a validated proof that it has no DS (RFC 5155 §7.2.4), and a
    // referral carrying that NSEC3 instead of a DS (§7.2.7).
    validates(dns, INSIDE, &anchor, ("insecure.example.test", "DS"), true);
    let referral = dig(
        dns,
        INSIDE,
        &[
            "+noshort",
            "+noall",
            "+authority",
            "+dnssec",
            "host.insecure.example.test",
            "A",
        ],
    )
    .join("\n");
    assert!(
        referral.contains("NSEC3") && !referral.contains("\tDS\t"),
        "{referral}"
    );
    let secure = dig(
        dns,
        INSIDE,
        &[
            "+noshort",
            "+noall",
            "+authority",
            "+dnssec",
            "host.dev.example.test",
            "A",
        ],
    )
    .join("\n");
    assert!(
        secure.contains("\tDS\t") && secure.contains("RRSIG\tDS"),
        "{secure}"
    );
    // Without the DO bit: no DNSSEC records.
    let plain = dig(
        dns,
        INSIDE,
        &["+noshort", "+noall", "+answer", "www.example.test", "A"],
    )
    .join("\n");
    assert!(
        plain.contains("192.168.10.80") && !plain.contains("RRSIG"),
        "{plain}"
    );

    // The transferred zone of each view passes BIND's and ldns' verifiers.
    verify_zone(dir, "internal.zone", &axfr(dns, INSIDE));
    verify_zone(dir, "external.zone", &axfr(dns, OUTSIDE));

    // A BIND resolver per view validates (AD) positive, NXDOMAIN, NODATA, wildcard answers.
    for source in [INSIDE, OUTSIDE] {
        let named = Named::start(dir, dns, source, ds_lines[0]);
        for (q, status) in [
            (("www.example.test", "A"), "NOERROR"),
            (("nope.example.test", "A"), "NXDOMAIN"),
            (("www.example.test", "MX"), "NOERROR"),
            (("x.apps.example.test", "A"), "NOERROR"),
            (("dev.example.test", "DS"), "NOERROR"),
            // Only the internal view has the insecure delegation: NODATA there, else NXDOMAIN.
            (
                ("insecure.example.test", "DS"),
                if source == INSIDE {
                    "NOERROR"
                } else {
                    "NXDOMAIN"
                },
            ),
        ] {
            let (flags, got) = named.ask(q.0, q.1);
            assert!(
                flags.split_whitespace().any(|f| f == "ad") && got == status,
                "{q:?} via named from {source}: flags {flags:?} status {got:?}\n{}",
                named.log()
            );
        }
    }

    // A name added by UPDATE is signed and validates.
    let script = format!(
        "server {} {}\nlocal {INSIDE}\nzone example.test\nupdate add h1.dyn.example.test 300 A 192.168.10.201\nsend\n",
        dns.ip(),
        dns.port()
    );
    let out = common::run_with_stdin(
        {
            let mut c = Command::new("nsupdate");
            c.args(["-y", DDNS_KEY, "-t", "20"]);
            c
        },
        &script,
    );
    assert!(
        out.status.success(),
        "nsupdate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    validates(dns, INSIDE, &anchor, ("h1.dyn.example.test", "A"), false);
    validates(dns, INSIDE, &anchor, ("h2.dyn.example.test", "A"), true);
    validates(dns, OUTSIDE, &anchor, ("h1.dyn.example.test", "A"), true);

    // IXFR from the serial before the update sends the signed difference (RFC 1995 §4): the
    // new name, its signature and NSEC3 changes; `tests/dnssec_ops.rs` checks it with BIND.
    let serial_now: u32 = dig(dns, INSIDE, &["example.test", "SOA"])[0]
        .split_whitespace()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .expect("serial");
    let ixfr = dig(
        dns,
        INSIDE,
        &[
            "-y",
            XFR_KEY,
            "+noshort",
            "+noall",
            "+answer",
            "example.test",
            &format!("IXFR={}", serial_now - 1),
        ],
    );
    let types: Vec<&str> = ixfr
        .iter()
        .filter_map(|l| l.split_whitespace().nth(3))
        .collect();
    assert!(
        types.iter().filter(|t| **t == "SOA").count() == 4
            && types.contains(&"NSEC3")
            && types.contains(&"RRSIG")
            && ixfr.iter().any(|l| l.starts_with("h1.dyn.example.test.")),
        "incremental, with the signed difference: {ixfr:?}"
    );

    // Records published for a hosted mail domain (its DKIM keys here) are signed too.
    inst.ok(&["domain", "add", "example.test"], "");
    for source in [INSIDE, OUTSIDE] {
        eventually("the DKIM record", || {
            !dig(dns, source, &["pst1r._domainkey.example.test", "TXT"]).is_empty()
        });
        validates(
            dns,
            source,
            &anchor,
            ("pst1r._domainkey.example.test", "TXT"),
            false,
        );
    }

    // CSK rollover by double DS: the zone validates at every step with the DS the parent holds.
    let step = |expect: &str| {
        let out = inst.ok(
            &["dns", "key", "rollover", "example.test", "--role", "csk"],
            "",
        );
        assert!(out.contains(expect), "{out}");
        out
    };
    let out = step("step 1 of 3");
    let new_ds = out
        .lines()
        .find_map(|l| l.split(": ").last().filter(|d| d.contains(" IN DS ")))
        .expect("new DS printed")
        .to_owned();
    for source in [INSIDE, OUTSIDE] {
        eventually("the new key to be published", || dnskeys(dns, source) == 2);
        validates(dns, source, &anchor, ("www.example.test", "A"), false);
    }
    let both = anchors(dir, "both", &[ds_lines[0], &new_ds]);
    let only_new = anchors(dir, "new", &[&new_ds]);
    step("step 2 of 3");
    for source in [INSIDE, OUTSIDE] {
        eventually("the new key to sign the DNSKEY RRset alone", || {
            delv(dns, source, &only_new, "example.test", "DNSKEY").contains("; fully validated")
        });
        validates(dns, source, &both, ("www.example.test", "A"), false);
        validates(dns, source, &both, ("nope.example.test", "A"), true);
    }
    step("step 3 of 3");
    for source in [INSIDE, OUTSIDE] {
        eventually("the old key to leave", || dnskeys(dns, source) == 1);
        validates(dns, source, &only_new, ("www.example.test", "A"), false);
        validates(dns, source, &only_new, ("x.apps.example.test", "TXT"), true);
    }
    let ds_after = inst.ok(&["dns", "ds", "example.test"], "");
    assert_eq!(ds_after.trim(), new_ds.trim());
    verify_zone(dir, "rolled.zone", &axfr(dns, INSIDE));
    assert!(server.stop().success());
}
