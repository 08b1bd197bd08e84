//! The first list of a watch is a consistent read.
//!
//! kube-runtime's watcher starts a streaming list at `resourceVersion=0`,
//! which a real API server reads as "any version": it answers from its watch
//! cache as it is at that moment, which may lag etcd (by the writes of the
//! last milliseconds on a busy server, or by much more behind a load
//! balancer whose servers' caches differ). The `initial-events-end` bookmark
//! then marks a state older than writes that had already succeeded, and the
//! cache would call itself synced without them. client-go's reflector asks
//! for no version instead, which the server reads as "the most recent
//! state": it waits until its cache holds every write made before the
//! request. The watcher has no setting for it, so the informer's client
//! takes the `resourceVersion=0` off a streaming list's request; every
//! other request (a resumed watch, a paged list) passes unchanged.

use http::{Request, Uri};
use kube::client::Body;

/// `client`, with streaming lists that read the most recent state.
pub(super) fn most_recent(client: kube::Client) -> kube::Client {
    let namespace = client.default_namespace().to_string();
    let service = tower::service_fn(move |mut request: Request<Body>| {
        let client = client.clone();
        async move {
            if let Some(uri) = consistent(request.uri()) {
                *request.uri_mut() = uri;
            }
            client.send(request).await
        }
    });
    kube::Client::new(service, namespace)
}

/// The URI of a streaming list at `resourceVersion=0` without that
/// version; `None` for any other request.
fn consistent(uri: &Uri) -> Option<Uri> {
    let query = uri.query()?;
    let pairs: Vec<&str> = query.split('&').collect();
    if !pairs.contains(&"sendInitialEvents=true") || !pairs.contains(&"resourceVersion=0") {
        return None;
    }
    let kept: Vec<&str> = pairs
        .into_iter()
        .filter(|p| *p != "resourceVersion=0")
        .collect();
    let path_and_query = format!("{}?{}", uri.path(), kept.join("&"));
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(path_and_query.parse().ok()?);
    Uri::from_parts(parts).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(uri: &str) -> Option<String> {
        consistent(&uri.parse().unwrap()).map(|u| u.to_string())
    }

    #[test]
    fn a_streaming_list_at_any_version_asks_for_the_most_recent_state() {
        assert_eq!(
            rewritten(
                "/api/v1/namespaces/a/configmaps?&watch=true&timeoutSeconds=290&allowWatchBookmarks=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&resourceVersion=0"
            )
            .as_deref(),
            Some(
                "/api/v1/namespaces/a/configmaps?&watch=true&timeoutSeconds=290&allowWatchBookmarks=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
            )
        );
        assert_eq!(
            rewritten(
                "https://10.0.0.1:6443/apis/x.io/v1/widgets?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&resourceVersion=0&labelSelector=a%3Db"
            )
            .as_deref(),
            Some(
                "https://10.0.0.1:6443/apis/x.io/v1/widgets?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&labelSelector=a%3Db"
            )
        );
    }

    #[test]
    fn every_other_request_passes_unchanged() {
        for uri in [
            // A watch resumed from where it was.
            "/api/v1/configmaps?watch=true&allowWatchBookmarks=true&resourceVersion=1234",
            // A streaming list that already asks for a version.
            "/api/v1/configmaps?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&resourceVersion=1234",
            // A watch at any version that is not a streaming list.
            "/api/v1/configmaps?watch=true&resourceVersion=0",
            // A paged list; a get; no query.
            "/api/v1/configmaps?&limit=500",
            "/api/v1/namespaces/a/configmaps/b",
        ] {
            assert_eq!(rewritten(uri), None, "{uri}");
        }
    }
}
