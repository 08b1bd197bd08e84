//! Watch streams: initial events, resume from a resourceVersion, selector
//! transitions, bookmarks, timeouts, 410 for compacted history, and faults.

use std::{convert::Infallible, sync::Arc, time::Duration};

use axum::body::{Body, Bytes};
use serde_json::{Value, json};
use tokio::sync::{
    broadcast::{
        self,
        error::{RecvError, TryRecvError},
    },
    mpsc,
};
use tokio_stream::{StreamExt, wrappers::ReceiverStream};

use crate::{
    faults::Faults,
    registry::ResourceType,
    storage::{Change, ChangeType, Storage, selected},
};
use informant_k8s::selector::{FieldSelector, LabelSelector};

/// What a watch request asked for.
#[derive(Debug, Clone)]
pub struct WatchParams {
    /// Only this namespace.
    pub namespace: Option<String>,
    /// Label selector.
    pub labels: LabelSelector,
    /// Field selector.
    pub fields: FieldSelector,
    /// Start after this RV; none or 0 starts with the current objects.
    pub resource_version: Option<u64>,
    /// Send the current objects first (`sendInitialEvents=true`).
    pub send_initial_events: bool,
    /// Send bookmarks.
    pub bookmarks: bool,
    /// End the stream after this long.
    pub timeout: Duration,
    /// Period of bookmarks.
    pub bookmark_interval: Duration,
}

/// One watch event, `{"type":...,"object":...}` in that order, as the API
/// server writes it (Go's field order; a JSON map would sort `object`
/// first). Clients may rely on it: a decoder that reads `type` first can
/// take `object` as it comes instead of buffering it.
fn line(event_type: &str, object: &Value) -> Bytes {
    let mut text = format!(r#"{{"type":{},"object":"#, json!(event_type));
    text.push_str(&object.to_string());
    text.push_str("}\n");
    Bytes::from(text)
}

fn bookmark(t: &ResourceType, rv: u64, initial_end: bool) -> Bytes {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    line(
        "BOOKMARK",
        &json!({"kind": t.kind, "apiVersion": t.api_version(), "metadata": metadata}),
    )
}

/// The response body of a watch.
pub fn watch(
    store: Arc<Storage>,
    faults: Arc<Faults>,
    t: Arc<ResourceType>,
    params: WatchParams,
) -> Body {
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    tokio::spawn(async move {
        run(&store, &faults, &t, &params, &tx).await;
    });
    Body::from_stream(ReceiverStream::new(rx).map(Ok::<_, Infallible>))
}

async fn run(
    store: &Storage,
    faults: &Faults,
    t: &ResourceType,
    p: &WatchParams,
    tx: &mpsc::Sender<Bytes>,
) {
    let mut drops = faults.drops();
    drops.mark_unchanged();
    let in_scope = |ns: &str| p.namespace.as_deref().is_none_or(|n| n == ns);
    let initial = p.send_initial_events || p.resource_version.is_none_or(|rv| rv == 0);
    // A watch at "any version" is served by the watch cache, which may lag
    // the store; at no version it is a consistent read.
    let lagging = if initial && p.resource_version == Some(0) {
        faults.stale_cache()
    } else {
        None
    };
    let resumed = match (initial, lagging) {
        (true, None) => {
            let (items, rv, changes) = store.snapshot(t, p.namespace.as_deref());
            if !send_initial(t, p, &items, rv, tx).await {
                return;
            }
            Some((rv, changes))
        }
        (true, Some(cache)) => {
            let items = cache.items(t, p.namespace.as_deref());
            if !send_initial(t, p, &items, cache.rv, tx).await {
                return;
            }
            resume(store, t, p, cache.rv, &in_scope, tx).await
        }
        (false, _) => resume(store, t, p, p.resource_version.unwrap_or(0), &in_scope, tx).await,
    };
    let Some((mut last_rv, mut changes)) = resumed else {
        return;
    };
    let deadline = tokio::time::sleep(p.timeout);
    tokio::pin!(deadline);
    let mut ticker = tokio::time::interval(p.bookmark_interval);
    ticker.tick().await;
    // A stream that saw a stall stays silent for good, like a half-open
    // connection: only the client's read timeout gets it out.
    let mut half_open = false;
    loop {
        half_open |= faults.stalled();
        tokio::select! {
            // A drop or the timeout ends the stream before anything else is sent.
            biased;
            _ = drops.changed() => return,
            () = &mut deadline => return,
            _ = ticker.tick() => {
                if p.bookmarks && !half_open {
                    // Every change up to `current` is already in the channel:
                    // send those first, or the bookmark would claim RVs this
                    // client never saw, and it would resume past them.
                    let current = store.resource_version();
                    loop {
                        let c = match changes.try_recv() {
                            Ok(c) => c,
                            Err(TryRecvError::Empty) => break,
                            Err(_) => return,
                        };
                        let out = forward(&c, t, p, &in_scope, &mut last_rv, &mut half_open, faults);
                        if let Some(bytes) = out
                            && tx.send(bytes).await.is_err() {
                                return;
                            }
                    }
                    if half_open {
                        continue;
                    }
                    last_rv = last_rv.max(current);
                    if tx.send(bookmark(t, last_rv, false)).await.is_err() {
                        return;
                    }
                }
            }
            change = changes.recv() => match change {
                Ok(c) => {
                    let out = forward(&c, t, p, &in_scope, &mut last_rv, &mut half_open, faults);
                    if let Some(bytes) = out
                        && tx.send(bytes).await.is_err() {
                            return;
                        }
                }
                // A watcher that fell behind is closed, as the real server does;
                // the client resumes from the last RV it saw.
                Err(RecvError::Lagged(_) | RecvError::Closed) => return,
            },
        }
    }
}

/// The initial events: `items` that pass the selectors as added, then
/// (if asked for) the bookmark that ends them at `rv`. False once the
/// client is gone.
async fn send_initial(
    t: &ResourceType,
    p: &WatchParams,
    items: &[Arc<Value>],
    rv: u64,
    tx: &mpsc::Sender<Bytes>,
) -> bool {
    for item in items.iter().filter(|o| selected(o, &p.labels, &p.fields)) {
        if tx.send(line("ADDED", item)).await.is_err() {
            return false;
        }
    }
    !p.bookmarks || tx.send(bookmark(t, rv, true)).await.is_ok()
}

/// The changes of `t` after `rv`, sent; then the last resourceVersion sent
/// and the live changes to go on with. None once the client is gone or
/// told that `rv` is compacted away (410).
async fn resume(
    store: &Storage,
    t: &ResourceType,
    p: &WatchParams,
    rv: u64,
    in_scope: &impl Fn(&str) -> bool,
    tx: &mpsc::Sender<Bytes>,
) -> Option<(u64, broadcast::Receiver<Arc<Change>>)> {
    match store.changes_since(t, rv) {
        Err(compacted) => {
            let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": format!("too old resource version: {rv} ({compacted})"), "reason": "Expired", "code": 410});
            let _ = tx.send(line("ERROR", &status)).await;
            None
        }
        Ok((backlog, changes)) => {
            let mut last = rv;
            for c in backlog {
                if let Some(bytes) = render(&c, p, in_scope)
                    && tx.send(bytes).await.is_err()
                {
                    return None;
                }
                last = c.rv;
            }
            Some((last, changes))
        }
    }
}

/// What one change means for this watch: nothing (another resource, already
/// seen, or the stream is stalled), or the bytes to send.
fn forward(
    c: &Change,
    t: &ResourceType,
    p: &WatchParams,
    in_scope: &impl Fn(&str) -> bool,
    last_rv: &mut u64,
    half_open: &mut bool,
    faults: &Faults,
) -> Option<Bytes> {
    if c.rv <= *last_rv || c.group != t.group || c.plural != t.plural {
        return None;
    }
    *last_rv = c.rv;
    if *half_open || faults.stalled() {
        *half_open = true;
        return None;
    }
    render(c, p, in_scope)
}

/// The event a change becomes for this watch, with selector transitions: an
/// object that starts matching is ADDED, one that stops matching is DELETED
/// (with its previous state at the new RV).
fn render(c: &Change, p: &WatchParams, in_scope: &impl Fn(&str) -> bool) -> Option<Bytes> {
    if !in_scope(&c.namespace) {
        return None;
    }
    let now = selected(&c.object, &p.labels, &p.fields);
    let before = c
        .old
        .as_deref()
        .is_some_and(|o| selected(o, &p.labels, &p.fields));
    match c.change {
        ChangeType::Added => now.then(|| line("ADDED", &c.object)),
        ChangeType::Deleted => (now || before).then(|| line("DELETED", &c.object)),
        ChangeType::Modified => match (before, now) {
            (true, true) => Some(line("MODIFIED", &c.object)),
            (false, true) => Some(line("ADDED", &c.object)),
            (true, false) => {
                let mut old = c.old.as_deref().cloned().unwrap_or(Value::Null);
                old["metadata"]["resourceVersion"] =
                    c.object["metadata"]["resourceVersion"].clone();
                Some(line("DELETED", &old))
            }
            (false, false) => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_names_its_type_before_its_object_as_the_api_server_does() {
        let l = line(
            "ADDED",
            &json!({"kind": "ConfigMap", "metadata": {"name": "a"}}),
        );
        assert_eq!(
            std::str::from_utf8(&l).unwrap(),
            "{\"type\":\"ADDED\",\"object\":{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"a\"}}}\n"
        );
    }
}
