//! The listener: our own accept loop over hyper, so that a slow or silent client cannot hold the process.
//!
//! `axum::serve` sets no timer, so hyper's header-read timeout never fires there: 3,000 half-open
//! connections were held for 70 s and, at 1,100, the process ran out of file descriptors. Here a connection
//! must start its request within `http.header_read_timeout_seconds` and finish sending the headers within
//! the same time (hyper's timer, which starts only at the first byte); a connection on which nothing moves
//! for longer than a request may take is closed; every request is answered within
//! `http.request_timeout_seconds` (tower-http's timeout, 408); beyond `http.max_connections` (and never more
//! than the open-file limit allows) nothing more is accepted until a connection closes; and the open-file
//! limit is raised to the hard limit at start.

use super::{AppState, router};
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

/// Raise the soft open-file limit to the hard one (a process may do that without privileges); returns the
/// limit in force.
pub fn raise_open_file_limit() -> Option<u64> {
    rlimit::increase_nofile_limit(u64::MAX).ok()
}

/// Serve until `shutdown` resolves; connections still open then get a few seconds to finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.settings().http;
    let app = router(state).layer(tower_http::timeout::TimeoutLayer::with_status_code(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        Duration::from_secs(u64::from(limits.request_timeout_seconds)),
    ));
    // HTTP/1.1 only: Lifeline sits behind a TLS-terminating proxy, and cleartext HTTP/2 would bring a
    // protocol without a header timeout, whose pings keep a connection alive for ever.
    let mut builder = Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(u64::from(limits.header_read_timeout_seconds)));
    // Never more connections than file descriptors to hold them (keeping some for the database and files).
    let open_files = rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _)| soft).unwrap_or(1024);
    let capacity = u64::from(limits.max_connections).min(open_files.saturating_sub(128).max(16));
    let slots = Arc::new(Semaphore::new(capacity as usize));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        // At the cap, nothing more is accepted: new clients wait in the listen backlog until the timeouts
        // above free a slot (a flood of silent connections delays a health check by one header timeout at
        // most, instead of making the process fail to accept at all).
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors (or another transient error): back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let idle = Duration::from_secs(u64::from(limits.request_timeout_seconds + limits.header_read_timeout_seconds));
        let first_byte = Duration::from_secs(u64::from(limits.header_read_timeout_seconds));
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(request)
        });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            // A client that connects and says nothing is closed here: hyper's header timer would never start.
            let mut first = [0u8; 1];
            if !matches!(tokio::time::timeout(first_byte, stream.peek(&mut first)).await, Ok(Ok(1))) {
                return;
            }
            let io = TokioIo::new(IdleTimeout::new(stream, idle));
            let _ = watcher.watch(builder.serve_connection(io, service).into_owned()).await;
            drop(slot); // a client that went away or timed out is no error of ours
        });
    }
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(5)) => tracing::info!("closing connections that did not finish"),
    }
    Ok(())
}

/// A stream that fails with `TimedOut` when nothing was read or written for `limit`, so a connection that
/// stalls between requests (or in the middle of one) cannot be held open for ever.
struct IdleTimeout<S> {
    inner: S,
    limit: Duration,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl<S> IdleTimeout<S> {
    fn new(inner: S, limit: Duration) -> Self {
        Self { inner, limit, deadline: Box::pin(tokio::time::sleep(limit)) }
    }

    fn moved(&mut self) {
        self.deadline.as_mut().reset(tokio::time::Instant::now() + self.limit);
    }

    fn expired(&mut self, cx: &mut std::task::Context<'_>) -> bool {
        self.deadline.as_mut().poll(cx).is_ready()
    }
}

use std::future::Future as _;
use std::task::Poll;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

fn timed_out() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, "connection idle for too long")
}

impl<S: AsyncRead + Unpin> AsyncRead for IdleTimeout<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match std::pin::Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                self.moved();
                Poll::Ready(result)
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(timed_out())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for IdleTimeout<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match std::pin::Pin::new(&mut self.inner).poll_write(cx, data) {
            Poll::Ready(result) => {
                self.moved();
                Poll::Ready(result)
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(timed_out())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_flush(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
