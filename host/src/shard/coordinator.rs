//! The Lease holder for buckets and membership: one loop per replica that
//! announces it (a membership Lease, once its caches have synced), takes the
//! buckets the assignment gives it, renews them with leader election's
//! timing, hands over the ones it should no longer hold, and lets everything
//! go on shutdown.
//!
//! It watches the set's Leases (one label selects them), so it sees a
//! bucket released the moment it is, and judges expiry the way leader
//! election does: by this replica's own clock, from when it saw a Lease
//! last change, never by comparing another node's timestamps with its own.
//! It wakes at the earliest moment a Lease it watches can expire, so a dead
//! replica's buckets move one lease duration after its last renewal.
//! Every write carries the resourceVersion it read: two replicas racing for
//! a bucket cannot both win.
//!
//! Order is what keeps one bucket on one replica: the fence is revoked
//! before a bucket is released, granted only after its Lease was written,
//! and extended by each renewal only to the renewal's start plus the renew
//! deadline (shorter than the lease duration).

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Arc,
    time::{Duration, Instant},
};

use futures::StreamExt;
use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::MicroTime,
};
use kube::{
    Api,
    api::{DeleteParams, ObjectMeta, PostParams, Preconditions},
    runtime::{WatchStreamExt, watcher},
};
use tokio_util::sync::CancellationToken;

use super::{Member, Shards, View, assign};
use crate::leader;

/// The label every Lease of a set carries, with the set's name.
pub const SET_LABEL: &str = "informant.dev/lease-set";
/// The label saying what a Lease is for: `bucket` or `member`.
pub const ROLE_LABEL: &str = "informant.dev/lease-role";
/// The annotation on a membership Lease with the replica's bucket count.
pub const BUCKETS_ANNOTATION: &str = "informant.dev/buckets";

/// How long after a Lease changes the coordinator waits for more changes
/// before it acts on them together.
const BURST: Duration = Duration::from_millis(20);

/// A membership Lease nobody renewed for this many lease durations is
/// deleted by the singleton: the replica is long gone.
const MEMBER_GC_DURATIONS: u32 = 10;

/// What acts on the buckets this replica holds. Told synchronously, after
/// the fence changed: on `gained`, the fence already holds the buckets; on
/// `lost`, it no longer does.
pub trait Follower: Send + Sync {
    /// Whether this replica may join: its caches have synced, so a bucket's
    /// replay sees the whole bucket.
    fn ready(&self) -> bool;
    /// These buckets are held from now on (taken, or renewed after their
    /// fence had lapsed): replay them.
    fn gained(&self, buckets: &[u16]);
    /// These buckets are no longer held.
    fn lost(&self, buckets: &[u16]);
}

impl<F: Follower + ?Sized> Follower for Arc<F> {
    fn ready(&self) -> bool {
        (**self).ready()
    }
    fn gained(&self, buckets: &[u16]) {
        (**self).gained(buckets);
    }
    fn lost(&self, buckets: &[u16]) {
        (**self).lost(buckets);
    }
}

/// The name of bucket `b`'s Lease in set `set`.
pub fn bucket_lease(set: &str, b: u16) -> String {
    format!("{set}-bucket-{b}")
}

/// The name of `identity`'s membership Lease in set `set`: the identity
/// itself when that makes a valid name, else a hash of it (the Lease's
/// holder says whose it is).
pub fn member_lease(set: &str, identity: &str) -> String {
    let name = format!("{set}-member-{identity}");
    if informant_k8s::selector::is_dns1123_subdomain(&name) {
        return name;
    }
    let mut h = fnv::FnvHasher::default();
    std::hash::Hasher::write(&mut h, identity.as_bytes());
    format!("{set}-member-{:016x}", std::hash::Hasher::finish(&h))
}

/// What a Lease is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Bucket `b`.
    Bucket(u16),
    /// A replica's membership.
    Member,
    /// The leader Lease: the singleton's, or a replica's in `--leader-elect`
    /// mode.
    Leader,
}

/// A Lease as last seen, and when (by our clock) it last changed.
#[derive(Debug, Clone)]
struct Seen {
    lease: Lease,
    role: Role,
    holder: Option<String>,
    renew: Option<MicroTime>,
    duration: Duration,
    /// The bucket count a membership Lease announces.
    buckets: Option<u16>,
    at: Instant,
}

impl Seen {
    /// A Lease of the set, by its labels; none if it is not one.
    fn new(lease: Lease, set: &str, before: Option<&Seen>, now: Instant) -> Option<Self> {
        let name = lease.metadata.name.clone()?;
        let labels = lease.metadata.labels.as_ref();
        let role = match labels.and_then(|l| l.get(ROLE_LABEL)).map(String::as_str) {
            Some("member") => Role::Member,
            Some("bucket") => {
                Role::Bucket(name.strip_prefix(&format!("{set}-bucket-"))?.parse().ok()?)
            }
            _ => return None,
        };
        Some(Self::observe(lease, role, before, now))
    }

    /// A Lease with `role`, as seen at `now` after `before`.
    fn observe(lease: Lease, role: Role, before: Option<&Seen>, now: Instant) -> Self {
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.filter(|h| !h.is_empty());
        let renew = spec.renew_time;
        let at = match before {
            Some(b) if b.holder == holder && b.renew == renew => b.at,
            _ => now,
        };
        let duration = Duration::from_secs(
            u64::try_from(spec.lease_duration_seconds.unwrap_or(1).max(1)).unwrap_or(1),
        );
        let buckets = lease
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(BUCKETS_ANNOTATION))
            .and_then(|v| v.parse().ok());
        Self {
            lease,
            role,
            holder,
            renew,
            duration,
            buckets,
            at,
        }
    }

    /// Its holder, if it has one and the Lease has not expired at `now`.
    fn live(&self, now: Instant) -> Option<&str> {
        self.holder
            .as_deref()
            .filter(|_| now.saturating_duration_since(self.at) < self.duration)
    }

    /// When it expires, if it is held.
    fn expires(&self) -> Option<Instant> {
        self.holder.as_ref().map(|_| self.at + self.duration)
    }
}

/// The set's Leases as the watch reports them.
#[derive(Debug, Default)]
struct Leases {
    by_name: HashMap<String, Seen>,
    /// A relist in progress: what it found so far.
    relisting: Option<HashMap<String, Seen>>,
    /// Whether a first list has completed.
    synced: bool,
    /// The leader Lease, watched on its own.
    leader: Option<Seen>,
    /// A relist of the leader Lease is in progress and has not found it yet.
    leader_relisting: bool,
    /// Whether the leader Lease's first list has completed.
    leader_synced: bool,
}

impl Leases {
    fn apply(&mut self, event: watcher::Event<Lease>, set: &str, now: Instant) {
        match event {
            watcher::Event::Init => self.relisting = Some(HashMap::new()),
            watcher::Event::InitApply(lease) => {
                let Some(name) = lease.metadata.name.clone() else {
                    return;
                };
                if let Some(seen) = Seen::new(lease, set, self.by_name.get(&name), now)
                    && let Some(relisting) = self.relisting.as_mut()
                {
                    relisting.insert(name, seen);
                }
            }
            watcher::Event::InitDone => {
                if let Some(relisted) = self.relisting.take() {
                    self.by_name = relisted;
                }
                self.synced = true;
            }
            watcher::Event::Apply(lease) => {
                let Some(name) = lease.metadata.name.clone() else {
                    return;
                };
                match Seen::new(lease, set, self.by_name.get(&name), now) {
                    Some(seen) => self.by_name.insert(name, seen),
                    None => self.by_name.remove(&name),
                };
            }
            watcher::Event::Delete(lease) => {
                if let Some(name) = lease.metadata.name {
                    self.by_name.remove(&name);
                }
            }
        }
    }

    fn apply_leader(&mut self, event: watcher::Event<Lease>, now: Instant) {
        match event {
            watcher::Event::Init => self.leader_relisting = true,
            watcher::Event::InitApply(lease) | watcher::Event::Apply(lease) => {
                self.leader_relisting = false;
                self.leader = Some(Seen::observe(
                    lease,
                    Role::Leader,
                    self.leader.as_ref(),
                    now,
                ));
            }
            watcher::Event::InitDone => {
                if std::mem::take(&mut self.leader_relisting) {
                    self.leader = None;
                }
                self.leader_synced = true;
            }
            watcher::Event::Delete(_) => self.leader = None,
        }
    }

    fn bucket(&self, set: &str, b: u16) -> Option<&Seen> {
        self.by_name.get(&bucket_lease(set, b))
    }

    fn members(&self) -> impl Iterator<Item = &Seen> {
        self.by_name.values().filter(|s| s.role == Role::Member)
    }

    /// The first moment after `now` at which a held Lease expires.
    fn next_expiry(&self, now: Instant) -> Option<Instant> {
        self.by_name
            .values()
            .chain(self.leader.as_ref())
            .filter_map(Seen::expires)
            .filter(|at| *at > now)
            .min()
    }
}

/// What one round decided.
#[derive(Debug, Default, PartialEq, Eq)]
struct Plan {
    release: Vec<u16>,
    acquire: Vec<u16>,
    /// Why this replica takes no new bucket, if it does not.
    conflict: Option<Conflict>,
}

/// A live replica that does not share the work the way this one does:
/// while it lives, this replica takes no new bucket, so that no object has
/// two replicas acting on it (a configuration being rolled out).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Conflict {
    /// It shares the work with another bucket count.
    Buckets {
        /// The replica.
        replica: String,
        /// Its bucket count, if it says.
        buckets: Option<u16>,
    },
    /// It leads in `--leader-elect` mode (it holds the leader Lease without
    /// a membership Lease), so it acts on every object.
    Unsharded {
        /// The replica.
        replica: String,
    },
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Buckets { replica, buckets } => match buckets {
                Some(n) => write!(f, "replica {replica} shares the work in {n} buckets"),
                None => write!(f, "replica {replica} does not say how many buckets it uses"),
            },
            Self::Unsharded { replica } => write!(
                f,
                "replica {replica} holds the leader Lease without sharding (--leader-elect mode) and acts on every object"
            ),
        }
    }
}

/// Run the coordinator until `stop`; then hand every bucket over and leave
/// the membership. `config` is the leader election's: the Leases' base name
/// (the set), namespace, this replica's identity and the timing.
pub async fn run(
    client: kube::Client,
    config: leader::Config,
    shards: Arc<Shards>,
    follower: impl Follower,
    stop: CancellationToken,
) {
    let api: Api<Lease> = Api::namespaced(client, &config.namespace);
    let selector = format!("{SET_LABEL}={}", config.name);
    let mut events = watcher(api.clone(), watcher::Config::default().labels(&selector))
        .default_backoff()
        .boxed();
    let mut leader_events = watcher(
        api.clone(),
        watcher::Config::default().fields(&format!("metadata.name={}", config.name)),
    )
    .default_backoff()
    .boxed();
    let mut c = Coordinator {
        api,
        // A request that hangs must not hold the loop past the renew
        // deadline.
        timeout: (config.renew_deadline / 2).max(Duration::from_millis(500)),
        config,
        shards,
        follower,
        leases: Leases::default(),
        held: BTreeMap::new(),
        member: None,
        lapsed: BTreeSet::new(),
        conflict_told: false,
    };
    tracing::info!(set = %c.config.name, namespace = %c.config.namespace, identity = %c.config.identity, buckets = c.buckets(), "sharding: this replica takes part once its caches have synced");
    let mut next_round = tokio::time::Instant::now();
    loop {
        let now = Instant::now();
        let wake = c
            .leases
            .next_expiry(now)
            .map(|at| tokio::time::Instant::from_std(at + Duration::from_millis(1)))
            .map_or(next_round, |at| at.min(next_round));
        tokio::select! {
            () = stop.cancelled() => break,
            event = events.next() => match event {
                Some(Ok(event)) => {
                    c.leases.apply(event, &c.config.name, Instant::now());
                    // What else arrives within a few milliseconds is acted
                    // on in the same round: a replica leaving releases its
                    // buckets in one burst, taken (and replayed) at once.
                    let burst = tokio::time::Instant::now() + BURST;
                    while let Ok(Some(Ok(event))) =
                        tokio::time::timeout_at(burst, events.next()).await
                    {
                        c.leases.apply(event, &c.config.name, Instant::now());
                    }
                    // A relist is acted on once it is complete.
                    if c.leases.relisting.is_some() {
                        continue;
                    }
                }
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "sharding: the Lease watch failed; it retries");
                    continue;
                }
                None => break,
            },
            event = leader_events.next() => match event {
                Some(Ok(event)) => c.leases.apply_leader(event, Instant::now()),
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "sharding: the leader Lease watch failed; it retries");
                    continue;
                }
                None => break,
            },
            () = tokio::time::sleep_until(wake) => {}
        }
        let renew = tokio::time::Instant::now() >= next_round;
        if renew {
            next_round = tokio::time::Instant::now() + c.config.retry_period;
        }
        c.round(renew).await;
    }
    c.leave().await;
}

struct Coordinator<F> {
    api: Api<Lease>,
    config: leader::Config,
    shards: Arc<Shards>,
    follower: F,
    leases: Leases,
    /// Our bucket Leases as last written.
    held: BTreeMap<u16, Lease>,
    /// Our membership Lease as last written, once joined.
    member: Option<Lease>,
    /// Held buckets whose fence lapsed and was logged.
    lapsed: BTreeSet<u16>,
    conflict_told: bool,
    timeout: Duration,
}

impl<F: Follower> Coordinator<F> {
    fn buckets(&self) -> u16 {
        self.shards.config().buckets
    }

    fn lease_secs(&self) -> i32 {
        i32::try_from(self.config.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX)
    }

    /// One round: join when ready, renew when due, hand over and take what
    /// the assignment says, publish what was seen.
    async fn round(&mut self, renew: bool) {
        // Nothing is decided on half a picture.
        if !(self.leases.synced && self.leases.leader_synced) {
            return;
        }
        if self.member.is_none() && self.follower.ready() {
            self.join().await;
        }
        let plan = self.plan(Instant::now());
        match &plan.conflict {
            Some(conflict) if !self.conflict_told => {
                self.conflict_told = true;
                tracing::warn!(
                    buckets = self.buckets(),
                    "sharding: {conflict}; this replica takes no new bucket until it is gone"
                );
            }
            None => self.conflict_told = false,
            Some(_) => {}
        }
        self.release(&plan.release).await;
        // Renewals and acquisitions at once: on a slow API server, taking
        // a dead replica's bucket does not wait for our own renewals.
        let (member, renewals, acquisitions) = {
            let this: &Self = self;
            tokio::join!(
                async {
                    match renew {
                        true => this.member_renewal().await,
                        false => None,
                    }
                },
                async {
                    match renew {
                        true => this.renewals().await,
                        false => Vec::new(),
                    }
                },
                this.acquisitions(&plan.acquire),
            )
        };
        self.renewed_member(member).await;
        self.renewed(renewals);
        self.acquired(acquisitions);
        if renew && self.shards.fence().singleton() {
            self.collect_members().await;
        }
        self.publish(Instant::now());
    }

    /// What the assignment says this replica should give up and take.
    fn plan(&self, now: Instant) -> Plan {
        let me = self.config.identity.as_str();
        let ours = self.buckets();
        let mut members: Vec<&str> = Vec::new();
        let mut conflict = None;
        for seen in self.leases.members() {
            let Some(holder) = seen.live(now) else {
                continue;
            };
            if holder == me {
                continue;
            }
            if seen.buckets == Some(ours) {
                members.push(holder);
            } else {
                conflict = Some(Conflict::Buckets {
                    replica: holder.to_string(),
                    buckets: seen.buckets,
                });
            }
        }
        let joined = self.member.is_some();
        if joined {
            members.push(me);
        }
        // A replica with another bucket count is a conflict already.
        if let Some(leader) = self.leases.leader.as_ref().and_then(|s| s.live(now))
            && leader != me
            && conflict.is_none()
            && !self.leases.members().any(|s| s.live(now) == Some(leader))
        {
            conflict = Some(Conflict::Unsharded {
                replica: leader.to_string(),
            });
        }
        let holders: Vec<Option<&str>> = (0..ours)
            .map(|b| {
                if self.held.contains_key(&b) {
                    return Some(me);
                }
                // Our own name on a Lease we do not hold is an echo of a
                // release: free.
                self.leases
                    .bucket(&self.config.name, b)
                    .and_then(|s| s.live(now))
                    .filter(|h| *h != me)
            })
            .collect();
        let target = assign(&members, &holders);
        let release = self
            .held
            .keys()
            .copied()
            .filter(|b| target.get(usize::from(*b)).copied().flatten() != Some(me))
            .collect();
        let acquire = if joined && conflict.is_none() {
            (0..ours)
                .filter(|b| {
                    let i = usize::from(*b);
                    target[i] == Some(me) && holders[i].is_none() && !self.held.contains_key(b)
                })
                .collect()
        } else {
            Vec::new()
        };
        Plan {
            release,
            acquire,
            conflict,
        }
    }

    fn labels(&self, role: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            (SET_LABEL.to_string(), self.config.name.clone()),
            (ROLE_LABEL.to_string(), role.to_string()),
        ])
    }

    /// A request, bounded in time.
    async fn bounded<T>(
        &self,
        request: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, RequestError> {
        match tokio::time::timeout(self.timeout, request).await {
            Ok(Ok(t)) => Ok(t),
            Ok(Err(kube::Error::Api(s))) if s.code == 409 => Err(RequestError::Conflict),
            Ok(Err(kube::Error::Api(s))) if s.code == 404 => Err(RequestError::NotFound),
            Ok(Err(e)) => Err(RequestError::Other(e.to_string())),
            Err(_) => Err(RequestError::Other(format!(
                "no answer within {:?}",
                self.timeout
            ))),
        }
    }

    /// Announce this replica: its membership Lease, taken over from an
    /// earlier run under the same identity if there is one. Buckets that
    /// still name this identity (a restarted container) are adopted.
    async fn join(&mut self) {
        let name = member_lease(&self.config.name, &self.config.identity);
        let existing = self.leases.by_name.get(&name).map(|s| s.lease.clone());
        let spec = LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(self.lease_secs()),
            acquire_time: Some(now_micro()),
            renew_time: Some(now_micro()),
            ..LeaseSpec::default()
        };
        let mut annotations = BTreeMap::new();
        annotations.insert(BUCKETS_ANNOTATION.to_string(), self.buckets().to_string());
        let written = match existing {
            Some(mut lease) => {
                lease.spec = Some(spec);
                lease.metadata.annotations = Some(annotations);
                lease.metadata.labels = Some(self.labels("member"));
                self.bounded(self.api.replace(&name, &PostParams::default(), &lease))
                    .await
            }
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        namespace: Some(self.config.namespace.clone()),
                        labels: Some(self.labels("member")),
                        annotations: Some(annotations),
                        ..ObjectMeta::default()
                    },
                    spec: Some(spec),
                };
                self.bounded(self.api.create(&PostParams::default(), &lease))
                    .await
            }
        };
        match written {
            Ok(lease) => {
                tracing::info!(lease = %name, "sharding: joined");
                self.member = Some(lease);
            }
            Err(e) => {
                tracing::debug!(lease = %name, error = %e, "sharding: could not join yet");
                return;
            }
        }
        let now = Instant::now();
        let mine: Vec<u16> = (0..self.buckets())
            .filter(|b| {
                self.leases
                    .bucket(&self.config.name, *b)
                    .and_then(|s| s.live(now))
                    == Some(self.config.identity.as_str())
            })
            .collect();
        if !mine.is_empty() {
            tracing::info!(buckets = ?mine, "sharding: adopting the buckets an earlier run under this identity held");
            self.acquire(&mine).await;
        }
    }

    /// Renew the membership Lease; none before joining.
    async fn member_renewal(&self) -> Option<Result<Lease, RequestError>> {
        let mut lease = self.member.clone()?;
        let name = lease.metadata.name.clone().unwrap_or_default();
        if let Some(spec) = lease.spec.as_mut() {
            spec.renew_time = Some(now_micro());
            spec.lease_duration_seconds = Some(self.lease_secs());
        }
        Some(
            self.bounded(self.api.replace(&name, &PostParams::default(), &lease))
                .await,
        )
    }

    async fn renewed_member(&mut self, result: Option<Result<Lease, RequestError>>) {
        match result {
            None => {}
            Some(Ok(written)) => self.member = Some(written),
            // Changed or removed under us (the singleton collects the
            // Leases of replicas it thought gone): announce again.
            Some(Err(RequestError::Conflict | RequestError::NotFound)) => {
                tracing::info!(
                    "sharding: the membership Lease changed under this replica; joining again"
                );
                self.member = None;
                self.join().await;
            }
            Some(Err(e)) => {
                tracing::debug!(error = %e, "sharding: membership renewal failed");
            }
        }
    }

    /// Renew every held bucket at once.
    async fn renewals(&self) -> Vec<Attempt> {
        let renewals = self.held.iter().map(|(b, lease)| {
            let mut lease = lease.clone();
            if let Some(spec) = lease.spec.as_mut() {
                spec.renew_time = Some(now_micro());
                spec.lease_duration_seconds = Some(self.lease_secs());
            }
            let name = bucket_lease(&self.config.name, *b);
            async move {
                let sent = Instant::now();
                let mut result = self
                    .bounded(self.api.replace(&name, &PostParams::default(), &lease))
                    .await;
                if matches!(result, Err(RequestError::Conflict)) {
                    result = self.renew_again(&name).await;
                }
                (*b, sent, result)
            }
        });
        futures::future::join_all(renewals).await
    }

    /// What the renewals did. A bucket whose Lease changed under us is
    /// lost; one whose renewals keep failing lapses by itself (the fence),
    /// and is replayed if a later renewal still finds it ours.
    fn renewed(&mut self, results: Vec<Attempt>) {
        let mut regained = Vec::new();
        let mut lost = Vec::new();
        let fence = self.shards.fence();
        for (b, sent, result) in results {
            match result {
                Ok(lease) => {
                    let now = Instant::now();
                    if fence.grant(b, sent + self.config.renew_deadline, now) {
                        regained.push(b);
                    }
                    self.lapsed.remove(&b);
                    self.held.insert(b, lease);
                }
                Err(RequestError::Conflict | RequestError::NotFound) => {
                    fence.revoke(b);
                    self.held.remove(&b);
                    self.lapsed.remove(&b);
                    lost.push(b);
                }
                Err(RequestError::Other(e)) => {
                    if !fence.holds(b) && self.lapsed.insert(b) {
                        self.shards
                            .handoffs()
                            .lapsed
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        tracing::warn!(bucket = b, error = %e, "sharding: no renewal within the renew deadline; this replica stopped acting on the bucket");
                    } else {
                        tracing::debug!(bucket = b, error = %e, "sharding: renewal failed");
                    }
                }
            }
        }
        if !lost.is_empty() {
            self.shards
                .handoffs()
                .lost
                .fetch_add(lost.len() as u64, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(buckets = ?lost, "sharding: buckets changed hands under this replica; it stopped acting on them");
            self.follower.lost(&lost);
        }
        if !regained.is_empty() {
            tracing::info!(buckets = ?regained, "sharding: renewed after lapsing; replaying them");
            self.follower.gained(&regained);
        }
    }

    /// A renewal found the Lease changed: an earlier write of ours may have
    /// landed after we stopped waiting for it. If the Lease still names this
    /// replica, renew what it is now; otherwise it is lost.
    async fn renew_again(&self, name: &str) -> Result<Lease, RequestError> {
        let current = self.bounded(self.api.get_opt(name)).await?;
        let Some(mut lease) = current else {
            return Err(RequestError::NotFound);
        };
        let ours = lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref())
            == Some(self.config.identity.as_str());
        if !ours {
            return Err(RequestError::Conflict);
        }
        if let Some(spec) = lease.spec.as_mut() {
            spec.renew_time = Some(now_micro());
            spec.lease_duration_seconds = Some(self.lease_secs());
        }
        self.bounded(self.api.replace(name, &PostParams::default(), &lease))
            .await
    }

    /// Give buckets up: stop acting on them first, then clear their Leases
    /// so their new holders take them at once.
    async fn release(&mut self, buckets: &[u16]) {
        if buckets.is_empty() {
            return;
        }
        for b in buckets {
            self.shards.fence().revoke(*b);
        }
        self.follower.lost(buckets);
        let leases: Vec<(u16, Lease)> = buckets
            .iter()
            .filter_map(|b| Some((*b, self.held.remove(b)?)))
            .collect();
        let this: &Self = self;
        let releases = leases.into_iter().map(|(b, mut lease)| {
            if let Some(spec) = lease.spec.as_mut() {
                spec.holder_identity = None;
                spec.lease_duration_seconds = Some(1);
                spec.renew_time = Some(now_micro());
            }
            let name = bucket_lease(&this.config.name, b);
            async move {
                let result = this
                    .bounded(this.api.replace(&name, &PostParams::default(), &lease))
                    .await;
                (b, result)
            }
        });
        for (b, result) in futures::future::join_all(releases).await {
            if let Err(e) = result {
                tracing::debug!(bucket = b, error = %e, "sharding: could not release; the Lease expires by itself");
            }
        }
        self.shards
            .handoffs()
            .released
            .fetch_add(buckets.len() as u64, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(buckets = ?buckets, "sharding: buckets handed over");
    }

    /// Take buckets that are free (no Lease, no holder, or expired) or ours
    /// from an earlier run, then replay them.
    async fn acquire(&mut self, buckets: &[u16]) {
        let results = self.acquisitions(buckets).await;
        self.acquired(results);
    }

    /// Try to take each of `buckets`.
    async fn acquisitions(&self, buckets: &[u16]) -> Vec<Attempt> {
        let secs = self.lease_secs();
        let this: &Self = self;
        let attempts = buckets.iter().map(|b| {
            let name = bucket_lease(&this.config.name, *b);
            let existing = this
                .leases
                .bucket(&this.config.name, *b)
                .map(|s| s.lease.clone());
            let identity = this.config.identity.clone();
            let labels = this.labels("bucket");
            let namespace = this.config.namespace.clone();
            async move {
                let sent = Instant::now();
                let result = match existing {
                    Some(mut lease) => {
                        let mut spec = lease.spec.take().unwrap_or_default();
                        if spec.holder_identity.as_deref() != Some(identity.as_str()) {
                            spec.acquire_time = Some(now_micro());
                            spec.lease_transitions =
                                Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
                            spec.holder_identity = Some(identity);
                        }
                        spec.renew_time = Some(now_micro());
                        spec.lease_duration_seconds = Some(secs);
                        lease.spec = Some(spec);
                        lease.metadata.labels = Some(labels);
                        this.bounded(this.api.replace(&name, &PostParams::default(), &lease))
                            .await
                    }
                    None => {
                        let lease = Lease {
                            metadata: ObjectMeta {
                                name: Some(name.clone()),
                                namespace: Some(namespace),
                                labels: Some(labels),
                                ..ObjectMeta::default()
                            },
                            spec: Some(LeaseSpec {
                                holder_identity: Some(identity),
                                lease_duration_seconds: Some(secs),
                                acquire_time: Some(now_micro()),
                                renew_time: Some(now_micro()),
                                lease_transitions: Some(0),
                                ..LeaseSpec::default()
                            }),
                        };
                        this.bounded(this.api.create(&PostParams::default(), &lease))
                            .await
                    }
                };
                (*b, sent, result)
            }
        });
        futures::future::join_all(attempts).await
    }

    /// What the acquisitions did: the buckets taken are held from the
    /// moment their write was sent, and replayed.
    fn acquired(&mut self, results: Vec<Attempt>) {
        let mut gained = Vec::new();
        for (b, sent, result) in results {
            match result {
                Ok(lease) => {
                    self.shards
                        .fence()
                        .grant(b, sent + self.config.renew_deadline, Instant::now());
                    self.held.insert(b, lease);
                    gained.push(b);
                }
                // Another replica was faster, or our view is behind.
                Err(RequestError::Conflict) => {}
                Err(e) => {
                    tracing::debug!(bucket = b, error = %e, "sharding: could not take the bucket")
                }
            }
        }
        if !gained.is_empty() {
            self.shards
                .handoffs()
                .acquired
                .fetch_add(gained.len() as u64, std::sync::atomic::Ordering::Relaxed);
            tracing::info!(buckets = ?gained, "sharding: buckets taken; replaying them");
            self.follower.gained(&gained);
        }
    }

    /// The singleton deletes membership Leases nobody renewed for a long
    /// time (replicas that are gone), each only as it saw it.
    async fn collect_members(&self) {
        let now = Instant::now();
        let stale: Vec<(String, Option<String>)> = self
            .leases
            .members()
            .filter(|s| {
                s.holder.as_deref() != Some(self.config.identity.as_str())
                    && now.saturating_duration_since(s.at) > s.duration * MEMBER_GC_DURATIONS
            })
            .filter_map(|s| {
                Some((
                    s.lease.metadata.name.clone()?,
                    s.lease.metadata.resource_version.clone(),
                ))
            })
            .collect();
        for (name, rv) in stale {
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    resource_version: rv,
                    uid: None,
                }),
                ..DeleteParams::default()
            };
            match self.bounded(self.api.delete(&name, &params)).await {
                Ok(_) => {
                    tracing::info!(lease = %name, "sharding: removed the membership Lease of a replica long gone");
                }
                Err(e) => {
                    tracing::debug!(lease = %name, error = %e, "sharding: could not remove a stale membership Lease")
                }
            }
        }
    }

    /// Let everything go: stop acting on every bucket, leave the membership
    /// (so the others no longer count this replica when they share the
    /// buckets out), then clear the bucket Leases so they take them at once.
    async fn leave(&mut self) {
        let held: Vec<u16> = self.held.keys().copied().collect();
        for b in &held {
            self.shards.fence().revoke(*b);
        }
        if let Some(lease) = self.member.take() {
            let name = lease.metadata.name.clone().unwrap_or_default();
            match self
                .bounded(self.api.delete(&name, &DeleteParams::default()))
                .await
            {
                Ok(_) => tracing::info!(lease = %name, "sharding: left"),
                Err(e) => {
                    tracing::warn!(lease = %name, error = %e, "sharding: could not remove the membership Lease; it expires by itself")
                }
            }
        }
        self.release(&held).await;
        self.publish(Instant::now());
    }

    /// Publish what was seen, for the admin API.
    fn publish(&self, now: Instant) {
        let me = self.config.identity.as_str();
        let ours = self.buckets();
        let holders: Vec<Option<String>> = (0..ours)
            .map(|b| {
                if self.shards.fence().holds_at(b, now) {
                    return Some(me.to_string());
                }
                self.leases
                    .bucket(&self.config.name, b)
                    .and_then(|s| s.live(now))
                    .filter(|h| *h != me)
                    .map(str::to_string)
            })
            .collect();
        let mut members: Vec<Member> = self
            .leases
            .members()
            .filter_map(|s| {
                let identity = s.live(now)?.to_string();
                Some(Member {
                    buckets: holders
                        .iter()
                        .filter(|h| h.as_deref() == Some(identity.as_str()))
                        .count(),
                    other_bucket_count: s.buckets.filter(|n| *n != ours),
                    identity,
                })
            })
            .filter(|m| m.identity != me)
            .collect();
        if self.member.is_some() {
            members.push(Member {
                identity: me.to_string(),
                buckets: holders.iter().filter(|h| h.as_deref() == Some(me)).count(),
                other_bucket_count: None,
            });
        }
        members.sort_by(|a, b| a.identity.cmp(&b.identity));
        self.shards.set_view(View {
            joined: self.member.is_some(),
            members,
            holders,
            conflict: self.plan(now).conflict.map(|c| c.to_string()),
        });
        self.shards.set_joined(self.member.is_some());
    }
}

/// One bucket's write: the bucket, when it was sent, what came back.
type Attempt = (u16, Instant, Result<Lease, RequestError>);

/// Why a Lease request failed.
#[derive(Debug, thiserror::Error)]
enum RequestError {
    /// The Lease changed since it was read (409).
    #[error("the Lease changed since it was read")]
    Conflict,
    /// The Lease is gone (404).
    #[error("the Lease does not exist")]
    NotFound,
    /// Anything else: the server is unreachable, slow, or refused.
    #[error("{0}")]
    Other(String),
}

fn now_micro() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(name: &str, role: &str, holder: Option<&str>, renew_secs: i64) -> Lease {
        let mut meta = ObjectMeta {
            name: Some(name.into()),
            labels: Some(BTreeMap::from([
                (SET_LABEL.to_string(), "inf".to_string()),
                (ROLE_LABEL.to_string(), role.to_string()),
            ])),
            ..ObjectMeta::default()
        };
        if role == "member" {
            meta.annotations = Some(BTreeMap::from([(
                BUCKETS_ANNOTATION.to_string(),
                "4".to_string(),
            )]));
        }
        Lease {
            metadata: meta,
            spec: Some(LeaseSpec {
                holder_identity: holder.map(str::to_string),
                lease_duration_seconds: Some(3),
                renew_time: Some(MicroTime(
                    k8s_openapi::jiff::Timestamp::from_second(renew_secs).unwrap(),
                )),
                ..LeaseSpec::default()
            }),
        }
    }

    #[test]
    fn lease_names_are_valid_even_for_odd_identities() {
        assert_eq!(bucket_lease("informant", 7), "informant-bucket-7");
        assert_eq!(member_lease("informant", "web-0"), "informant-member-web-0");
        let odd = member_lease("informant", "Host_Name:1");
        assert!(odd.starts_with("informant-member-"), "{odd}");
        assert!(informant_k8s::selector::is_dns1123_subdomain(&odd));
    }

    #[test]
    fn expiry_is_judged_from_when_a_change_was_seen() {
        let t0 = Instant::now();
        let mut leases = Leases::default();
        leases.apply(watcher::Event::Init, "inf", t0);
        leases.apply(
            watcher::Event::InitApply(lease("inf-bucket-1", "bucket", Some("a"), 100)),
            "inf",
            t0,
        );
        leases.apply(watcher::Event::InitDone, "inf", t0);
        assert!(leases.synced);
        let seen = leases.bucket("inf", 1).unwrap();
        assert_eq!(seen.role, Role::Bucket(1));
        assert_eq!(seen.live(t0 + Duration::from_secs(2)), Some("a"));
        assert_eq!(seen.live(t0 + Duration::from_secs(3)), None);
        // The same renewal seen again later does not restart the clock...
        let t1 = t0 + Duration::from_secs(2);
        leases.apply(
            watcher::Event::Apply(lease("inf-bucket-1", "bucket", Some("a"), 100)),
            "inf",
            t1,
        );
        assert_eq!(leases.next_expiry(t1), Some(t0 + Duration::from_secs(3)));
        // ...a new one does.
        leases.apply(
            watcher::Event::Apply(lease("inf-bucket-1", "bucket", Some("a"), 102)),
            "inf",
            t1,
        );
        assert_eq!(leases.next_expiry(t1), Some(t1 + Duration::from_secs(3)));
        // Released: no holder, nothing expires.
        leases.apply(
            watcher::Event::Apply(lease("inf-bucket-1", "bucket", None, 103)),
            "inf",
            t1,
        );
        assert_eq!(leases.bucket("inf", 1).unwrap().live(t1), None);
        assert_eq!(leases.next_expiry(t1), None);
        // Leases of other sets or roles are not ours.
        leases.apply(
            watcher::Event::Apply(lease("inf-other", "other", Some("x"), 1)),
            "inf",
            t1,
        );
        assert!(!leases.by_name.contains_key("inf-other"));
        leases.apply(
            watcher::Event::Apply(lease("inf-member-a", "member", Some("a"), 1)),
            "inf",
            t1,
        );
        assert_eq!(leases.members().next().unwrap().buckets, Some(4));
    }
}
