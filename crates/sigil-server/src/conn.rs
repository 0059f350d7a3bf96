//! Connection limits: a cap on open connections, and an idle timeout on each. With hyper's
//! header-read timeout (set where the server is built) and the request timeout (a layer of the
//! app), a client can no longer hold a connection — and its file descriptor — by sending half
//! its headers, or nothing at all.

use std::future::{Ready, ready};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum_server::accept::Accept;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

use crate::state::Metrics;

/// Accepts a connection while fewer than the cap are open; past it the connection is closed at
/// once (its descriptor freed), never queued.
#[derive(Clone)]
pub(crate) struct Capped {
    slots: Arc<Semaphore>,
    idle: Duration,
    state: Arc<crate::AppState>,
}

impl Capped {
    pub(crate) fn new(max: usize, idle: Duration, state: Arc<crate::AppState>) -> Self {
        Capped {
            slots: Arc::new(Semaphore::new(max)),
            idle,
            state,
        }
    }
}

impl<S> Accept<TcpStream, S> for Capped {
    type Stream = Slot;
    type Service = S;
    type Future = Ready<io::Result<(Slot, S)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        match self.slots.clone().try_acquire_owned() {
            Ok(permit) => {
                let _ = stream.set_nodelay(true);
                ready(Ok((Slot::new(stream, permit, self.idle), service)))
            }
            Err(_) => {
                Metrics::inc(&self.state.metrics.connections_refused, 1);
                tracing::warn!("connection limit reached: a connection was closed at once");
                ready(Err(io::Error::other("connection limit reached")))
            }
        }
    }
}

/// An accepted connection: holds its slot until it closes, and fails a read or write after
/// `idle` without progress either way.
pub(crate) struct Slot {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
    idle: Duration,
    /// When bytes last moved; the timer below is moved on only when it fires (a timer reset
    /// per read or write cost measurable time on small requests).
    last_progress: Instant,
    deadline: Pin<Box<Sleep>>,
}

impl Slot {
    fn new(stream: TcpStream, permit: OwnedSemaphorePermit, idle: Duration) -> Self {
        Slot {
            stream,
            _permit: permit,
            idle,
            last_progress: Instant::now(),
            deadline: Box::pin(tokio::time::sleep(idle)),
        }
    }

    fn progressed(&mut self) {
        self.last_progress = Instant::now();
    }

    /// Pending I/O: an error once the connection has been idle too long.
    fn idle_check<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        loop {
            match self.deadline.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(()) => {
                    let due = self.last_progress + self.idle;
                    if due <= Instant::now() {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "the connection was idle too long",
                        )));
                    }
                    // bytes moved since the timer was set: wait for the rest of the idle time
                    self.deadline.as_mut().reset(due);
                }
            }
        }
    }
}

impl AsyncRead for Slot {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.stream).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    self.progressed();
                }
                Poll::Ready(r)
            }
            Poll::Pending => self.idle_check(cx),
        }
    }
}

impl AsyncWrite for Slot {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.stream).poll_write(cx, data) {
            Poll::Ready(r) => {
                self.progressed();
                Poll::Ready(r)
            }
            Poll::Pending => self.idle_check(cx),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

use std::future::Future as _;

/// The default cap on open connections: what the process may open, less a margin for the
/// database, the log and the listener (`ulimit -n`), between 16 and 10,000.
pub fn default_max_connections() -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(1 << 20);
    (limit.saturating_sub(64) as usize).clamp(16, 10_000)
}
