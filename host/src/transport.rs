//! The host's connection to the API server: kube's client stack (base URI,
//! retries of 429/503/504, authentication, extra headers, TLS from the
//! kubeconfig), on HTTP/2 where the server speaks it, with keep-alive pings.
//!
//! A watch whose connection goes silent (half-open: the peer, a NAT or a
//! load balancer gone without a word) cannot be told from an idle one by
//! waiting: a real API server may send nothing for a minute. An HTTP/2 ping
//! can: every [`PING_INTERVAL`] without a frame from the server the client
//! pings, and a connection whose ping is not answered within
//! [`PING_TIMEOUT`] is closed, failing every watch on it; the informers
//! resume from their last resourceVersion on a new connection. An idle but
//! healthy connection answers its pings and is left alone. client-go does
//! the same with its HTTP/2 health check (30 s idle, 15 s to answer).
//!
//! Over HTTPS the protocol is agreed by ALPN (every kube-apiserver speaks
//! HTTP/2). Over plain HTTP, HTTP/2 needs prior knowledge, which only a
//! server known to speak it gets ([`Transport::prior_knowledge`]: the
//! embedded one); anything else, such as `kubectl proxy`, is spoken to in
//! HTTP/1.1, where TCP keep-alive notices a peer that is gone from the
//! network, and the idle timeout ([`crate::informer::IDLE_TIMEOUT`]) a
//! stream that stays silent.
//!
//! kube's own builder offers HTTP/1.1 only; this module assembles the same
//! layers around a connector that also offers HTTP/2.

use std::time::Duration;

use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioTimer},
};
use kube::client::{ConfigExt, retry::RetryPolicy};
use tower::{BoxError, ServiceBuilder, retry::RetryLayer};

/// How long an HTTP/2 connection may be quiet before the client pings it.
pub const PING_INTERVAL: Duration = Duration::from_secs(5);

/// How long a ping may go unanswered before the connection counts as dead.
pub const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// TCP keep-alive: first probe after this long without traffic, then
/// [`TCP_KEEPALIVE_INTERVAL`] apart, [`TCP_KEEPALIVE_PROBES`] of them.
pub const TCP_KEEPALIVE: Duration = Duration::from_secs(10);
/// Time between unanswered TCP keep-alive probes.
pub const TCP_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// Unanswered TCP keep-alive probes before the connection is dropped.
pub const TCP_KEEPALIVE_PROBES: u32 = 2;

/// HTTP/2 flow control: how much of one response (a watch) the server may
/// send ahead of what the host has read. A watch's first list arrives as
/// fast as the server can write it, and the host reads it between decoding
/// objects. With hyper's default (2 MiB) a reader that spent 12 µs per
/// object made a real API server take 1.28× as long for the same stream,
/// on a core of its own, and the host synced 100,000 objects in 1.23× the
/// raw stream's time instead of 1.14× (`docs/BENCHMARKS.md`, "Initial sync:
/// HTTP/2 flow control"). client-go's HTTP/2 transport allows 4 MiB. This
/// bounds what one watch may hold unread in memory.
pub const STREAM_WINDOW: u32 = 16 << 20;

/// HTTP/2 flow control for the whole connection, which every watch shares:
/// several watches' first lists may arrive at once. Bounds what the
/// connection may hold unread (client-go allows 1 GiB).
pub const CONNECTION_WINDOW: u32 = 64 << 20;

/// How the host connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transport {
    /// Speak HTTP/2 over plain HTTP from the first byte (h2c): only for a
    /// server known to speak it, such as the embedded one. Over HTTPS the
    /// server's choice (ALPN) decides.
    pub prior_knowledge: bool,
    /// HTTP/2 flow-control window of each response, in bytes
    /// ([`STREAM_WINDOW`]).
    pub stream_window: u32,
    /// HTTP/2 flow-control window of the connection, in bytes
    /// ([`CONNECTION_WINDOW`]).
    pub connection_window: u32,
}

impl Default for Transport {
    fn default() -> Self {
        Self {
            prior_knowledge: false,
            stream_window: STREAM_WINDOW,
            connection_window: CONNECTION_WINDOW,
        }
    }
}

impl Transport {
    /// For a server known to speak HTTP/2 without TLS: the embedded one.
    pub fn embedded() -> Self {
        Self {
            prior_knowledge: true,
            ..Self::default()
        }
    }
}

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kubeconfig's TLS or authentication settings are not usable.
    #[error("the kubeconfig's TLS or authentication settings: {0}")]
    Config(#[from] kube::Error),
}

/// A client for `config`, over `transport`.
///
/// # Errors
/// [`Error::Config`] if the TLS or authentication settings are not usable.
pub fn client(config: kube::Config, transport: Transport) -> Result<kube::Client, Error> {
    // kube builds its rustls config with the process's default provider.
    crate::tls::install_crypto_provider();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(config.connect_timeout);
    http.set_keepalive(Some(TCP_KEEPALIVE));
    http.set_keepalive_interval(Some(TCP_KEEPALIVE_INTERVAL));
    http.set_keepalive_retries(Some(TCP_KEEPALIVE_PROBES));

    let tls = config.rustls_client_config()?;
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http();
    let https = match &config.tls_server_name {
        Some(name) => {
            let name = name.clone().try_into().map_err(|e| {
                kube::Error::RustlsTls(kube::client::RustlsTlsError::InvalidServerName(e))
            })?;
            https.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name))
        }
        None => https,
    };
    let https = https.enable_http1().enable_http2().wrap_connector(http);

    let mut connector = hyper_timeout::TimeoutConnector::new(https);
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    connector.set_reset_reader_on_write(config.reset_reader_on_write);

    let mut builder = Client::builder(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .http2_keep_alive_interval(PING_INTERVAL)
        .http2_keep_alive_timeout(PING_TIMEOUT)
        .http2_keep_alive_while_idle(true)
        .http2_initial_stream_window_size(transport.stream_window)
        .http2_initial_connection_window_size(transport.connection_window)
        .http2_only(transport.prior_knowledge && config.cluster_url.scheme_str() == Some("http"));
    let http_client: Client<_, kube::client::Body> = builder.build(connector);

    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(
            config
                .default_retry
                .then(|| RetryLayer::new(RetryPolicy::server_retry())),
        )
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(BoxError::from)
        .service(http_client);
    Ok(kube::Client::new(service, config.default_namespace))
}
