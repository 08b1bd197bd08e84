//! The embedded server's object store: unstructured objects per resource, one
//! resourceVersion counter shared by all of them, and a bounded history of
//! changes (like etcd before compaction) for watches and consistent pages.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::Arc,
};

use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::{
    patch::Ownership,
    registry::{self, Registry, ResourceType},
    status::StatusError,
};
use informant_k8s::selector::{FieldSelector, LabelSelector};

/// What happened in one change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    /// Created.
    Added,
    /// Updated.
    Modified,
    /// Removed.
    Deleted,
}

/// One change, as watches see it.
#[derive(Debug)]
pub struct Change {
    /// The resourceVersion the change produced.
    pub rv: u64,
    /// The resource's group.
    pub group: String,
    /// The resource's plural.
    pub plural: String,
    /// The namespace, empty for cluster-scoped objects.
    pub namespace: String,
    /// What happened.
    pub change: ChangeType,
    /// The object after the change (for a delete: its last state, at the delete's RV).
    pub object: Arc<Value>,
    /// The object before the change.
    pub old: Option<Arc<Value>>,
}

impl Change {
    /// A change to an object of `t`.
    fn of(
        t: &ResourceType,
        rv: u64,
        namespace: &str,
        change: ChangeType,
        object: Arc<Value>,
        old: Option<Arc<Value>>,
    ) -> Self {
        Self {
            rv,
            group: t.group.clone(),
            plural: t.plural.clone(),
            namespace: namespace.into(),
            change,
            object,
            old,
        }
    }
}

type Key = (String, String);

/// Changes after a resourceVersion, and a receiver for the ones to come.
pub type Resume = (Vec<Arc<Change>>, broadcast::Receiver<Arc<Change>>);
type Collection = BTreeMap<Key, Arc<Value>>;

/// The store's objects at one resourceVersion ([`Storage::freeze`]).
#[derive(Debug)]
pub struct Frozen {
    /// The resourceVersion they are at.
    pub rv: u64,
    objects: HashMap<(String, String), Collection>,
}

impl Frozen {
    /// The objects of `t` (in `namespace`) at [`Frozen::rv`].
    pub fn items(&self, t: &ResourceType, namespace: Option<&str>) -> Vec<Arc<Value>> {
        items(&self.objects, t, namespace)
    }
}

/// The objects of `t` (in `namespace`) among `objects`.
fn items(
    objects: &HashMap<(String, String), Collection>,
    t: &ResourceType,
    namespace: Option<&str>,
) -> Vec<Arc<Value>> {
    objects
        .get(&(t.group.clone(), t.plural.clone()))
        .map(|c| {
            c.iter()
                .filter(|((ns, _), _)| namespace.is_none_or(|n| n == ns))
                .map(|(_, v)| v.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// How the store behaves.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// Changes kept for watch resumes and pages; older ones are compacted.
    pub history: usize,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self { history: 10_000 }
    }
}

struct State {
    rv: u64,
    registry: Registry,
    objects: HashMap<(String, String), Collection>,
    history: VecDeque<Arc<Change>>,
    /// Changes after this RV are all in `history`.
    compacted_rv: u64,
}

impl State {
    /// The stored object at `key`, or the 404 a client expects.
    fn current(
        &self,
        t: &ResourceType,
        collection: &(String, String),
        key: &Key,
    ) -> Result<Arc<Value>, StatusError> {
        self.objects
            .get(collection)
            .and_then(|c| c.get(key))
            .cloned()
            .ok_or_else(|| StatusError::not_found(t, &key.1))
    }
}

/// Options of a write.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// The field manager.
    pub manager: String,
    /// Validate and compute, but store nothing.
    pub dry_run: bool,
}

/// A list: objects at an RV, and the continue token of the next page.
#[derive(Debug)]
pub struct ListResult {
    /// The items.
    pub items: Vec<Arc<Value>>,
    /// The list's resourceVersion.
    pub rv: u64,
    /// The token for the next page, if any.
    pub continue_token: Option<String>,
    /// Items after this page, if paged.
    pub remaining: Option<usize>,
}

/// The store.
pub struct Storage {
    state: Mutex<State>,
    changes: broadcast::Sender<Arc<Change>>,
    config: StorageConfig,
}

/// The annotation kube-controller-manager puts on `kube-root-ca.crt`.
const ROOT_CA_DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

/// What the embedded server has instead of a CA bundle: it serves plain HTTP.
const EMBEDDED_CA_NOTE: &str =
    "# informant dev: the embedded API server serves plain HTTP and has no CA\n";

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn meta_str<'a>(v: &'a Value, field: &str) -> Option<&'a str> {
    v.get("metadata")?.get(field)?.as_str()
}

/// Whether an object passes a list or watch's selectors.
pub fn selected(object: &Value, labels: &LabelSelector, fields: &FieldSelector) -> bool {
    labels.matches_object(object)
        && fields.matches(
            meta_str(object, "namespace"),
            meta_str(object, "name").unwrap_or(""),
        )
}

impl Storage {
    /// An empty store with the built-in types and the `default`,
    /// `kube-system` and `kube-public` namespaces.
    pub fn new(config: StorageConfig) -> Self {
        let (changes, _) = broadcast::channel(4096);
        let state = State {
            rv: 1,
            registry: Registry::builtin(),
            objects: HashMap::new(),
            history: VecDeque::new(),
            compacted_rv: 1,
        };
        let store = Self {
            state: Mutex::new(state),
            changes,
            config,
        };
        // Namespaces are a built-in type, so this always finds them.
        let Some(namespaces) = store.registry().get("", "v1", "namespaces") else {
            return store;
        };
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            // Creating the built-in namespaces in an empty store cannot fail.
            let _ = store.create(
                &namespaces,
                None,
                body,
                &WriteOptions {
                    manager: "informant".into(),
                    dry_run: false,
                },
            );
        }
        store
    }

    /// A snapshot of the served types.
    pub fn registry(&self) -> Registry {
        self.state.lock().registry.clone()
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.state.lock().rv
    }

    /// Changes after this RV are still in the history.
    pub fn compacted_rv(&self) -> u64 {
        self.state.lock().compacted_rv
    }

    /// Subscribe to every change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.changes.subscribe()
    }

    /// Forget the history: the next watch from an older RV gets 410.
    pub fn compact(&self) {
        let mut s = self.state.lock();
        s.history.clear();
        s.compacted_rv = s.rv;
    }

    /// Changes to `t` after `rv`, and a receiver for later ones, taken
    /// together so that nothing falls between them. Errors if `rv` is
    /// older than the history.
    pub fn changes_since(&self, t: &ResourceType, rv: u64) -> Result<Resume, u64> {
        let s = self.state.lock();
        if rv < s.compacted_rv {
            return Err(s.compacted_rv);
        }
        let backlog = s
            .history
            .iter()
            .filter(|c| c.rv > rv && c.group == t.group && c.plural == t.plural)
            .cloned()
            .collect();
        Ok((backlog, self.changes.subscribe()))
    }

    /// The current objects of `t` (sorted by namespace and name) with the RV,
    /// and a receiver for changes after it.
    pub fn snapshot(
        &self,
        t: &ResourceType,
        namespace: Option<&str>,
    ) -> (Vec<Arc<Value>>, u64, broadcast::Receiver<Arc<Change>>) {
        let s = self.state.lock();
        let items = items(&s.objects, t, namespace);
        (items, s.rv, self.changes.subscribe())
    }

    /// The objects as they are now, kept as they are while the store moves
    /// on: what a watch cache that stopped hearing from etcd would serve.
    pub fn freeze(&self) -> Frozen {
        let s = self.state.lock();
        Frozen {
            rv: s.rv,
            objects: s.objects.clone(),
        }
    }

    fn record(&self, s: &mut State, change: Change) {
        let change = Arc::new(change);
        s.history.push_back(change.clone());
        while s.history.len() > self.config.history {
            if let Some(old) = s.history.pop_front() {
                s.compacted_rv = old.rv;
            }
        }
        // No receiver is fine: nobody watches.
        let _ = self.changes.send(change);
    }

    fn check_namespace(
        s: &State,
        t: &ResourceType,
        namespace: Option<&str>,
    ) -> Result<(), StatusError> {
        if let (true, Some(ns)) = (t.namespaced, namespace) {
            let exists = s
                .objects
                .get(&(String::new(), "namespaces".into()))
                .is_some_and(|c| c.contains_key(&(String::new(), ns.to_string())));
            if !exists {
                return Err(StatusError::namespace_not_found(ns));
            }
        }
        Ok(())
    }

    /// Get one object.
    ///
    /// # Errors
    /// 404.
    pub fn get(
        &self,
        t: &ResourceType,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Arc<Value>, StatusError> {
        let s = self.state.lock();
        s.objects
            .get(&(t.group.clone(), t.plural.clone()))
            .and_then(|c| c.get(&(namespace.unwrap_or("").to_string(), name.to_string())))
            .cloned()
            .ok_or_else(|| StatusError::not_found(t, name))
    }

    /// List objects, optionally paged: `limit` items starting after the
    /// continue token's key, all at the token's RV.
    ///
    /// # Errors
    /// 400 for a bad token, 410 for a token older than the history.
    pub fn list(
        &self,
        t: &ResourceType,
        namespace: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
        limit: Option<usize>,
        continue_token: Option<&str>,
    ) -> Result<ListResult, StatusError> {
        let s = self.state.lock();
        let (rv, start) = match continue_token {
            Some(token) => {
                let (rv, start) = decode_continue(token)?;
                if rv < s.compacted_rv {
                    let mut e = StatusError::expired(
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                    );
                    e.metadata = Some(json!({"continue": encode_continue(-1, &start)}));
                    return Err(e);
                }
                (rv, Some(start))
            }
            None => (s.rv, None),
        };
        let empty = Collection::new();
        let current = s
            .objects
            .get(&(t.group.clone(), t.plural.clone()))
            .unwrap_or(&empty);
        // A continued list is pinned to its first page's RV: undo later changes.
        let pinned;
        let collection = if rv < s.rv {
            let mut c = current.clone();
            for change in s
                .history
                .iter()
                .rev()
                .filter(|c| c.rv > rv && c.group == t.group && c.plural == t.plural)
            {
                let key = (
                    change.namespace.clone(),
                    meta_str(&change.object, "name").unwrap_or("").to_string(),
                );
                match (&change.change, &change.old) {
                    (ChangeType::Added, _) => {
                        c.remove(&key);
                    }
                    (_, Some(old)) => {
                        c.insert(key, old.clone());
                    }
                    (_, None) => {}
                }
            }
            pinned = c;
            &pinned
        } else {
            current
        };
        let key_of = |(ns, name): &Key| format!("{ns}/{name}");
        let mut matching = collection
            .iter()
            .filter(|((ns, _), _)| namespace.is_none_or(|n| n == ns))
            .filter(|(k, _)| {
                start
                    .as_ref()
                    .is_none_or(|s| key_of(k).as_str() > s.as_str())
            })
            .filter(|(_, v)| selected(v, labels, fields))
            .map(|(k, v)| (key_of(k), v.clone()));
        let limit = limit.filter(|l| *l > 0);
        let mut items = Vec::new();
        let mut last = None;
        for (key, v) in matching.by_ref() {
            if limit.is_some_and(|l| items.len() >= l) {
                // One more exists: the page continues after the last returned key.
                let rest = 1 + matching.count();
                let token = last
                    .map(|k: String| encode_continue(i64::try_from(rv).unwrap_or(i64::MAX), &k));
                return Ok(ListResult {
                    items,
                    rv,
                    continue_token: token,
                    remaining: Some(rest),
                });
            }
            last = Some(key);
            items.push(v);
        }
        Ok(ListResult {
            items,
            rv,
            continue_token: None,
            remaining: None,
        })
    }

    /// Create an object.
    ///
    /// # Errors
    /// 404 (namespace), 409 (exists), 422 (invalid), 400 (mismatch).
    pub fn create(
        &self,
        t: &ResourceType,
        namespace: Option<&str>,
        body: Value,
        opts: &WriteOptions,
    ) -> Result<Arc<Value>, StatusError> {
        self.create_as(t, namespace, body, opts, false)
    }

    /// Create an object that admission has seen as a dry run of
    /// [`Self::create`] returned it: it keeps the uid and creation time the
    /// validating webhooks were shown.
    ///
    /// # Errors
    /// As [`Self::create`].
    pub fn create_admitted(
        &self,
        t: &ResourceType,
        namespace: Option<&str>,
        body: Value,
        opts: &WriteOptions,
    ) -> Result<Arc<Value>, StatusError> {
        self.create_as(t, namespace, body, opts, true)
    }

    fn create_as(
        &self,
        t: &ResourceType,
        namespace: Option<&str>,
        mut body: Value,
        opts: &WriteOptions,
        keep_identity: bool,
    ) -> Result<Arc<Value>, StatusError> {
        prepare_body(t, namespace, &mut body)?;
        let mut s = self.state.lock();
        Self::check_namespace(&s, t, namespace)?;
        let name = match meta_str(&body, "name").filter(|n| !n.is_empty()) {
            Some(n) => n.to_string(),
            None => match meta_str(&body, "generateName").filter(|n| !n.is_empty()) {
                Some(prefix) => {
                    let name = format!("{prefix}{}", random_suffix());
                    body["metadata"]["name"] = json!(name);
                    name
                }
                None => {
                    return Err(StatusError::invalid(
                        t,
                        "",
                        &[(
                            "metadata.name",
                            "Required value: name or generateName is required".into(),
                        )],
                    ));
                }
            },
        };
        label_namespace(t, &name, &mut body);
        validate(t, &name, &body)?;
        let key = (namespace.unwrap_or("").to_string(), name.clone());
        let collection_key = (t.group.clone(), t.plural.clone());
        if s.objects
            .get(&collection_key)
            .is_some_and(|c| c.contains_key(&key))
        {
            return Err(StatusError::already_exists(t, &name));
        }
        let rv = s.rv + 1;
        let kept = |field: &str| {
            keep_identity
                .then(|| meta_str(&body, field).map(str::to_string))
                .flatten()
        };
        let uid = kept("uid").unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let stamp = kept("creationTimestamp").unwrap_or_else(now);
        {
            let meta = body["metadata"]
                .as_object_mut()
                .ok_or_else(|| StatusError::bad_request("metadata must be an object"))?;
            meta.insert("uid".into(), json!(uid));
            meta.insert("resourceVersion".into(), json!(rv.to_string()));
            meta.insert("creationTimestamp".into(), json!(stamp));
            meta.remove("deletionTimestamp");
            if t.status || t.custom {
                meta.insert("generation".into(), json!(1));
            }
        }
        if t.kind == "Namespace" && t.group.is_empty() {
            body["spec"] = json!({"finalizers": ["kubernetes"]});
            body["status"] = json!({"phase": "Active"});
        }
        let mut new_types = Vec::new();
        if t.kind == "CustomResourceDefinition" {
            new_types = registry::types_from_crd(&body)
                .map_err(|e| StatusError::invalid(t, &name, &[("spec", e)]))?;
            body["status"] = registry::crd_established_status(&body, &stamp);
        }
        if !opts.manager.is_empty() {
            let mut own = Ownership::default();
            own.record_update(&opts.manager, None, &body);
            own.write(&mut body, &t.api_version(), &stamp);
        }
        let body = Arc::new(body);
        if opts.dry_run {
            return Ok(body);
        }
        s.rv = rv;
        for nt in new_types {
            s.registry.insert(nt);
        }
        s.objects
            .entry(collection_key)
            .or_default()
            .insert(key, body.clone());
        self.record(
            &mut s,
            Change::of(
                t,
                rv,
                namespace.unwrap_or(""),
                ChangeType::Added,
                body.clone(),
                None,
            ),
        );
        drop(s);
        if t.kind == "Namespace" && t.group.is_empty() {
            self.populate_namespace(&name);
        }
        Ok(body)
    }

    /// What kube-controller-manager puts into every new namespace: the
    /// `default` ServiceAccount and the `kube-root-ca.crt` ConfigMap. A real
    /// cluster adds them within a second; here they follow the namespace at
    /// once, each its own change, so clients see what they see on a real
    /// cluster.
    fn populate_namespace(&self, namespace: &str) {
        let registry = self.registry();
        let opts = WriteOptions {
            manager: "kube-controller-manager".into(),
            dry_run: false,
        };
        let objects = [
            (
                "serviceaccounts",
                json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}),
            ),
            (
                "configmaps",
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "kube-root-ca.crt", "annotations": {"kubernetes.io/description": ROOT_CA_DESCRIPTION}},
                    "data": {"ca.crt": EMBEDDED_CA_NOTE}}),
            ),
        ];
        for (plural, body) in objects {
            if let Some(t) = registry.get("", "v1", plural) {
                // Exists already (a seeded manifest named it): left alone.
                let _ = self.create(&t, Some(namespace), body, &opts);
            }
        }
    }

    /// Replace an object with `update(current)`, checking the resourceVersion
    /// the new state carries (if any) against the current one.
    ///
    /// `subresource` is `Some("status")` for status writes: only the status
    /// changes then; otherwise status changes are dropped for types with a
    /// status subresource.
    ///
    /// # Errors
    /// 404, 409, 422, and whatever `update` returns.
    pub fn update_with(
        &self,
        t: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        subresource: Option<&str>,
        opts: &WriteOptions,
        update: impl FnOnce(&Value) -> Result<Value, StatusError>,
    ) -> Result<Arc<Value>, StatusError> {
        let mut s = self.state.lock();
        let collection_key = (t.group.clone(), t.plural.clone());
        let key = (namespace.unwrap_or("").to_string(), name.to_string());
        let current = s.current(t, &collection_key, &key)?;
        let mut new = update(&current)?;
        prepare_body(t, namespace, &mut new)?;
        if meta_str(&new, "name").is_some_and(|n| n != name) {
            return Err(StatusError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                meta_str(&new, "name").unwrap_or("")
            )));
        }
        if let Some(rv) = meta_str(&new, "resourceVersion").filter(|r| !r.is_empty())
            && Some(rv) != meta_str(&current, "resourceVersion")
        {
            return Err(StatusError::conflict(t, name));
        }
        // The status subresource splits writes in two.
        if t.status || t.custom {
            let keep_status = subresource != Some("status");
            if keep_status {
                match current.get("status") {
                    Some(st) => new["status"] = st.clone(),
                    None => {
                        if let Some(m) = new.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
            } else {
                let status = new.get("status").cloned();
                new = (*current).clone();
                match status {
                    Some(st) => new["status"] = st,
                    None => {
                        if let Some(m) = new.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
            }
        }
        label_namespace(t, name, &mut new);
        validate(t, name, &new)?;
        // Server-owned metadata is kept from the current object.
        for field in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "generation",
            "namespace",
        ] {
            match current["metadata"].get(field) {
                Some(v) => new["metadata"][field] = v.clone(),
                None => {
                    if let Some(m) = new["metadata"].as_object_mut() {
                        m.remove(field);
                    }
                }
            }
        }
        if t.kind == "CustomResourceDefinition"
            && let Some(st) = current.get("status")
        {
            new["status"] = st.clone();
        }
        let spec_changed = strip_meta_and_status(&current) != strip_meta_and_status(&new);
        if (t.status || t.custom) && spec_changed {
            let generation = current["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
            new["metadata"]["generation"] = json!(generation);
        }
        if !opts.manager.is_empty() {
            let mut own = Ownership::of(&current);
            if new.pointer("/metadata/managedFields").is_some()
                && new.pointer("/metadata/managedFields")
                    != current.pointer("/metadata/managedFields")
            {
                own = Ownership::of(&new);
            }
            own.record_update(&opts.manager, Some(&current), &new);
            own.write(&mut new, &t.api_version(), &now());
        }
        // Nothing changed (ignoring the RV): no write, no event, same RV.
        new["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
        if new == *current {
            return Ok(current);
        }
        if opts.dry_run {
            return Ok(Arc::new(new));
        }
        let finalized = new.pointer("/metadata/deletionTimestamp").is_some()
            && new
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty);
        let rv = s.rv + 1;
        s.rv = rv;
        new["metadata"]["resourceVersion"] = json!(rv.to_string());
        let new = Arc::new(new);
        if finalized {
            // The last finalizer is gone from an object being deleted: it goes now.
            s.objects.entry(collection_key).or_default().remove(&key);
            self.record(
                &mut s,
                Change::of(
                    t,
                    rv,
                    &key.0,
                    ChangeType::Deleted,
                    new.clone(),
                    Some(current),
                ),
            );
            return Ok(new);
        }
        s.objects
            .entry(collection_key)
            .or_default()
            .insert(key.clone(), new.clone());
        self.record(
            &mut s,
            Change::of(
                t,
                rv,
                &key.0,
                ChangeType::Modified,
                new.clone(),
                Some(current),
            ),
        );
        Ok(new)
    }

    /// Delete an object, honouring finalizers and preconditions. Returns the
    /// object's last state and whether it is gone (false: finalizers hold it).
    ///
    /// # Errors
    /// 404, 409 for a failed precondition.
    pub fn delete(
        &self,
        t: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        uid: Option<&str>,
        resource_version: Option<&str>,
        dry_run: bool,
    ) -> Result<(Arc<Value>, bool), StatusError> {
        let mut s = self.state.lock();
        let collection_key = (t.group.clone(), t.plural.clone());
        let key = (namespace.unwrap_or("").to_string(), name.to_string());
        let current = s.current(t, &collection_key, &key)?;
        if let Some(uid) = uid
            && meta_str(&current, "uid") != Some(uid)
        {
            let actual = meta_str(&current, "uid").unwrap_or("");
            return Err(StatusError::precondition_failed(
                t,
                name,
                &format!("UID in precondition: {uid}, UID in object meta: {actual}"),
            ));
        }
        if let Some(rv) = resource_version
            && meta_str(&current, "resourceVersion") != Some(rv)
        {
            let actual = meta_str(&current, "resourceVersion").unwrap_or("");
            return Err(StatusError::precondition_failed(
                t,
                name,
                &format!(
                    "ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {actual}"
                ),
            ));
        }
        if dry_run {
            return Ok((current, true));
        }
        let rv = s.rv + 1;
        s.rv = rv;
        let has_finalizers = current
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        let mut last = (*current).clone();
        last["metadata"]["resourceVersion"] = json!(rv.to_string());
        if has_finalizers {
            if current.pointer("/metadata/deletionTimestamp").is_some() {
                s.rv -= 1;
                return Ok((current, false));
            }
            last["metadata"]["deletionTimestamp"] = json!(now());
            last["metadata"]["deletionGracePeriodSeconds"] = json!(0);
            let last = Arc::new(last);
            s.objects
                .entry(collection_key)
                .or_default()
                .insert(key.clone(), last.clone());
            self.record(
                &mut s,
                Change::of(
                    t,
                    rv,
                    &key.0,
                    ChangeType::Modified,
                    last.clone(),
                    Some(current),
                ),
            );
            return Ok((last, false));
        }
        let last = Arc::new(last);
        s.objects.entry(collection_key).or_default().remove(&key);
        self.record(
            &mut s,
            Change::of(
                t,
                rv,
                &key.0,
                ChangeType::Deleted,
                last.clone(),
                Some(current.clone()),
            ),
        );
        // Cascades: a namespace takes its objects along; a CRD its resource.
        if t.kind == "Namespace" && t.group.is_empty() {
            self.delete_all(&mut s, |(_, _), (ns, _)| ns == name);
        }
        if t.kind == "CustomResourceDefinition"
            && let (Some(group), Some(plural)) = (
                current.pointer("/spec/group").and_then(Value::as_str),
                current
                    .pointer("/spec/names/plural")
                    .and_then(Value::as_str),
            )
        {
            let (group, plural) = (group.to_string(), plural.to_string());
            self.delete_all(&mut s, |(g, p), _| *g == group && *p == plural);
            s.registry.remove(&group, &plural);
        }
        Ok((last, true))
    }

    fn delete_all(&self, s: &mut State, matches: impl Fn(&(String, String), &Key) -> bool) {
        let mut doomed = Vec::new();
        for (ck, c) in &s.objects {
            for (k, v) in c {
                if matches(ck, k) {
                    doomed.push((ck.clone(), k.clone(), v.clone()));
                }
            }
        }
        for (ck, k, v) in doomed {
            if let Some(c) = s.objects.get_mut(&ck) {
                c.remove(&k);
            }
            s.rv += 1;
            let mut last = (*v).clone();
            last["metadata"]["resourceVersion"] = json!(s.rv.to_string());
            let rv = s.rv;
            self.record(
                s,
                Change {
                    rv,
                    group: ck.0.clone(),
                    plural: ck.1.clone(),
                    namespace: k.0.clone(),
                    change: ChangeType::Deleted,
                    object: Arc::new(last),
                    old: Some(v),
                },
            );
        }
    }
}

/// The object without metadata and status: what `generation` tracks.
fn strip_meta_and_status(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
    }
    v
}

/// Fill in apiVersion, kind and namespace from the URL, refusing mismatches.
fn prepare_body(
    t: &ResourceType,
    namespace: Option<&str>,
    body: &mut Value,
) -> Result<(), StatusError> {
    let Some(map) = body.as_object_mut() else {
        return Err(StatusError::bad_request(format!(
            "the body of the request is not a {} object",
            t.kind
        )));
    };
    match map.get("kind").and_then(Value::as_str) {
        Some(k) if k != t.kind => {
            return Err(StatusError::bad_request(format!(
                "the API version in the data ({}) does not match the expected API version ({})",
                map.get("apiVersion").and_then(Value::as_str).unwrap_or(""),
                t.api_version()
            )));
        }
        _ => {}
    }
    map.insert("apiVersion".into(), json!(t.api_version()));
    map.insert("kind".into(), json!(t.kind));
    let meta = map.entry("metadata").or_insert_with(|| json!({}));
    let Some(meta) = meta.as_object_mut() else {
        return Err(StatusError::bad_request("metadata must be an object"));
    };
    match (
        t.namespaced,
        namespace,
        meta.get("namespace").and_then(Value::as_str),
    ) {
        (true, Some(url), Some(body_ns)) if !body_ns.is_empty() && body_ns != url => {
            return Err(StatusError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        (true, Some(url), _) => {
            meta.insert("namespace".into(), json!(url));
        }
        (false, _, _) => {
            meta.remove("namespace");
        }
        _ => {}
    }
    if t.group.is_empty() && t.kind == "Secret" {
        merge_string_data(map);
    }
    Ok(())
}

/// The label kube-apiserver puts on every namespace: its own name, whatever
/// a client wrote there. Webhooks' namespace selectors rely on it.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

fn label_namespace(t: &ResourceType, name: &str, body: &mut Value) {
    if t.kind != "Namespace" || !t.group.is_empty() {
        return;
    }
    let Some(meta) = body.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let labels = meta.entry("labels").or_insert_with(|| json!({}));
    if !labels.is_object() {
        *labels = json!({});
    }
    labels[NAMESPACE_NAME_LABEL] = json!(name);
}

/// A Secret's `stringData` is write-only: the real server encodes it into
/// `data` (winning over the same key there) and never stores it.
fn merge_string_data(secret: &mut serde_json::Map<String, Value>) {
    use base64::Engine as _;
    let Some(Value::Object(strings)) = secret.remove("stringData") else {
        return;
    };
    let data = secret.entry("data").or_insert_with(|| json!({}));
    if !data.is_object() {
        *data = json!({});
    }
    if let Some(data) = data.as_object_mut() {
        for (k, v) in strings {
            let text = v.as_str().unwrap_or_default();
            data.insert(
                k,
                json!(base64::engine::general_purpose::STANDARD.encode(text)),
            );
        }
    }
}

/// Name and label validation, RFC 1123 as Kubernetes applies it.
fn validate(t: &ResourceType, name: &str, body: &Value) -> Result<(), StatusError> {
    use informant_k8s::selector::{
        is_dns1123_label, is_dns1123_subdomain, validate_key, validate_value,
    };
    let mut causes: Vec<(&str, String)> = Vec::new();
    // As kube-apiserver words them (reference 08).
    let (is_valid, rule): (fn(&str) -> bool, &str) = if t.kind == "Namespace" {
        (
            is_dns1123_label,
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        )
    } else {
        (
            is_dns1123_subdomain,
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        )
    };
    if !is_valid(name) {
        causes.push(("metadata.name", format!("Invalid value: {name:?}: {rule}")));
    }
    // A generateName must be a valid name itself, but for a trailing dash
    // (`gen-`); so `"web."` is refused (reference finding 41).
    if let Some(prefix) = meta_str(body, "generateName").filter(|p| !p.is_empty()) {
        let masked = match prefix.strip_suffix('-') {
            Some(head) => format!("{head}a"),
            None => prefix.to_string(),
        };
        if !is_valid(&masked) {
            causes.push((
                "metadata.generateName",
                format!("Invalid value: {prefix:?}: {rule}"),
            ));
        }
    }
    if let Some(labels) = body.pointer("/metadata/labels").and_then(Value::as_object) {
        for (k, v) in labels {
            if let Err(e) = validate_key(k) {
                causes.push(("metadata.labels", format!("Invalid value: {k:?}: {e}")));
            }
            match v.as_str() {
                Some(v) => {
                    if let Err(e) = validate_value(v) {
                        causes.push(("metadata.labels", format!("Invalid value: {v:?}: {e}")));
                    }
                }
                None => causes.push((
                    "metadata.labels",
                    format!("Invalid value: the value of {k:?} must be a string"),
                )),
            }
        }
    }
    if t.kind == "ConfigMap" && body.to_string().len() > 1 << 20 {
        causes.push(("[]", "Too long: may not be more than 1048576 bytes".into()));
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(StatusError::invalid(t, name, &causes))
    }
}

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    bytes
        .iter()
        .take(5)
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// A continue token as the real server writes it: unpadded base64url of
/// `{"v":"meta.k8s.io/v1","rv":N,"start":"<key>\u0000"}`.
pub fn encode_continue(rv: i64, start: &str) -> String {
    use base64::Engine as _;
    let token = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": format!("{start}\u{0}")});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token.to_string())
}

fn decode_continue(token: &str) -> Result<(u64, String), StatusError> {
    use base64::Engine as _;
    let bad = || StatusError::bad_request(format!("continue key is not valid: {token}"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let rv = v.get("rv").and_then(Value::as_i64).ok_or_else(bad)?;
    let start = v
        .get("start")
        .and_then(Value::as_str)
        .ok_or_else(bad)?
        .trim_end_matches('\u{0}')
        .to_string();
    Ok((u64::try_from(rv).unwrap_or(0), start))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cms(store: &Storage) -> Arc<ResourceType> {
        store.registry().get("", "v1", "configmaps").unwrap()
    }

    fn opts() -> WriteOptions {
        WriteOptions {
            manager: "test".into(),
            dry_run: false,
        }
    }

    fn create(store: &Storage, name: &str) -> Arc<Value> {
        let body = json!({"metadata": {"name": name}, "data": {"a": "1"}});
        store
            .create(&cms(store), Some("default"), body, &opts())
            .unwrap()
    }

    #[test]
    fn resource_versions_rise_across_all_resources() {
        let store = Storage::new(StorageConfig::default());
        let a = create(&store, "a");
        let b = create(&store, "b");
        let rv = |v: &Value| {
            v["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        };
        assert!(rv(&b) > rv(&a));
        assert_eq!(store.resource_version(), rv(&b));
    }

    #[test]
    fn namespaced_objects_need_their_namespace() {
        let store = Storage::new(StorageConfig::default());
        let err = store
            .create(
                &cms(&store),
                Some("nope"),
                json!({"metadata": {"name": "a"}}),
                &opts(),
            )
            .unwrap_err();
        assert_eq!((err.code, err.reason), (404, "NotFound"));
        assert_eq!(err.message, "namespaces \"nope\" not found");
    }

    #[test]
    fn pages_are_pinned_to_the_first_page_rv() {
        let store = Storage::new(StorageConfig::default());
        for n in ["a", "b", "c"] {
            create(&store, n);
        }
        let all = (LabelSelector::default(), FieldSelector::default());
        let first = store
            .list(&cms(&store), Some("default"), &all.0, &all.1, Some(2), None)
            .unwrap();
        assert_eq!(first.items.len(), 2);
        // c, and the namespace's kube-root-ca.crt.
        assert_eq!(first.remaining, Some(2));
        create(&store, "bb");
        let second = store
            .list(
                &cms(&store),
                Some("default"),
                &all.0,
                &all.1,
                Some(2),
                first.continue_token.as_deref(),
            )
            .unwrap();
        let names: Vec<_> = second
            .items
            .iter()
            .map(|v| v["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            names,
            ["c", "kube-root-ca.crt"],
            "bb was created after the first page"
        );
        assert!(second.continue_token.is_none());
        store.compact();
        let err = store
            .list(
                &cms(&store),
                Some("default"),
                &all.0,
                &all.1,
                Some(2),
                first.continue_token.as_deref(),
            )
            .unwrap_err();
        assert_eq!(err.code, 410);
    }

    #[test]
    fn finalizers_hold_a_deleted_object_until_removed() {
        let store = Storage::new(StorageConfig::default());
        let t = cms(&store);
        store
            .create(
                &t,
                Some("default"),
                json!({"metadata": {"name": "f", "finalizers": ["x/y"]}}),
                &opts(),
            )
            .unwrap();
        let (obj, gone) = store
            .delete(&t, Some("default"), "f", None, None, false)
            .unwrap();
        assert!(!gone);
        assert!(obj["metadata"]["deletionTimestamp"].is_string());
        store
            .update_with(&t, Some("default"), "f", None, &opts(), |cur| {
                let mut v = cur.clone();
                v["metadata"]["finalizers"] = json!([]);
                Ok(v)
            })
            .unwrap();
        assert_eq!(store.get(&t, Some("default"), "f").unwrap_err().code, 404);
    }

    #[test]
    fn stale_writes_and_failed_preconditions_conflict() {
        let store = Storage::new(StorageConfig::default());
        let t = cms(&store);
        let a = create(&store, "a");
        let stale = a["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_string();
        store
            .update_with(&t, Some("default"), "a", None, &opts(), |c| {
                let mut v = c.clone();
                v["data"]["a"] = json!("2");
                Ok(v)
            })
            .unwrap();
        let err = store
            .update_with(&t, Some("default"), "a", None, &opts(), |c| {
                let mut v = c.clone();
                v["metadata"]["resourceVersion"] = json!(stale);
                v["data"]["a"] = json!("3");
                Ok(v)
            })
            .unwrap_err();
        assert_eq!((err.code, err.reason), (409, "Conflict"));
        let err = store
            .delete(&t, Some("default"), "a", Some("wrong-uid"), None, false)
            .unwrap_err();
        assert_eq!(err.code, 409);
        assert_eq!(err.details.unwrap()["kind"], "ConfigMap");
    }
}
