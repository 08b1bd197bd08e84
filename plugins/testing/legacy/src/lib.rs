//! legacy: a plugin built against `informant:plugin@0.1.0` (the frozen
//! `wit/0.1.0/plugin.wit`) with wit-bindgen alone, as plugins were built
//! before 0.2.0. It labels ConfigMaps labelled `informant.test/legacy`
//! with `legacy-seen=<event type>` and logs what it saw, so a test can check
//! that the host still loads and runs it.

wit_bindgen::generate!({
    path: "../../../wit/0.1.0",
    world: "plugin",
});

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
            name: "legacy".into(),
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
        log::log(Level::Info, &format!("legacy saw {name} {seen}"));
        if event.object.contains("\"legacy-seen\"") {
            return Ok(());
        }
        actions::enqueue(&Action::MergePatch(PatchAction {
            target: ObjectRef {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                namespace,
                name,
            },
            patch: format!(r#"{{"metadata":{{"labels":{{"legacy-seen":"{seen}"}}}}}}"#),
        }))
    }
}

export!(Legacy);
