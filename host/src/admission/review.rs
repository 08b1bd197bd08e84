//! `admission.k8s.io/v1` AdmissionReview on the wire: the request the API
//! server posts, read into a [`AdmissionRequest`] for the plugin, and the
//! response it expects back.
//!
//! Written here rather than with kube's `admission` types: the objects pass
//! through to the plugin as the JSON text they arrived in (borrowed raw
//! values, no tree built and serialised again per request), which keeps the
//! host's share of an admission call small; and a malformed review gets a
//! message that names what is wrong.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::plugin::admission::{
    AdmissionRequest, GroupVersionKind, GroupVersionResource, RequestOperation, UserInfo,
};

/// The apiVersion of the reviews the host reads and writes.
pub const API_VERSION: &str = "admission.k8s.io/v1";

/// Why a body is not an AdmissionReview the host can answer; the API server
/// gets a 400 with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MalformedReview {
    /// Not JSON, or not the shape of an AdmissionReview.
    #[error("the body is not an AdmissionReview: {0}")]
    Shape(String),
    /// Another apiVersion or kind.
    #[error(
        "expected apiVersion {API_VERSION} kind AdmissionReview, got apiVersion {api_version:?} kind {kind:?}"
    )]
    Version {
        /// What it said.
        api_version: String,
        /// What it said.
        kind: String,
    },
    /// No `request`.
    #[error("the AdmissionReview has no request")]
    NoRequest,
    /// A field is missing or wrong.
    #[error("request.{field}: {reason}")]
    Field {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReviewIn<'a> {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(borrow)]
    request: Option<RequestIn<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestIn<'a> {
    #[serde(default)]
    uid: String,
    kind: GroupVersionKind,
    resource: GroupVersionResource,
    #[serde(default)]
    sub_resource: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    operation: String,
    #[serde(default)]
    user_info: Option<UserInfoIn>,
    #[serde(borrow, default)]
    object: Option<&'a RawValue>,
    #[serde(borrow, default)]
    old_object: Option<&'a RawValue>,
    #[serde(default)]
    dry_run: Option<bool>,
    #[serde(borrow, default)]
    options: Option<&'a RawValue>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct UserInfoIn {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    uid: Option<String>,
    #[serde(default)]
    groups: Option<Vec<String>>,
    #[serde(default)]
    extra: Option<std::collections::BTreeMap<String, Vec<String>>>,
}

/// A raw JSON value as text, none for `null`.
fn text(v: Option<&RawValue>) -> Option<String> {
    v.map(RawValue::get)
        .filter(|s| s.trim() != "null")
        .map(str::to_string)
}

/// Read an AdmissionReview's request.
///
/// # Errors
/// [`MalformedReview`] saying what is wrong.
pub fn parse(body: &[u8]) -> Result<AdmissionRequest, MalformedReview> {
    let review: ReviewIn<'_> =
        serde_json::from_slice(body).map_err(|e| MalformedReview::Shape(e.to_string()))?;
    if review.api_version != API_VERSION || review.kind != "AdmissionReview" {
        return Err(MalformedReview::Version {
            api_version: review.api_version,
            kind: review.kind,
        });
    }
    let r = review.request.ok_or(MalformedReview::NoRequest)?;
    if r.uid.is_empty() {
        return Err(MalformedReview::Field {
            field: "uid",
            reason: "is required: the response must echo it".into(),
        });
    }
    let operation =
        RequestOperation::parse(&r.operation).ok_or_else(|| MalformedReview::Field {
            field: "operation",
            reason: format!("{:?} is not CREATE, UPDATE, DELETE or CONNECT", r.operation),
        })?;
    let object = text(r.object);
    let old_object = text(r.old_object);
    for (field, value) in [("object", &object), ("oldObject", &old_object)] {
        if value.as_deref().is_some_and(|v| !v.starts_with('{')) {
            return Err(MalformedReview::Field {
                field,
                reason: "must be a JSON object".into(),
            });
        }
    }
    if object.is_none()
        && matches!(
            operation,
            RequestOperation::Create | RequestOperation::Update
        )
    {
        return Err(MalformedReview::Field {
            field: "object",
            reason: format!("is required for {}", operation.as_str()),
        });
    }
    let user = r.user_info.unwrap_or_default();
    Ok(AdmissionRequest {
        uid: r.uid,
        operation,
        kind: r.kind,
        resource: r.resource,
        sub_resource: r.sub_resource.filter(|s| !s.is_empty()),
        namespace: r.namespace.filter(|s| !s.is_empty()),
        name: r.name.unwrap_or_default(),
        user_info: UserInfo {
            username: user.username.unwrap_or_default(),
            uid: user.uid.unwrap_or_default(),
            groups: user.groups.unwrap_or_default(),
            extra: user.extra.unwrap_or_default().into_iter().collect(),
        },
        object,
        old_object,
        dry_run: r.dry_run.unwrap_or(false),
        options: text(r.options),
    })
}

/// The `status` of a response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// The HTTP code the API server answers the client with.
    pub code: u16,
    /// What the client reads after "admission webhook ... denied the request: ".
    pub message: String,
    /// A reason (`Forbidden`, `InternalError`), or none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

/// What the host answers one review with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The request's uid.
    pub uid: String,
    /// Whether the request goes on.
    pub allowed: bool,
    /// Why not, when denied.
    pub status: Option<Status>,
    /// A JSON patch (its JSON text), when mutated.
    pub patch: Option<String>,
    /// Warnings for the client.
    pub warnings: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReviewOut<'a> {
    api_version: &'static str,
    kind: &'static str,
    response: ResponseOut<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResponseOut<'a> {
    uid: &'a str,
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'a Status>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    warnings: &'a [String],
}

impl Response {
    /// The AdmissionReview to send back, as JSON.
    pub fn to_json(&self) -> Vec<u8> {
        let patch = self
            .patch
            .as_ref()
            .map(|p| base64::engine::general_purpose::STANDARD.encode(p));
        let out = ReviewOut {
            api_version: API_VERSION,
            kind: "AdmissionReview",
            response: ResponseOut {
                uid: &self.uid,
                allowed: self.allowed,
                status: self.status.as_ref(),
                patch_type: patch.as_ref().map(|_| "JSONPatch"),
                patch,
                warnings: &self.warnings,
            },
        };
        // A struct of strings and booleans always serialises.
        serde_json::to_vec(&out).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What kube-apiserver v1.35 sent for `kubectl label cm` (recorded on
    /// the kit, trimmed).
    const UPDATE: &str = r#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"ec82e4ff-7f14-4584-b274-f518b697ddf6","kind":{"group":"","version":"v1","kind":"ConfigMap"},"resource":{"group":"","version":"v1","resource":"configmaps"},"requestKind":{"group":"","version":"v1","kind":"ConfigMap"},"requestResource":{"group":"","version":"v1","resource":"configmaps"},"name":"cm-warn","namespace":"adm-exp","operation":"UPDATE","userInfo":{"username":"admin","uid":"uid-admin","groups":["system:masters","system:authenticated"]},"object":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"cm-warn","namespace":"adm-exp","labels":{"exp":"warn","x":"y"}}},"oldObject":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"cm-warn","namespace":"adm-exp","labels":{"exp":"warn"}}},"dryRun":false,"options":{"kind":"UpdateOptions","apiVersion":"meta.k8s.io/v1","fieldManager":"kubectl-label"}}}"#;

    #[test]
    fn a_real_review_is_read_with_its_objects_verbatim() {
        let r = parse(UPDATE.as_bytes()).unwrap();
        assert_eq!(r.uid, "ec82e4ff-7f14-4584-b274-f518b697ddf6");
        assert_eq!(r.operation, RequestOperation::Update);
        assert_eq!(r.resource.resource, "configmaps");
        assert_eq!(r.namespace.as_deref(), Some("adm-exp"));
        assert_eq!(
            r.user_info.groups,
            ["system:masters", "system:authenticated"]
        );
        assert_eq!(
            r.object.as_deref(),
            Some(
                r#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"cm-warn","namespace":"adm-exp","labels":{"exp":"warn","x":"y"}}}"#
            )
        );
        assert!(r.old_object.is_some());
        assert!(r.options.as_deref().unwrap().contains("kubectl-label"));
    }

    #[test]
    fn a_delete_has_no_object_and_a_create_needs_one() {
        let delete = UPDATE
            .replace(r#""operation":"UPDATE""#, r#""operation":"DELETE""#)
            .replace(r#""object":{"kind""#, r#""object":null,"x":{"kind""#);
        let r = parse(delete.as_bytes()).unwrap();
        assert_eq!(r.object, None);
        let create = UPDATE
            .replace(r#""operation":"UPDATE""#, r#""operation":"CREATE""#)
            .replace(r#""object":{"kind""#, r#""object":null,"x":{"kind""#);
        assert_eq!(
            parse(create.as_bytes()).unwrap_err().to_string(),
            "request.object: is required for CREATE"
        );
    }

    #[test]
    fn malformed_reviews_say_what_is_wrong() {
        let cases = [
            ("not json", "the body is not an AdmissionReview"),
            (
                r#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview"}"#,
                "expected apiVersion admission.k8s.io/v1",
            ),
            (
                r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
                "has no request",
            ),
        ];
        for (body, says) in cases {
            let err = parse(body.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(says), "{body}: {err}");
        }
        let no_uid = UPDATE.replace(r#""uid":"ec82e4ff-7f14-4584-b274-f518b697ddf6","#, "");
        assert!(
            parse(no_uid.as_bytes())
                .unwrap_err()
                .to_string()
                .starts_with("request.uid")
        );
        let bad_op = UPDATE.replace(r#""operation":"UPDATE""#, r#""operation":"PATCH""#);
        assert!(
            parse(bad_op.as_bytes())
                .unwrap_err()
                .to_string()
                .starts_with("request.operation")
        );
    }

    #[test]
    fn a_response_carries_the_uid_the_patch_in_base64_and_warnings() {
        let response = Response {
            uid: "u-1".into(),
            allowed: true,
            status: None,
            patch: Some(r#"[{"op":"add","path":"/a","value":1}]"#.into()),
            warnings: vec!["careful".into()],
        };
        let v: serde_json::Value = serde_json::from_slice(&response.to_json()).unwrap();
        assert_eq!(v["apiVersion"], API_VERSION);
        assert_eq!(v["response"]["uid"], "u-1");
        assert_eq!(v["response"]["patchType"], "JSONPatch");
        let patch = base64::engine::general_purpose::STANDARD
            .decode(v["response"]["patch"].as_str().unwrap())
            .unwrap();
        assert_eq!(patch, br#"[{"op":"add","path":"/a","value":1}]"#);
        assert_eq!(v["response"]["warnings"][0], "careful");
        let denied = Response {
            uid: "u-2".into(),
            allowed: false,
            status: Some(Status {
                code: 403,
                message: "no".into(),
                reason: Some("Forbidden"),
            }),
            patch: None,
            warnings: vec![],
        };
        let v: serde_json::Value = serde_json::from_slice(&denied.to_json()).unwrap();
        assert_eq!(
            v["response"],
            serde_json::json!({"uid": "u-2", "allowed": false, "status": {"code": 403, "message": "no", "reason": "Forbidden"}})
        );
    }
}
