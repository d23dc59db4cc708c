//! A connection's byte stream before or after TLS, so protocol loops have one type for both.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// A client connection, plain or TLS.
pub enum NetStream {
    /// Plain TCP (before STARTTLS, or a service without TLS).
    Plain(TcpStream),
    /// TLS over TCP (implicit TLS, or after STARTTLS).
    Tls(Box<TlsStream<TcpStream>>),
    /// Left behind by a failed upgrade; every operation fails.
    Broken,
}

fn broken() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "connection lost in TLS upgrade",
    )
}

impl NetStream {
    /// Whether TLS is active.
    pub fn is_tls(&self) -> bool {
        matches!(self, NetStream::Tls(_))
    }

    /// The TLS connection state (SNI, protocol), when TLS is active.
    pub fn tls_connection(&self) -> Option<&rustls::ServerConnection> {
        match self {
            NetStream::Tls(t) => Some(t.get_ref().1),
            _ => None,
        }
    }

    /// Performs the server side of a TLS handshake within `timeout` (implicit TLS, RFC 8314, or
    /// STARTTLS: RFC 3207, RFC 3501 §6.2.1). The caller must have discarded any plaintext the
    /// client pipelined after its STARTTLS command.
    pub async fn start_tls(&mut self, acceptor: &TlsAcceptor, timeout: Duration) -> io::Result<()> {
        let NetStream::Plain(tcp) = std::mem::replace(self, NetStream::Broken) else {
            return Err(io::Error::other("TLS already active"));
        };
        let tls = tokio::time::timeout(timeout, acceptor.accept(tcp))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
        *self = NetStream::Tls(Box::new(tls));
        Ok(())
    }
}

impl AsyncRead for NetStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            NetStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            NetStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            NetStream::Broken => Poll::Ready(Err(broken())),
        }
    }
}

impl AsyncWrite for NetStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            NetStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            NetStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            NetStream::Broken => Poll::Ready(Err(broken())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            NetStream::Plain(s) => Pin::new(s).poll_flush(cx),
            NetStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            NetStream::Broken => Poll::Ready(Err(broken())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            NetStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            NetStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            NetStream::Broken => Poll::Ready(Ok(())),
        }
    }
}
