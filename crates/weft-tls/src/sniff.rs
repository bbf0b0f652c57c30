//! Looking at the first bytes of a connection to tell TLS from plaintext.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How many leading bytes are kept for diagnosis.
const KEEP: usize = 64;

/// What the first bytes received on a connection look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Looks {
    /// Nothing was received.
    Nothing,
    /// A TLS handshake record (a ClientHello or ServerHello).
    TlsHandshake,
    /// A TLS alert record.
    TlsAlert,
    /// Another TLS record type.
    TlsRecord,
    /// The HTTP/2 client preface (`PRI * HTTP/2.0`): gRPC without TLS.
    Http2Preface,
    /// An HTTP/2 frame header (a server's SETTINGS frame): gRPC without TLS.
    Http2Frame,
    /// HTTP/1.x text.
    Http1(String),
    /// Other printable text.
    Text(String),
    /// Other binary data, shown as hex.
    Binary(String),
}

impl Looks {
    pub fn classify(bytes: &[u8]) -> Looks {
        let printable = |b: &[u8]| {
            b.iter()
                .take_while(|c| c.is_ascii_graphic() || **c == b' ')
                .count()
                >= b.len().min(4)
        };
        let text = |b: &[u8]| {
            String::from_utf8_lossy(b)
                .chars()
                .take_while(|c| !c.is_control())
                .collect::<String>()
        };
        match bytes {
            [] => Looks::Nothing,
            [0x16] | [0x16, 0x03, ..] => Looks::TlsHandshake,
            [0x15] | [0x15, 0x03, ..] => Looks::TlsAlert,
            [0x14 | 0x17] | [0x14 | 0x17, 0x03, ..] => Looks::TlsRecord,
            b if b.starts_with(b"PRI * HTTP/2") => Looks::Http2Preface,
            b if b.starts_with(b"HTTP/1.")
                || [&b"GET "[..], b"POST ", b"PUT ", b"HEAD ", b"OPTIONS "]
                    .iter()
                    .any(|m| b.starts_with(m)) =>
            {
                Looks::Http1(text(b))
            }
            // An HTTP/2 frame: 24-bit length, type (SETTINGS=4, GOAWAY=7), flags, stream 0.
            [_, _, _, 0x04 | 0x07, _, 0, 0, 0, 0, ..] => Looks::Http2Frame,
            b if printable(b) => Looks::Text(text(b)),
            b => Looks::Binary(weft_crypto::hex(b)),
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(
            self,
            Looks::TlsHandshake | Looks::TlsAlert | Looks::TlsRecord
        )
    }
}

impl fmt::Display for Looks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Looks::Nothing => f.write_str("nothing"),
            Looks::TlsHandshake => f.write_str("a TLS handshake"),
            Looks::TlsAlert => f.write_str("a TLS alert"),
            Looks::TlsRecord => f.write_str("a TLS record"),
            Looks::Http2Preface => f.write_str("an HTTP/2 connection preface (gRPC without TLS)"),
            Looks::Http2Frame => f.write_str("an HTTP/2 frame (gRPC without TLS)"),
            Looks::Http1(t) => write!(f, "plaintext HTTP/1 (\"{t}\")"),
            Looks::Text(t) => write!(f, "plaintext (\"{t}\")"),
            Looks::Binary(h) => write!(f, "non-TLS bytes ({h})"),
        }
    }
}

/// The first bytes read through a [`Recorded`] stream, readable after the stream is gone
/// (tokio-rustls drops the transport when a handshake fails).
#[derive(Debug, Clone, Default)]
pub struct Head(Arc<Mutex<Vec<u8>>>);

impl Head {
    pub fn bytes(&self) -> Vec<u8> {
        self.0.lock().map(|h| h.clone()).unwrap_or_default()
    }

    pub fn looks(&self) -> Looks {
        Looks::classify(&self.bytes())
    }
}

/// A stream wrapper that remembers the first bytes read through it.
#[derive(Debug)]
pub struct Recorded<IO> {
    inner: IO,
    head: Head,
    kept: usize,
}

impl<IO> Recorded<IO> {
    pub fn new(inner: IO) -> (Self, Head) {
        let head = Head::default();
        (
            Recorded {
                inner,
                head: head.clone(),
                kept: 0,
            },
            head,
        )
    }

    pub fn get_ref(&self) -> &IO {
        &self.inner
    }

    pub fn get_mut(&mut self) -> &mut IO {
        &mut self.inner
    }

    pub fn into_inner(self) -> IO {
        self.inner
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Recorded<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let res = Pin::new(&mut this.inner).poll_read(cx, buf);
        if this.kept < KEEP {
            let new = &buf.filled()[before..];
            let take = new.len().min(KEEP - this.kept);
            if take > 0 {
                if let Ok(mut head) = this.head.0.lock() {
                    head.extend_from_slice(&new[..take]);
                }
                this.kept += take;
            }
        }
        res
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Recorded<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A stream whose first bytes were already read (for sniffing) and are replayed first.
#[derive(Debug)]
pub struct Prefixed<IO> {
    prefix: Vec<u8>,
    pos: usize,
    inner: IO,
}

impl<IO> Prefixed<IO> {
    pub fn new(prefix: Vec<u8>, inner: IO) -> Self {
        Prefixed {
            prefix,
            pos: 0,
            inner,
        }
    }

    pub fn get_ref(&self) -> &IO {
        &self.inner
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Prefixed<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.pos < this.prefix.len() {
            let n = (this.prefix.len() - this.pos).min(buf.remaining());
            buf.put_slice(&this.prefix[this.pos..this.pos + n]);
            this.pos += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Prefixed<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_what_meets_a_port() {
        assert_eq!(
            Looks::classify(&[0x16, 0x03, 0x01, 0x02, 0x00]),
            Looks::TlsHandshake
        );
        assert_eq!(
            Looks::classify(&[0x15, 0x03, 0x03, 0, 2, 2, 70]),
            Looks::TlsAlert
        );
        assert_eq!(
            Looks::classify(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
            Looks::Http2Preface
        );
        assert_eq!(
            Looks::classify(&[0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 3]),
            Looks::Http2Frame
        );
        assert_eq!(
            Looks::classify(b"HTTP/1.1 400 Bad Request\r\n"),
            Looks::Http1("HTTP/1.1 400 Bad Request".into())
        );
        assert_eq!(
            Looks::classify(b"hello there\n"),
            Looks::Text("hello there".into())
        );
        assert_eq!(
            Looks::classify(&[0xff, 0x00, 0x01]),
            Looks::Binary("ff0001".into())
        );
        assert_eq!(Looks::classify(b""), Looks::Nothing);
    }
}
