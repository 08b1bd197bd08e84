//! `informant-apiserver`: the embedded Kubernetes-compatible API server
//! behind `informant dev` and the tests.
//!
//! It serves built-in kinds and CRDs generically from an in-memory store
//! over real HTTP, with discovery, watches, pagination, patches and
//! server-side apply as real clients rely on them, and fault injection for
//! tests. It is not a mock: kubectl and kube-rs talk to it as to a cluster.

mod admission;
mod discovery_documents;
mod faults;
mod openapi;
mod patch;
mod protobuf;
mod registry;
mod routes;
pub mod seed;
mod status;
mod storage;
mod watch;
mod webhook_client;

use std::{net::SocketAddr, path::Path, sync::Arc, time::Duration};

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

/// How long [`ApiServer::shutdown`] waits for open requests to end.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

pub use faults::{FailRule, Faults};
pub use registry::{Registry, ResourceType};
pub use status::StatusError;
pub use storage::{Frozen, Storage, StorageConfig, WriteOptions};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The kubeconfig could not be written.
    #[error("cannot write the kubeconfig {path}")]
    Kubeconfig {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// How the server runs.
#[derive(Debug, Clone)]
pub struct Config {
    port: u16,
    fault_endpoint: bool,
    bookmark_interval: Duration,
    history: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            port: 0,
            fault_endpoint: false,
            bookmark_interval: Duration::from_secs(60),
            history: 10_000,
        }
    }
}

impl Config {
    /// The port on 127.0.0.1; 0 picks a free one.
    #[must_use]
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Serve `POST /informant/faults` (off by default).
    #[must_use]
    pub fn fault_endpoint(mut self, on: bool) -> Self {
        self.fault_endpoint = on;
        self
    }

    /// How often watches with bookmarks get one (60 s, like the real server).
    #[must_use]
    pub fn bookmark_interval(mut self, every: Duration) -> Self {
        self.bookmark_interval = every;
        self
    }

    /// Changes kept for resumes before they count as compacted.
    #[must_use]
    pub fn history(mut self, changes: usize) -> Self {
        self.history = changes.max(1);
        self
    }
}

/// One request as the server saw it, for tests to assert on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    /// `GET`, `PATCH`...
    pub method: String,
    /// The path.
    pub path: String,
    /// The raw query string.
    pub query: String,
}

impl LoggedRequest {
    /// Whether this is a watch.
    pub fn is_watch(&self) -> bool {
        self.method == "GET"
            && self
                .query
                .split('&')
                .any(|p| p == "watch=true" || p == "watch=1")
    }

    /// Whether this request lists `collection_path` from scratch: a plain
    /// list, or a streaming list (a watch with `sendInitialEvents=true`).
    pub fn is_initial_list_of(&self, collection_path: &str) -> bool {
        self.is_list_of(collection_path)
            || (self.path == collection_path
                && self.is_watch()
                && self.query.contains("sendInitialEvents=true"))
    }

    /// Whether this is a list (a GET of a collection that is not a watch).
    pub fn is_list_of(&self, collection_path: &str) -> bool {
        self.method == "GET" && self.path == collection_path && !self.is_watch()
    }
}

/// Shared state of the running server.
pub(crate) struct App {
    store: Arc<Storage>,
    webhooks: admission::Webhooks,
    faults: Arc<Faults>,
    log: Mutex<Vec<LoggedRequest>>,
    config: Config,
    addr: SocketAddr,
}

impl App {
    fn address(&self) -> String {
        self.addr.to_string()
    }
}

/// A running server.
pub struct ApiServer {
    app: Arc<App>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl ApiServer {
    /// Start serving on 127.0.0.1.
    ///
    /// # Errors
    /// [`Error::Bind`] if the port is taken.
    pub async fn start(config: Config) -> Result<Self, Error> {
        let addr = SocketAddr::from(([127, 0, 0, 1], config.port));
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| Error::Bind { addr, source })?;
        let store = Arc::new(Storage::new(StorageConfig {
            history: config.history,
        }));
        let app = Arc::new(App {
            store,
            webhooks: admission::Webhooks::default(),
            faults: Arc::new(Faults::default()),
            log: Mutex::new(Vec::new()),
            config,
            addr,
        });
        let shutdown = CancellationToken::new();
        let router = routes::router(app.clone());
        let token = shutdown.clone();
        // Watch events are small writes: without TCP_NODELAY, Nagle's
        // algorithm holds each one behind the client's delayed ACK (up to
        // 40 ms), as a real API server never does.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY");
            }
        });
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async move { token.cancelled().await })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "embedded API server stopped");
            }
        });
        tracing::info!(url = %format!("http://{addr}"), "embedded API server listening");
        Ok(Self {
            app,
            shutdown,
            task,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.app.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.app.addr
    }

    /// The object storage, for seeding and inspection.
    pub fn storage(&self) -> &Arc<Storage> {
        &self.app.store
    }

    /// The fault switches.
    pub fn faults(&self) -> &Arc<Faults> {
        &self.app.faults
    }

    /// Every request served so far.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.app.log.lock().clone()
    }

    /// Forget the request log.
    pub fn clear_requests(&self) {
        self.app.log.lock().clear();
    }

    /// A kubeconfig that points kubectl and kube-rs at this server.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: informant-dev\n  cluster:\n    server: {url}\ncontexts:\n- name: informant-dev\n  context:\n    cluster: informant-dev\n    user: informant-dev\n    namespace: default\ncurrent-context: informant-dev\nusers:\n- name: informant-dev\n  user: {{}}\n",
            url = self.url()
        )
    }

    /// Write [`Self::kubeconfig`] to a file.
    ///
    /// # Errors
    /// [`Error::Kubeconfig`].
    pub fn write_kubeconfig(&self, path: &Path) -> Result<(), Error> {
        std::fs::write(path, self.kubeconfig()).map_err(|source| Error::Kubeconfig {
            path: path.display().to_string(),
            source,
        })
    }

    /// Stop serving and wait for the server task: open watches are ended
    /// (a graceful shutdown waits for every open request), again until the
    /// server is done, since a client's watcher may open a new one in the
    /// meantime; connections still open after [`SHUTDOWN_GRACE`] are closed.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        let mut task = self.task;
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        loop {
            self.app.faults.drop_watches();
            tokio::select! {
                _ = &mut task => return,
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(
                    grace = ?SHUTDOWN_GRACE,
                    "embedded API server: requests still open at shutdown; closing their connections"
                );
                task.abort();
                let _ = task.await;
                return;
            }
        }
    }
}
