//! The HTTP endpoint of `demo top --listen`, on hyper and the runtime demo already has:
//! `GET /metrics` reads the kernel's counters at that moment and answers with their exposition.
//! What clients can make it hold is bounded: connections, the time a request may take to
//! arrive, and the bytes kept per connection.

use std::{
    collections::VecDeque,
    convert::Infallible,
    io,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use http_body_util::Full;
use hyper::{
    Method, Request, Response, StatusCode,
    body::{Bytes, Incoming},
    header,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    net::{TcpListener, TcpStream},
    task::{AbortHandle, JoinSet},
};

use super::{CONTENT_TYPE, exposition};
use crate::top::MetricsSource;

/// Where the endpoint listens, bound before anything is loaded so that a bad port fails first.
pub struct Listener {
    listener: TcpListener,
}

/// Why the endpoint could not listen.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("listen on {address}: the port is in use by another program")]
    InUse { address: SocketAddr },
    #[error("listen on {address}: no interface of this machine has that address")]
    NotLocal { address: SocketAddr },
    #[error("listen on {address}: {source}")]
    Other {
        address: SocketAddr,
        source: io::Error,
    },
}

impl BindError {
    /// The address itself is wrong (rather than taken, or not allowed).
    pub fn is_bad_input(&self) -> bool {
        matches!(self, Self::NotLocal { .. })
    }
}

/// Binds `address` for the endpoint.
pub async fn bind(address: SocketAddr) -> Result<Listener, BindError> {
    match TcpListener::bind(address).await {
        Ok(listener) => Ok(Listener { listener }),
        Err(error) if error.kind() == io::ErrorKind::AddrInUse => Err(BindError::InUse { address }),
        Err(error) if error.kind() == io::ErrorKind::AddrNotAvailable => {
            Err(BindError::NotLocal { address })
        }
        Err(source) => Err(BindError::Other { address, source }),
    }
}

impl Listener {
    /// The address it listens on (with the port the kernel chose for port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// How long an accept error (out of file descriptors) pauses the endpoint before it accepts
/// again; the counting goes on meanwhile.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// The most connections served at once. With one more, the oldest connection that is between
/// requests is closed to make room; when every one is answering a request, the new one is
/// accepted and closed at once, so the listen backlog never fills. Demo then holds at most this
/// many sockets besides its own descriptors, far below the usual RLIMIT_NOFILE of 1024.
pub const MAX_CONNECTIONS: usize = 64;

/// How long a client has to send a request's headers, from when it connected or had its last
/// answer: so also how long an idle keep-alive connection is kept.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one connection is served in all: then it is closed once its request in flight (if
/// any) is answered, so a client that keeps a connection busy cannot hold its place for ever.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// How long a connection closing at the end of its lifetime has to finish its answer (to a
/// client that does not read it, say) before it is closed anyway.
const CLOSE_GRACE: Duration = Duration::from_secs(10);

/// The most bytes of a request head (and of an answer's write buffer) kept per connection, so
/// a connection costs little memory whatever a client sends; hyper answers 431 to more.
const MAX_BUFFER: usize = 16 * 1024;

/// The bounds on what clients can make the endpoint hold.
#[derive(Debug, Clone, Copy)]
struct Limits {
    connections: usize,
    header_timeout: Duration,
    lifetime: Duration,
    grace: Duration,
}

impl Limits {
    const SERVED: Self = Self {
        connections: MAX_CONNECTIONS,
        header_timeout: HEADER_TIMEOUT,
        lifetime: CONNECTION_LIFETIME,
        grace: CLOSE_GRACE,
    };
}

/// Answers scrapes until the future is dropped, which closes every connection.
pub async fn serve(listener: Listener, source: MetricsSource) -> anyhow::Result<()> {
    serve_with(listener.listener, Limits::SERVED, move |request| {
        respond(request, source.clone())
    })
    .await
}

/// Serves every connection to `listener` with `handler`, within `limits`.
async fn serve_with<H, F>(listener: TcpListener, limits: Limits, handler: H) -> anyhow::Result<()>
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + 'static,
    F: Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    let mut connections = Connections::new(limits.connections);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => match connections.make_room() {
                    Room::Free => connections.spawn(stream, limits, handler.clone()),
                    Room::Evicted => {
                        connections.spawn(stream, limits, handler.clone());
                        // The runtime drops the evicted connection's task, and so closes its
                        // socket, before the next accept: demo never holds more than one
                        // socket beyond the cap.
                        tokio::task::yield_now().await;
                    }
                    // The stream is dropped here: closed as soon as it was accepted.
                    Room::Full => {}
                },
                Err(error) => {
                    log::warn!("accept a metrics connection: {error}");
                    tokio::time::sleep(ACCEPT_PAUSE).await;
                }
            },
            Some(_) = connections.tasks.join_next() => {}
        }
    }
}

/// The connections being served, oldest first.
struct Connections {
    tasks: JoinSet<()>,
    open: VecDeque<Connection>,
    cap: usize,
}

/// Whether a new connection can be served.
enum Room {
    /// Fewer than the cap are open.
    Free,
    /// The oldest idle connection was closed to make room.
    Evicted,
    /// Every connection is answering a request.
    Full,
}

/// One connection's task, and how many of its requests are being answered right now.
struct Connection {
    task: AbortHandle,
    answering: Arc<AtomicUsize>,
}

impl Connections {
    fn new(cap: usize) -> Self {
        Self {
            tasks: JoinSet::new(),
            open: VecDeque::with_capacity(cap),
            cap,
        }
    }

    /// Makes room for one more connection: forgets those that ended and, when `cap` are open,
    /// closes the oldest that is between requests (an idle client's, most likely a flood's).
    fn make_room(&mut self) -> Room {
        while self.tasks.try_join_next().is_some() {}
        self.open
            .retain(|connection| !connection.task.is_finished());
        if self.open.len() < self.cap {
            return Room::Free;
        }
        let idle = self
            .open
            .iter()
            .position(|connection| connection.answering.load(Ordering::Relaxed) == 0);
        match idle.and_then(|at| self.open.remove(at)) {
            Some(oldest) => {
                // Dropping its task's future drops the stream, which closes it.
                oldest.task.abort();
                Room::Evicted
            }
            None => Room::Full,
        }
    }

    fn spawn<H, F>(&mut self, stream: TcpStream, limits: Limits, handler: H)
    where
        H: Fn(Request<Incoming>) -> F + Send + 'static,
        F: Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
    {
        let answering = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&answering);
        let service = hyper::service::service_fn(move |request| {
            let busy = Answering::start(&counted);
            let answer = handler(request);
            async move {
                let answer = answer.await;
                drop(busy);
                answer
            }
        });
        let task = self.tasks.spawn(serve_connection(stream, limits, service));
        self.open.push_back(Connection { task, answering });
    }
}

/// Counts a request as being answered until it is dropped (answered, or its connection closed).
struct Answering(Arc<AtomicUsize>);

impl Answering {
    fn start(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(count))
    }
}

impl Drop for Answering {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves one connection for at most its lifetime and grace.
async fn serve_connection<S>(stream: TcpStream, limits: Limits, service: S)
where
    S: hyper::service::Service<
            Request<Incoming>,
            Response = Response<Full<Bytes>>,
            Error = Infallible,
        >,
{
    // hyper starts the header timer whenever it waits for a request, on a new connection and
    // after every answer alike, so it closes idle keep-alive connections too.
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_BUFFER)
        .serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    // A client that goes away mid-request is its own business.
    if tokio::time::timeout(limits.lifetime, connection.as_mut())
        .await
        .is_ok()
    {
        return;
    }
    connection.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(limits.grace, connection).await;
}

/// The answer to one request: the exposition at `/metrics`, a pointer to it at `/`.
async fn respond(
    request: Request<Incoming>,
    source: MetricsSource,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return Ok(plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET and HEAD are served\n",
        ));
    }
    Ok(match request.uri().path() {
        // A scrape makes system calls and reads /proc for every process: a blocking thread's
        // work, not the runtime's.
        "/metrics" => match tokio::task::spawn_blocking(move || metrics(&source)).await {
            Ok(Ok(text)) => Response::builder()
                .header(header::CONTENT_TYPE, CONTENT_TYPE)
                .body(Full::new(Bytes::from(text)))
                .unwrap_or_default(),
            Ok(Err(error)) => plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("error: {error}\n"),
            ),
            Err(_) => plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "error: the scrape did not finish\n",
            ),
        },
        "/" => plain(StatusCode::OK, "demo top: the metrics are at /metrics\n"),
        _ => plain(
            StatusCode::NOT_FOUND,
            "not found: the metrics are at /metrics\n",
        ),
    })
}

/// One scrape's exposition, or what went wrong, as one line.
fn metrics(source: &MetricsSource) -> Result<String, String> {
    let scrape = source.scrape().map_err(|error| format!("{error:#}"))?;
    exposition(scrape).map_err(|_| "encode the metrics".to_owned())
}

fn plain(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(text.to_owned())))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
