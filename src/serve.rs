//! The HTTP server's connections: accept under a cap, serve each with hyper (HTTP/1 with a
//! header-read timeout, or HTTP/2), give every request body a deadline, and on shutdown stop
//! accepting, let in-flight requests finish within the grace period, then drop what is left.
//! `axum::serve` has none of these limits, so a slow client could hold a connection (and a
//! shutdown) as long as it liked.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::Router;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tower::Service;

use crate::config::ServerSettings;

/// The limits a connection is served under (`[server]`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A request's header must arrive within this of its first byte.
    pub header_read_timeout: Duration,
    /// A connection with no request in progress and no bytes either way for this long is
    /// closed (before its first request, and kept alive between requests).
    pub idle_timeout: Duration,
    /// A request's body must arrive within this of its header.
    pub body_read_timeout: Duration,
    /// Open connections at most.
    pub max_connections: usize,
    /// After the stop signal, how long in-flight requests may take.
    pub grace: Duration,
}

impl Limits {
    pub fn from_settings(server: &ServerSettings) -> Limits {
        Limits {
            header_read_timeout: Duration::from_secs(server.header_read_timeout_secs),
            idle_timeout: Duration::from_secs(server.idle_timeout_secs),
            body_read_timeout: Duration::from_secs(server.body_read_timeout_secs),
            max_connections: server.max_connections,
            grace: Duration::from_secs(server.shutdown_grace_secs),
        }
    }
}

/// Serve `router` on `listener` until `stop` is cancelled, then drain within `limits.grace`.
/// Returns whether every connection finished in time.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    stop: CancellationToken,
) -> bool {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    loop {
        // At the cap, stop accepting: new connections wait in the kernel's backlog.
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            _ = stop.cancelled() => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::new());
        let service = hyper::service::service_fn(request_handler(
            router.clone(),
            remote,
            limits.body_read_timeout,
            activity.clone(),
        ));
        let stream = Watched {
            inner: stream,
            activity: activity.clone(),
        };
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        let idle_timeout = limits.idle_timeout;
        connections.spawn(async move {
            tokio::select! {
                ended = connection => if let Err(e) = ended {
                    tracing::debug!(error = %e, "connection ended with an error");
                },
                () = activity.idle_for(idle_timeout) => {
                    tracing::debug!("idle connection closed");
                }
            }
            drop(permit);
        });
        // Reap finished connections so the set stays as small as the open ones.
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    let drained = tokio::time::timeout(limits.grace, graceful.shutdown())
        .await
        .is_ok();
    // Whatever is left (a request still half sent) is dropped with its connection.
    connections.abort_all();
    while connections.join_next().await.is_some() {}
    drained
}

/// The router's answer to one request, on its way.
type Responding =
    Pin<Box<dyn Future<Output = Result<axum::response::Response, Infallible>> + Send>>;

/// A request goes to the router with the peer's address and a deadline on its body.
fn request_handler(
    router: Router,
    remote: SocketAddr,
    body_read_timeout: Duration,
    activity: Arc<Activity>,
) -> impl Fn(Request<Incoming>) -> Responding + Clone {
    move |request: Request<Incoming>| {
        let mut router = router.clone();
        let mut request = request.map(|body| Body::new(Deadline::new(body, body_read_timeout)));
        request.extensions_mut().insert(ConnectInfo(remote));
        let busy = activity.begin_request();
        Box::pin(async move {
            let response = router.call(request).await;
            drop(busy);
            response
        })
    }
}

/// When a connection last moved bytes, and how many of its requests are being handled.
struct Activity {
    opened: Instant,
    /// Milliseconds after `opened` of the last byte read or written.
    last_ms: AtomicU64,
    requests: AtomicUsize,
}

/// One request being handled; the connection is not idle until it is dropped.
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.requests.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Activity {
    fn new() -> Activity {
        Activity {
            opened: Instant::now(),
            last_ms: AtomicU64::new(0),
            requests: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let ms = self.opened.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn begin_request(self: &Arc<Self>) -> Busy {
        self.requests.fetch_add(1, Ordering::Relaxed);
        Busy(self.clone())
    }

    /// Resolves once the connection has had no request and no bytes for `timeout`.
    async fn idle_for(&self, timeout: Duration) {
        loop {
            let last = self.opened + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let quiet = Instant::now().saturating_duration_since(last);
            if self.requests.load(Ordering::Relaxed) == 0 && quiet >= timeout {
                return;
            }
            tokio::time::sleep(
                timeout
                    .saturating_sub(quiet)
                    .max(Duration::from_millis(100)),
            )
            .await;
        }
    }
}

/// A connection's socket, noting each byte it moves in [`Activity`].
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A request body that fails once `timeout` has passed since its header arrived, however
/// steadily it trickles in (a per-read timeout would let one byte a second through).
struct Deadline {
    inner: Incoming,
    deadline: Pin<Box<Sleep>>,
}

impl Deadline {
    fn new(inner: Incoming, timeout: Duration) -> Deadline {
        Deadline {
            inner,
            deadline: Box::pin(tokio::time::sleep_until(Instant::now() + timeout)),
        }
    }
}

/// The body did not arrive within `server.body_read_timeout_secs`.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within server.body_read_timeout_secs")]
pub struct BodyTimeout;

/// Whether a body read failed because of [`BodyTimeout`].
pub fn is_body_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.is::<BodyTimeout>() {
            return true;
        }
        cause = e.source();
    }
    false
}

impl HttpBody for Deadline {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimeout.into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
