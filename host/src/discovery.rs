//! Resolving what a subscription names to a served resource, through the
//! API server's discovery.

use kube::api::ApiResource;

/// What a subscription resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The resource, as the watcher needs it.
    pub resource: ApiResource,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
}

/// Discovery could not be asked.
#[derive(Debug, thiserror::Error)]
#[error("discovery of {api_version} failed: {cause}")]
pub struct Error {
    /// The group version asked about.
    pub api_version: String,
    /// Why.
    pub cause: kube::Error,
}

/// Resolve `name` in `api_version`: a kind (`Deployment`), a plural
/// (`deployments`), a singular or a short name (`deploy`). `Ok(None)` means
/// the server does not serve it (yet): the subscription is pending, for
/// instance until its CRD is created.
///
/// # Errors
/// [`Error`] when discovery itself fails (not for a missing group or kind).
pub async fn resolve(
    client: &kube::Client,
    api_version: &str,
    name: &str,
) -> Result<Option<Resolved>, Error> {
    let listed = if api_version.contains('/') {
        client.list_api_group_resources(api_version).await
    } else {
        client.list_core_api_resources(api_version).await
    };
    let list = match listed {
        Ok(list) => list,
        Err(kube::Error::Api(status)) if status.code == 404 => return Ok(None),
        Err(cause) => {
            return Err(Error {
                api_version: api_version.into(),
                cause,
            });
        }
    };
    let lower = name.to_ascii_lowercase();
    let found = list
        .resources
        .into_iter()
        .filter(|r| !r.name.contains('/'))
        .find(|r| {
            r.kind == name
                || r.name == lower
                || r.singular_name == lower
                || r.short_names.as_ref().is_some_and(|s| s.contains(&lower))
        });
    Ok(found.map(|r| {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        Resolved {
            resource: ApiResource {
                group: group.into(),
                version: version.into(),
                api_version: api_version.into(),
                kind: r.kind,
                plural: r.name,
            },
            namespaced: r.namespaced,
        }
    }))
}
