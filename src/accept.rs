//! The accept loop of the operator's notification endpoint and of the simulator. Both serve each
//! connection with hyper directly, which `axum::serve` does not allow (the endpoint to bound how
//! long a sender may take over its headers, the simulator to drop a connection on purpose), so
//! they share the loop around it.

use std::{future::Future, sync::Arc, time::Duration};

use tokio::{
    net::{TcpListener, TcpStream},
    sync::Semaphore,
    task::JoinSet,
};

/// Accepts connections until `shutdown` resolves and serves each with `serve`, at most
/// `max_connections` at once: past that, further senders wait in the kernel's accept backlog
/// instead of costing memory. Connections still open at shutdown are cut.
pub async fn serve_connections<S, F>(
    listener: &TcpListener,
    max_connections: usize,
    shutdown: impl Future<Output = ()>,
    serve: S,
) where
    S: Fn(TcpStream) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(max_connections));
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let connection = serve(stream);
        connections.spawn(async move {
            connection.await;
            drop(slot);
        });
    }
    connections.shutdown().await;
}
