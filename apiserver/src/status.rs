//! Kubernetes `Status` errors, with the reasons, codes and details the real
//! apiserver uses.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use crate::registry::ResourceType;

/// An error answered as a `Status` object (or, for unknown groups, the plain
/// text 404 the real server gives).
#[derive(Debug, Clone, PartialEq)]
pub struct StatusError {
    /// The HTTP status.
    pub code: u16,
    /// The `reason` field.
    pub reason: &'static str,
    /// The `message` field.
    pub message: String,
    /// The `details` field: absent, `{}` or a map.
    pub details: Option<Value>,
    /// Answer `404 page not found` as text instead of a Status.
    pub plain: bool,
    /// Extra fields for the Status's metadata (a fresh continue token on 410).
    pub metadata: Option<Value>,
}

impl StatusError {
    fn new(
        code: u16,
        reason: &'static str,
        message: impl Into<String>,
        details: Option<Value>,
    ) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details,
            plain: false,
            metadata: None,
        }
    }

    /// 404 for a path outside every served group.
    pub fn page_not_found() -> Self {
        Self {
            plain: true,
            ..Self::new(404, "NotFound", "404 page not found", None)
        }
    }

    /// 404 for an unknown resource or version in a known group.
    pub fn resource_not_found() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
            Some(json!({})),
        )
    }

    /// 404 for a missing object.
    pub fn not_found(t: &ResourceType, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", qualified(t)),
            Some(name_details(t, name)),
        )
    }

    /// 404 for a namespace that does not exist.
    pub fn namespace_not_found(name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("namespaces \"{name}\" not found"),
            Some(json!({"name": name, "kind": "namespaces"})),
        )
    }

    /// 409 for a create of an existing name.
    pub fn already_exists(t: &ResourceType, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", qualified(t)),
            Some(name_details(t, name)),
        )
    }

    /// 409 for a write with a stale resourceVersion.
    pub fn conflict(t: &ResourceType, name: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                qualified(t)
            ),
            Some(name_details(t, name)),
        )
    }

    /// 409 for a failed delete precondition.
    pub fn precondition_failed(t: &ResourceType, name: &str, what: &str) -> Self {
        let mut details = name_details(t, name);
        details["kind"] = json!(t.kind);
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": Precondition failed: {what}",
                qualified(t)
            ),
            Some(details),
        )
    }

    /// 409 for a server-side apply that conflicts with other managers.
    pub fn apply_conflict(t: &ResourceType, name: &str, conflicts: &[(String, String)]) -> Self {
        let causes: Vec<Value> = conflicts
            .iter()
            .map(|(manager, field)| json!({"reason": "FieldManagerConflict", "message": format!("conflict with \"{manager}\""), "field": field}))
            .collect();
        let list: Vec<String> = conflicts
            .iter()
            .map(|(m, f)| format!("conflict with \"{m}\": {f}"))
            .collect();
        let mut details = name_details(t, name);
        details["causes"] = json!(causes);
        Self::new(
            409,
            "Conflict",
            format!(
                "Apply failed with {} conflict{}: {}",
                conflicts.len(),
                if conflicts.len() == 1 { "" } else { "s" },
                list.join("; ")
            ),
            Some(details),
        )
    }

    /// 422 with field causes.
    pub fn invalid(t: &ResourceType, name: &str, causes: &[(&str, String)]) -> Self {
        let list: Vec<String> = causes.iter().map(|(f, m)| format!("{f}: {m}")).collect();
        let mut details = name_details(t, name);
        details["kind"] = json!(t.kind);
        details["causes"] = json!(
            causes
                .iter()
                .map(|(f, m)| json!({"reason": "FieldValueInvalid", "message": m, "field": f}))
                .collect::<Vec<_>>()
        );
        Self::new(
            422,
            "Invalid",
            format!("{} \"{name}\" is invalid: {}", t.kind, list.join(", ")),
            Some(details),
        )
    }

    /// 422 for a JSON patch that does not apply, whatever the reason (a
    /// failed `test`, a missing path): the API server answers with a generic
    /// message and empty details, so a client cannot tell the reasons apart
    /// from the answer (reference finding 39).
    pub fn patch_failed() -> Self {
        Self::new(
            422,
            "Invalid",
            "the server rejected our request due to an error in our request",
            Some(json!({})),
        )
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message, None)
    }

    /// 405.
    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
            Some(json!({})),
        )
    }

    /// 406.
    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(406, "NotAcceptable", message, Some(json!({})))
    }

    /// 410 for a list or continue from a compacted resourceVersion.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message, None)
    }

    /// 413.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit}"),
            None,
        )
    }

    /// 415.
    pub fn unsupported_media_type(message: impl Into<String>, details: bool) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            message,
            details.then(|| json!({})),
        )
    }

    /// 500 (also used by fault injection).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message, Some(json!({})))
    }

    /// 429 (fault injection).
    pub fn too_many_requests() -> Self {
        let mut e = Self::new(
            429,
            "TooManyRequests",
            "Too many requests, please try again later.",
            Some(json!({"retryAfterSeconds": 1})),
        );
        e.details = Some(json!({"retryAfterSeconds": 1}));
        e
    }

    /// The `Status` object.
    pub fn to_status(&self) -> Value {
        let mut s = json!({"kind": "Status", "apiVersion": "v1", "metadata": self.metadata.clone().unwrap_or_else(|| json!({})),
                           "status": "Failure", "message": self.message});
        // A webhook's denial may carry no reason; the field is then absent.
        if !self.reason.is_empty() {
            s["reason"] = json!(self.reason);
        }
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s["code"] = json!(self.code);
        s
    }
}

fn qualified(t: &ResourceType) -> String {
    if t.group.is_empty() {
        t.plural.clone()
    } else {
        format!("{}.{}", t.plural, t.group)
    }
}

fn name_details(t: &ResourceType, name: &str) -> Value {
    let mut d = json!({"name": name});
    if !t.group.is_empty() {
        d["group"] = json!(t.group);
    }
    d["kind"] = json!(t.plural);
    d
}

impl IntoResponse for StatusError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if self.plain {
            let mut r = (status, "404 page not found\n").into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            return r;
        }
        json_response(status, &self.to_status())
    }
}

/// An API response: compact JSON ending in a newline, `no-cache, private`,
/// as the real apiserver answers.
pub(crate) fn json_response(status: StatusCode, v: &Value) -> Response {
    let mut body = v.to_string();
    body.push('\n');
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    r
}
