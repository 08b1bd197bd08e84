//! Leader election on a `coordination.k8s.io/v1` Lease, the way client-go's
//! `leaderelection` does it: a replica takes a Lease nobody renewed within
//! its duration, renews it while it leads, and gives it up on shutdown.
//!
//! Every replica keeps its informers, cache and plugins warm; only the
//! leader executes actions. Expiry is judged by this replica's own clock
//! from when it last saw the Lease change, never by comparing the holder's
//! timestamps with ours, so clock skew between nodes does not matter.

use std::time::{Duration, Instant};

use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::MicroTime,
};
use kube::{
    Api,
    api::{ObjectMeta, PostParams},
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// What acts on whether this replica leads. It is told synchronously, before
/// the election goes on: by the time this replica releases the Lease, or a
/// failed renewal lets another replica take it, it has stopped acting.
pub trait Follower: Send + Sync {
    /// This replica leads from now on, or no longer does.
    fn set_leading(&self, leading: bool);
}

/// A watch channel follows too, for whoever wants to observe leadership.
impl Follower for watch::Sender<bool> {
    fn set_leading(&self, leading: bool) {
        self.send_replace(leading);
    }
}

/// Several followers, told in order.
impl<A: Follower, B: Follower> Follower for (A, B) {
    fn set_leading(&self, leading: bool) {
        self.0.set_leading(leading);
        self.1.set_leading(leading);
    }
}

impl<F: Follower + ?Sized> Follower for std::sync::Arc<F> {
    fn set_leading(&self, leading: bool) {
        (**self).set_leading(leading);
    }
}

/// How the election runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The Lease's name.
    pub name: String,
    /// The Lease's namespace.
    pub namespace: String,
    /// This replica's identity (the Pod name).
    pub identity: String,
    /// How long a Lease holds without renewal.
    pub lease_duration: Duration,
    /// How long a leader keeps trying to renew before it gives up.
    pub renew_deadline: Duration,
    /// How often to try.
    pub retry_period: Duration,
}

impl Config {
    /// The defaults of client-go: lease 15 s, renew 10 s, retry 2 s.
    pub fn new(name: &str, namespace: &str, identity: &str) -> Self {
        Self {
            name: name.into(),
            namespace: namespace.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    /// Set the three durations.
    #[must_use]
    pub fn timing(mut self, lease: Duration, renew: Duration, retry: Duration) -> Self {
        self.lease_duration = lease;
        self.renew_deadline = renew.min(lease);
        self.retry_period = retry;
        self
    }
}

/// The Lease as last seen, and when (by our clock) it last changed.
struct Observed {
    holder: String,
    renew: Option<MicroTime>,
    at: Instant,
}

/// Run the election until `stop`, telling `follower` whenever this replica
/// starts or stops leading. On `stop`, a leader stops its follower, then
/// releases the Lease so another replica can take it at once.
pub async fn run(
    client: kube::Client,
    config: Config,
    follower: impl Follower,
    stop: CancellationToken,
) {
    let api: Api<Lease> = Api::namespaced(client, &config.namespace);
    let mut observed: Option<Observed> = None;
    let mut last_renew: Option<Instant> = None;
    let mut leading = false;
    loop {
        // A request that hangs (a half-open connection) fails like any
        // other within the renew deadline, so a leader cut off from its API
        // server stops acting in time.
        let result = match tokio::time::timeout(
            config.renew_deadline,
            try_acquire_or_renew(&api, &config, &mut observed),
        )
        .await
        {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no answer within {:?}", config.renew_deadline)),
        };
        let now = Instant::now();
        match result {
            Ok(true) => {
                last_renew = Some(now);
                if !leading {
                    tracing::info!(lease = %config.name, identity = %config.identity, "leader election: this replica leads");
                    leading = true;
                    follower.set_leading(true);
                }
            }
            Ok(false) => {
                if leading {
                    tracing::warn!(lease = %config.name, "leader election: another replica holds the Lease; standing by");
                    leading = false;
                    follower.set_leading(false);
                }
                last_renew = None;
            }
            Err(e) => {
                // A leader that cannot renew stops acting at once; it may
                // still renew before the Lease expires and carry on.
                if leading {
                    tracing::warn!(lease = %config.name, error = %e, "leader election: renewal failed; actions paused");
                    leading = false;
                    follower.set_leading(false);
                } else {
                    tracing::debug!(lease = %config.name, error = %e, "leader election: could not reach the Lease");
                }
                if last_renew.is_some_and(|t| now.duration_since(t) > config.renew_deadline) {
                    tracing::warn!(lease = %config.name, "leader election: renew deadline passed; leadership lost");
                    last_renew = None;
                }
            }
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(config.retry_period) => {}
        }
    }
    // A replica whose renewal failed may still hold the Lease: release it
    // too, if it is still ours (release checks).
    if leading || last_renew.is_some() {
        follower.set_leading(false);
        release(&api, &config).await;
    }
}

fn now_micro() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

/// One round: take or renew the Lease. Returns whether this replica holds it.
async fn try_acquire_or_renew(
    api: &Api<Lease>,
    config: &Config,
    observed: &mut Option<Observed>,
) -> Result<bool, kube::Error> {
    let lease_secs = i32::try_from(config.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX);
    let Some(mut lease) = api.get_opt(&config.name).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(config.name.clone()),
                namespace: Some(config.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(config.identity.clone()),
                lease_duration_seconds: Some(lease_secs),
                acquire_time: Some(now_micro()),
                renew_time: Some(now_micro()),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            // Someone else created it first.
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        };
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.clone().unwrap_or_default();
    let now = Instant::now();
    let changed = observed
        .as_ref()
        .is_none_or(|o| o.holder != holder || o.renew != spec.renew_time);
    if changed {
        *observed = Some(Observed {
            holder: holder.clone(),
            renew: spec.renew_time.clone(),
            at: now,
        });
    }
    let seen_at = observed.as_ref().map_or(now, |o| o.at);
    let held_duration = spec
        .lease_duration_seconds
        .map_or(config.lease_duration, |s| {
            Duration::from_secs(u64::try_from(s).unwrap_or(0))
        });
    let mine = holder == config.identity;
    let expired = now.duration_since(seen_at) >= held_duration;
    if !mine && !holder.is_empty() && !expired {
        return Ok(false);
    }
    let mut spec = spec;
    if !mine {
        spec.acquire_time = Some(now_micro());
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        spec.holder_identity = Some(config.identity.clone());
    }
    spec.renew_time = Some(now_micro());
    spec.lease_duration_seconds = Some(lease_secs);
    lease.spec = Some(spec);
    // The update carries the resourceVersion read: two replicas racing for
    // an expired Lease cannot both win.
    match api
        .replace(&config.name, &PostParams::default(), &lease)
        .await
    {
        Ok(updated) => {
            let spec = updated.spec.unwrap_or_default();
            *observed = Some(Observed {
                holder: spec.holder_identity.unwrap_or_default(),
                renew: spec.renew_time,
                at: Instant::now(),
            });
            Ok(true)
        }
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Give the Lease up: no holder, and a one-second duration, so another
/// replica takes it at its next try.
async fn release(api: &Api<Lease>, config: &Config) {
    let Ok(Some(mut lease)) = api.get_opt(&config.name).await else {
        return;
    };
    let Some(spec) = lease.spec.as_mut() else {
        return;
    };
    if spec.holder_identity.as_deref() != Some(config.identity.as_str()) {
        return;
    }
    spec.holder_identity = None;
    spec.lease_duration_seconds = Some(1);
    spec.renew_time = Some(now_micro());
    match api
        .replace(&config.name, &PostParams::default(), &lease)
        .await
    {
        Ok(_) => tracing::info!(lease = %config.name, "leader election: Lease released"),
        Err(e) => {
            tracing::warn!(lease = %config.name, error = %e, "leader election: could not release the Lease; another replica takes it when it expires")
        }
    }
}
