//! A one-way link delay on every TCP connection, for the network lab only (ADR 0019):
//! this kernel has no netem, so the lab asks each node to hold what it sends for a fixed
//! time before it reaches the socket. Bytes leave in order, each `latency` after it was
//! written; writes are not slowed (the link is a pipe `latency` long), up to
//! [`MAX_IN_FLIGHT`] bytes, past which the writer waits, as on a full link.
//!
//! With no latency (every node but the lab's) the stream is passed through untouched.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use libp2p::futures::io::{ReadHalf, WriteHalf};
use libp2p::futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;
use tokio::time::Instant;

/// Bytes a delayed link holds at most before the writer waits.
const MAX_IN_FLIGHT: usize = 8 << 20;

/// A stream, or the same stream with its sending side delayed.
pub(crate) enum Link<S> {
    Direct(S),
    Delayed {
        read: ReadHalf<S>,
        shared: Arc<Shared>,
    },
}

#[derive(Default)]
pub(crate) struct Shared {
    state: Mutex<State>,
    wake_sender: Notify,
}

#[derive(Default)]
struct State {
    queue: VecDeque<(Instant, Vec<u8>)>,
    in_flight: usize,
    closing: bool,
    closed: bool,
    failed: Option<io::ErrorKind>,
    writer: Option<Waker>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<S> Link<S>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    /// `stream` as is when `latency` is zero; else with its writes delayed by a task on
    /// the current tokio runtime.
    pub(crate) fn new(stream: S, latency: Duration) -> Link<S> {
        if latency.is_zero() {
            return Link::Direct(stream);
        }
        let (read, write) = stream.split();
        let shared = Arc::new(Shared::default());
        tokio::spawn(send(write, shared.clone(), latency));
        Link::Delayed { read, shared }
    }
}

enum Next {
    Send((Instant, Vec<u8>)),
    Wait,
    Close,
}

/// Writes each chunk when its time comes, in order; closes the stream once asked and
/// drained.
async fn send<S: AsyncWrite + Unpin>(
    mut write: WriteHalf<S>,
    shared: Arc<Shared>,
    latency: Duration,
) {
    loop {
        // (No lock is held across an await: the guard lives in this block only.)
        let next = {
            let mut state = shared.state();
            match state.queue.pop_front() {
                Some(item) => Next::Send(item),
                None if state.closing => Next::Close,
                None => Next::Wait,
            }
        };
        let (written_at, bytes) = match next {
            Next::Send(item) => item,
            Next::Wait => {
                // A notification sent before this wait is kept (a permit), not lost.
                shared.wake_sender.notified().await;
                continue;
            }
            Next::Close => {
                let _ = write.close().await;
                let mut state = shared.state();
                state.closed = true;
                if let Some(w) = state.writer.take() {
                    w.wake();
                }
                return;
            }
        };
        tokio::time::sleep_until(written_at + latency).await;
        let result = write.write_all(&bytes).await;
        let mut state = shared.state();
        state.in_flight -= bytes.len();
        if let Err(e) = result {
            state.failed = Some(e.kind());
        }
        if let Some(w) = state.writer.take() {
            w.wake();
        }
        if state.failed.is_some() {
            return;
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Link<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Link::Direct(s) => Pin::new(s).poll_read(cx, buf),
            Link::Delayed { read, .. } => Pin::new(read).poll_read(cx, buf),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Link<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let shared = match self.get_mut() {
            Link::Direct(s) => return Pin::new(s).poll_write(cx, buf),
            Link::Delayed { shared, .. } => shared,
        };
        let mut state = shared.state();
        if let Some(kind) = state.failed {
            return Poll::Ready(Err(kind.into()));
        }
        if state.closing {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if state.in_flight >= MAX_IN_FLIGHT {
            state.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        state.queue.push_back((Instant::now(), buf.to_vec()));
        state.in_flight += buf.len();
        drop(state);
        shared.wake_sender.notify_one();
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Link::Direct(s) => Pin::new(s).poll_flush(cx),
            // What was written is on the link: flushed, as far as the writer can tell.
            Link::Delayed { shared, .. } => match shared.state().failed {
                Some(kind) => Poll::Ready(Err(kind.into())),
                None => Poll::Ready(Ok(())),
            },
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let shared = match self.get_mut() {
            Link::Direct(s) => return Pin::new(s).poll_close(cx),
            Link::Delayed { shared, .. } => shared,
        };
        let mut state = shared.state();
        if state.closed || state.failed.is_some() {
            return Poll::Ready(Ok(()));
        }
        state.closing = true;
        state.writer = Some(cx.waker().clone());
        drop(state);
        shared.wake_sender.notify_one();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use libp2p::tcp::tokio::TcpStream;

    /// Over a real TCP connection on loopback: each write arrives no sooner than the
    /// latency after it was made, in order, and a close arrives after the data.
    #[tokio::test]
    async fn bytes_arrive_in_order_no_sooner_than_the_latency() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (a, b) = tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
        let latency = Duration::from_millis(50);
        let mut link = Link::new(TcpStream(a.unwrap()), latency);
        let mut b = TcpStream(b.unwrap().0);
        let first = Instant::now();
        link.write_all(b"one").await.unwrap();
        let second = Instant::now();
        link.write_all(b"two").await.unwrap();
        link.flush().await.unwrap();
        let mut got = [0u8; 3];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"one");
        assert!(first.elapsed() >= latency);
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"two");
        assert!(second.elapsed() >= latency);
        link.close().await.unwrap();
        let mut rest = Vec::new();
        b.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty(), "nothing after the close");
    }

    #[tokio::test]
    async fn without_latency_the_stream_is_passed_through() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (a, _b) = tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
        let link = Link::new(TcpStream(a.unwrap()), Duration::ZERO);
        assert!(matches!(link, Link::Direct(_)));
    }
}
