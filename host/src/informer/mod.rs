//! Informers: list+watch what plugins subscribe to, into the indexed cache.
//!
//! This module holds one informer: a single list+watch of one resource,
//! namespace and selector pair, fed by `kube-runtime`'s watcher (paged or
//! streaming initial lists, bookmarks, resume from the last resourceVersion,
//! relist after 410, backoff). What it adds on top is what kube-rs leaves to
//! its users: the relist diff. When a relist completes, the cache swaps to
//! the listed state at once and subscribers learn exactly what changed:
//! objects missing from the list are delivered as deleted, with their last
//! known state and `final_state_unknown`; objects whose resourceVersion
//! changed as modified; unchanged objects not at all. And its first list
//! is a consistent read ([`consistency`]): synced means every write made
//! before the watch began is in the cache.
//!
//! [`crate::discovery::resolve`] turns what a subscription names (a kind, plural or
//! short name) into a served resource, or says it is not served yet.

mod consistency;
mod listing;
mod raw;
mod relist;
mod shared;
pub mod subscriptions;
mod watch;

use std::sync::Arc;

use crate::{
    cache::CachedObject,
    vocabulary::{EventType, KindKey, ObjectKey},
};

pub use listing::{Listing, ListingSlot};
pub use shared::{SharedInformers, SubscriberId, WatchKey};
pub use watch::{FirstList, Informer, Scope, WatchState, WatchStatus};

/// How long a watch may stay silent before its connection counts as dead
/// (half-open). Real servers send a bookmark about every 60 s.
pub const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(90);

/// A client configuration fit for informers: kube leaves the read timeout
/// unset, so a half-open watch connection would hang forever. With it, a
/// silent connection fails after `idle`, and the watcher resumes from its
/// last resourceVersion.
pub fn client_config(mut config: kube::Config, idle: std::time::Duration) -> kube::Config {
    config.read_timeout = Some(idle);
    config
}

/// What an informer tells its subscribers.
#[derive(Debug, Clone)]
pub enum Notification {
    /// One object changed.
    Change(Change),
    /// Every object of the scope as it is now. The first one a subscriber
    /// gets is its initial list: once it has delivered it, the subscriber has
    /// synced. Later ones are periodic resyncs.
    Snapshot(Snapshot),
    /// The watch's first list, as it streams in (for subscribers that take
    /// it so, [`FirstList::Streamed`]): the subscriber's place in it. Its
    /// objects are delivered as they arrive, as an initial list's.
    Streaming(Arc<ListingSlot>),
    /// The list of an earlier [`Notification::Streaming`] is complete and
    /// the cache holds it: once the subscriber has delivered the rest, it
    /// has synced.
    Streamed(Arc<Listing>),
    /// Between an informer and its shared fan-out only: the relists asked
    /// for up to this one ([`Informer::relist`]) are complete, and the cache
    /// holds what they listed. Subscribers never get it.
    Relisted(u64),
}

/// One change the informer observed.
#[derive(Debug, Clone)]
pub struct Change {
    /// The kind of the object.
    pub kind: KindKey,
    /// Added, modified or deleted.
    pub event_type: EventType,
    /// A delete inferred by a relist: the object is its last known state.
    pub final_state_unknown: bool,
    /// The object's key and state (its last state for deletes).
    pub key: Arc<ObjectKey>,
    /// The state.
    pub object: Arc<CachedObject>,
    /// The previous state for `Modified`.
    pub old: Option<Arc<CachedObject>>,
}

/// The objects of a scope at one moment, sorted by key, shared by every
/// subscriber that gets it: a reference to what the cache holds, never a
/// copy of the objects.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The kind of the objects.
    pub kind: KindKey,
    /// An initial list (the subscriber has synced once it is delivered), or
    /// a periodic resync.
    pub purpose: Purpose,
    /// The objects, sorted by key.
    pub objects: Arc<[(Arc<ObjectKey>, Arc<CachedObject>)]>,
}

/// Why a snapshot is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The subscriber's initial list: its objects arrive as `added`
    /// (initial), then `synced`.
    Initial,
    /// A periodic resync: every object again, as `resync`.
    Resync,
}
