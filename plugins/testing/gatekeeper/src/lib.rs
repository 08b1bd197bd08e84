//! gatekeeper: a test fixture for admission. It serves a webhook (validating;
//! mutating with the `mutating` feature) for ConfigMaps labelled `gate`,
//! and the label's value says what it does:
//!
//! - `deny`: denies, saying so; `patch`: adds the label `gated: yes`;
//! - `trap`: panics; `loop`: never returns; `error`: returns an error;
//! - `read-secret`: reads a Secret it never declared (refused), then allows;
//! - `enqueue`: tries to enqueue an action (refused), then allows;
//! - `badpatch`: answers with a patch that does not apply;
//! - anything else: reads two objects from the cache, the namespace and the
//!   ConfigMap `gate-policy` beside the object, and denies if the policy
//!   says `deny: "true"` (what the admission benchmark measures).

use informant_sdk::{
    action,
    admission::{Admission, Operation, Request, Response, Rule, Webhook},
    cache,
    prelude::*,
};

struct Gatekeeper;

impl Plugin for Gatekeeper {
    fn describe() -> Manifest {
        let webhook = if cfg!(feature = "mutating") {
            Webhook::mutating()
        } else {
            Webhook::validating()
        };
        Manifest::new("gatekeeper", "0.1.0")
            .reads("v1", "Namespace")
            .reads("v1", "ConfigMap")
            .webhook(
                webhook
                    .rule(
                        Rule::new("", "v1", "configmaps")
                            .operations([Operation::Create, Operation::Update, Operation::Delete])
                            .namespaced(),
                    )
                    .object_selector("gate")
                    .timeout_seconds(5),
            )
    }

    fn init(_settings: Settings) -> Result<Self> {
        Ok(Gatekeeper)
    }

    fn handle(&mut self, _event: Event) -> Result<()> {
        Ok(())
    }
}

impl Admission for Gatekeeper {
    fn review(&mut self, request: Request) -> Result<Response> {
        let object = request
            .object
            .as_ref()
            .or(request.old_object.as_ref())
            .cloned()
            .ok_or_else(|| Error::new(ErrorCode::Invalid, "no object"))?;
        let gate = object.label("gate").unwrap_or("").to_string();
        let namespace = object.namespace().unwrap_or("").to_string();
        match gate.as_str() {
            "deny" => Ok(Response::deny(format!(
                "{} denied by gatekeeper",
                request.describe()
            ))),
            "patch" => Ok(Response::patch(vec![
                json!({"op": "add", "path": "/metadata/labels/gated", "value": "yes"}),
            ])
            .warn("gatekeeper added gated=yes")),
            "trap" => panic!("gatekeeper trapped on purpose"),
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "error" => Err(Error::new(
                ErrorCode::Failed,
                "gatekeeper failed on purpose",
            )),
            "read-secret" => {
                let _ = cache::get(&ObjectRef::namespaced("v1", "Secret", &namespace, "x"));
                Ok(Response::allow())
            }
            "enqueue" => {
                let _ = action::merge_patch(
                    &object.object_ref(),
                    json!({"metadata": {"labels": {"x": "y"}}}),
                )
                .enqueue();
                Ok(Response::allow())
            }
            "badpatch" => Ok(Response::patch(vec![
                json!({"op": "replace", "path": "/nope/nothing", "value": 1}),
            ])),
            _ => {
                let ns = cache::get(&ObjectRef::cluster("v1", "Namespace", &namespace))?;
                let policy = cache::get(&ObjectRef::namespaced(
                    "v1",
                    "ConfigMap",
                    &namespace,
                    "gate-policy",
                ))?;
                let denied = policy
                    .is_some_and(|p| p.get("data.deny").and_then(Value::as_str) == Some("true"));
                if denied {
                    let team = ns.as_ref().and_then(|n| n.label("team")).unwrap_or("none");
                    return Ok(Response::deny(format!(
                        "{}: gate-policy in {namespace} (team {team}) denies it",
                        request.describe()
                    )));
                }
                Ok(Response::allow())
            }
        }
    }
}

informant_sdk::export_plugin!(Gatekeeper, admission);
