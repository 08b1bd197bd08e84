//! From a plugin's verdict, or the reason there is none, to the answer the
//! API server gets: a pure function, unit-tested.
//!
//! A verdict is checked before it leaves the host: a patch must be a JSON
//! patch (RFC 6902) that applies cleanly to the object and keeps its kind,
//! and only a mutating webhook may send one, so the API server is never
//! sent a patch it would fail on. Whatever keeps the plugin from deciding
//! (it is unloaded or not synced yet, it trapped or ran out of time, a read
//! was refused, its patch is bad) is a [`Failure`], answered by the
//! webhook's failure policy with a message that names the plugin and the
//! cause.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::review::{Response, Status};
use crate::plugin::{
    CallError,
    admission::{AdmissionRequest, Verdict},
    webhook::{FailurePolicy, Mode},
};

/// The most warnings passed on from one verdict.
const MAX_WARNINGS: usize = 32;
/// The longest message or warning passed on, in bytes.
const MAX_MESSAGE: usize = 4096;

/// How one admission request ended: the `decision` label of the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Decision {
    /// Allowed as it was.
    Allowed,
    /// Allowed with a patch.
    Mutated,
    /// Denied by the plugin.
    Denied,
    /// The plugin could not decide; the failure policy answered.
    Error,
}

impl Decision {
    /// Every decision, in a stable order.
    pub const ALL: [Decision; 4] = [Self::Allowed, Self::Mutated, Self::Denied, Self::Error];

    /// As logs, metrics and the admin API write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Mutated => "mutated",
            Self::Denied => "denied",
            Self::Error => "error",
        }
    }
}

/// Why a plugin gave no usable verdict.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// No plugin of that name is loaded: it was just unloaded, and the API
    /// server has not seen its webhook go yet.
    #[error("it is not loaded (unloaded, or replaced by a plugin without a webhook)")]
    Unloaded,
    /// Its watches have not finished their first list: it would decide on
    /// a half-filled cache.
    #[error("it is not ready: its subscriptions have not synced yet")]
    NotReady,
    /// The webhook the API server called is not the one the plugin
    /// declares (validating against mutating, after a reload).
    #[error("it is not a {called} webhook")]
    WrongKind {
        /// What the API server called.
        called: Mode,
    },
    /// No instance was free within the call's budget.
    #[error("no instance was free within {0:?}")]
    Busy(Duration),
    /// The call failed: it trapped, ran out of time or memory, or returned
    /// an error.
    #[error("{0}")]
    Call(CallError),
    /// A cache read (or an action, which admission calls may not enqueue)
    /// was refused during the call: the verdict rests on what it could not
    /// see.
    #[error("{0}")]
    Refused(String),
    /// The patch is not a JSON patch, or does not apply to the object.
    #[error("its patch {0}; nothing was sent to the API server")]
    BadPatch(String),
}

impl Failure {
    /// A short name for the cause, as logs and the admin API write it: the
    /// call outcome (`trap`, `timeout`...) for a failed call.
    pub fn cause(&self) -> &'static str {
        match self {
            Self::Unloaded => "unloaded",
            Self::NotReady => "not_ready",
            Self::WrongKind { .. } => "wrong_kind",
            Self::Busy(_) => "busy",
            Self::Call(e) => e.outcome().as_str(),
            Self::Refused(_) => "refused",
            Self::BadPatch(_) => "bad_patch",
        }
    }
}

/// What the API server gets, and how to count it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The response.
    pub response: Response,
    /// The decision, for metrics.
    pub decision: Decision,
    /// Why the plugin could not decide, if it could not.
    pub failure: Option<Failure>,
}

/// The webhook's side of a decision: its plugin, kind and failure policy.
#[derive(Debug, Clone, Copy)]
pub struct Judge<'a> {
    /// The plugin's name.
    pub plugin: &'a str,
    /// What the API server called.
    pub kind: Mode,
    /// What to do when the plugin cannot decide.
    pub failure_policy: FailurePolicy,
}

fn cut(mut s: String) -> String {
    if s.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// The reason Kubernetes gives a status code.
fn reason(code: u16) -> Option<&'static str> {
    Some(match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        410 => "Gone",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => return None,
    })
}

impl Judge<'_> {
    /// The answer to `request`, from the plugin's verdict or the failure
    /// that kept it from giving one.
    pub fn answer(&self, request: &AdmissionRequest, result: Result<Verdict, Failure>) -> Answer {
        let verdict = match result.and_then(|v| self.check(request, v)) {
            Ok(v) => v,
            Err(failure) => return self.failed(request, failure),
        };
        let warnings: Vec<String> = verdict
            .warnings
            .into_iter()
            .filter(|w| !w.trim().is_empty())
            .take(MAX_WARNINGS)
            .map(cut)
            .collect();
        let uid = request.uid.clone();
        if !verdict.allowed {
            let code = verdict
                .code
                .filter(|c| (400..=599).contains(c))
                .unwrap_or(403);
            let message = verdict
                .message
                .filter(|m| !m.trim().is_empty())
                .map_or_else(|| format!("denied by plugin {}", self.plugin), cut);
            return Answer {
                response: Response {
                    uid,
                    allowed: false,
                    status: Some(Status {
                        code,
                        message,
                        reason: reason(code),
                    }),
                    patch: None,
                    warnings,
                },
                decision: Decision::Denied,
                failure: None,
            };
        }
        let decision = if verdict.patch.is_some() {
            Decision::Mutated
        } else {
            Decision::Allowed
        };
        Answer {
            response: Response {
                uid,
                allowed: true,
                status: None,
                patch: verdict.patch,
                warnings,
            },
            decision,
            failure: None,
        }
    }

    /// A verdict the API server can use: its patch checked against the
    /// object and normalised (an empty patch is no patch).
    fn check(&self, request: &AdmissionRequest, mut verdict: Verdict) -> Result<Verdict, Failure> {
        let Some(text) = verdict.patch.take() else {
            return Ok(verdict);
        };
        if !verdict.allowed {
            // A denial's patch means nothing; it is dropped, not an error.
            return Ok(verdict);
        }
        let patch: json_patch::Patch = serde_json::from_str(&text)
            .map_err(|e| Failure::BadPatch(format!("is not a JSON patch (RFC 6902): {e}")))?;
        if patch.0.is_empty() {
            return Ok(verdict);
        }
        if self.kind == Mode::Validating {
            return Err(Failure::BadPatch(
                "comes from a validating webhook, which may not change the object".into(),
            ));
        }
        let Some(object) = request.object.as_deref() else {
            return Err(Failure::BadPatch(format!(
                "has no object to apply to: a {} has none",
                request.operation.as_str()
            )));
        };
        let mut doc: Value = serde_json::from_str(object).map_err(|e| {
            Failure::BadPatch(format!("cannot be checked: the object is not JSON: {e}"))
        })?;
        let before = (doc.get("apiVersion").cloned(), doc.get("kind").cloned());
        json_patch::patch(&mut doc, &patch)
            .map_err(|e| Failure::BadPatch(format!("does not apply to the object: {e}")))?;
        if !doc.is_object() {
            return Err(Failure::BadPatch(
                "would turn the object into something else than a JSON object".into(),
            ));
        }
        if (doc.get("apiVersion").cloned(), doc.get("kind").cloned()) != before {
            return Err(Failure::BadPatch(
                "changes the object's apiVersion or kind".into(),
            ));
        }
        verdict.patch = Some(serde_json::to_string(&patch).unwrap_or(text));
        Ok(verdict)
    }

    /// The failure policy's answer.
    fn failed(&self, request: &AdmissionRequest, failure: Failure) -> Answer {
        let cause = format!(
            "plugin {} could not decide ({}): {failure}",
            self.plugin,
            failure.cause()
        );
        let response = match self.failure_policy {
            FailurePolicy::Fail => Response {
                uid: request.uid.clone(),
                allowed: false,
                status: Some(Status {
                    code: 500,
                    message: cut(format!("{cause}; failurePolicy Fail refuses the request")),
                    reason: Some("InternalError"),
                }),
                patch: None,
                warnings: Vec::new(),
            },
            FailurePolicy::Ignore => Response {
                uid: request.uid.clone(),
                allowed: true,
                status: None,
                patch: None,
                warnings: vec![cut(format!("{cause}; allowed by failurePolicy Ignore"))],
            },
        };
        Answer {
            response,
            decision: Decision::Error,
            failure: Some(failure),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::admission::{
        GroupVersionKind, GroupVersionResource, RequestOperation, UserInfo,
    };

    fn request(operation: RequestOperation) -> AdmissionRequest {
        AdmissionRequest {
            uid: "uid-1".into(),
            operation,
            kind: GroupVersionKind {
                group: "apps".into(),
                version: "v1".into(),
                kind: "Deployment".into(),
            },
            resource: GroupVersionResource {
                group: "apps".into(),
                version: "v1".into(),
                resource: "deployments".into(),
            },
            sub_resource: None,
            namespace: Some("shop".into()),
            name: "web".into(),
            user_info: UserInfo::default(),
            object: (operation != RequestOperation::Delete).then(|| {
                r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},"spec":{"template":{"spec":{"containers":[{"name":"c"}]}}}}"#.into()
            }),
            old_object: None,
            dry_run: false,
            options: None,
        }
    }

    fn judge(kind: Mode, failure_policy: FailurePolicy) -> Judge<'static> {
        Judge {
            plugin: "p",
            kind,
            failure_policy,
        }
    }

    fn allow_with(patch: &str) -> Verdict {
        Verdict {
            allowed: true,
            patch: Some(patch.into()),
            ..Verdict::default()
        }
    }

    #[test]
    fn an_allowed_request_echoes_the_uid() {
        let a = judge(Mode::Validating, FailurePolicy::Fail).answer(
            &request(RequestOperation::Create),
            Ok(Verdict {
                allowed: true,
                warnings: vec!["heads up".into(), " ".into()],
                ..Verdict::default()
            }),
        );
        assert_eq!(a.decision, Decision::Allowed);
        assert_eq!(a.response.uid, "uid-1");
        assert!(a.response.allowed);
        assert_eq!(a.response.warnings, ["heads up"]);
    }

    #[test]
    fn a_denial_keeps_its_message_and_a_sane_code() {
        let j = judge(Mode::Validating, FailurePolicy::Fail);
        let deny = |code| Verdict {
            allowed: false,
            message: Some("Deployment shop/web has no owner label".into()),
            code,
            ..Verdict::default()
        };
        let a = j.answer(&request(RequestOperation::Create), Ok(deny(None)));
        assert_eq!(a.decision, Decision::Denied);
        let status = a.response.status.unwrap();
        assert_eq!((status.code, status.reason), (403, Some("Forbidden")));
        assert_eq!(status.message, "Deployment shop/web has no owner label");
        let a = j.answer(&request(RequestOperation::Create), Ok(deny(Some(422))));
        assert_eq!(a.response.status.unwrap().code, 422);
        let a = j.answer(&request(RequestOperation::Create), Ok(deny(Some(200))));
        assert_eq!(a.response.status.unwrap().code, 403);
        let bare = j.answer(&request(RequestOperation::Create), Ok(Verdict::default()));
        assert_eq!(bare.response.status.unwrap().message, "denied by plugin p");
    }

    #[test]
    fn a_good_patch_from_a_mutating_webhook_is_passed_on() {
        let a = judge(Mode::Mutating, FailurePolicy::Fail).answer(
            &request(RequestOperation::Create),
            Ok(allow_with(
                r#"[{"op":"add","path":"/spec/template/spec/containers/0/resources","value":{"requests":{"cpu":"10m"}}}]"#,
            )),
        );
        assert_eq!(a.decision, Decision::Mutated, "{:?}", a.failure);
        let patch: Value = serde_json::from_str(a.response.patch.as_deref().unwrap()).unwrap();
        assert_eq!(patch[0]["op"], "add");
        let empty = judge(Mode::Validating, FailurePolicy::Fail)
            .answer(&request(RequestOperation::Create), Ok(allow_with("[]")));
        assert_eq!(empty.decision, Decision::Allowed);
        assert_eq!(empty.response.patch, None);
    }

    #[test]
    fn bad_patches_never_reach_the_api_server() {
        let cases = [
            (
                Mode::Mutating,
                RequestOperation::Create,
                "{not json",
                "is not a JSON patch",
            ),
            (
                Mode::Mutating,
                RequestOperation::Create,
                r#"[{"op":"frobnicate","path":"/a"}]"#,
                "is not a JSON patch",
            ),
            (
                Mode::Mutating,
                RequestOperation::Create,
                r#"[{"op":"replace","path":"/nope/nothing","value":1}]"#,
                "does not apply to the object",
            ),
            (
                Mode::Mutating,
                RequestOperation::Create,
                r#"[{"op":"replace","path":"/kind","value":"Pod"}]"#,
                "apiVersion or kind",
            ),
            (
                Mode::Mutating,
                RequestOperation::Delete,
                r#"[{"op":"add","path":"/a","value":1}]"#,
                "a DELETE has none",
            ),
            (
                Mode::Validating,
                RequestOperation::Create,
                r#"[{"op":"add","path":"/a","value":1}]"#,
                "validating webhook",
            ),
        ];
        for (kind, op, patch, says) in cases {
            let a = judge(kind, FailurePolicy::Fail).answer(&request(op), Ok(allow_with(patch)));
            assert_eq!(a.decision, Decision::Error, "{patch}");
            assert!(!a.response.allowed);
            assert_eq!(a.response.patch, None);
            let message = a.response.status.unwrap().message;
            assert!(message.contains(says), "{patch}: {message}");
            assert!(
                message.starts_with("plugin p could not decide (bad_patch)"),
                "{message}"
            );
        }
    }

    #[test]
    fn failures_follow_the_failure_policy() {
        let failure = Failure::Call(CallError::Timeout {
            deadline: Duration::from_millis(100),
        });
        let fail = judge(Mode::Validating, FailurePolicy::Fail)
            .answer(&request(RequestOperation::Create), Err(failure.clone()));
        assert_eq!(fail.decision, Decision::Error);
        assert!(!fail.response.allowed);
        let status = fail.response.status.unwrap();
        assert_eq!(status.code, 500);
        assert_eq!(
            status.message,
            "plugin p could not decide (timeout): the call ran past its 100ms deadline and was stopped; failurePolicy Fail refuses the request"
        );
        let ignore = judge(Mode::Validating, FailurePolicy::Ignore)
            .answer(&request(RequestOperation::Create), Err(failure));
        assert_eq!(ignore.decision, Decision::Error);
        assert!(ignore.response.allowed);
        assert!(ignore.response.warnings[0].ends_with("allowed by failurePolicy Ignore"));
        let unloaded = judge(Mode::Mutating, FailurePolicy::Fail)
            .answer(&request(RequestOperation::Update), Err(Failure::Unloaded));
        assert!(
            unloaded
                .response
                .status
                .unwrap()
                .message
                .starts_with("plugin p could not decide (unloaded): it is not loaded")
        );
    }
}
