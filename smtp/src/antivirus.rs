//! Virus scanning at the end of DATA through clamd's `INSTREAM` command (clamd(8)): the message
//! is streamed as length-prefixed chunks over a Unix or TCP socket and clamd names the signature
//! it found. The protocol is a dozen lines, so it is written here rather than taken from a crate;
//! [`instream_frames`] and [`parse_reply`] are its sans-I/O halves, [`scan`] the socket shell.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::reply::Reply;

/// Bytes sent per `INSTREAM` chunk.
const CHUNK: usize = 64 * 1024;

/// Longest reply read from clamd.
const MAX_REPLY: u64 = 4096;

/// The `[smtp.antivirus]` table: off unless `clamd` is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AntivirusConfig {
    /// Where clamd listens: `"unix:/run/clamav/clamd.ctl"` or `"tcp:127.0.0.1:3310"`.
    pub clamd: Option<ClamdAddr>,
    /// Seconds allowed for connecting, streaming and the verdict of one message.
    pub timeout_secs: u64,
    /// What to do with an infected message.
    pub action: VirusAction,
    /// What to do when clamd cannot give a verdict (down, timed out, size limit).
    pub on_error: ScanFailure,
}

impl Default for AntivirusConfig {
    fn default() -> Self {
        AntivirusConfig {
            clamd: None,
            timeout_secs: 30,
            action: VirusAction::Reject,
            on_error: ScanFailure::Accept,
        }
    }
}

/// clamd's socket address.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum ClamdAddr {
    /// A Unix domain socket (clamd's `LocalSocket`).
    Unix(PathBuf),
    /// A TCP address, `host:port` (clamd's `TCPAddr`/`TCPSocket`).
    Tcp(String),
}

impl TryFrom<String> for ClamdAddr {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if let Some(path) = s.strip_prefix("unix:") {
            return Ok(ClamdAddr::Unix(PathBuf::from(path)));
        }
        match s.strip_prefix("tcp:") {
            Some(addr) if addr.rsplit_once(':').is_some() => Ok(ClamdAddr::Tcp(addr.to_owned())),
            _ => Err(format!(
                "clamd = {s:?}: expected \"unix:/path\" or \"tcp:host:port\""
            )),
        }
    }
}

impl fmt::Display for ClamdAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClamdAddr::Unix(p) => write!(f, "unix:{}", p.display()),
            ClamdAddr::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}

/// What happens to an infected message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VirusAction {
    /// Refuse it at the end of DATA with 554 5.7.1.
    Reject,
    /// Accept it, file the local copies into Junk with an `X-Postern-Virus` header, and relay
    /// nothing to remote recipients.
    Quarantine,
}

/// What happens when no verdict comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScanFailure {
    /// Deliver the message unscanned (fail open).
    Accept,
    /// Answer 451 4.7.1 so the client retries later (fail closed).
    Tempfail,
}

/// clamd's verdict on one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing found.
    Clean,
    /// A signature matched; its name.
    Infected(String),
}

/// Why no verdict came.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// Connecting or talking to clamd failed.
    #[error("clamd I/O: {0}")]
    Io(#[from] std::io::Error),
    /// clamd did not answer in time.
    #[error("clamd timed out")]
    Timeout,
    /// clamd answered with an error (e.g. `INSTREAM size limit exceeded. ERROR`).
    #[error("clamd: {0}")]
    Clamd(String),
}

/// What the session does with the message after the scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Check {
    /// Deliver normally (clean, scanning off, or failing open).
    Pass,
    /// Deliver into quarantine; the signature name.
    Quarantine(String),
    /// Refuse with this reply.
    Refuse(Reply),
}

/// Scans `message` as configured and decides what happens to it.
pub(crate) async fn check(config: &AntivirusConfig, message: &[u8]) -> Check {
    let Some(addr) = &config.clamd else {
        return Check::Pass;
    };
    let timeout = Duration::from_secs(config.timeout_secs.max(1));
    let result = match tokio::time::timeout(timeout, scan(addr, message)).await {
        Ok(r) => r,
        Err(_) => Err(ScanError::Timeout),
    };
    match result {
        Ok(Verdict::Clean) => Check::Pass,
        Ok(Verdict::Infected(name)) => {
            let action = match config.action {
                VirusAction::Reject => "reject",
                VirusAction::Quarantine => "quarantine",
            };
            tracing::warn!(signature = name, action, "virus found");
            metrics::counter!("postern_smtp_virus_total", "action" => action).increment(1);
            match config.action {
                VirusAction::Reject => Check::Refuse(Reply::new(
                    554,
                    (5, 7, 1),
                    format!("Message rejected: virus found ({})", printable(&name)),
                )),
                VirusAction::Quarantine => Check::Quarantine(name),
            }
        }
        Err(e) => {
            tracing::error!(clamd = %addr, error = %e, "virus scan failed");
            metrics::counter!("postern_smtp_virus_scan_errors_total").increment(1);
            match config.on_error {
                ScanFailure::Accept => Check::Pass,
                ScanFailure::Tempfail => Check::Refuse(Reply::new(
                    451,
                    (4, 7, 1),
                    "Virus scanner unavailable, try again later",
                )),
            }
        }
    }
}

/// The header field put before a quarantined message: `X-Postern-Virus` naming the signature.
pub(crate) fn quarantine_header(signature: &str) -> String {
    format!("X-Postern-Virus: {}\r\n", printable(signature))
}

/// A signature name as it may appear in a reply or header: printable ASCII, no CR/LF.
pub(crate) fn printable(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(200)
        .collect()
}

/// Streams `message` to clamd at `addr` and reads its verdict.
pub async fn scan(addr: &ClamdAddr, message: &[u8]) -> Result<Verdict, ScanError> {
    match addr {
        ClamdAddr::Unix(path) => {
            exchange(tokio::net::UnixStream::connect(path).await?, message).await
        }
        ClamdAddr::Tcp(a) => {
            exchange(tokio::net::TcpStream::connect(a.as_str()).await?, message).await
        }
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    message: &[u8],
) -> Result<Verdict, ScanError> {
    for frame in instream_frames(message) {
        stream.write_all(&frame).await?;
    }
    stream.flush().await?;
    let mut reply = Vec::new();
    (&mut stream)
        .take(MAX_REPLY)
        .read_to_end(&mut reply)
        .await?;
    parse_reply(&reply)
}

/// The bytes of an `INSTREAM` request, in write order: the `z`-prefixed (NUL-terminated)
/// command, each chunk after its 4-byte big-endian length, and a zero length to end the stream.
pub fn instream_frames(message: &[u8]) -> impl Iterator<Item = Vec<u8>> + '_ {
    let head = std::iter::once(b"zINSTREAM\0".to_vec());
    let chunks = message.chunks(CHUNK).map(|chunk| {
        let mut frame = Vec::with_capacity(chunk.len() + 4);
        // Chunks are at most CHUNK bytes, far below u32::MAX.
        frame.extend_from_slice(&(chunk.len() as u32).to_be_bytes());
        frame.extend_from_slice(chunk);
        frame
    });
    head.chain(chunks)
        .chain(std::iter::once(0u32.to_be_bytes().to_vec()))
}

/// clamd's reply to `zINSTREAM`: `stream: OK`, `stream: NAME FOUND`, or `... ERROR`
/// (NUL-terminated in the `z` form).
pub fn parse_reply(reply: &[u8]) -> Result<Verdict, ScanError> {
    let text = String::from_utf8_lossy(reply);
    let text = text.trim_end_matches(['\0', '\n', '\r']).trim();
    let body = text.strip_prefix("stream:").map(str::trim);
    match body {
        Some("OK") => Ok(Verdict::Clean),
        Some(rest) if rest == "FOUND" || rest.ends_with(" FOUND") => {
            let name = rest.trim_end_matches("FOUND").trim();
            Ok(Verdict::Infected(if name.is_empty() {
                "unknown".into()
            } else {
                name.to_owned()
            }))
        }
        _ => Err(ScanError::Clamd(printable(text))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_length_prefixed_and_terminated() {
        let message = vec![b'x'; CHUNK + 3];
        let frames: Vec<Vec<u8>> = instream_frames(&message).collect();
        assert_eq!(frames[0], b"zINSTREAM\0");
        assert_eq!(&frames[1][..4], &(CHUNK as u32).to_be_bytes());
        assert_eq!(frames[1].len(), CHUNK + 4);
        assert_eq!(frames[2], [0, 0, 0, 3, b'x', b'x', b'x']);
        assert_eq!(frames[3], [0, 0, 0, 0]);
        assert_eq!(instream_frames(b"").count(), 2);
    }

    #[test]
    fn replies() {
        assert_eq!(parse_reply(b"stream: OK\0").unwrap(), Verdict::Clean);
        assert_eq!(
            parse_reply(b"stream: Eicar-Signature FOUND\0").unwrap(),
            Verdict::Infected("Eicar-Signature".into())
        );
        assert_eq!(
            parse_reply(b"stream:  FOUND").unwrap(),
            Verdict::Infected("unknown".into())
        );
        for bad in [
            &b"INSTREAM size limit exceeded. ERROR\0"[..],
            b"",
            b"stream: \xff\r\n ERROR",
            b"UNKNOWN COMMAND\n",
        ] {
            assert!(
                matches!(parse_reply(bad), Err(ScanError::Clamd(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn addresses() {
        assert_eq!(
            ClamdAddr::try_from("unix:/run/clamav/clamd.ctl".to_owned()).unwrap(),
            ClamdAddr::Unix("/run/clamav/clamd.ctl".into())
        );
        assert_eq!(
            ClamdAddr::try_from("tcp:127.0.0.1:3310".to_owned()).unwrap(),
            ClamdAddr::Tcp("127.0.0.1:3310".into())
        );
        assert!(ClamdAddr::try_from("127.0.0.1:3310".to_owned()).is_err());
        assert!(ClamdAddr::try_from("tcp:localhost".to_owned()).is_err());
        assert_eq!(printable("Evil\r\nX-Header: 1"), "EvilX-Header: 1");
    }

    /// A fake clamd on loopback TCP that reads the whole stream, then answers `reply` (or
    /// never, for `None`); returns its address.
    async fn fake_clamd(reply: Option<&'static [u8]>) -> ClamdAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut head = [0u8; 10];
                    if conn.read_exact(&mut head).await.is_err() {
                        return;
                    }
                    loop {
                        let mut len = [0u8; 4];
                        if conn.read_exact(&mut len).await.is_err() {
                            return;
                        }
                        let len = u32::from_be_bytes(len) as usize;
                        if len == 0 {
                            break;
                        }
                        let mut chunk = vec![0; len];
                        if conn.read_exact(&mut chunk).await.is_err() {
                            return;
                        }
                    }
                    match reply {
                        Some(r) => {
                            conn.write_all(r).await.ok();
                        }
                        None => std::future::pending::<()>().await,
                    }
                });
            }
        });
        ClamdAddr::Tcp(addr.to_string())
    }

    fn config(clamd: ClamdAddr, action: VirusAction, on_error: ScanFailure) -> AntivirusConfig {
        AntivirusConfig {
            clamd: Some(clamd),
            timeout_secs: 1,
            action,
            on_error,
        }
    }

    #[tokio::test]
    async fn verdicts_and_failures_over_tcp() {
        let big = vec![b'a'; 3 * CHUNK + 1];
        let found = fake_clamd(Some(b"stream: Evil\r\nSig FOUND\0")).await;
        match check(
            &config(found.clone(), VirusAction::Reject, ScanFailure::Accept),
            &big,
        )
        .await
        {
            Check::Refuse(r) => assert_eq!(r.code(), 554),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            check(
                &config(found, VirusAction::Quarantine, ScanFailure::Accept),
                b"x"
            )
            .await,
            Check::Quarantine("Evil\r\nSig".into())
        );
        assert_eq!(
            quarantine_header("Evil\r\nSig"),
            "X-Postern-Virus: EvilSig\r\n"
        );
        let clean = fake_clamd(Some(b"stream: OK\0")).await;
        let tempfail = config(clean, VirusAction::Reject, ScanFailure::Tempfail);
        assert_eq!(check(&tempfail, &big).await, Check::Pass);
        for broken in [
            fake_clamd(None).await,
            fake_clamd(Some(b"INSTREAM size limit exceeded. ERROR\0")).await,
            ClamdAddr::Unix("/nonexistent/clamd.sock".into()),
        ] {
            match check(
                &config(broken.clone(), VirusAction::Reject, ScanFailure::Tempfail),
                b"x",
            )
            .await
            {
                Check::Refuse(r) => assert_eq!(r.code(), 451, "{broken}"),
                other => panic!("{broken}: {other:?}"),
            }
            let open = config(broken.clone(), VirusAction::Reject, ScanFailure::Accept);
            assert_eq!(check(&open, b"x").await, Check::Pass, "{broken}");
        }
        let off = AntivirusConfig::default();
        assert_eq!(check(&off, b"x").await, Check::Pass);
    }
}
