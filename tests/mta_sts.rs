//! Outbound MTA-STS (RFC 8461) end to end: a sending Postern (its own DNS as resolver) delivers to
//! a receiving Postern whose certificate comes from a test CA, with policies served over HTTPS by
//! a Python server. Enforced policies allow only matching MX hosts with valid certificates; a
//! testing policy does not block; a cached policy still applies when the policy server is gone.

mod common;
mod smtp_support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Db, Instance, Server};
use smtp_support::{
    receiving_server, sending_server, submit_as_alice, wait_deferred, wait_inbox, OwnDns, TestCa,
};

both_backends!(enforces_mta_sts_policies);

/// The domains, their MX host and their policy (`mode`, allowed `mx`).
const DOMAINS: [(&str, &str, &str, &str); 4] = [
    // Matching MX with a valid certificate: delivered.
    ("remote.test", "mx.remote.test", "enforce", "mx.remote.test"),
    // The MX is not in the policy: deferred.
    (
        "strict.test",
        "other.strict.test",
        "enforce",
        "mx.strict.test",
    ),
    // The MX matches but its certificate does not name it: deferred.
    (
        "badcert.test",
        "mx.badcert.test",
        "enforce",
        "mx.badcert.test",
    ),
    // Testing mode: a mismatch is only logged.
    (
        "testing.test",
        "other.testing.test",
        "testing",
        "mx.testing.test",
    ),
];

/// The policy server: HTTPS on loopback answering `/.well-known/mta-sts.txt` by Host header.
struct PolicyServer {
    child: Child,
    port: u16,
}

impl PolicyServer {
    fn start(dir: &Path) -> PolicyServer {
        const SERVER: &str = r#"
import http.server, ssl, sys
policies = {}
for spec in sys.argv[3:]:
    host, mode, mx = spec.split(',')
    policies[host] = 'version: STSv1\r\nmode: %s\r\nmx: %s\r\nmax_age: 86400\r\n' % (mode, mx)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = policies.get(self.headers.get('Host', ''))
        if self.path != '/.well-known/mta-sts.txt' or body is None:
            self.send_error(404)
            return
        data = body.encode()
        self.send_response(200)
        self.send_header('Content-Type', 'text/plain')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *a):
        pass
srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"#;
        let mut cmd = Command::new("python3");
        cmd.arg("-c")
            .arg(SERVER)
            .arg(dir.join("cert.pem"))
            .arg(dir.join("cert.key"));
        for (domain, _, mode, mx) in DOMAINS {
            cmd.arg(format!("mta-sts.{domain},{mode},{mx}"));
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 policy server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("port");
        let port = line.trim().parse().expect("port number");
        PolicyServer { child, port }
    }
}

impl Drop for PolicyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The sending server: hosts example.test (alice), serves the test zones on its DNS listener and
/// uses it as its resolver; fetches policies from `policy_port`, trusting the test CA.
async fn sender(db: Db, dir: &Path, mx_port: u16, policy_port: u16) -> (Instance, Server) {
    let mut dns = OwnDns::new(&dir.join("zones"));
    for (domain, mx, ..) in DOMAINS {
        let mx_label = mx
            .strip_suffix(&format!(".{domain}"))
            .expect("MX in domain");
        dns.zone(
            domain,
            &format!(
                "@ IN MX 10 {mx_label}\n{mx_label} IN A 127.0.0.1\nmta-sts IN A 127.0.0.1\n_mta-sts IN TXT \"v=STSv1; id=1\"\n"
            ),
        );
    }
    let extra = format!(
        r#"{listener}
[smtp]
resolver = "{resolver}"
outbound_port = {mx_port}
mta_sts_port = {policy_port}
outbound_ca_file = "{ca}"
retry_initial_secs = 1
retry_max_secs = 1
queue_scan_secs = 1
outbound_timeout_secs = 5

{table}"#,
        listener = dns.listener(),
        resolver = dns.addr(),
        ca = dir.join("ca.pem").display(),
        table = dns.table(),
    );
    sending_server(db, &extra).await
}

async fn enforces_mta_sts_policies(db: Db) {
    let dir = tempfile::tempdir().expect("dir");
    // One certificate (with its CA) for the policy hosts and mx.remote.test, not mx.badcert.test.
    let ca = TestCa::new();
    let mut names: Vec<String> = DOMAINS
        .iter()
        .map(|(d, ..)| format!("mta-sts.{d}"))
        .collect();
    names.push("mx.remote.test".into());
    ca.issue(&names, dir.path(), "cert");
    std::fs::write(dir.path().join("ca.pem"), &ca.pem).expect("write CA");
    let domains: Vec<&str> = DOMAINS.iter().map(|(d, ..)| *d).collect();
    let (receiving, mx) = receiving_server(db, dir.path(), "cert", &domains).await;
    let policies = PolicyServer::start(dir.path());
    let (sending, out) = sender(db, dir.path(), mx.addr("smtp").port(), policies.port).await;
    let submissions = out.addr("submissions").port();
    let rcpts: Vec<String> = DOMAINS.iter().map(|(d, ..)| format!("u@{d}")).collect();
    submit_as_alice(submissions, &rcpts, "sts");

    // Matching MX, certificate valid for it (from the configured CA): delivered over TLS.
    wait_inbox(&receiving, "u@remote.test", 1).await;
    // A testing policy never blocks.
    wait_inbox(&receiving, "u@testing.test", 1).await;
    wait_deferred(
        &sending,
        &[
            ("u@strict.test", "matches its MTA-STS policy"),
            ("u@badcert.test", "TLS handshake failed"),
        ],
    )
    .await;
    assert!(out.log().contains("MX host not in the MTA-STS policy"));

    // The policies stay cached for max_age (RFC 8461 §5.1): with the policy server gone, the
    // enforced policy of strict.test still keeps mail from its unlisted MX.
    drop(policies);
    submit_as_alice(submissions, &["u@strict.test".to_owned()], "sts");
    tokio::time::sleep(Duration::from_secs(3)).await;
    wait_deferred(
        &sending,
        &[
            ("u@strict.test", "matches its MTA-STS policy"),
            ("u@strict.test", "matches its MTA-STS policy"),
            ("u@badcert.test", "TLS handshake failed"),
        ],
    )
    .await;
    for domain in ["strict.test", "badcert.test"] {
        let inbox = smtp_support::inbox(&receiving, &format!("u@{domain}")).await;
        assert!(inbox.is_empty(), "{domain} got mail despite its policy");
    }
}
