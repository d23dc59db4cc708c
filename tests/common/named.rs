//! A private BIND `named` secondary on loopback, for tests of what Postern sends secondaries.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A private BIND `named` on loopback port `port`, secondary for one zone from Postern
/// (IXFR is its default), logging its transfers.
pub struct Secondary {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Secondary {
    /// Starts `named` in `dir` for `zone` from `primary`.
    pub fn start(dir: &Path, port: u16, primary: SocketAddr, zone: &str) -> Secondary {
        std::fs::create_dir_all(dir).expect("named dir");
        let d = dir.display();
        let conf = format!(
            "options {{\n  directory \"{d}\";\n  pid-file \"{d}/named.pid\";\n  \
             session-keyfile \"{d}/session.key\";\n  managed-keys-directory \"{d}\";\n  \
             listen-on port {port} {{ 127.0.0.1; }};\n  listen-on-v6 {{ none; }};\n  \
             recursion no;\n  dnssec-validation no;\n  notify no;\n  allow-transfer {{ any; }};\n}};\n\
             controls {{ }};\nlogging {{ category xfer-in {{ default_stderr; }}; }};\n\
             zone \"{zone}\" {{\n  type secondary;\n  primaries {{ {} port {}; }};\n  \
             file \"{d}/{zone}.db\";\n}};\n",
            primary.ip(),
            primary.port()
        );
        std::fs::write(dir.join("named.conf"), conf).expect("named.conf");
        let child = Command::new("named")
            .args(["-g", "-4", "-n", "1", "-d", "1", "-c"])
            .arg(dir.join("named.conf"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("named.log")).expect("log"))
            .spawn()
            .expect("named (bind9) is installed");
        Secondary {
            child,
            dir: dir.to_path_buf(),
            port,
        }
    }

    /// Where it answers.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("named.log")).unwrap_or_default()
    }
}

impl Drop for Secondary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
