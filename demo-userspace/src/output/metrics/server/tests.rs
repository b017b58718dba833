//! The endpoint's bounds on loopback, with a handler of the test's own and small limits: the
//! connection cap and who it closes, the header timeout, and a connection's lifetime.

use std::net::SocketAddr;

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    sync::{Semaphore, mpsc},
};

use super::*;

/// Limits small enough for a test; `header_timeout` and `lifetime` far beyond a test's length
/// unless a test is about them.
const LIMITS: Limits = Limits {
    connections: 2,
    header_timeout: Duration::from_secs(600),
    lifetime: Duration::from_secs(600),
    grace: Duration::from_secs(600),
};

/// How long a test waits for a connection to be closed before it fails.
const PATIENCE: Duration = Duration::from_secs(20);

/// Serves `handler` within `limits` on a free loopback port until the test ends.
async fn start<H, F>(limits: Limits, handler: H) -> SocketAddr
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + 'static,
    F: Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(serve_with(listener, limits, handler));
    address
}

/// A handler that answers `ok` at once.
async fn ok(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(b"ok"))))
}

/// Sends `GET /` on `stream`.
async fn send(stream: &mut TcpStream) {
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
}

/// Sends `GET /` on `stream` and returns the body of the answer, keeping the connection open.
async fn ask(stream: &mut TcpStream) -> String {
    send(stream).await;
    answer(stream).await
}

/// The body of the next answer on `stream`, which must be a 200.
async fn answer(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    loop {
        let mut chunk = [0; 1024];
        let n = stream.read(&mut chunk).await.unwrap();
        assert_ne!(n, 0, "the connection closed before the whole answer");
        received.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&received).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length: "))
                .expect("a content-length")
                .parse()
                .unwrap();
            if body.len() == length {
                assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
                return body.to_owned();
            }
        }
    }
}

/// Whether the server closed `stream` (end of file, nothing more sent) within [`PATIENCE`].
async fn closed(stream: &mut TcpStream) -> bool {
    let mut rest = Vec::new();
    matches!(
        tokio::time::timeout(PATIENCE, stream.read_to_end(&mut rest)).await,
        Ok(Ok(0))
    )
}

#[tokio::test]
async fn a_connection_past_the_cap_closes_the_oldest_idle_one() {
    let address = start(LIMITS, ok).await;
    let mut oldest = TcpStream::connect(address).await.unwrap();
    assert_eq!(ask(&mut oldest).await, "ok");
    let mut second = TcpStream::connect(address).await.unwrap();
    assert_eq!(ask(&mut second).await, "ok");

    let mut third = TcpStream::connect(address).await.unwrap();
    assert_eq!(ask(&mut third).await, "ok");
    assert!(
        closed(&mut oldest).await,
        "the oldest idle connection is still open"
    );
    // The other two are still served.
    assert_eq!(ask(&mut second).await, "ok");
    assert_eq!(ask(&mut third).await, "ok");
}

#[tokio::test]
async fn a_connection_past_the_cap_is_closed_at_once_when_every_one_is_answering() {
    // Each request says it started, then waits for a permit the test gives.
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let permits = Arc::new(Semaphore::new(0));
    let gate = Arc::clone(&permits);
    let address = start(LIMITS, move |_| {
        let started = started_tx.clone();
        let gate = Arc::clone(&gate);
        async move {
            started.send(()).unwrap();
            gate.acquire().await.unwrap().forget();
            Ok(Response::new(Full::new(Bytes::from_static(b"late"))))
        }
    })
    .await;
    let mut busy = Vec::new();
    for _ in 0..LIMITS.connections {
        let mut stream = TcpStream::connect(address).await.unwrap();
        send(&mut stream).await;
        started.recv().await.unwrap();
        busy.push(stream);
    }

    let mut refused = TcpStream::connect(address).await.unwrap();
    assert!(
        closed(&mut refused).await,
        "a connection past a busy cap was kept"
    );

    permits.add_permits(LIMITS.connections);
    for stream in &mut busy {
        assert_eq!(answer(stream).await, "late");
    }
}

#[tokio::test]
async fn idle_and_slow_connections_are_closed_after_the_header_timeout() {
    let limits = Limits {
        header_timeout: Duration::from_millis(300),
        ..LIMITS
    };
    let address = start(limits, ok).await;
    // Connected and silent.
    let mut silent = TcpStream::connect(address).await.unwrap();
    // Half a request head, never finished.
    let mut slow = TcpStream::connect(address).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: te").await.unwrap();
    assert!(closed(&mut silent).await, "a silent connection was kept");
    assert!(
        closed(&mut slow).await,
        "an unfinished request head was kept"
    );

    // Kept alive after an answer, then idle.
    let mut idle = TcpStream::connect(address).await.unwrap();
    assert_eq!(ask(&mut idle).await, "ok");
    assert!(
        closed(&mut idle).await,
        "an idle keep-alive connection was kept"
    );
}

#[tokio::test]
async fn a_connection_is_closed_after_its_lifetime_and_grace_even_mid_request() {
    let limits = Limits {
        lifetime: Duration::from_millis(300),
        grace: Duration::from_millis(300),
        ..LIMITS
    };
    // A request that is never answered.
    let address = start(limits, |_| std::future::pending()).await;
    let mut stuck = TcpStream::connect(address).await.unwrap();
    send(&mut stuck).await;
    assert!(
        closed(&mut stuck).await,
        "a stuck request held its connection"
    );
}
