//! The HTTP server: an accept loop that can drop a connection on purpose.
//!
//! `axum::serve` always writes a response, so it cannot simulate a connection lost mid-call.
//! This loop serves each connection with hyper directly; when a handler marks its response with
//! [`DropConnection`], the service returns an error instead, and hyper closes the socket without
//! writing a byte, which the client sees as a broken connection.

use axum::{
    Router,
    body::Body,
    http::{Request, Response},
};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::{net::TcpListener, sync::watch};
use tower::Service;

/// Largest request body accepted anywhere; larger contract calls get PARAM_ILLEGAL.
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024;

/// Response extension asking the server to close the connection instead of answering.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DropConnection;

/// The error that makes hyper abort the connection.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by fault injection")]
struct Dropped;

/// Accepts connections until `shutdown` turns true; then open connections are aborted. A test
/// double: connections are not limited.
pub(crate) async fn serve(listener: TcpListener, router: Router, shutdown: watch::Receiver<bool>) {
    let unlimited = tokio::sync::Semaphore::MAX_PERMITS;
    crate::accept::serve_connections(&listener, unlimited, super::stopped(shutdown), |stream| {
        serve_connection(stream, router.clone())
    })
    .await;
}

async fn serve_connection(stream: tokio::net::TcpStream, router: Router) {
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let mut router = router.clone();
        async move {
            let response: Response<Body> = match router.call(request.map(Body::new)).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            if response.extensions().get::<DropConnection>().is_some() {
                return Err(Dropped);
            }
            Ok::<_, Dropped>(response)
        }
    });
    if let Err(error) = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        tracing::debug!(%error, "connection ended with an error");
    }
}
