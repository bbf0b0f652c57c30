//! Write coalescing under HTTP/2: gather what one connection writes while other tasks are
//! ready to run, and hand it to TLS and the socket at once.
//!
//! HTTP/2 (the `h2` crate) writes and flushes the frames it has each time its connection task
//! runs. Under load that task runs once per message: a request task queues its response and
//! wakes the connection task, which tokio runs next. A weft peer then makes about seven
//! `writev` calls per transaction, each with its own TLS record and its own wake-up on the
//! receiving side. [`Coalesce`] keeps written bytes in a buffer and, the first time it is
//! asked to flush, lets the tasks already waiting to run go first (it wakes itself and
//! answers "not yet"); those tasks add their frames to the same buffer, and the second flush
//! writes everything. On an idle connection this delays a write by one turn of the
//! scheduler (at 50 clients in flight, where connections are mostly idle, `weft bench` gave
//! p50 279 ms before and after); on a busy one it turns many small writes into a few large
//! ones.
//!
//! Bytes are never held back without a flush request behind them: h2 always flushes after
//! writing, and a flush is only deferred once.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Above this many buffered bytes, writes go through at once.
pub const COALESCE_LIMIT: usize = 64 * 1024;

/// A writer that coalesces writes until a (once-deferred) flush. Reads pass through.
#[derive(Debug)]
pub struct Coalesce<T> {
    inner: T,
    buf: Vec<u8>,
    /// Bytes of `buf` already written to `inner`.
    written: usize,
    /// The current flush was already deferred once.
    deferred: bool,
}

impl<T> Coalesce<T> {
    pub fn new(inner: T) -> Self {
        Coalesce {
            inner,
            buf: Vec::new(),
            written: 0,
            deferred: false,
        }
    }

    pub fn get_ref(&self) -> &T {
        &self.inner
    }
}

impl<T: AsyncWrite + Unpin> Coalesce<T> {
    /// Write the buffered bytes to `inner`.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.buf.len() {
            let n = match Pin::new(&mut self.inner).poll_write(cx, &self.buf[self.written..]) {
                Poll::Ready(Ok(n)) => n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            };
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.buf.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Coalesce<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Coalesce<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.buf.len() + data.len() > COALESCE_LIMIT {
            if this.poll_drain(cx)?.is_pending() {
                return Poll::Pending;
            }
            if data.len() > COALESCE_LIMIT {
                return Pin::new(&mut this.inner).poll_write(cx, data);
            }
        }
        this.buf.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.buf.is_empty() {
            this.deferred = false;
            return Pin::new(&mut this.inner).poll_flush(cx);
        }
        if !this.deferred {
            // Let the tasks that are ready run first: they may add to this write.
            this.deferred = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if this.poll_drain(cx)?.is_pending() {
            return Poll::Pending;
        }
        this.deferred = false;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.poll_drain(cx)?.is_pending() {
            return Poll::Pending;
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Counts the writes that reach the inner writer.
    #[derive(Default)]
    struct Counting {
        data: Vec<u8>,
        writes: usize,
        flushes: usize,
    }

    impl AsyncWrite for Counting {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.writes += 1;
            self.data.extend_from_slice(buf);
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.flushes += 1;
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn small_writes_reach_the_socket_as_one_after_a_flush() {
        let mut w = Coalesce::new(Counting::default());
        for i in 0..10u8 {
            w.write_all(&[i; 100]).await.unwrap();
        }
        assert_eq!(w.get_ref().writes, 0, "nothing is written before a flush");
        w.flush().await.unwrap();
        assert_eq!(w.get_ref().writes, 1);
        assert_eq!(w.get_ref().flushes, 1);
        assert_eq!(w.get_ref().data.len(), 1000);
        assert!(w.get_ref().data[..100].iter().all(|b| *b == 0));
        assert!(w.get_ref().data[900..].iter().all(|b| *b == 9));
        // Nothing buffered: a flush goes straight through.
        w.flush().await.unwrap();
        assert_eq!((w.get_ref().writes, w.get_ref().flushes), (1, 2));
    }

    /// Counts wake-ups.
    struct Wakes(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Wakes {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    #[test]
    fn a_flush_yields_once_and_wakes_itself_then_writes() {
        let wakes = std::sync::Arc::new(Wakes(Default::default()));
        let waker = std::task::Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        let mut w = Coalesce::new(Counting::default());
        assert!(matches!(
            Pin::new(&mut w).poll_write(&mut cx, b"frame"),
            Poll::Ready(Ok(5))
        ));
        // First flush: not yet, and the task is woken so it comes back.
        assert!(Pin::new(&mut w).poll_flush(&mut cx).is_pending());
        assert_eq!(wakes.0.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert_eq!(w.get_ref().writes, 0);
        // Meanwhile another frame joins; the second flush writes both at once.
        assert!(Pin::new(&mut w).poll_write(&mut cx, b"more").is_ready());
        assert!(matches!(
            Pin::new(&mut w).poll_flush(&mut cx),
            Poll::Ready(Ok(()))
        ));
        assert_eq!((w.get_ref().writes, w.get_ref().flushes), (1, 1));
        assert_eq!(w.get_ref().data, b"framemore");
        // The next flush with data defers again.
        assert!(Pin::new(&mut w).poll_write(&mut cx, b"x").is_ready());
        assert!(Pin::new(&mut w).poll_flush(&mut cx).is_pending());
        assert_eq!(wakes.0.load(std::sync::atomic::Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn large_writes_go_through_in_order() {
        let mut w = Coalesce::new(Counting::default());
        w.write_all(b"head").await.unwrap();
        let big = vec![7u8; COALESCE_LIMIT + 1];
        w.write_all(&big).await.unwrap();
        w.write_all(b"tail").await.unwrap();
        w.shutdown().await.unwrap();
        let data = &w.get_ref().data;
        assert_eq!(data.len(), 4 + big.len() + 4);
        assert_eq!(&data[..4], b"head");
        assert_eq!(&data[data.len() - 4..], b"tail");
    }

    #[tokio::test]
    async fn bytes_arrive_intact_over_a_socket() {
        let (a, mut b) = tokio::io::duplex(1024);
        let mut w = Coalesce::new(a);
        let writer = tokio::spawn(async move {
            for i in 0..2000u32 {
                w.write_all(&i.to_be_bytes()).await.unwrap();
                if i % 3 == 0 {
                    w.flush().await.unwrap();
                }
            }
            w.shutdown().await.unwrap();
        });
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        writer.await.unwrap();
        let want: Vec<u8> = (0..2000u32).flat_map(|i| i.to_be_bytes()).collect();
        assert_eq!(got, want);
    }
}
