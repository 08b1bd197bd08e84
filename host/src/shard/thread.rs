//! The Lease work of sharded mode on a thread of its own: the bucket
//! coordinator and the singleton's election, with their own client.
//!
//! A bucket is held only while its renewals succeed in time, so renewals
//! must not wait behind the host's other work: on a busy replica (a flood of
//! watch events to decode, thousands of actions to send), tasks on the
//! shared runtime can wait seconds for their turn, and a renewal that late
//! lets the fence lapse. Here they wait only for the operating system.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{Follower, Shards, coordinator};
use crate::leader;

/// Why the thread could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The thread or its runtime could not be made.
    #[error("starting the sharding thread")]
    Start(#[source] std::io::Error),
}

/// The running coordination.
#[derive(Debug)]
pub struct Coordination {
    thread: std::thread::JoinHandle<()>,
    stop: CancellationToken,
}

impl Coordination {
    /// Start the coordinator (bucket and membership Leases) and the
    /// singleton's election (the leader Lease) for `shards`, with a client of
    /// their own made from `client`'s configuration.
    ///
    /// # Errors
    /// [`Error`] if the thread or its runtime cannot be started.
    pub fn start(
        client: kube::Config,
        election: leader::Config,
        shards: Arc<Shards>,
        follower: Arc<dyn Follower>,
    ) -> Result<Self, Error> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::Start)?;
        let stop = CancellationToken::new();
        let token = stop.clone();
        let thread = std::thread::Builder::new()
            .name("informant-shard".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let client = match kube::Client::try_from(client) {
                        Ok(client) => client,
                        Err(e) => {
                            tracing::error!(error = %e, "sharding: no client for the Leases; this replica takes no bucket");
                            return;
                        }
                    };
                    // A replica stands for the singleton once it has
                    // joined: a leader Lease held by a replica that is not
                    // a member is one in --leader-elect mode, and the
                    // members take no bucket while it acts on everything.
                    let mut joined = shards.joined();
                    let singleton = async {
                        // The guard `wait_for` returns is dropped here, not
                        // held while the election runs.
                        let joined = tokio::select! {
                            () = token.cancelled() => false,
                            result = joined.wait_for(|j| *j) => result.is_ok(),
                        };
                        if joined {
                            let (c, e, s, t) =
                                (client.clone(), election.clone(), shards.clone(), token.clone());
                            leader::run(c, e, s, t).await;
                        }
                    };
                    // Both let go on stop: the buckets, and the leader Lease.
                    tokio::join!(
                        coordinator::run(
                            client.clone(),
                            election.clone(),
                            shards.clone(),
                            follower,
                            token.clone(),
                        ),
                        singleton,
                    );
                });
            })
            .map_err(Error::Start)?;
        Ok(Self { thread, stop })
    }

    /// Hand every bucket over, leave, release the leader Lease, and wait
    /// for it.
    pub async fn stop(self) {
        self.stop.cancel();
        let thread = self.thread;
        if tokio::task::spawn_blocking(move || thread.join())
            .await
            .is_err()
        {
            tracing::warn!("sharding: the sharding thread did not stop cleanly");
        }
    }
}
