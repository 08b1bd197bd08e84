//! A TCP gate in front of the test cluster's API server: closed, its port
//! refuses connections, as a server that is down does; opened, it forwards
//! every connection as it is (TLS passes through untouched); closed again,
//! it cuts the connections it forwards too. With a kubeconfig that points at
//! the gate, a host sees the API server go down and come back, whether the
//! cluster is the embedded server or a real one.
//!
//! It can also black-hole the connections open at one moment
//! ([`Gate::black_hole`]): they stay open and go silent both ways, as across
//! a network that drops their packets (a half-open connection), while new
//! connections are forwarded again.

use std::{
    net::SocketAddr,
    path::Path,
    sync::{Arc, Mutex},
};

use tokio::{
    net::TcpListener,
    sync::watch,
    task::{AbortHandle, JoinHandle},
};

/// A gate: closed when made.
pub struct Gate {
    addr: SocketAddr,
    upstream: String,
    server: String,
    forwarding: Option<JoinHandle<()>>,
    /// The connections being forwarded, to cut on close.
    connections: Arc<Mutex<Vec<AbortHandle>>>,
    /// How many times connections were black-holed; each connection
    /// forwards while it is the count it was opened at.
    holes: watch::Sender<u64>,
}

impl Gate {
    /// A closed gate in front of the current context's server of
    /// `kubeconfig`, on a free loopback port.
    ///
    /// # Panics
    /// If the kubeconfig names no server or no free port can be had.
    pub fn closed(kubeconfig: &Path) -> Self {
        let kc = kube::config::Kubeconfig::read_from(kubeconfig).expect("a kubeconfig");
        let context = kc
            .contexts
            .iter()
            .find(|c| Some(&c.name) == kc.current_context.as_ref())
            .or(kc.contexts.first())
            .and_then(|c| c.context.as_ref())
            .expect("the kubeconfig has a context");
        let server = kc
            .clusters
            .iter()
            .find(|c| c.name == context.cluster)
            .and_then(|c| c.cluster.as_ref())
            .and_then(|c| c.server.clone())
            .expect("the context's cluster has a server");
        let url: http::Uri = server.parse().expect("the server is a URL");
        let upstream = format!(
            "{}:{}",
            url.host().expect("the server URL has a host"),
            url.port_u16()
                .unwrap_or(if url.scheme_str() == Some("https") {
                    443
                } else {
                    80
                })
        );
        // A port nobody listens on: taken, then let go.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        Self {
            addr,
            upstream,
            server,
            forwarding: None,
            connections: Arc::default(),
            holes: watch::Sender::new(0),
        }
    }

    /// `kubeconfig` again, with its server replaced by the gate, written to
    /// `to`.
    ///
    /// # Panics
    /// If the files cannot be read or written.
    pub fn kubeconfig(&self, kubeconfig: &Path, to: &Path) {
        let text = std::fs::read_to_string(kubeconfig).expect("the kubeconfig is readable");
        let scheme = self.server.split("://").next().unwrap_or("http");
        let gated = text.replace(&self.server, &format!("{scheme}://{}", self.addr));
        std::fs::write(to, gated).expect("the gated kubeconfig is written");
    }

    /// Open the gate: listen on its port and forward every connection.
    ///
    /// # Panics
    /// If the port was taken meanwhile.
    pub async fn open(&mut self) {
        let listener = TcpListener::bind(self.addr)
            .await
            .expect("the gate's port is still free");
        let upstream = self.upstream.clone();
        let connections = self.connections.clone();
        let holes = self.holes.subscribe();
        self.forwarding = Some(tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let mut holes = holes.clone();
                let opened_at = *holes.borrow_and_update();
                let connection = tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let hole = async {
                        if holes.wait_for(|n| *n > opened_at).await.is_err() {
                            // The gate is gone without a black hole: forward on.
                            std::future::pending::<()>().await;
                        }
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => return,
                        () = hole => {}
                    }
                    // Black-holed: both ends stay open and hear nothing
                    // until the gate closes or goes.
                    while holes.changed().await.is_ok() {}
                    drop((client, server));
                });
                let mut open = connections.lock().unwrap_or_else(|e| e.into_inner());
                open.retain(|c| !c.is_finished());
                open.push(connection.abort_handle());
            }
        }));
    }

    /// Close the gate: its port refuses connections again (it can be opened
    /// again at once), and every connection it was forwarding is cut, as
    /// when the server goes away.
    pub async fn close(&mut self) {
        if let Some(task) = self.forwarding.take() {
            task.abort();
            // Gone once the task is: the listener with it.
            let _ = task.await;
        }
        self.cut();
    }

    /// Black-hole every connection open now: from here on it forwards
    /// nothing either way and stays open, as a connection whose packets the
    /// network drops. Connections opened later are forwarded.
    pub fn black_hole(&self) {
        self.holes.send_modify(|n| *n += 1);
    }

    fn cut(&self) {
        for connection in self
            .connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            connection.abort();
        }
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        if let Some(task) = self.forwarding.take() {
            task.abort();
        }
        self.cut();
    }
}
