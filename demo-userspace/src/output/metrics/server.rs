//! The HTTP endpoint of `demo top --listen`, on hyper and the runtime demo already has:
//! `GET /metrics` reads the kernel's counters at that moment and answers with their exposition.

use std::{convert::Infallible, io, net::SocketAddr, time::Duration};

use http_body_util::Full;
use hyper::{
    Method, Request, Response, StatusCode,
    body::{Bytes, Incoming},
    header,
};
use hyper_util::rt::TokioIo;
use tokio::{net::TcpListener, task::JoinSet};

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

/// Answers scrapes until the future is dropped, which closes every connection.
pub async fn serve(listener: Listener, source: MetricsSource) -> anyhow::Result<()> {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let source = source.clone();
                    connections.spawn(async move {
                        let service = hyper::service::service_fn(move |request| {
                            respond(request, source.clone())
                        });
                        // A client that goes away mid-request is its own business.
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
                Err(error) => {
                    log::warn!("accept a metrics connection: {error}");
                    tokio::time::sleep(ACCEPT_PAUSE).await;
                }
            },
            Some(_) = connections.join_next() => {}
        }
    }
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
