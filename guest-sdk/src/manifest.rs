//! Builders for the manifest a plugin returns from `describe`.

use crate::{EventType, bindings::informant::plugin::types as wit};

/// How events queue while the plugin is busy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Delivery {
    /// Every event, in order per object.
    #[default]
    EveryEvent,
    /// Only the newest state per object.
    LatestState,
}

/// Where the plugin's [`state`](crate::state) store is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StateTier {
    /// In the host's memory: lost when the host stops.
    #[default]
    Memory,
    /// In the cluster: kept across host restarts and leader changes.
    Durable,
}

/// A write verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// Server-side apply.
    Apply,
    /// Create.
    Create,
    /// Merge patch and JSON patch.
    Patch,
    /// Patch of the status subresource.
    PatchStatus,
    /// Delete.
    Delete,
}

impl From<Verb> for wit::Verb {
    fn from(v: Verb) -> Self {
        match v {
            Verb::Apply => Self::Apply,
            Verb::Create => Self::Create,
            Verb::Patch => Self::Patch,
            Verb::PatchStatus => Self::PatchStatus,
            Verb::Delete => Self::Delete,
        }
    }
}

/// A subscription to one kind of object.
#[derive(Debug, Clone)]
#[must_use]
pub struct Subscription(wit::Subscription);

impl Subscription {
    /// Subscribe to every event of a kind in every namespace.
    pub fn to(api_version: &str, kind: &str) -> Self {
        Self(wit::Subscription {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: None,
            label_selector: None,
            field_selector: None,
            event_types: Vec::new(),
            delivery: wit::Delivery::EveryEvent,
            old_object: false,
            resync_seconds: None,
            fields: None,
        })
    }

    /// Only one namespace.
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.0.namespace = Some(namespace.into());
        self
    }

    /// Only objects matching a label selector: `app=web,!legacy`.
    pub fn label_selector(mut self, selector: &str) -> Self {
        self.0.label_selector = Some(selector.into());
        self
    }

    /// Only objects matching a field selector: `metadata.name=config`.
    pub fn field_selector(mut self, selector: &str) -> Self {
        self.0.field_selector = Some(selector.into());
        self
    }

    /// Only these event types (default: all).
    pub fn events(mut self, types: impl IntoIterator<Item = EventType>) -> Self {
        self.0.event_types = types.into_iter().map(Into::into).collect();
        self
    }

    /// Coalesce pending events per object: see only the newest state.
    pub fn latest_state(mut self) -> Self {
        self.0.delivery = wit::Delivery::LatestState;
        self
    }

    /// Deliver the previous state with `Modified` events.
    pub fn with_old_object(mut self) -> Self {
        self.0.old_object = true;
        self
    }

    /// Replay every cached object as `Resync` this often.
    pub fn resync_seconds(mut self, seconds: u32) -> Self {
        self.0.resync_seconds = Some(seconds);
        self
    }

    /// Read only these fields of the objects (paths like an index's:
    /// `metadata.labels`, `spec.nodeName`, `spec.containers[*].image`), so
    /// that the host may keep only those in its cache. Events and cache
    /// reads then carry only what is kept (the annotation
    /// `informant.dev/projection` says which); declare every field the
    /// plugin reads. A modification that changed none of them (nor the
    /// labels or ownerReferences) is not handed over. Default: whole
    /// objects.
    pub fn fields<S: Into<String>>(mut self, paths: impl IntoIterator<Item = S>) -> Self {
        self.0.fields = Some(paths.into_iter().map(Into::into).collect());
        self
    }
}

/// An index over one kind, by one or more field paths.
#[derive(Debug, Clone)]
#[must_use]
pub struct Index(wit::Index);

impl Index {
    /// An index named `name` over a kind.
    pub fn new(name: &str, api_version: &str, kind: &str) -> Self {
        Self(wit::Index {
            name: name.into(),
            api_version: api_version.into(),
            kind: kind.into(),
            field_paths: Vec::new(),
        })
    }

    /// Add a field path: `spec.nodeName`, `metadata.ownerReferences[*].uid`.
    pub fn path(mut self, path: &str) -> Self {
        self.0.field_paths.push(path.into());
        self
    }
}

/// What the plugin is and needs.
#[derive(Debug, Clone)]
#[must_use]
pub struct Manifest(wit::Manifest);

impl Manifest {
    /// A manifest with a name (a DNS label) and a version.
    pub fn new(name: &str, version: &str) -> Self {
        Self(wit::Manifest {
            name: name.into(),
            version: version.into(),
            subscriptions: Vec::new(),
            indexes: Vec::new(),
            permissions: wit::Permissions {
                reads: Vec::new(),
                writes: Vec::new(),
            },
            resources: wit::ResourceRequest {
                memory_mib: None,
                deadline_ms: None,
                instances: None,
            },
            state: None,
            admission: None,
        })
    }

    /// Add a subscription; events carry its position (0, 1, ...).
    pub fn subscribe(mut self, subscription: Subscription) -> Self {
        self.0.subscriptions.push(subscription.0);
        self
    }

    /// Add an index.
    pub fn index(mut self, index: Index) -> Self {
        self.0.indexes.push(index.0);
        self
    }

    /// Read a kind from the cache without subscribing to its events.
    pub fn reads(mut self, api_version: &str, kind: &str) -> Self {
        self.0.permissions.reads.push(wit::KindRef {
            api_version: api_version.into(),
            kind: kind.into(),
        });
        self
    }

    /// Write a kind with these verbs.
    pub fn writes(
        mut self,
        api_version: &str,
        kind: &str,
        verbs: impl IntoIterator<Item = Verb>,
    ) -> Self {
        self.0.permissions.writes.push(wit::WritePermission {
            api_version: api_version.into(),
            kind: kind.into(),
            verbs: verbs.into_iter().map(Into::into).collect(),
        });
        self
    }

    /// Keep the plugin's [`state`](crate::state) store in this tier
    /// (`Memory` unless asked).
    pub fn state(mut self, tier: StateTier) -> Self {
        self.state_request().tier = match tier {
            StateTier::Memory => wit::StateTier::Memory,
            StateTier::Durable => wit::StateTier::Durable,
        };
        self
    }

    /// Ask for store quotas other than the host's defaults, within the
    /// operator's maximum: keys, bytes per value, bytes in all.
    pub fn state_quota(
        mut self,
        max_keys: Option<u32>,
        max_value_bytes: Option<u32>,
        max_total_bytes: Option<u64>,
    ) -> Self {
        let request = self.state_request();
        request.max_keys = max_keys;
        request.max_value_bytes = max_value_bytes;
        request.max_total_bytes = max_total_bytes;
        self
    }

    fn state_request(&mut self) -> &mut wit::StateRequest {
        self.0.state.get_or_insert(wit::StateRequest {
            tier: wit::StateTier::Memory,
            max_keys: None,
            max_value_bytes: None,
            max_total_bytes: None,
        })
    }

    /// Emit Kubernetes Events (grants `create` on `events.k8s.io/v1` Event).
    pub fn emits_events(self) -> Self {
        self.writes("events.k8s.io/v1", "Event", [Verb::Create])
    }

    /// Ask for a memory cap other than the host's default.
    pub fn memory_mib(mut self, mib: u32) -> Self {
        self.0.resources.memory_mib = Some(mib);
        self
    }

    /// Ask for a deadline per call other than the host's default. It is
    /// wall-clock time: on a busy host a call gets less CPU within it.
    pub fn deadline_ms(mut self, ms: u32) -> Self {
        self.0.resources.deadline_ms = Some(ms);
        self
    }

    /// How many instances of the plugin may run calls at once. By default
    /// the host runs one per core, in parallel, each with its own memory:
    /// what the plugin keeps in `self` or in statics is then per instance.
    /// With `1`, every call runs on one instance, one at a time, in the
    /// order events are delivered, so state kept in `self` is consistent
    /// (until the instance is replaced after a trap or a reload).
    pub fn instances(mut self, n: u32) -> Self {
        self.0.resources.instances = Some(n);
        self
    }

    /// Serve an admission webhook (export with `export_plugin!(P,
    /// admission)`); a plugin with a webhook needs no subscription.
    pub fn webhook(mut self, webhook: crate::admission::Webhook) -> Self {
        self.0.admission = Some(webhook.into_wit());
        self
    }

    #[doc(hidden)]
    pub fn into_wit(self) -> wit::Manifest {
        self.0
    }
}
