//! default-requests: a mutating admission webhook. Containers of a
//! Deployment that set no resource requests get `cpu: 10m, memory: 32Mi`
//! (or what the settings say), so the scheduler always has something to go
//! on. Containers that request anything keep what they request. The user
//! is told which containers were given defaults, as a warning.
//!
//! Settings (optional): `{"cpu": "10m", "memory": "32Mi"}`.

use informant_sdk::{
    admission::{Admission, Operation, Request, Response, Rule, Webhook},
    prelude::*,
};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
struct Config {
    cpu: String,
    memory: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            cpu: "10m".into(),
            memory: "32Mi".into(),
        }
    }
}

struct DefaultRequests {
    config: Config,
}

impl Plugin for DefaultRequests {
    fn describe() -> Manifest {
        Manifest::new("default-requests", env!("CARGO_PKG_VERSION")).webhook(
            Webhook::mutating()
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
        if config.cpu.is_empty() || config.memory.is_empty() {
            return Err(Error::new(
                ErrorCode::Invalid,
                "cpu and memory must not be empty",
            ));
        }
        Ok(Self { config })
    }

    fn handle(&mut self, _event: Event) -> Result<()> {
        Ok(())
    }
}

impl Admission for DefaultRequests {
    fn review(&mut self, request: Request) -> Result<Response> {
        let Some(object) = &request.object else {
            return Ok(Response::allow());
        };
        let Some(containers) = object
            .get("spec.template.spec.containers")
            .and_then(Value::as_array)
        else {
            return Ok(Response::allow());
        };
        let requests = json!({"cpu": self.config.cpu, "memory": self.config.memory});
        let mut patch = Vec::new();
        let mut defaulted = Vec::new();
        for (i, c) in containers.iter().enumerate() {
            let has_requests = c
                .pointer("/resources/requests")
                .and_then(Value::as_object)
                .is_some_and(|r| !r.is_empty());
            if has_requests {
                continue;
            }
            let base = format!("/spec/template/spec/containers/{i}/resources");
            if c.get("resources").is_some_and(Value::is_object) {
                patch.push(
                    json!({"op": "add", "path": format!("{base}/requests"), "value": requests}),
                );
            } else {
                patch.push(json!({"op": "add", "path": base, "value": {"requests": requests}}));
            }
            defaulted.push(
                c.get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_string(),
            );
        }
        if defaulted.is_empty() {
            return Ok(Response::allow());
        }
        Ok(Response::patch(patch).warn(format!(
            "default-requests: containers {} set no resource requests; given cpu={}, memory={}",
            defaulted.join(", "),
            self.config.cpu,
            self.config.memory
        )))
    }
}

informant_sdk::export_plugin!(DefaultRequests, admission);
