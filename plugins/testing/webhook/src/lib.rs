//! webhook: a plugin of the `plugin-with-admission` world (contract 0.3.0),
//! built with wit-bindgen alone. It declares a validating webhook for
//! Deployments and allows every request; its event handler does nothing.
//! The host must see that it serves admission.
//!
//! Feature builds disagree with themselves, for the host to refuse:
//! `undeclared` exports `admission` with no webhook in its manifest;
//! `unexported` declares a webhook but targets the `plugin` world.

#[cfg(not(feature = "unexported"))]
wit_bindgen::generate!({
    path: "../../../wit",
    world: "plugin-with-admission",
});

#[cfg(feature = "unexported")]
wit_bindgen::generate!({
    path: "../../../wit",
    world: "plugin",
});

use informant::plugin::types::{
    AdmissionMode, Delivery, FailurePolicy, Operation, Permissions, ResourceRequest, RuleScope,
    Subscription, Webhook, WebhookRule,
};

struct Fixture;

fn webhook() -> Option<Webhook> {
    if cfg!(feature = "undeclared") {
        return None;
    }
    Some(Webhook {
        mode: AdmissionMode::Validating,
        rules: vec![WebhookRule {
            operations: vec![Operation::Create, Operation::Update],
            api_groups: vec!["apps".into()],
            api_versions: vec!["v1".into()],
            resources: vec!["deployments".into()],
            scope: RuleScope::Namespaced,
        }],
        namespace_selector: Some("informant.dev/owner-required=true".into()),
        object_selector: None,
        match_conditions: vec![],
        failure_policy: FailurePolicy::Fail,
        timeout_seconds: Some(5),
    })
}

impl Guest for Fixture {
    fn describe() -> Manifest {
        Manifest {
            name: "webhook".into(),
            version: "0.1.0".into(),
            // A plugin that serves a webhook needs no subscription; one that
            // does not needs one, or its manifest is refused before its
            // exports are looked at.
            subscriptions: if cfg!(feature = "undeclared") {
                vec![Subscription {
                    api_version: "v1".into(),
                    kind: "ConfigMap".into(),
                    namespace: None,
                    label_selector: None,
                    field_selector: None,
                    event_types: vec![],
                    delivery: Delivery::LatestState,
                    old_object: false,
                    resync_seconds: None,
                    fields: None,
                }]
            } else {
                vec![]
            },
            indexes: vec![],
            permissions: Permissions {
                reads: vec![],
                writes: vec![],
            },
            resources: ResourceRequest {
                memory_mib: None,
                deadline_ms: None,
                instances: None,
            },
            state: None,
            admission: webhook(),
        }
    }

    fn init(_settings: String) -> Result<(), Error> {
        Ok(())
    }

    fn handle(_event: Event) -> Result<(), Error> {
        Ok(())
    }
}

#[cfg(not(feature = "unexported"))]
impl exports::informant::plugin::admission::Guest for Fixture {
    fn review(
        _request: exports::informant::plugin::admission::Request,
    ) -> Result<exports::informant::plugin::admission::Response, Error> {
        Ok(exports::informant::plugin::admission::Response {
            decision: exports::informant::plugin::admission::Decision::Allow,
            warnings: vec![],
        })
    }
}

export!(Fixture);
