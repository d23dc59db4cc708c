//! COMPRESS=DEFLATE (RFC 4978) in the I/O shell: once the session has answered `COMPRESS
//! DEFLATE`, both directions of the connection (over TLS when TLS is active) are raw DEFLATE
//! streams (RFC 1951, flate2). Each flush ends with a sync flush (RFC 4978 §4), so a response is
//! never held back in the compressor. Reading inflates at most the caller's buffer at a time, so
//! a small compressed input that expands enormously (a decompression bomb) reaches the shell
//! piece by piece and runs into the same command size limits as uncompressed input.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use postern_net::NetStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Compressed bytes read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;

/// Both directions' DEFLATE state.
struct Deflate {
    compress: Compress,
    decompress: Decompress,
    /// Compressed input read and not yet inflated.
    input: Vec<u8>,
    /// Compressed output not yet written to the socket.
    output: Vec<u8>,
    /// Data was compressed since the last sync flush.
    unflushed: bool,
}

/// The client connection: the network stream, deflated after COMPRESS.
pub(crate) struct Link {
    stream: NetStream,
    deflate: Option<Box<Deflate>>,
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

impl Link {
    /// A connection without compression.
    pub(crate) fn new(stream: NetStream) -> Link {
        Link {
            stream,
            deflate: None,
        }
    }

    /// The network stream (for STARTTLS, which RFC 4978 §3 forbids once compression is active:
    /// the session only allows COMPRESS after login, STARTTLS only before).
    pub(crate) fn stream(&mut self) -> &mut NetStream {
        &mut self.stream
    }

    /// Whether TLS is active.
    pub(crate) fn is_tls(&self) -> bool {
        self.stream.is_tls()
    }

    /// Starts DEFLATE in both directions; `pending` is what the client sent after its COMPRESS
    /// command and the shell already read, which is compressed already.
    pub(crate) fn start_deflate(&mut self, pending: Vec<u8>) {
        self.deflate = Some(Box::new(Deflate {
            compress: Compress::new(Compression::default(), false),
            decompress: Decompress::new(false),
            input: pending,
            output: Vec::new(),
            unflushed: false,
        }));
    }

    /// Writes out compressed output already produced.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Link { stream, deflate } = self;
        let Some(d) = deflate.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        while !d.output.is_empty() {
            let n = ready!(Pin::new(&mut *stream).poll_write(cx, &d.output))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            d.output.drain(..n);
        }
        Poll::Ready(Ok(()))
    }
}

impl Deflate {
    /// Compresses `data` (all of it) into `output` with `flush`.
    fn compress(&mut self, mut data: &[u8], flush: FlushCompress) -> io::Result<()> {
        loop {
            if self.output.capacity() - self.output.len() < 1024 {
                self.output.reserve(data.len().max(4096));
            }
            let before_in = self.compress.total_in();
            self.compress
                .compress_vec(data, &mut self.output, flush)
                .map_err(invalid)?;
            let used = (self.compress.total_in() - before_in) as usize;
            data = &data[used..];
            // Done once the input is used up and the compressor left room unused: it had
            // nothing more to write.
            if data.is_empty() && self.output.len() < self.output.capacity() {
                return Ok(());
            }
        }
    }
}

impl AsyncRead for Link {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let Link { stream, deflate } = self.get_mut();
        let Some(d) = deflate.as_mut() else {
            return Pin::new(stream).poll_read(cx, buf);
        };
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            if !d.input.is_empty() {
                let before_in = d.decompress.total_in();
                let before_out = d.decompress.total_out();
                let status = d
                    .decompress
                    .decompress(&d.input, buf.initialize_unfilled(), FlushDecompress::Sync)
                    .map_err(invalid)?;
                let used = (d.decompress.total_in() - before_in) as usize;
                let produced = (d.decompress.total_out() - before_out) as usize;
                d.input.drain(..used);
                if status == Status::StreamEnd {
                    return Poll::Ready(Err(invalid("the client ended its DEFLATE stream")));
                }
                if produced > 0 {
                    buf.advance(produced);
                    return Poll::Ready(Ok(()));
                }
                if used > 0 {
                    continue;
                }
            }
            let mut chunk = [0u8; READ_CHUNK];
            let mut raw = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut *stream).poll_read(cx, &mut raw))?;
            if raw.filled().is_empty() {
                return Poll::Ready(Ok(()));
            }
            d.input.extend_from_slice(raw.filled());
        }
    }
}

impl AsyncWrite for Link {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.deflate.is_none() {
            return Pin::new(&mut this.stream).poll_write(cx, data);
        }
        ready!(this.drain(cx))?;
        if let Some(d) = this.deflate.as_mut() {
            d.compress(data, FlushCompress::None)?;
            d.unflushed = true;
        }
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(d) = this.deflate.as_mut() {
            if d.unflushed {
                d.compress(&[], FlushCompress::Sync)?;
                d.unflushed = false;
            }
        }
        ready!(this.drain(cx))?;
        Pin::new(&mut this.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
