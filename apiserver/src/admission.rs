//! Admission webhooks, called the way kube-apiserver calls them: every
//! `MutatingWebhookConfiguration` webhook whose rules and selectors match a
//! create, update or delete (subresources too) is called in order, by
//! configuration name and then within it, and its JSON patch applied to
//! the object; then every matching `ValidatingWebhookConfiguration` webhook,
//! all at once. A denial, a call that fails under `failurePolicy: Fail` and
//! a patch that does not apply refuse the request with the Status the real
//! server gives; `Ignore` lets a failed call pass; warnings go back to the
//! client as `Warning` headers.
//!
//! Differences: CEL `matchConditions` are not evaluated (the webhook is
//! called as if they held; a line in the log says so once), a webhook behind
//! a Service cannot be reached (there are no Services here), and the
//! reinvocation policy is `Never` for every webhook.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::{
    registry::ResourceType, status::StatusError, storage::Storage, webhook_client::WebhookClients,
};
use informant_k8s::selector::{FieldSelector, LabelSelector};

const GROUP: &str = "admissionregistration.k8s.io";

/// What a request does, as admission names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    /// `CREATE`.
    Create,
    /// `UPDATE`.
    Update,
    /// `DELETE`.
    Delete,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Self::Create => "CREATE",
            Self::Update => "UPDATE",
            Self::Delete => "DELETE",
        }
    }

    /// The options kind the review carries.
    pub(crate) fn options(self, dry_run: bool, field_manager: Option<&str>) -> Value {
        let kind = match self {
            Self::Create => "CreateOptions",
            Self::Update => "UpdateOptions",
            Self::Delete => "DeleteOptions",
        };
        let mut o = json!({"kind": kind, "apiVersion": "meta.k8s.io/v1"});
        if dry_run {
            o["dryRun"] = json!(["All"]);
        }
        if let Some(m) = field_manager.filter(|m| !m.is_empty() && self != Self::Delete) {
            o["fieldManager"] = json!(m);
        }
        o
    }
}

/// One request, as admission sees it.
#[derive(Debug)]
pub(crate) struct Attributes<'a> {
    /// The resource.
    pub(crate) t: &'a ResourceType,
    /// Its namespace, for namespaced resources.
    pub(crate) namespace: Option<&'a str>,
    /// The object's name; empty while a create's name is to be generated.
    pub(crate) name: &'a str,
    /// `status`, or none.
    pub(crate) subresource: Option<&'a str>,
    /// What it does.
    pub(crate) operation: Operation,
    /// The stored object, for updates and deletes.
    pub(crate) old: Option<&'a Value>,
    /// Nothing will be stored.
    pub(crate) dry_run: bool,
    /// The options, as [`Operation::options`] makes them.
    pub(crate) options: Value,
}

/// The webhooks the server calls, and its clients for them.
#[derive(Default)]
pub(crate) struct Webhooks {
    clients: WebhookClients,
    conditions_noted: AtomicBool,
}

/// One webhook to call.
struct Hook {
    configuration: String,
    webhook: Value,
}

impl Hook {
    fn name(&self) -> &str {
        self.webhook["name"].as_str().unwrap_or("")
    }
}

/// A call that could not be made or understood.
struct CallFailure(String);

impl Webhooks {
    /// The webhooks of `kind` (`validatingwebhookconfigurations` or
    /// `mutatingwebhookconfigurations`) that match, in call order.
    fn matching(
        &self,
        store: &Storage,
        plural: &str,
        a: &Attributes<'_>,
        object: Option<&Value>,
    ) -> Vec<Hook> {
        let Some(t) = store.registry().get(GROUP, "v1", plural) else {
            return Vec::new();
        };
        let Ok(configs) = store.list(
            &t,
            None,
            &LabelSelector::default(),
            &FieldSelector::default(),
            None,
            None,
        ) else {
            return Vec::new();
        };
        let mut hooks = Vec::new();
        for config in &configs.items {
            let configuration = config["metadata"]["name"]
                .as_str()
                .unwrap_or("")
                .to_string();
            for w in config["webhooks"].as_array().into_iter().flatten() {
                if !rules_match(w, a) || !selectors_match(store, w, a, object) {
                    continue;
                }
                if w.get("matchConditions")
                    .and_then(Value::as_array)
                    .is_some_and(|c| !c.is_empty())
                    && !self.conditions_noted.swap(true, Ordering::Relaxed)
                {
                    tracing::info!(webhook = %w["name"], "the embedded API server does not evaluate matchConditions (CEL): webhooks are called as if they held");
                }
                hooks.push(Hook {
                    configuration: configuration.clone(),
                    webhook: w.clone(),
                });
            }
        }
        hooks
    }

    /// Whether any webhook configuration exists at all: writes skip
    /// admission entirely without one.
    pub(crate) fn any(store: &Storage) -> bool {
        let registry = store.registry();
        [
            "validatingwebhookconfigurations",
            "mutatingwebhookconfigurations",
        ]
        .iter()
        .filter_map(|p| registry.get(GROUP, "v1", p))
        .any(|t| {
            store
                .list(
                    &t,
                    None,
                    &LabelSelector::default(),
                    &FieldSelector::default(),
                    Some(1),
                    None,
                )
                .is_ok_and(|l| !l.items.is_empty())
        })
    }

    /// Call the matching mutating webhooks in order, each on the object as
    /// the previous ones left it.
    ///
    /// # Errors
    /// The Status that refuses the request.
    pub(crate) async fn mutate(
        &self,
        store: &Storage,
        a: &Attributes<'_>,
        object: &mut Option<Value>,
        warnings: &mut Vec<String>,
    ) -> Result<(), StatusError> {
        for hook in self.matching(store, "mutatingwebhookconfigurations", a, object.as_ref()) {
            let response = match self.call(&hook, a, object.as_ref()).await {
                Ok(r) => r,
                Err(CallFailure(why)) => {
                    ignore_or_fail(&hook, why)?;
                    continue;
                }
            };
            collect_warnings(&response, warnings);
            denied(&hook, &response)?;
            let Some(patch) = response.get("patch").and_then(Value::as_str) else {
                continue;
            };
            if response.get("patchType").and_then(Value::as_str) != Some("JSONPatch") {
                ignore_or_fail(
                    &hook,
                    format!(
                        "received invalid webhook response: unsupported patch type {:?}",
                        response.get("patchType")
                    ),
                )?;
                continue;
            }
            let ops = base64::engine::general_purpose::STANDARD
                .decode(patch)
                .map_err(|e| e.to_string())
                .and_then(|b| {
                    serde_json::from_slice::<json_patch::Patch>(&b).map_err(|e| e.to_string())
                });
            let ops = match ops {
                Ok(ops) => ops,
                Err(e) => {
                    return Err(internal(format!(
                        "failed calling webhook \"{}\": received invalid webhook response: {e}",
                        hook.name()
                    )));
                }
            };
            if let Some(o) = object.as_mut() {
                let mut patched = o.clone();
                json_patch::patch(&mut patched, &ops)
                    .map_err(|e| internal(patch_error(&ops, &e)))?;
                *o = patched;
            }
        }
        Ok(())
    }

    /// Call the matching validating webhooks, all at once.
    ///
    /// # Errors
    /// The Status that refuses the request: the first failure in webhook
    /// order.
    pub(crate) async fn validate(
        &self,
        store: &Storage,
        a: &Attributes<'_>,
        object: Option<&Value>,
        warnings: &mut Vec<String>,
    ) -> Result<(), StatusError> {
        let hooks = self.matching(store, "validatingwebhookconfigurations", a, object);
        if hooks.is_empty() {
            return Ok(());
        }
        let calls = hooks.iter().map(|h| self.call(h, a, object));
        let results = futures::future::join_all(calls).await;
        let mut first = None;
        for (hook, result) in hooks.iter().zip(results) {
            let outcome = match result {
                Ok(response) => {
                    collect_warnings(&response, warnings);
                    denied(hook, &response)
                }
                Err(CallFailure(why)) => ignore_or_fail(hook, why),
            };
            if let Err(e) = outcome
                && first.is_none()
            {
                first = Some(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Post the review and read its response.
    async fn call(
        &self,
        hook: &Hook,
        a: &Attributes<'_>,
        object: Option<&Value>,
    ) -> Result<Value, CallFailure> {
        let w = &hook.webhook;
        let timeout = w["timeoutSeconds"].as_u64().unwrap_or(10).clamp(1, 30);
        let client = &w["clientConfig"];
        let Some(url) = client["url"].as_str() else {
            let service = &client["service"];
            return Err(CallFailure(format!(
                "failed to call webhook: the embedded API server cannot reach Service {}/{} (it has no Services): give the webhook a url",
                service["namespace"].as_str().unwrap_or(""),
                service["name"].as_str().unwrap_or("")
            )));
        };
        let ca = client["caBundle"]
            .as_str()
            .map(|b| base64::engine::general_purpose::STANDARD.decode(b))
            .transpose()
            .map_err(|e| CallFailure(format!("failed to call webhook: caBundle: {e}")))?
            .unwrap_or_default();
        let separator = if url.contains('?') { '&' } else { '?' };
        let url = format!("{url}{separator}timeout={timeout}s");
        let uid = uuid::Uuid::new_v4().to_string();
        let review = review(&uid, a, object);
        tracing::debug!(webhook = %hook.name(), configuration = %hook.configuration, %url, "calling admission webhook");
        let body = self
            .clients
            .post(
                &url,
                &ca,
                review.to_string().into_bytes(),
                Duration::from_secs(timeout),
            )
            .await
            .map_err(|e| CallFailure(format!("failed to call webhook: {e}")))?;
        let parsed: Value = serde_json::from_slice(&body)
            .map_err(|e| CallFailure(format!("received invalid webhook response: {e}")))?;
        let response = parsed.get("response").cloned().ok_or_else(|| {
            CallFailure("received invalid webhook response: the response is empty".into())
        })?;
        let got = response["uid"].as_str().unwrap_or("");
        if got != uid {
            return Err(CallFailure(format!(
                "received invalid webhook response: expected response.uid={uid:?}, got {got:?}"
            )));
        }
        Ok(response)
    }
}

/// The AdmissionReview for one call.
fn review(uid: &str, a: &Attributes<'_>, object: Option<&Value>) -> Value {
    let t = a.t;
    let kind = json!({"group": t.group, "version": t.version, "kind": t.kind});
    let resource = json!({"group": t.group, "version": t.version, "resource": t.plural});
    let mut request = json!({
        "uid": uid,
        "kind": kind,
        "resource": resource,
        "requestKind": kind,
        "requestResource": resource,
    });
    if let Some(sub) = a.subresource {
        request["subResource"] = json!(sub);
        request["requestSubResource"] = json!(sub);
    }
    if !a.name.is_empty() {
        request["name"] = json!(a.name);
    }
    if let Some(ns) = a.namespace {
        request["namespace"] = json!(ns);
    }
    request["operation"] = json!(a.operation.as_str());
    request["userInfo"] =
        json!({"username": "informant-dev", "groups": ["system:masters", "system:authenticated"]});
    request["object"] = object.cloned().unwrap_or(Value::Null);
    request["oldObject"] = a.old.cloned().unwrap_or(Value::Null);
    request["dryRun"] = json!(a.dry_run);
    request["options"] = a.options.clone();
    json!({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": request})
}

fn collect_warnings(response: &Value, warnings: &mut Vec<String>) {
    for w in response["warnings"].as_array().into_iter().flatten() {
        if let Some(w) = w.as_str().filter(|w| !w.is_empty()) {
            warnings.push(w.to_string());
        }
    }
}

/// A denial, as kube-apiserver words it.
fn denied(hook: &Hook, response: &Value) -> Result<(), StatusError> {
    if response["allowed"].as_bool() == Some(true) {
        return Ok(());
    }
    let status = &response["status"];
    let code = status["code"]
        .as_u64()
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| *c >= 400)
        .unwrap_or(400);
    let by = format!("admission webhook \"{}\" denied the request", hook.name());
    let message = match (status["message"].as_str(), status["reason"].as_str()) {
        (Some(m), _) if !m.is_empty() => format!("{by}: {m}"),
        (_, Some(r)) if !r.is_empty() => format!("{by}: {r}"),
        _ => format!("{by} without explanation"),
    };
    let mut e = StatusError::internal(message);
    e.code = code;
    e.reason = known_reason(status["reason"].as_str().unwrap_or(""));
    e.details = None;
    Err(e)
}

/// A reason Kubernetes defines, or none (the field is then left out).
fn known_reason(reason: &str) -> &'static str {
    const REASONS: [&str; 14] = [
        "BadRequest",
        "Unauthorized",
        "Forbidden",
        "NotFound",
        "AlreadyExists",
        "Conflict",
        "Gone",
        "Invalid",
        "ServerTimeout",
        "Timeout",
        "TooManyRequests",
        "MethodNotAllowed",
        "InternalError",
        "ServiceUnavailable",
    ];
    REASONS
        .iter()
        .find(|r| **r == reason)
        .copied()
        .unwrap_or("")
}

/// A failed call: refused under `Fail`, let through under `Ignore`.
fn ignore_or_fail(hook: &Hook, why: String) -> Result<(), StatusError> {
    let message = format!("failed calling webhook \"{}\": {why}", hook.name());
    if hook.webhook["failurePolicy"].as_str() == Some("Ignore") {
        tracing::warn!(webhook = %hook.name(), "{message}; failurePolicy Ignore lets the request through");
        return Ok(());
    }
    Err(internal(message))
}

/// `500 Internal error occurred: ...`, with the cause in the details.
fn internal(message: String) -> StatusError {
    let mut e = StatusError::internal(format!("Internal error occurred: {message}"));
    e.details = Some(json!({"causes": [{"message": message}]}));
    e
}

/// A patch that does not apply, as the real server words it (Go's
/// json-patch).
fn patch_error(ops: &json_patch::Patch, e: &json_patch::PatchError) -> String {
    use json_patch::{PatchErrorKind as K, PatchOperation as O};
    let path = e.path.to_string();
    let op = match ops.0.get(e.operation) {
        Some(O::Add(_)) => "add",
        Some(O::Remove(_)) => "remove",
        Some(O::Replace(_)) => "replace",
        Some(O::Move(_)) => "move",
        Some(O::Copy(_)) => "copy",
        Some(O::Test(_)) => "test",
        None => "patch",
    };
    match e.kind {
        K::InvalidPointer => {
            format!("{op} operation does not apply: doc is missing path: {path}: missing value")
        }
        K::TestFailed => format!("testing value {path} failed: test failed"),
        _ => format!("{op} operation does not apply: {path}: {}", e.kind),
    }
}

/// Whether one of the webhook's rules covers the request.
fn rules_match(w: &Value, a: &Attributes<'_>) -> bool {
    let has = |list: &Value, v: &str| {
        list.as_array().is_some_and(|l| {
            l.iter()
                .any(|x| x.as_str() == Some(v) || x.as_str() == Some("*"))
        })
    };
    w["rules"].as_array().into_iter().flatten().any(|r| {
        let scope_ok = match r["scope"].as_str().unwrap_or("*") {
            "Cluster" => !a.t.namespaced,
            "Namespaced" => a.t.namespaced,
            _ => true,
        };
        scope_ok
            && has(&r["operations"], a.operation.as_str())
            && has(&r["apiGroups"], &a.t.group)
            && has(&r["apiVersions"], &a.t.version)
            && r["resources"].as_array().is_some_and(|l| {
                l.iter()
                    .filter_map(Value::as_str)
                    .any(|res| resource_matches(res, &a.t.plural, a.subresource))
            })
    })
}

/// As kube-apiserver matches a rule's resource: `deployments`, `*` (every
/// resource, no subresource), `*/*` (everything), `deployments/status`,
/// `*/status`, and `deployments/*` (the resource and all its subresources).
fn resource_matches(rule: &str, plural: &str, sub: Option<&str>) -> bool {
    let (r, s) = rule.split_once('/').unwrap_or((rule, ""));
    (r == "*" || r == plural) && (s == "*" || s == sub.unwrap_or(""))
}

/// Whether the namespace and object selectors match: the object selector
/// against the new or the old object (either will do), the namespace
/// selector against the namespace's labels (a Namespace's own, for
/// namespaces themselves; cluster-scoped objects always match).
fn selectors_match(store: &Storage, w: &Value, a: &Attributes<'_>, object: Option<&Value>) -> bool {
    let parse = |v: &Value| LabelSelector::from_structured(v).ok();
    let Some(objects) = parse(&w["objectSelector"]) else {
        return false;
    };
    if !objects.is_empty()
        && ![object, a.old]
            .into_iter()
            .flatten()
            .any(|o| objects.matches_object(o))
    {
        return false;
    }
    let Some(namespaces) = parse(&w["namespaceSelector"]) else {
        return false;
    };
    if namespaces.is_empty() {
        return true;
    }
    if a.t.kind == "Namespace" && a.t.group.is_empty() {
        return [object, a.old]
            .into_iter()
            .flatten()
            .any(|o| namespaces.matches_object(o));
    }
    let Some(ns) = a.namespace else {
        return true;
    };
    let Some(nt) = store.registry().get("", "v1", "namespaces") else {
        return false;
    };
    // A namespace that does not exist: the request fails with 404 anyway.
    store
        .get(&nt, None, ns)
        .is_ok_and(|n| namespaces.matches_object(&n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_match_as_kube_apiserver_matches_them() {
        assert!(resource_matches("deployments", "deployments", None));
        assert!(resource_matches("*", "deployments", None));
        assert!(!resource_matches("*", "deployments", Some("status")));
        assert!(resource_matches("*/*", "deployments", Some("status")));
        assert!(resource_matches("*/*", "deployments", None));
        assert!(resource_matches("deployments/*", "deployments", None));
        assert!(resource_matches(
            "deployments/status",
            "deployments",
            Some("status")
        ));
        assert!(resource_matches("*/status", "pods", Some("status")));
        assert!(resource_matches(
            "deployments/*",
            "deployments",
            Some("scale")
        ));
        assert!(!resource_matches("deployments/status", "deployments", None));
        assert!(!resource_matches("pods", "deployments", None));
    }

    #[test]
    fn denials_read_as_the_real_servers() {
        let hook = Hook {
            configuration: "c".into(),
            webhook: json!({"name": "owner.example.com"}),
        };
        let e = denied(
            &hook,
            &json!({"allowed": false, "status": {"code": 403, "message": "no owner", "reason": "Forbidden"}}),
        )
        .unwrap_err();
        assert_eq!(
            e.to_status(),
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": "admission webhook \"owner.example.com\" denied the request: no owner",
                   "reason": "Forbidden", "code": 403})
        );
        let e = denied(&hook, &json!({"allowed": false})).unwrap_err();
        assert_eq!(e.code, 400);
        assert_eq!(
            e.message,
            "admission webhook \"owner.example.com\" denied the request without explanation"
        );
        assert!(e.to_status().get("reason").is_none());
    }
}
