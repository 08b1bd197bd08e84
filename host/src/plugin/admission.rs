//! An admission call as a plugin sees it: the request the API server sent
//! (objects as JSON text, exactly as they arrived) and the plugin's verdict.
//! The contract's `admission` interface carries these; the host's admission
//! room (`crate::admission`) turns AdmissionReviews into requests and
//! verdicts into responses.

use serde::Serialize;

/// The operation the API server admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RequestOperation {
    /// An object is created (a POST, or a server-side apply of a new object).
    Create,
    /// An object is updated (a PUT, a patch, an apply of an existing object).
    Update,
    /// An object is deleted.
    Delete,
    /// A connection (exec, attach, port-forward, proxy).
    Connect,
}

impl RequestOperation {
    /// As Kubernetes writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "CREATE",
            Self::Update => "UPDATE",
            Self::Delete => "DELETE",
            Self::Connect => "CONNECT",
        }
    }

    /// Read `CREATE`, `UPDATE`, `DELETE` or `CONNECT`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "CREATE" => Self::Create,
            "UPDATE" => Self::Update,
            "DELETE" => Self::Delete,
            "CONNECT" => Self::Connect,
            _ => return None,
        })
    }
}

/// Group, version and kind: `apps`, `v1`, `Deployment`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct GroupVersionKind {
    /// The group; empty for the core group.
    #[serde(default)]
    pub group: String,
    /// The version.
    pub version: String,
    /// The kind.
    pub kind: String,
}

/// Group, version and resource: `apps`, `v1`, `deployments`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct GroupVersionResource {
    /// The group; empty for the core group.
    #[serde(default)]
    pub group: String,
    /// The version.
    pub version: String,
    /// The plural resource.
    pub resource: String,
}

/// Who makes the request, as the API server authenticated them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UserInfo {
    /// The user name: `alice`, `system:serviceaccount:ns:name`.
    pub username: String,
    /// The user's uid, if the authenticator gives one.
    pub uid: String,
    /// The groups: `system:authenticated`, `system:masters`.
    pub groups: Vec<String>,
    /// What else the authenticator says, key by key.
    pub extra: Vec<(String, Vec<String>)>,
}

/// One admission request for a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionRequest {
    /// The request's uid, echoed in the response.
    pub uid: String,
    /// What is being done.
    pub operation: RequestOperation,
    /// The object's kind.
    pub kind: GroupVersionKind,
    /// The resource addressed.
    pub resource: GroupVersionResource,
    /// The subresource addressed (`status`, `scale`), if any.
    pub sub_resource: Option<String>,
    /// The namespace, for namespaced objects.
    pub namespace: Option<String>,
    /// The object's name; empty for a create that asks the server to
    /// generate it (`generateName`).
    pub name: String,
    /// Who asks.
    pub user_info: UserInfo,
    /// The object as it would be stored, JSON; none for a delete.
    pub object: Option<String>,
    /// The stored object, JSON, for updates and deletes.
    pub old_object: Option<String>,
    /// Nothing will be stored (`dryRun=All`).
    pub dry_run: bool,
    /// The operation's options (`CreateOptions`, `UpdateOptions`,
    /// `DeleteOptions`) as JSON, if the API server sent them.
    pub options: Option<String>,
}

/// What a plugin answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    /// Let the request through.
    pub allowed: bool,
    /// Why it is denied, for the user (ignored when allowed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The HTTP status of a denial (400 to 599; 403 when none is given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    /// A JSON patch (RFC 6902) of the object, as JSON text: only from a
    /// mutating webhook that allows the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
    /// Warnings shown to the client (`kubectl` prints them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}
