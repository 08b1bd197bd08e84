//! legacy: a plugin built against `informant:plugin@0.1.0` (the frozen
//! `wit/0.1.0/plugin.wit`) with wit-bindgen alone, as plugins were built
//! before 0.2.0. It labels ConfigMaps labelled `informant.test/legacy`
//! with `legacy-seen=<event type>` and logs what it saw, so a test can check
//! that the host still loads and runs it.
//!
//! With the `v2` feature it is built against the frozen 0.2.0 contract
//! instead (`wit/0.2.0/plugin.wit`), as `legacy-v2`: it labels with
//! `legacy-v2-seen` and logs `legacy-v2 saw ...`.

#[cfg(not(feature = "v2"))]
wit_bindgen::generate!({
    path: "../../../wit/0.1.0",
    world: "plugin",
});

#[cfg(feature = "v2")]
wit_bindgen::generate!({
    path: "../../../wit/0.2.0",
    world: "plugin",
});

/// The plugin's name, which also names its label and its log lines.
const NAME: &str = if cfg!(feature = "v2") {
    "legacy-v2"
} else {
    "legacy"
};

use informant::plugin::{
    actions::{self, Action, PatchAction},
    log::{self, Level},
    types::{
        Delivery, EventType, ObjectRef, Permissions, ResourceRequest, Subscription, Verb,
        WritePermission,
    },
};

struct Legacy;

impl Guest for Legacy {
    fn describe() -> Manifest {
        Manifest {
            name: NAME.into(),
            version: "0.1.0".into(),
            subscriptions: vec![Subscription {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                namespace: None,
                label_selector: Some("informant.test/legacy".into()),
                field_selector: None,
                event_types: vec![EventType::Added, EventType::Modified],
                delivery: Delivery::LatestState,
                old_object: false,
                resync_seconds: None,
            }],
            indexes: vec![],
            permissions: Permissions {
                reads: vec![],
                writes: vec![WritePermission {
                    api_version: "v1".into(),
                    kind: "ConfigMap".into(),
                    verbs: vec![Verb::Patch],
                }],
            },
            resources: ResourceRequest {
                memory_mib: None,
                deadline_ms: None,
                #[cfg(feature = "v2")]
                instances: None,
            },
        }
    }

    fn init(_settings: String) -> Result<(), Error> {
        Ok(())
    }

    fn handle(event: Event) -> Result<(), Error> {
        let seen = match event.event_type {
            EventType::Added => "added",
            _ => "modified",
        };
        // The object as JSON: only its name and namespace are needed, found
        // by hand to keep this fixture free of a JSON library.
        let field = |name: &str| -> Option<String> {
            let at = event.object.find(&format!("\"{name}\":\""))? + name.len() + 4;
            let len = event.object[at..].find('"')?;
            Some(event.object[at..at + len].to_string())
        };
        let (Some(name), namespace) = (field("name"), field("namespace")) else {
            return Ok(());
        };
        log::log(Level::Info, &format!("{NAME} saw {name} {seen}"));
        if event.object.contains(&format!("\"{NAME}-seen\"")) {
            return Ok(());
        }
        actions::enqueue(&Action::MergePatch(PatchAction {
            target: ObjectRef {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                namespace,
                name,
            },
            patch: format!(r#"{{"metadata":{{"labels":{{"{NAME}-seen":"{seen}"}}}}}}"#),
        }))
    }
}

export!(Legacy);
