//! A plugin's manifest, validated: what it subscribes to, indexes, reads and writes.

use std::{collections::HashSet, time::Duration};

use serde::Serialize;
use serde_json::Value;

use super::{
    bindings::types as wit,
    webhook::{self, Webhook},
};
use crate::{
    cache::FieldPath,
    state::Tier,
    vocabulary::{EventType, KindKey, Verb},
};
use informant_k8s::selector::{self, FieldSelector, LabelSelector};

/// A manifest field that is not valid.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("manifest field {field}: {reason}")]
pub struct ManifestError {
    /// Where in the manifest, e.g. `subscriptions[0].labelSelector`.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ManifestError {
    ManifestError {
        field: field.into(),
        reason: reason.into(),
    }
}

impl From<wit::EventType> for EventType {
    fn from(t: wit::EventType) -> Self {
        match t {
            wit::EventType::Added => Self::Added,
            wit::EventType::Modified => Self::Modified,
            wit::EventType::Deleted => Self::Deleted,
            wit::EventType::Synced => Self::Synced,
            wit::EventType::Resync => Self::Resync,
        }
    }
}

impl From<EventType> for wit::EventType {
    fn from(t: EventType) -> Self {
        match t {
            EventType::Added => Self::Added,
            EventType::Modified => Self::Modified,
            EventType::Deleted => Self::Deleted,
            EventType::Synced => Self::Synced,
            EventType::Resync => Self::Resync,
        }
    }
}

/// How events queue while a plugin is busy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Delivery {
    /// Every event, in order per object.
    EveryEvent,
    /// Only the newest state per object.
    LatestState,
}

/// One validated subscription.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    /// `v1`, `apps/v1`.
    pub api_version: String,
    /// The kind, plural or short name, as the plugin wrote it.
    pub kind: String,
    /// Only this namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The label selector, canonical form.
    #[serde(
        serialize_with = "display",
        skip_serializing_if = "LabelSelector::is_empty"
    )]
    pub label_selector: LabelSelector,
    /// The field selector, canonical form.
    #[serde(serialize_with = "display", skip_serializing_if = "is_empty_fields")]
    pub field_selector: FieldSelector,
    /// The event types delivered.
    pub event_types: Vec<EventType>,
    /// How events queue.
    pub delivery: Delivery,
    /// Whether `modified` events carry the old object.
    pub old_object: bool,
    /// Replay period, if any.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "secs")]
    pub resync: Option<Duration>,
    /// The fields the plugin reads (parsed paths, as written); empty: the
    /// whole object.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
}

fn display<T: std::fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

fn is_empty_fields(f: &FieldSelector) -> bool {
    f.requirements().is_empty()
}

fn secs<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.map_or(0, |d| d.as_secs()))
}

impl Subscription {
    /// The kind this subscription names, as written (before discovery resolves
    /// plurals and short names).
    pub fn kind_key(&self) -> KindKey {
        KindKey::new(&self.api_version, &self.kind)
    }

    /// Whether this subscription wants events of `event_type` about `object`.
    /// The object's kind must already be known to be the subscribed one.
    pub fn matches(&self, event_type: EventType, object: &Value) -> bool {
        if !self.event_types.contains(&event_type) {
            return false;
        }
        if event_type == EventType::Synced {
            return true;
        }
        let namespace = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str);
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        if self
            .namespace
            .as_deref()
            .is_some_and(|ns| Some(ns) != namespace)
        {
            return false;
        }
        self.field_selector.matches(namespace, name) && self.label_selector.matches_object(object)
    }

    /// Whether an object's apiVersion and kind are what this subscription names.
    /// Plurals and short names only match after discovery has resolved them.
    pub fn matches_kind(&self, api_version: &str, kind: &str) -> bool {
        self.api_version == api_version && self.kind == kind
    }
}

/// One declared index.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexDecl {
    /// The name the plugin uses.
    pub name: String,
    /// The kind indexed.
    pub kind: KindKey,
    /// The paths, parsed.
    #[serde(serialize_with = "display_list")]
    pub field_paths: Vec<FieldPath>,
}

fn display_list<S: serde::Serializer>(v: &[FieldPath], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(ToString::to_string))
}

impl IndexDecl {
    /// The name the cache keeps this index under: derived from the
    /// definition, so identical declarations from several plugins (or
    /// several versions of one) share one index.
    pub fn cache_name(&self) -> String {
        let paths: Vec<String> = self.field_paths.iter().map(ToString::to_string).collect();
        format!("{}|{}", self.kind, paths.join("|"))
    }
}

/// A grant to write one kind.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteGrant {
    /// The kind.
    #[serde(flatten)]
    pub kind: KindKey,
    /// The verbs.
    pub verbs: Vec<Verb>,
}

/// Limits the plugin asks for.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRequest {
    /// Memory cap in MiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u32>,
    /// Deadline per call in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u32>,
    /// How many instances may run calls at once; 1 runs every call on one
    /// instance, one at a time. None: the host's default (one per core).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instances: Option<u32>,
}

/// What a plugin asks of its store (`manifest.state`).
pub use crate::state::Request as StateRequest;

/// A validated manifest.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// The plugin's name, a DNS label.
    pub name: String,
    /// The plugin's version.
    pub version: String,
    /// What it subscribes to.
    pub subscriptions: Vec<Subscription>,
    /// Its indexes.
    pub indexes: Vec<IndexDecl>,
    /// Kinds it reads without subscribing.
    pub reads: Vec<KindKey>,
    /// Kinds and verbs it writes.
    pub writes: Vec<WriteGrant>,
    /// Limits it asks for.
    pub resources: ResourceRequest,
    /// What it asks of its store.
    pub state: StateRequest,
    /// The admission webhook it serves, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admission: Option<Webhook>,
}

const MAX_SUBSCRIPTIONS: usize = 64;
const MAX_INDEXES: usize = 64;
const MAX_FIELDS: usize = 64;
const MAX_GRANTS: usize = 256;
const MAX_TEXT: usize = 1024;

fn check_text(field: &str, value: &str, what: &str) -> Result<(), ManifestError> {
    if value.trim().is_empty() {
        return Err(invalid(field, format!("{what} must not be empty")));
    }
    if value.len() > MAX_TEXT {
        return Err(invalid(
            field,
            format!("{what} is longer than {MAX_TEXT} bytes"),
        ));
    }
    Ok(())
}

fn check_api_version(field: &str, value: &str) -> Result<(), ManifestError> {
    check_text(field, value, "apiVersion")?;
    let (group, version) = value.rsplit_once('/').unwrap_or(("", value));
    let group_ok = group.is_empty() || selector::is_dns1123_subdomain(group);
    if !group_ok || !selector::is_dns1123_label(version) {
        return Err(invalid(
            field,
            format!("{value:?} is not an apiVersion like \"v1\" or \"apps/v1\""),
        ));
    }
    Ok(())
}

fn kind_key(field: &str, api_version: &str, kind: &str) -> Result<KindKey, ManifestError> {
    check_api_version(&format!("{field}.apiVersion"), api_version)?;
    check_text(&format!("{field}.kind"), kind, "kind")?;
    // The durable state tier's objects are the host's: a plugin that could
    // watch or write them could read or break every plugin's store.
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    if group == "informant.dev"
        && ["pluginstate", "pluginstates", "pst"].contains(&kind.to_ascii_lowercase().as_str())
    {
        return Err(invalid(
            format!("{field}.kind"),
            "PluginState objects are the host's own (the durable state tier); a plugin keeps \
             its state through the state interface",
        ));
    }
    Ok(KindKey::new(api_version, kind))
}

impl TryFrom<wit::Manifest> for Manifest {
    type Error = ManifestError;

    fn try_from(m: wit::Manifest) -> Result<Self, ManifestError> {
        if !selector::is_dns1123_label(&m.name) {
            return Err(invalid(
                "name",
                format!(
                    "{:?} must be a DNS label: 1-63 lowercase letters, digits or '-'",
                    m.name
                ),
            ));
        }
        check_text("version", &m.version, "version")?;
        if m.subscriptions.is_empty() && m.admission.is_none() {
            return Err(invalid(
                "subscriptions",
                "a plugin needs at least one subscription, or an admission webhook",
            ));
        }
        if m.subscriptions.len() > MAX_SUBSCRIPTIONS {
            return Err(invalid(
                "subscriptions",
                format!("more than {MAX_SUBSCRIPTIONS}"),
            ));
        }
        let subscriptions = m
            .subscriptions
            .into_iter()
            .enumerate()
            .map(|(i, s)| subscription(&format!("subscriptions[{i}]"), s))
            .collect::<Result<Vec<_>, _>>()?;

        if m.indexes.len() > MAX_INDEXES {
            return Err(invalid("indexes", format!("more than {MAX_INDEXES}")));
        }
        let mut names = HashSet::new();
        let mut indexes = Vec::new();
        for (i, ix) in m.indexes.into_iter().enumerate() {
            let field = format!("indexes[{i}]");
            check_text(&format!("{field}.name"), &ix.name, "name")?;
            if !names.insert(ix.name.clone()) {
                return Err(invalid(
                    format!("{field}.name"),
                    format!("{:?} is declared twice", ix.name),
                ));
            }
            let kind = kind_key(&field, &ix.api_version, &ix.kind)?;
            if ix.field_paths.is_empty() {
                return Err(invalid(
                    format!("{field}.fieldPaths"),
                    "needs at least one path",
                ));
            }
            let field_paths = ix
                .field_paths
                .iter()
                .map(|p| {
                    FieldPath::parse(p)
                        .map_err(|e| invalid(format!("{field}.fieldPaths"), e.to_string()))
                })
                .collect::<Result<_, _>>()?;
            indexes.push(IndexDecl {
                name: ix.name,
                kind,
                field_paths,
            });
        }

        let p = m.permissions;
        if p.reads.len() + p.writes.len() > MAX_GRANTS {
            return Err(invalid(
                "permissions",
                format!("more than {MAX_GRANTS} grants"),
            ));
        }
        let reads = p
            .reads
            .iter()
            .enumerate()
            .map(|(i, r)| kind_key(&format!("permissions.reads[{i}]"), &r.api_version, &r.kind))
            .collect::<Result<_, _>>()?;
        let mut writes = Vec::new();
        for (i, w) in p.writes.into_iter().enumerate() {
            let field = format!("permissions.writes[{i}]");
            let kind = kind_key(&field, &w.api_version, &w.kind)?;
            if w.verbs.is_empty() {
                return Err(invalid(format!("{field}.verbs"), "needs at least one verb"));
            }
            let mut verbs: Vec<Verb> = w.verbs.into_iter().map(Verb::from).collect();
            verbs.sort_unstable();
            verbs.dedup();
            writes.push(WriteGrant { kind, verbs });
        }
        let state = match m.state {
            None => StateRequest::default(),
            Some(s) => state_request(s)?,
        };
        let admission = m.admission.map(webhook::webhook).transpose()?;
        Ok(Self {
            name: m.name,
            version: m.version,
            subscriptions,
            indexes,
            reads,
            writes,
            state,
            admission,
            resources: ResourceRequest {
                memory_mib: m.resources.memory_mib,
                deadline_ms: m.resources.deadline_ms,
                instances: match m.resources.instances {
                    Some(0) => {
                        return Err(invalid(
                            "resources.instances",
                            "must be at least 1 (or none, for the host's default)",
                        ));
                    }
                    n => n,
                },
            },
        })
    }
}

fn state_request(s: wit::StateRequest) -> Result<StateRequest, ManifestError> {
    let positive = |field: &str, v: Option<u64>| match v {
        Some(0) => Err(invalid(
            format!("state.{field}"),
            "must be at least 1 (or none, for the host's default)",
        )),
        _ => Ok(()),
    };
    positive("maxKeys", s.max_keys.map(u64::from))?;
    positive("maxValueBytes", s.max_value_bytes.map(u64::from))?;
    positive("maxTotalBytes", s.max_total_bytes)?;
    Ok(StateRequest {
        tier: match s.tier {
            wit::StateTier::Memory => Tier::Memory,
            wit::StateTier::Durable => Tier::Durable,
        },
        max_keys: s.max_keys,
        max_value_bytes: s.max_value_bytes,
        max_total_bytes: s.max_total_bytes,
    })
}

fn subscription(field: &str, s: wit::Subscription) -> Result<Subscription, ManifestError> {
    kind_key(field, &s.api_version, &s.kind)?;
    if let Some(ns) = &s.namespace
        && !selector::is_dns1123_label(ns)
    {
        return Err(invalid(
            format!("{field}.namespace"),
            format!("{ns:?} is not a valid namespace name"),
        ));
    }
    let label_selector = LabelSelector::parse(s.label_selector.as_deref().unwrap_or(""))
        .map_err(|e| invalid(format!("{field}.labelSelector"), e.to_string()))?;
    let field_selector = FieldSelector::parse(s.field_selector.as_deref().unwrap_or(""))
        .map_err(|e| invalid(format!("{field}.fieldSelector"), e.to_string()))?;
    let fields = s.fields.unwrap_or_default();
    if fields.len() > MAX_FIELDS {
        return Err(invalid(
            format!("{field}.fields"),
            format!("{} fields; at most {MAX_FIELDS}", fields.len()),
        ));
    }
    for (j, path) in fields.iter().enumerate() {
        FieldPath::parse(path)
            .map_err(|e| invalid(format!("{field}.fields[{j}]"), e.to_string()))?;
    }
    let mut event_types: Vec<EventType> = s.event_types.into_iter().map(EventType::from).collect();
    if event_types.is_empty() {
        event_types = EventType::ALL.to_vec();
    }
    event_types.dedup();
    Ok(Subscription {
        api_version: s.api_version,
        kind: s.kind,
        namespace: s.namespace,
        label_selector,
        field_selector,
        event_types,
        delivery: match s.delivery {
            wit::Delivery::EveryEvent => Delivery::EveryEvent,
            wit::Delivery::LatestState => Delivery::LatestState,
        },
        old_object: s.old_object,
        resync: s
            .resync_seconds
            .filter(|s| *s > 0)
            .map(|s| Duration::from_secs(s.into())),
        fields,
    })
}

impl From<wit::Verb> for Verb {
    fn from(v: wit::Verb) -> Self {
        match v {
            wit::Verb::Apply => Self::Apply,
            wit::Verb::Create => Self::Create,
            wit::Verb::Patch => Self::Patch,
            wit::Verb::PatchStatus => Self::PatchStatus,
            wit::Verb::Delete => Self::Delete,
        }
    }
}

impl Manifest {
    /// Whether the plugin may read objects of `kind` from the cache: kinds
    /// it subscribes to or declares as reads.
    pub fn may_read(&self, kind: &KindKey) -> bool {
        // Compared field by field: building each subscription's key would
        // cost two allocations per cache read.
        self.reads.contains(kind)
            || self
                .subscriptions
                .iter()
                .any(|s| *s.api_version == *kind.api_version && *s.kind == *kind.kind)
    }

    /// Whether the plugin may apply `verb` to `kind`.
    pub fn may_write(&self, kind: &KindKey, verb: Verb) -> bool {
        self.writes
            .iter()
            .any(|w| w.kind == *kind && w.verbs.contains(&verb))
    }

    /// The subscriptions that want `event_type` for `object`, by position.
    pub fn matching_subscriptions<'a>(
        &'a self,
        event_type: EventType,
        object: &'a Value,
    ) -> impl Iterator<Item = usize> + 'a {
        let api_version = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
        self.subscriptions
            .iter()
            .enumerate()
            .filter(move |(_, s)| {
                s.matches_kind(api_version, kind) && s.matches(event_type, object)
            })
            .map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn wit_manifest() -> wit::Manifest {
        wit::Manifest {
            name: "label-enforcer".into(),
            version: "1.0.0".into(),
            subscriptions: vec![wit::Subscription {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                namespace: None,
                label_selector: Some("app=web".into()),
                field_selector: None,
                event_types: vec![],
                delivery: wit::Delivery::LatestState,
                old_object: false,
                resync_seconds: None,
                fields: None,
            }],
            indexes: vec![],
            permissions: wit::Permissions {
                reads: vec![],
                writes: vec![wit::WritePermission {
                    api_version: "v1".into(),
                    kind: "ConfigMap".into(),
                    verbs: vec![wit::Verb::Patch],
                }],
            },
            resources: wit::ResourceRequest {
                memory_mib: None,
                deadline_ms: None,
                instances: None,
            },
            state: None,
            admission: None,
        }
    }

    #[test]
    fn a_valid_manifest_grants_what_it_declares() {
        let m = Manifest::try_from(wit_manifest()).unwrap();
        let cm = KindKey::new("v1", "ConfigMap");
        assert!(m.may_read(&cm));
        assert!(!m.may_read(&KindKey::new("v1", "Secret")));
        assert!(m.may_write(&cm, Verb::Patch));
        assert!(!m.may_write(&cm, Verb::Delete));
        assert_eq!(m.subscriptions[0].event_types, EventType::ALL);
    }

    #[test]
    fn subscriptions_match_kind_namespace_and_labels() {
        let m = Manifest::try_from(wit_manifest()).unwrap();
        let web = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "labels": {"app": "web"}}});
        let db = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "labels": {"app": "db"}}});
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a", "labels": {"app": "web"}}});
        assert_eq!(
            m.matching_subscriptions(EventType::Added, &web)
                .collect::<Vec<_>>(),
            [0]
        );
        assert_eq!(m.matching_subscriptions(EventType::Added, &db).count(), 0);
        assert_eq!(
            m.matching_subscriptions(EventType::Added, &secret).count(),
            0
        );
    }

    #[test]
    fn invalid_fields_are_named() {
        type Mutation = Box<dyn Fn(&mut wit::Manifest)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (Box::new(|m| m.name = "Bad_Name".into()), "name"),
            (Box::new(|m| m.subscriptions.clear()), "subscriptions"),
            (
                Box::new(|m| m.subscriptions[0].label_selector = Some("a in b".into())),
                "subscriptions[0].labelSelector",
            ),
            (
                Box::new(|m| m.subscriptions[0].api_version = "not a version".into()),
                "subscriptions[0].apiVersion",
            ),
            (
                Box::new(|m| m.subscriptions[0].field_selector = Some("spec.x=1".into())),
                "subscriptions[0].fieldSelector",
            ),
            (
                Box::new(|m| m.permissions.writes[0].verbs.clear()),
                "permissions.writes[0].verbs",
            ),
            (
                Box::new(|m| {
                    m.permissions.reads.push(wit::KindRef {
                        api_version: "informant.dev/v1alpha1".into(),
                        kind: "PluginState".into(),
                    })
                }),
                "permissions.reads[0].kind",
            ),
            (
                Box::new(|m| {
                    m.indexes.push(wit::Index {
                        name: "i".into(),
                        api_version: "v1".into(),
                        kind: "Pod".into(),
                        field_paths: vec!["spec..x".into()],
                    })
                }),
                "indexes[0].fieldPaths",
            ),
        ];
        for (mutate, field) in cases {
            let mut m = wit_manifest();
            mutate(&mut m);
            let err = Manifest::try_from(m).unwrap_err();
            assert_eq!(err.field, field, "{err}");
        }
    }

    #[test]
    fn a_plugin_with_a_webhook_needs_no_subscription() {
        let mut m = wit_manifest();
        m.subscriptions.clear();
        assert_eq!(
            Manifest::try_from(m.clone()).unwrap_err().field,
            "subscriptions"
        );
        m.admission = Some(super::webhook::tests::wit_webhook());
        let m = Manifest::try_from(m).unwrap();
        assert!(m.admission.is_some());
    }

    #[test]
    fn a_state_request_is_read_and_zero_quotas_refused() {
        let mut m = wit_manifest();
        assert_eq!(
            Manifest::try_from(m.clone()).unwrap().state.tier,
            Tier::Memory
        );
        m.state = Some(wit::StateRequest {
            tier: wit::StateTier::Durable,
            max_keys: Some(100),
            max_value_bytes: None,
            max_total_bytes: None,
        });
        let state = Manifest::try_from(m.clone()).unwrap().state;
        assert_eq!(state.tier, Tier::Durable);
        assert_eq!(state.max_keys, Some(100));
        if let Some(s) = m.state.as_mut() {
            s.max_total_bytes = Some(0);
        }
        assert_eq!(
            Manifest::try_from(m).unwrap_err().field,
            "state.maxTotalBytes"
        );
    }
}
