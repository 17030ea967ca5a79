//! Accepting connections: TCP keepalive on each, HTTP/1.1 with a deadline on every request
//! head, and a graceful drain at shutdown.
//!
//! This is our own accept loop rather than `axum::serve`, because that one gives hyper no
//! timer, and without a timer hyper enforces no header read timeout: a client that opens a
//! connection and sends half a request head (a phone losing signal, or a slow-loris attack)
//! held a task and a file descriptor for as long as it kept the socket open. Keepalive alone
//! does not help there, since the peer still answers probes.

use axum::Router;
use axum::serve::{Listener, ListenerExt};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;

/// How long an idle connection waits before the kernel probes its peer, how often it
/// probes and how many unanswered probes end it: a crew's phone that left the network
/// without closing its connections (no signal, battery out) is let go within about two
/// minutes of silence instead of holding a task and a file descriptor for ever.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_PROBES: u32 = 6;

/// Sets TCP keepalive on an accepted connection.
pub fn tune_connection(connection: &tokio::net::TcpStream) -> std::io::Result<()> {
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_PROBES);
    socket2::SockRef::from(connection).set_tcp_keepalive(&keepalive)
}

/// Serves `app` over HTTP/1.1 on `listener` until `shutdown` resolves; then accepts nothing
/// more, lets each connection finish the request under way (idle ones close at once), and
/// returns when all have closed.
///
/// `header_timeout` bounds how long a connection may take to send a request's head, counted
/// from when the server is ready to read it: after a response on a keep-alive connection
/// too, so it also closes a connection left idle that long. A head not in by then closes
/// the connection without an answer (there is no request to answer yet).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let mut listener = listener.tap_io(|connection| {
        if let Err(error) = tune_connection(connection) {
            tracing::debug!(%error, "cannot set TCP keepalive on a connection");
        }
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let connections = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // axum's `Listener` retries failed accepts itself (after a pause when out of file
        // descriptors), so an accept never ends the loop.
        let (io, _peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(app.clone());
        let connection = connections.watch(http.serve_connection(TokioIo::new(io), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                // A client that went away, a malformed head, a head that timed out: the
                // connection's own business, answered by hyper where an answer is possible.
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    connections.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_accepted_connection_probes_a_silent_peer() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        let socket = socket2::SockRef::from(&accepted);
        assert!(!socket.keepalive().unwrap());
        tune_connection(&accepted).unwrap();
        assert!(socket.keepalive().unwrap());
        assert_eq!(socket.tcp_keepalive_time().unwrap(), KEEPALIVE_IDLE);
        assert_eq!(socket.tcp_keepalive_interval().unwrap(), KEEPALIVE_INTERVAL);
        assert_eq!(socket.tcp_keepalive_retries().unwrap(), KEEPALIVE_PROBES);
    }
}
