//! The webhook server: HTTPS (rustls) on its own address, every plugin's
//! webhook at `/validate/NAME` or `/mutate/NAME`. TLS handshakes run off
//! the accept loop, each with a deadline, so a slow or hostile client never
//! holds up the others.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use tokio::{net::TcpStream, sync::mpsc};
use tokio_rustls::{TlsAcceptor, server::TlsStream};
use tokio_util::sync::CancellationToken;

use super::{Admission, ReviewError};
use crate::{http::ApiError, plugin::webhook::Mode};

/// The largest review read: an object and its old state, each up to the
/// API server's 3 MiB request limit.
const MAX_REVIEW_BYTES: usize = 8 << 20;
/// How long a client has to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the webhook server could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} (--webhook-addr)")]
pub struct Error {
    /// The address.
    pub addr: SocketAddr,
    /// The cause.
    #[source]
    pub source: std::io::Error,
}

/// The routes: a POST per webhook kind and plugin.
pub fn router(admission: Arc<Admission>) -> Router {
    Router::new()
        .route("/validate/{plugin}", post(validate))
        .route("/mutate/{plugin}", post(mutate))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_REVIEW_BYTES))
        .with_state(admission)
}

async fn validate(
    State(admission): State<Arc<Admission>>,
    Path(plugin): Path<String>,
    body: Bytes,
) -> Response {
    review(&admission, &plugin, Mode::Validating, &body).await
}

async fn mutate(
    State(admission): State<Arc<Admission>>,
    Path(plugin): Path<String>,
    body: Bytes,
) -> Response {
    review(&admission, &plugin, Mode::Mutating, &body).await
}

async fn review(admission: &Admission, plugin: &str, kind: Mode, body: &[u8]) -> Response {
    match admission.review(plugin, kind, body).await {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(ReviewError::Malformed(e)) => ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("malformed AdmissionReview: {e}"),
        )
        .into_response(),
        Err(ReviewError::NoWebhook) => ApiError::not_found(format!(
            "no plugin named {plugin} has a {kind} webhook here"
        ))
        .into_response(),
    }
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!(
        "no such endpoint: {} (webhooks are at /validate/PLUGIN and /mutate/PLUGIN)",
        uri.path()
    ))
}

/// Connections whose TLS handshake is done, for axum to serve.
struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept loop stopped: so does serving, by its shutdown.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// Bind `addr` and serve `router` over TLS until `stop`; returns the bound
/// address (port 0 picks a free one).
///
/// # Errors
/// [`Error`] if the address cannot be bound.
pub async fn serve(
    addr: SocketAddr,
    tls: rustls::ServerConfig,
    router: Router,
    stop: CancellationToken,
) -> Result<SocketAddr, Error> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| Error { addr, source })?;
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let (tx, ready) = mpsc::channel(64);
    let accepting = stop.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = tokio::select! {
                () = accepting.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        // Out of file descriptors and the like: breathe, go on.
                        tracing::warn!(error = %e, "webhook server: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = tcp.set_nodelay(true);
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = tx.send((stream, peer)).await;
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "webhook server: TLS handshake failed");
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "webhook server: TLS handshake timed out");
                    }
                }
            });
        }
    });
    let listener = TlsListener { ready, local };
    tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(addr = %local, error = %e, "webhook server stopped");
        }
    });
    Ok(local)
}
