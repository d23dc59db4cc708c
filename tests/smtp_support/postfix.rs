//! A private Postfix instance (the Debian package, never its system service) as the receiving MTA
//! of outbound tests: its own configuration, queue and data directories in a temporary directory,
//! `smtpd` on 127.0.0.1 at a free port, every recipient of `remote.test` delivered by `virtual(8)`
//! into one Maildir.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A running Postfix; stopped on drop.
pub struct Postfix {
    dir: tempfile::TempDir,
    /// The port its `smtpd` listens on at 127.0.0.1.
    pub port: u16,
}

impl Postfix {
    /// Starts Postfix with `smtpd_forbid_bare_newline = <bare_newline>` (`no`, `normalize` or
    /// `reject`), applied to every client (no exclusions).
    pub fn start(bare_newline: &str) -> Postfix {
        Postfix::start_with(bare_newline, "")
    }

    /// Like [`Postfix::start`] with `extra` lines appended to `main.cf`.
    pub fn start_with(bare_newline: &str, extra: &str) -> Postfix {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        // The daemons run as the postfix user (and virtual(8) as nobody): they must reach the tree.
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        for sub in ["conf", "queue", "data", "mail"] {
            std::fs::create_dir(root.join(sub)).expect("mkdir");
        }
        std::fs::set_permissions(root.join("mail"), std::fs::Permissions::from_mode(0o777))
            .expect("chmod");
        let status = Command::new("chown")
            .args(["postfix:", &root.join("data").display().to_string()])
            .status()
            .expect("chown (is postfix installed?)");
        assert!(status.success(), "chown postfix: failed");
        let port = crate::common::ports::free_port();
        let d = root.display();
        std::fs::write(
            root.join("conf/main.cf"),
            format!(
                "compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
maillog_file = {d}/maillog
maillog_file_prefixes = {d}
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mx.remote.test
mydestination =
mynetworks = 127.0.0.1/32
virtual_mailbox_domains = remote.test
virtual_mailbox_base = {d}/mail
virtual_mailbox_maps = static:box/
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
smtpd_forbid_bare_newline = {bare_newline}
smtpd_forbid_bare_newline_exclusions =
smtputf8_enable = yes
biff = no
{extra}
"
            ),
        )
        .expect("main.cf");
        std::fs::write(
            root.join("conf/master.cf"),
            format!(
                "127.0.0.1:{port} inet n - n - - smtpd
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
virtual unix - n n - - virtual
smtp unix - - n - - smtp
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
"
            ),
        )
        .expect("master.cf");
        let postfix = Postfix { dir, port };
        let out = postfix.control("start");
        assert!(out.0, "postfix start failed: {}\n{}", out.1, postfix.log());
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "postfix not listening: {}",
                postfix.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        postfix
    }

    /// Sends every message for other domains (its own reports too) to `addr`, Postern's MX.
    pub fn relay_to(&self, addr: std::net::SocketAddr) {
        let out = Command::new("postconf")
            .arg("-c")
            .arg(self.root().join("conf"))
            .arg("-e")
            .arg(format!("relayhost = [{}]:{}", addr.ip(), addr.port()))
            .output()
            .expect("run postconf");
        assert!(out.status.success(), "postconf: {out:?}");
        let (ok, text) = self.control("reload");
        assert!(ok, "postfix reload failed: {text}");
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `postfix -c <conf> <verb>`; (success, output).
    fn control(&self, verb: &str) -> (bool, String) {
        let out = Command::new("postfix")
            .arg("-c")
            .arg(self.root().join("conf"))
            .arg(verb)
            .output()
            .expect("run postfix (is the postfix package installed?)");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    /// Postfix's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root().join("maillog")).unwrap_or_default()
    }

    /// Files waiting in Postfix's queue (received but not yet delivered).
    fn queued(&self) -> usize {
        ["maildrop", "incoming", "active", "deferred", "hold"]
            .iter()
            .map(|q| files(&self.root().join("queue").join(q)).len())
            .sum()
    }

    /// The messages delivered to the Maildir with CRLF line endings, in no particular order.
    pub fn delivered(&self) -> Vec<String> {
        let base = self.root().join("mail/box");
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            for f in files(&base.join(sub)) {
                // Maildir files end lines with LF: back to the wire form.
                let text = String::from_utf8_lossy(&std::fs::read(f).expect("read")).into_owned();
                out.push(text.replace('\n', "\r\n"));
            }
        }
        out
    }

    /// Waits until at least `n` messages are delivered and nothing is left in Postfix's queue;
    /// returns every delivered message (so more than `n` shows as such).
    pub fn wait_delivered(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let got = self.delivered();
            if got.len() >= n && self.queued() == 0 {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "postfix delivered {} of {n}, {} queued:\n{}",
                got.len(),
                self.queued(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Every file under `dir`, recursively (queue directories are hashed into subdirectories).
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = self.control("stop");
    }
}
