//! The end-to-end harness: starts the compiled `postern` binary with a generated configuration
//! (temporary data directory, port-0 listeners on loopback, SQLite or a fresh PostgreSQL database),
//! reads the bound addresses from `listeners.json`, and stops it with SIGTERM or SIGKILL.
#![allow(dead_code)] // Each test file uses a different part of the harness.

pub mod dnssec;
pub mod http;
pub mod named;
pub mod pebble;
pub mod ports;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use postern_store::testing::TestDb;

/// Generates `sqlite::NAME` and `postgres::NAME` tests calling `NAME(Db)`, so that every
/// end-to-end test that touches the store runs on both databases.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Db::Sqlite).await; })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Db::Postgres).await; })*
        }
    };
}

/// The binary under test, built by cargo for this test run.
pub const POSTERN: &str = env!("CARGO_BIN_EXE_postern");

/// Which database the server under test uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    /// A SQLite file in the data directory.
    Sqlite,
    /// A fresh database on the PostgreSQL server named by `DATABASE_URL`.
    Postgres,
}

/// A server's files: config, data directory and log, in one temporary directory.
pub struct Instance {
    /// Holds the temporary directory (deleted on drop).
    pub dir: tempfile::TempDir,
    /// The generated `postern.toml`.
    pub config: PathBuf,
    /// Keeps a PostgreSQL test database alive for the instance's life.
    pub db: TestDb,
}

impl Instance {
    /// A fresh instance whose config enables the given services on `127.0.0.1:0`, followed by
    /// `extra` TOML (which may add tables such as `[dns]`).
    pub async fn new(db: Db, services: &[&str], extra: &str) -> Instance {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = match db {
            Db::Sqlite => TestDb::sqlite(),
            Db::Postgres => TestDb::postgres().await,
        };
        let mut toml = format!(
            "data_dir = \"data\"\nlog_level = \"info\"\nhostname = \"mail.example.test\"\ndatabase_url = \"{}\"\n",
            db.url
        );
        toml.push_str("\n[listeners]\n");
        for s in services {
            toml.push_str(&format!("{s} = [\"127.0.0.1:0\"]\n"));
        }
        toml.push('\n');
        toml.push_str(extra);
        let config = dir.path().join("postern.toml");
        std::fs::write(&config, toml).expect("write config");
        Instance { dir, config, db }
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Puts the DNS listener on `127.0.0.1:port` instead of port 0, for peers that must be told
    /// the port before the server starts (Pebble, a BIND secondary).
    pub fn set_dns_port(&self, port: u16) {
        let text = std::fs::read_to_string(&self.config).expect("read config");
        assert!(text.contains("dns = [\"127.0.0.1:0\"]"), "no DNS listener");
        let text = text.replacen(
            "dns = [\"127.0.0.1:0\"]",
            &format!("dns = [\"127.0.0.1:{port}\"]"),
            1,
        );
        std::fs::write(&self.config, text).expect("write config");
    }

    /// A `postern` command with this instance's config.
    pub fn cli(&self, args: &[&str]) -> Command {
        let mut c = Command::new(POSTERN);
        c.arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("POSTERN_DATABASE_URL");
        c
    }

    /// Runs a CLI command with `stdin` as its input and returns its output.
    pub fn run(&self, args: &[&str], stdin: &str) -> Output {
        run_with_stdin(self.cli(args), stdin)
    }

    /// Runs a CLI command that must succeed and returns its stdout.
    pub fn ok(&self, args: &[&str], stdin: &str) -> String {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "postern {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    /// Starts `postern serve` and waits until it has published its listeners.
    pub fn start(&self) -> Server {
        self.start_command(self.cli(&["serve"]))
    }

    /// [`Instance::start`] with the descriptor limit (soft and hard) lowered to `limit`, as
    /// `ulimit -n` would.
    pub fn start_with_fd_limit(&self, limit: u64) -> Server {
        use std::os::unix::process::CommandExt;
        let mut cmd = self.cli(&["serve"]);
        // SAFETY: setrlimit is async-signal-safe and touches only the child's own limits.
        unsafe {
            cmd.pre_exec(move || {
                let lim = libc::rlimit {
                    rlim_cur: limit,
                    rlim_max: limit,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        self.start_command(cmd)
    }

    /// [`Instance::start`] with the environment variables `env` set for the server.
    pub fn start_with_env(&self, env: &[(&str, &str)]) -> Server {
        let mut cmd = self.cli(&["serve"]);
        cmd.envs(env.iter().copied());
        self.start_command(cmd)
    }

    fn start_command(&self, cmd: Command) -> Server {
        let mut server = self.spawn_command(cmd);
        server.wait_listening(&self.data_dir());
        server
    }

    /// Starts `postern serve` without waiting for it: [`Server::wait_listening`] does.
    pub fn spawn(&self) -> Server {
        self.spawn_command(self.cli(&["serve"]))
    }

    fn spawn_command(&self, mut cmd: Command) -> Server {
        let log = self
            .dir
            .path()
            .join(format!("serve-{}.log", Instant::now().elapsed().as_nanos()));
        let log_file = std::fs::File::create(&log).expect("log file");
        let _ = std::fs::remove_file(self.data_dir().join("listeners.json"));
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("spawn postern serve");
        Server {
            child: Some(child),
            log,
            listeners: HashMap::new(),
        }
    }
}

/// A running `postern serve`. Dropping it kills the process.
pub struct Server {
    child: Option<Child>,
    log: PathBuf,
    /// Bound addresses per service, from `listeners.json`.
    pub listeners: HashMap<String, Vec<SocketAddr>>,
}

impl Server {
    /// Whether the process has exited (it is reaped if so).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Waits until the server has written `listeners.json` into `data_dir` and reads it; panics
    /// with the log if the process exits first.
    pub fn wait_listening(&mut self, data_dir: &Path) {
        let listeners_file = data_dir.join("listeners.json");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.exited() {
                panic!(
                    "postern serve exited with {status} before listening:\n{}",
                    self.log()
                );
            }
            if let Ok(text) = std::fs::read_to_string(&listeners_file) {
                let v: serde_json::Value =
                    serde_json::from_str(&text).expect("listeners.json is JSON");
                self.listeners =
                    serde_json::from_value(v["listeners"].clone()).expect("listener map");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "postern serve did not start in time:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The first address of `service`.
    pub fn addr(&self, service: &str) -> SocketAddr {
        self.listeners
            .get(service)
            .and_then(|v| v.first())
            .copied()
            .unwrap_or_else(|| panic!("no {service} listener"))
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends a signal to the server.
    /// The server process's id (to read its /proc entries).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn signal(&self, sig: i32) {
        let pid = self.child.as_ref().expect("running").id() as i32;
        // SAFETY: kill(2) with a pid we own and a valid signal number has no memory effects.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill({pid}, {sig})");
    }

    /// Waits until the log contains `needle` (a server reaction to something the test did).
    pub fn wait_for_log(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.log().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "log never showed {needle:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The first administrator's password, printed once on stderr at first start.
    pub fn first_admin_password(&self) -> String {
        let log = self.log();
        let marker = "First administrator created: name \"admin\", password \"";
        let start = log.find(marker).expect("first admin password printed") + marker.len();
        log[start..]
            .chars()
            .take_while(|c| c.is_ascii_hexdigit())
            .collect()
    }

    /// SIGTERM, then waits for the exit status (SIGKILL after 30 s counts as a failure).
    pub fn stop(mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "postern did not stop within 30 s of SIGTERM:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: a crash, for durability tests.
    pub fn kill(mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs `cmd` with `stdin` written to its standard input.
pub fn run_with_stdin(mut cmd: Command, stdin: &str) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

/// Runs `dig +short` (bind9-dnsutils) from `source` against `server`, returning its output lines.
pub fn dig(server: SocketAddr, source: &str, args: &[&str]) -> Vec<String> {
    try_dig(server, source, &["+short"], args)
        .unwrap_or_else(|e| panic!("dig {args:?} failed: {e}"))
}

/// Runs `dig` with `options` (`+short`, `+noall +answer` ...) from `source` against `server`:
/// its output lines, or its error output when it fails (a server not answering yet).
pub fn try_dig(
    server: SocketAddr,
    source: &str,
    options: &[&str],
    args: &[&str],
) -> Result<Vec<String>, String> {
    let out = Command::new("dig")
        .args(options)
        .args([
            "+time=2",
            "+tries=1",
            "-b",
            source,
            &format!("@{}", server.ip()),
            "-p",
            &server.port().to_string(),
        ])
        .args(args)
        .output()
        .expect("dig (bind9-dnsutils) is installed");
    if !out.status.success() {
        return Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect())
}

/// Runs `dig` from `source` against `server` with `args` and returns its whole output.
pub fn dig_text(server: SocketAddr, source: &str, args: &[&str]) -> String {
    try_dig(server, source, &[], args)
        .unwrap_or_else(|e| panic!("dig {args:?} failed: {e}"))
        .iter()
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Asserts that the instance's store holds no DNS records (`why` says which ones are meant).
pub async fn assert_no_dns_records(inst: &Instance, why: &str) {
    let store = postern_store::Store::open(&inst.db.url)
        .await
        .expect("open the store");
    let left = store.dns_records(None).await.expect("DNS records");
    assert!(left.is_empty(), "{why}: {left:?}");
    store.close().await;
}

/// The `[dns]` section serving the repository's example zones (internal view for 127.0.0.2,
/// external for 127.0.0.3 and anyone else), with `zones_dir` pointing at `zones_dir`.
pub fn example_dns(zones_dir: &Path) -> String {
    let text = std::fs::read_to_string(repo_path("zones/dns.example.toml"))
        .expect("zones/dns.example.toml");
    text.replace(
        "zones_dir = \".\"",
        &format!("zones_dir = \"{}\"", zones_dir.display()),
    )
}

/// Copies the example zones into `dir` (for tests that edit them).
pub fn copy_zones(dir: &Path) {
    for view in ["internal", "external"] {
        std::fs::create_dir_all(dir.join(view)).expect("zones dir");
        for f in std::fs::read_dir(repo_path(&format!("zones/{view}"))).expect("zones") {
            let f = f.expect("entry").path();
            std::fs::copy(&f, dir.join(view).join(f.file_name().expect("name")))
                .expect("copy zone");
        }
    }
}

/// Path of a file in the repository (zones, fixtures).
pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The server's `/metrics` text (Prometheus format), read with a new API token of the first
/// admin (needs the `admin` service).
pub fn metrics(inst: &Instance, server: &Server) -> String {
    let token = inst.ok(&["admin", "token", "admin", "--label", "metrics"], "");
    metrics_with(server, token.trim())
}

/// The server's `/metrics` text, read with the API token `token`.
pub fn metrics_with(server: &Server, token: &str) -> String {
    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    let req = ureq::http::Request::builder()
        .uri(format!("http://{}/metrics", server.addr("admin")))
        .header("Authorization", format!("Bearer {token}"))
        .body(())
        .expect("request");
    agent
        .run(req)
        .expect("GET /metrics")
        .into_body()
        .read_to_string()
        .expect("metrics body")
}

/// The value of one sample (`name{labels}`) in Prometheus text, 0 when absent.
pub fn sample(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0)
}

/// Runs `tests/imap/<script>` against the server and fails with its output unless it passes.
pub fn imap_script(server: &Server, script: &str, env: &[(&str, String)]) {
    let out = imap_script_command(server, script, env)
        .output()
        .expect("run python3");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).ends_with("ok\n"),
        "{script} failed:\nstdout:\n{}\nstderr:\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
}

pub fn imap_script_command(server: &Server, script: &str, env: &[(&str, String)]) -> Command {
    let mut c = Command::new("python3");
    c.arg(repo_path(&format!("tests/imap/{script}")))
        .env("IMAP_PORT", server.addr("imap").port().to_string())
        .env("IMAPS_PORT", server.addr("imaps").port().to_string())
        .env("PYTHONDONTWRITEBYTECODE", "1");
    for (k, v) in env {
        c.env(k, v);
    }
    c
}
