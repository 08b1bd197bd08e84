//! owner-required: a validating admission webhook that reads the cluster.
//! In a namespace labelled `informant.dev/owner-required=true`, a Deployment
//! without an `owner` label is refused, with a message that names the
//! Deployment and the namespace; in other namespaces it is allowed.
//!
//! The namespace's labels come from the host's cache, not from a call to
//! the API server: the decision costs a map lookup. A namespace the cache
//! does not hold yet (created a moment ago) is an error, so the webhook's
//! failure policy (Fail) refuses the request rather than guess; a retry a
//! moment later is decided normally.
//!
//! Settings (optional): `{"label": "owner"}`, the label required.

use informant_sdk::{
    admission::{Admission, Operation, Request, Response, Rule, Webhook},
    cache, debug,
    prelude::*,
};
use serde::Deserialize;

/// The namespace label that turns the rule on.
const OPT_IN: &str = "informant.dev/owner-required";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
struct Config {
    label: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            label: "owner".into(),
        }
    }
}

struct OwnerRequired {
    config: Config,
}

impl Plugin for OwnerRequired {
    fn describe() -> Manifest {
        Manifest::new("owner-required", env!("CARGO_PKG_VERSION"))
            .reads("v1", "Namespace")
            .webhook(
                Webhook::validating()
                    .rule(
                        Rule::new("apps", "v1", "deployments")
                            .operations([Operation::Create, Operation::Update])
                            .namespaced(),
                    )
                    .timeout_seconds(5),
            )
    }

    fn init(settings: Settings) -> Result<Self> {
        let config: Config = settings.parse()?;
        if config.label.is_empty() {
            return Err(Error::new(ErrorCode::Invalid, "label must not be empty"));
        }
        Ok(Self { config })
    }

    fn handle(&mut self, _event: Event) -> Result<()> {
        // Namespaces are read, not subscribed to: no event comes here.
        Ok(())
    }
}

impl Admission for OwnerRequired {
    fn review(&mut self, request: Request) -> Result<Response> {
        let (Some(namespace), Some(object)) = (&request.namespace, &request.object) else {
            return Ok(Response::allow());
        };
        let Some(ns) = cache::get(&ObjectRef::cluster("v1", "Namespace", namespace))? else {
            return Err(Error::new(
                ErrorCode::NotFound,
                format!("namespace {namespace} is not in the cache yet; try again in a moment"),
            ));
        };
        if ns.label(OPT_IN) != Some("true") {
            debug!(
                "{}: namespace {namespace} does not require an owner",
                request.describe()
            );
            return Ok(Response::allow());
        }
        let label = &self.config.label;
        if object.label(label).is_some_and(|v| !v.is_empty()) {
            return Ok(Response::allow());
        }
        Ok(Response::deny(format!(
            "{} has no {label:?} label, and namespace {namespace} requires one ({OPT_IN}=true): add metadata.labels.{label}",
            request.describe()
        )))
    }
}

informant_sdk::export_plugin!(OwnerRequired, admission);
