//! A small IMAP4rev1 client (RFC 3501) for `postern import imap`: one connection, commands sent
//! one at a time, responses decoded by `imap-codec`; TLS from the start (`imaps://`) or after
//! STARTTLS (RFC 3501 §6.2.1). Only what an import needs: LOGIN, LIST, EXAMINE, UID FETCH.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use imap_codec::decode::{Decoder, GreetingDecodeError, ResponseDecodeError};
use imap_codec::encode::{Encoder, Fragment};
use imap_codec::imap_types::command::{Command, CommandBody};
use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::response::{
    Capability, Code, Data, GreetingKind, Response, Status, StatusKind,
};
use imap_codec::imap_types::IntoStatic;
use imap_codec::{CommandCodec, GreetingCodec, ResponseCodec};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// A stream the client speaks over: TCP, or TLS over it.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Where and how to connect (from `imap[s]://user@host[:port]`).
#[derive(Debug, Clone)]
pub struct Source {
    /// TLS from the first byte (`imaps`), else STARTTLS when offered.
    pub implicit_tls: bool,
    /// The login name.
    pub user: String,
    /// Host name or address.
    pub host: String,
    /// Port (993 or 143 unless given).
    pub port: u16,
}

impl Source {
    /// Parses `imap://user@host[:port]` or `imaps://...` (the user may itself contain `@`).
    pub fn parse(url: &str) -> anyhow::Result<Source> {
        let (implicit_tls, rest) = if let Some(r) = url.strip_prefix("imaps://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("imap://") {
            (false, r)
        } else {
            bail!("{url}: expected imap://user@host[:port] or imaps://user@host[:port]");
        };
        let rest = rest.trim_end_matches('/');
        let (user, hostport) = rest
            .rsplit_once('@')
            .with_context(|| format!("{url}: no user name (user@host)"))?;
        let default_port = if implicit_tls { 993 } else { 143 };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(':') && !p.ends_with(']') => {
                let port = p
                    .parse()
                    .with_context(|| format!("{url}: bad port {p:?}"))?;
                (h, port)
            }
            _ => (hostport, default_port),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if user.is_empty() || host.is_empty() {
            bail!("{url}: expected imap[s]://user@host[:port]");
        }
        Ok(Source {
            implicit_tls,
            user: user.to_owned(),
            host: host.to_owned(),
            port,
        })
    }
}

/// What a command brought back: the untagged data and the response codes seen on the way.
#[derive(Debug, Default)]
pub struct Reply {
    /// Untagged data responses (LIST, FETCH ...).
    pub data: Vec<Data<'static>>,
    /// Response codes of the untagged and tagged status responses (UIDVALIDITY ...).
    pub codes: Vec<Code<'static>>,
}

/// A logged-in session.
pub struct Client {
    io: Box<dyn Io>,
    buf: Vec<u8>,
    next_tag: u32,
}

/// Largest response accepted (a message is fetched with its response).
const MAX_RESPONSE: usize = 256 << 20;
/// Buffer capacity kept after a large response.
const KEEP_BUFFER: usize = 1 << 20;
/// How long connecting, or waiting for the next bytes from the server, may take.
const PATIENCE: Duration = Duration::from_secs(300);

impl Client {
    /// Connects, upgrades to TLS (implicit or STARTTLS, verified against `tls`), and logs in.
    pub async fn connect(
        source: &Source,
        password: &str,
        tls: Arc<rustls::ClientConfig>,
    ) -> anyhow::Result<Client> {
        let connect = TcpStream::connect((source.host.as_str(), source.port));
        let tcp = tokio::time::timeout(PATIENCE, connect)
            .await
            .map_err(|_| anyhow::anyhow!("timed out"))
            .and_then(|r| Ok(r?))
            .with_context(|| format!("connecting to {}:{}", source.host, source.port))?;
        let mut client = Client {
            io: Box::new(tcp),
            buf: Vec::new(),
            next_tag: 1,
        };
        if source.implicit_tls {
            client.start_tls(&source.host, tls.clone()).await?;
        }
        client.greeting().await?;
        if !source.implicit_tls {
            let caps = client.command(CommandBody::Capability).await?;
            let starttls = caps.data.iter().any(
                |d| matches!(d, Data::Capability(c) if c.as_ref().contains(&Capability::StartTls)),
            );
            if starttls {
                client.command(CommandBody::StartTLS).await?;
                client.start_tls(&source.host, tls).await?;
            } else {
                eprintln!(
                    "warning: {} offers no STARTTLS: the password is sent unencrypted",
                    source.host
                );
            }
        }
        let login = CommandBody::login(source.user.as_str(), password)
            .map_err(|_| anyhow::anyhow!("user name or password cannot be sent in LOGIN"))?;
        client
            .command(login)
            .await
            .with_context(|| format!("logging in as {}", source.user))?;
        Ok(client)
    }

    async fn start_tls(
        &mut self,
        host: &str,
        tls: Arc<rustls::ClientConfig>,
    ) -> anyhow::Result<()> {
        let name = rustls_pki_types::ServerName::try_from(host.to_owned())
            .with_context(|| format!("{host}: not a TLS server name"))?;
        let io = std::mem::replace(
            &mut self.io,
            Box::new(tokio::io::join(tokio::io::empty(), tokio::io::sink())),
        );
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(name, io)
            .await
            .with_context(|| format!("TLS with {host}"))?;
        self.io = Box::new(stream);
        Ok(())
    }

    async fn greeting(&mut self) -> anyhow::Result<()> {
        loop {
            match GreetingCodec::default().decode(&self.buf) {
                Ok((rest, greeting)) => {
                    if greeting.kind == GreetingKind::Bye {
                        bail!("server refused the connection: {}", greeting.text);
                    }
                    let used = self.buf.len() - rest.len();
                    self.buf.drain(..used);
                    return Ok(());
                }
                Err(GreetingDecodeError::Incomplete) => self.fill(1).await?,
                Err(_) => bail!("not an IMAP server greeting"),
            }
        }
    }

    /// Sends one command and reads up to its tagged completion; an error if that is not OK.
    pub async fn command(&mut self, body: CommandBody<'_>) -> anyhow::Result<Reply> {
        let tag = format!("p{}", self.next_tag);
        self.next_tag += 1;
        let tag = Tag::try_from(tag.as_str()).map_err(|_| anyhow::anyhow!("bad tag"))?;
        let name = body.name();
        let command = Command::new(tag.clone(), body).map_err(|_| anyhow::anyhow!("bad tag"))?;
        let mut reply = Reply::default();
        for fragment in CommandCodec::default().encode(&command) {
            match fragment {
                Fragment::Line { data } => self.io.write_all(&data).await?,
                Fragment::Literal { data, .. } => {
                    self.io.flush().await?;
                    loop {
                        match self.response().await? {
                            Response::CommandContinuationRequest(_) => break,
                            Response::Status(Status::Tagged(t)) => {
                                bail!("{name} refused: {}", t.body.text)
                            }
                            other => keep(&mut reply, other),
                        }
                    }
                    self.io.write_all(&data).await?;
                }
            }
        }
        self.io.flush().await?;
        loop {
            match self.response().await? {
                Response::Status(Status::Tagged(t)) if t.tag == tag => {
                    if t.body.kind != StatusKind::Ok {
                        bail!("{name} failed: {}", t.body.text);
                    }
                    reply.codes.extend(t.body.code);
                    return Ok(reply);
                }
                Response::Status(Status::Bye(bye)) => {
                    bail!("server closed the connection: {}", bye.text)
                }
                other => keep(&mut reply, other),
            }
        }
    }

    /// Reads and decodes the next response.
    async fn response(&mut self) -> anyhow::Result<Response<'static>> {
        let mut want = 1;
        loop {
            if self.buf.len() >= want {
                match ResponseCodec::default().decode(&self.buf) {
                    Ok((rest, response)) => {
                        let used = self.buf.len() - rest.len();
                        let response = response.into_static();
                        self.buf.drain(..used);
                        if self.buf.capacity() > KEEP_BUFFER && self.buf.len() <= KEEP_BUFFER {
                            self.buf.shrink_to(KEEP_BUFFER);
                        }
                        return Ok(response);
                    }
                    Err(ResponseDecodeError::Incomplete) => want = self.buf.len() + 1,
                    Err(ResponseDecodeError::LiteralFound { length }) => {
                        want = self.buf.len() + length as usize;
                    }
                    Err(_) => bail!("malformed response from the server"),
                }
            }
            if want > MAX_RESPONSE {
                bail!("response from the server larger than {MAX_RESPONSE} bytes");
            }
            self.fill(want).await?;
        }
    }

    /// Reads until the buffer holds at least `want` bytes.
    async fn fill(&mut self, want: usize) -> anyhow::Result<()> {
        let mut chunk = vec![0; 64 << 10];
        while self.buf.len() < want {
            let n = tokio::time::timeout(PATIENCE, self.io.read(&mut chunk))
                .await
                .map_err(|_| anyhow::anyhow!("the server sent nothing for {PATIENCE:?}"))??;
            if n == 0 {
                bail!("the server closed the connection");
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
        Ok(())
    }
}

fn keep(reply: &mut Reply, response: Response<'static>) {
    match response {
        Response::Data(d) => reply.data.push(d),
        Response::Status(Status::Untagged(body)) => reply.codes.extend(body.code),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::Source;

    #[test]
    fn source_urls() {
        let s = Source::parse("imaps://bob@old.example@mail.old.example").expect("parse");
        assert!(s.implicit_tls);
        assert_eq!(
            (s.user.as_str(), s.host.as_str(), s.port),
            ("bob@old.example", "mail.old.example", 993)
        );
        let s = Source::parse("imap://bob@127.0.0.1:1143/").expect("parse");
        assert!(!s.implicit_tls);
        assert_eq!((s.host.as_str(), s.port), ("127.0.0.1", 1143));
        let s = Source::parse("imap://bob@[::1]:1143").expect("parse");
        assert_eq!((s.host.as_str(), s.port), ("::1", 1143));
        assert_eq!(Source::parse("imap://bob@[::1]").expect("parse").port, 143);
        for bad in [
            "https://x@y",
            "imap://host",
            "imap://@host",
            "imap://u@h:99999",
            "imap://u@",
        ] {
            assert!(Source::parse(bad).is_err(), "{bad}");
        }
    }
}
