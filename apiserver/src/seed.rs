//! Seeding the embedded server from manifest files, and keeping it in sync
//! with them: an edited file updates its objects, a removed file (or a
//! removed document) deletes them, and a bad file is reported with its name
//! and line and changes nothing.

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::{Storage, storage::WriteOptions};
use informant_k8s::manifests;

/// The field manager seeded objects are written with.
pub const MANAGER: &str = "informant-dev-manifests";

/// Why a file could not be synced. Nothing of the file was changed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file is not valid YAML or JSON, or a document is not an object.
    #[error(transparent)]
    Parse(#[from] manifests::Error),
    /// A document names a kind the server does not serve.
    #[error(
        "{path}: {api_version} {kind} is not served (create its CRD first, in an earlier file or document)"
    )]
    UnknownKind {
        /// The file.
        path: String,
        /// The apiVersion.
        api_version: String,
        /// The kind.
        kind: String,
    },
    /// The server refused an object.
    #[error("{path}: {object}: {message}")]
    Refused {
        /// The file.
        path: String,
        /// The object.
        object: String,
        /// The server's message.
        message: String,
    },
}

type ObjectId = (String, String, Option<String>, String);

/// What was seeded from which file.
pub struct Seeder {
    store: Arc<Storage>,
    files: HashMap<PathBuf, (Vec<u8>, Vec<ObjectId>)>,
}

fn rank(object: &Value) -> u8 {
    match object.get("kind").and_then(Value::as_str) {
        Some("Namespace") => 0,
        Some("CustomResourceDefinition") => 1,
        _ => 2,
    }
}

impl Seeder {
    /// A seeder writing into `store`.
    pub fn new(store: Arc<Storage>) -> Self {
        Self {
            store,
            files: HashMap::new(),
        }
    }

    /// Parse `text` (named `path` in errors) and make the server hold exactly
    /// its objects for this file. Returns how many objects it holds.
    ///
    /// # Errors
    /// [`Error`]; on a parse error or an unknown kind nothing changes.
    pub fn sync_text(&mut self, path: &Path, text: &str) -> Result<usize, Error> {
        let name = path.display().to_string();
        let digest = Sha256::digest(text.as_bytes()).to_vec();
        if self.files.get(path).is_some_and(|(d, _)| *d == digest) {
            return Ok(self.files[path].1.len());
        }
        let mut objects = manifests::parse_objects(&name, text)?;
        objects.sort_by_key(rank);
        // Check every kind before writing anything, so a bad file changes
        // nothing; CRDs in this same file count as served.
        let registry = self.store.registry();
        let defined: Vec<(String, String)> = objects
            .iter()
            .filter(|o| o.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition"))
            .filter_map(|crd| crate::registry::types_from_crd(crd).ok())
            .flatten()
            .map(|t| (t.api_version(), t.kind))
            .collect();
        for o in &objects {
            let api_version = o
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let kind = o
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if registry.by_kind(&api_version, &kind).is_none()
                && !defined.contains(&(api_version.clone(), kind.clone()))
            {
                return Err(Error::UnknownKind {
                    path: name,
                    api_version,
                    kind,
                });
            }
        }
        let mut ids = Vec::new();
        for object in objects {
            ids.push(self.upsert(&name, object)?);
        }
        let previous = self
            .files
            .insert(path.to_path_buf(), (digest, ids.clone()))
            .map(|(_, ids)| ids)
            .unwrap_or_default();
        for gone in previous.into_iter().filter(|id| !ids.contains(id)) {
            self.delete(&gone);
        }
        Ok(ids.len())
    }

    fn upsert(&self, path: &str, mut object: Value) -> Result<ObjectId, Error> {
        let api_version = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let kind = object
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let t = self
            .store
            .registry()
            .by_kind(&api_version, &kind)
            .ok_or_else(|| Error::UnknownKind {
                path: path.into(),
                api_version: api_version.clone(),
                kind: kind.clone(),
            })?;
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let namespace = t.namespaced.then(|| {
            object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .unwrap_or("default")
                .to_string()
        });
        if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("resourceVersion");
        }
        let refused = |e: crate::StatusError| Error::Refused {
            path: path.into(),
            object: format!("{kind} {name}"),
            message: e.message,
        };
        let opts = WriteOptions {
            manager: MANAGER.into(),
            dry_run: false,
        };
        let ns = namespace.as_deref();
        match self.store.get(&t, ns, &name) {
            Ok(_) => {
                self.store
                    .update_with(&t, ns, &name, None, &opts, |_| Ok(object))
                    .map_err(refused)?;
            }
            Err(_) => {
                self.store.create(&t, ns, object, &opts).map_err(refused)?;
            }
        }
        Ok((api_version, kind, namespace, name))
    }

    fn delete(&self, (api_version, kind, namespace, name): &ObjectId) {
        if let Some(t) = self.store.registry().by_kind(api_version, kind) {
            // Already gone is fine: someone deleted it by hand.
            let _ = self
                .store
                .delete(&t, namespace.as_deref(), name, None, None, false);
        }
    }

    /// Delete everything a file had seeded.
    pub fn remove_file(&mut self, path: &Path) {
        if let Some((_, ids)) = self.files.remove(path) {
            for id in ids.iter().rev() {
                self.delete(id);
            }
        }
    }

    /// Bring the server in line with every manifest file in `dir`; returns
    /// the errors of the files that could not be synced.
    pub fn sync_dir(&mut self, dir: &Path) -> Vec<Error> {
        let mut present: BTreeMap<PathBuf, ()> = BTreeMap::new();
        let mut errors = Vec::new();
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| is_manifest(p))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        for path in files {
            present.insert(path.clone(), ());
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    if let Err(e) = self.sync_text(&path, &text) {
                        errors.push(e);
                    }
                }
                Err(cause) => errors.push(Error::Parse(manifests::Error::Io {
                    path: path.display().to_string(),
                    cause,
                })),
            }
        }
        let gone: Vec<PathBuf> = self
            .files
            .keys()
            .filter(|p| !present.contains_key(*p))
            .cloned()
            .collect();
        for path in gone {
            tracing::info!(file = %path.display(), "manifest file removed; deleting its objects");
            self.remove_file(&path);
        }
        errors
    }
}

fn is_manifest(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    !name.starts_with('.')
        && (name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".json"))
}

/// Keep the server in sync with `dir` until `stop` is cancelled: a change in
/// the directory triggers a resync after a short debounce.
///
/// # Errors
/// If the directory cannot be watched.
pub async fn watch_dir(
    mut seeder: Seeder,
    dir: PathBuf,
    stop: CancellationToken,
) -> Result<(), notify::Error> {
    use notify::Watcher as _;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(16);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok() {
            // Full means a resync is already pending.
            let _ = tx.try_send(());
        }
    })?;
    watcher.watch(&dir, notify::RecursiveMode::NonRecursive)?;
    loop {
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            got = rx.recv() => {
                if got.is_none() {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(150)).await;
                while rx.try_recv().is_ok() {}
                for e in seeder.sync_dir(&dir) {
                    tracing::error!(error = %e, "manifest not applied; the objects from its last good version stay");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StorageConfig;

    /// The ConfigMaps seeded: not the kube-root-ca.crt of every namespace.
    fn cm_names(store: &Storage) -> Vec<String> {
        let t = store.registry().get("", "v1", "configmaps").unwrap();
        let (items, _, _) = store.snapshot(&t, None);
        items
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
            .filter(|n| n != "kube-root-ca.crt")
            .collect()
    }

    #[test]
    fn files_seed_update_and_delete_their_objects() {
        let store = Arc::new(Storage::new(StorageConfig::default()));
        let mut seeder = Seeder::new(store.clone());
        let path = Path::new("seed.yaml");
        let two = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: v}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n";
        assert_eq!(seeder.sync_text(path, two).unwrap(), 2);
        assert_eq!(cm_names(&store), ["a", "b"]);
        let edited = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: w}\n";
        seeder.sync_text(path, edited).unwrap();
        assert_eq!(cm_names(&store), ["a"]);
        let broken = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a\n";
        let err = seeder.sync_text(path, broken).unwrap_err().to_string();
        assert!(
            err.starts_with("seed.yaml: ") && err.contains("line"),
            "{err}"
        );
        let unknown = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n";
        assert!(matches!(
            seeder.sync_text(path, unknown),
            Err(Error::UnknownKind { .. })
        ));
        assert_eq!(cm_names(&store), ["a"], "a bad file changes nothing");
        seeder.remove_file(path);
        assert!(cm_names(&store).is_empty());
    }
}
