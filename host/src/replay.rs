//! Offline replay: feed recorded events to a plugin and collect what it does.
//!
//! The events file is JSON Lines. Each line is a watch event as
//! `kubectl get -w -o json --output-watch-events` prints it
//! (`{"type": "ADDED", "object": {...}}`), optionally with `oldObject`,
//! `initial`, `finalStateUnknown` and, for `SYNCED`, `subscription`.
//! Like the informer, replay updates the cache with each event before the
//! plugin sees it, so the plugin reads a cache consistent with the event.
//!
//! A plugin's admission webhook replays the same way from AdmissionReviews
//! ([`reviews`]): one review per line, as the API server posts it, and the
//! answer the host would send back, decided exactly as the host decides it
//! (the patch checked, the failure policy applied).

use std::{io::BufRead, sync::Arc};

use serde::Deserialize;
use serde_json::Value;

use crate::{
    action::Action,
    cache::Store,
    plugin::{CallError, Event, Plugin},
    vocabulary::{EventType, KindKey, ObjectKey},
};

/// A line of the events file that cannot be replayed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The line is not JSON of the expected shape.
    #[error("line {line}: {reason}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The file could not be read.
    #[error("reading events")]
    Io(#[from] std::io::Error),
    /// An objects file could not be read or put in the cache.
    #[error("seeding the cache from {}: {reason}", path.display())]
    Objects {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Put the objects of a YAML or JSON file (single objects or lists) in the
/// cache, as the informers would have listed them.
///
/// # Errors
/// [`Error::Objects`] naming the file and what is wrong with it.
pub fn seed(cache: &Store, path: &std::path::Path) -> Result<(), Error> {
    let bad = |reason: String| Error::Objects {
        path: path.to_path_buf(),
        reason,
    };
    for object in informant_k8s::manifests::read_objects(path).map_err(|e| bad(e.to_string()))? {
        cache.upsert(object).map_err(|e| bad(e.to_string()))?;
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Line {
    #[serde(rename = "type")]
    event_type: String,
    #[serde(default)]
    object: Option<Value>,
    #[serde(default)]
    old_object: Option<Value>,
    #[serde(default)]
    initial: bool,
    #[serde(default)]
    final_state_unknown: bool,
    #[serde(default)]
    subscription: Option<u32>,
}

/// What happened to one line of the events file.
#[derive(Debug)]
pub enum Outcome {
    /// The plugin handled the event and committed these actions.
    Committed {
        /// 1-based line number.
        line: usize,
        /// The committed actions.
        actions: Vec<Action>,
    },
    /// The call failed; its actions were discarded.
    Failed {
        /// 1-based line number.
        line: usize,
        /// What the event was about, for the report.
        object: String,
        /// How the call failed.
        error: CallError,
    },
    /// No subscription of the plugin wants this event.
    Unmatched {
        /// 1-based line number.
        line: usize,
        /// What the event was about.
        object: String,
    },
}

/// Replay every line of `events` through `plugin`, updating `cache` first,
/// and report each outcome to `report` as it happens.
///
/// # Errors
/// [`Error`] for a line that is not a valid event; lines before it have
/// already been replayed and reported.
pub fn replay(
    plugin: &Plugin,
    cache: &Store,
    events: impl BufRead,
    mut report: impl FnMut(Outcome),
) -> Result<(), Error> {
    for (i, text) in events.lines().enumerate() {
        let line = i + 1;
        let text = text?;
        if text.trim().is_empty() {
            continue;
        }
        let bad = |reason: String| Error::Line { line, reason };
        let parsed: Line = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let event_type = EventType::parse(&parsed.event_type).ok_or_else(|| {
            bad(format!(
                "unknown type {:?}; use ADDED, MODIFIED, DELETED, SYNCED or RESYNC",
                parsed.event_type
            ))
        })?;

        if event_type == EventType::Synced {
            let subscriptions = &plugin.manifest().subscriptions;
            let count = u32::try_from(subscriptions.len()).unwrap_or(u32::MAX);
            let wanted = |s: &u32| {
                subscriptions[*s as usize]
                    .event_types
                    .contains(&EventType::Synced)
            };
            let targets: Vec<u32> = match parsed.subscription {
                Some(s) if s < count => vec![s],
                Some(s) => {
                    return Err(bad(format!(
                        "subscription {s} does not exist; the plugin has {count}"
                    )));
                }
                None => (0..count).collect(),
            };
            let targets: Vec<u32> = targets.into_iter().filter(wanted).collect();
            if targets.is_empty() {
                report(Outcome::Unmatched {
                    line,
                    object: "synced".into(),
                });
            }
            for subscription in targets {
                let event = Event {
                    event_type,
                    subscription,
                    initial: false,
                    final_state_unknown: false,
                    object: None,
                    old_object: None,
                    merged: 0,
                };
                report(call(plugin, &event, line, "synced".into()));
            }
            continue;
        }

        let object = parsed
            .object
            .ok_or_else(|| bad("the event has no object".into()))?;
        let label = describe(&object);
        let (new, old) = match event_type {
            EventType::Deleted => {
                let kind = kind_of(&object)
                    .ok_or_else(|| bad("the object has no apiVersion or kind".into()))?;
                let key =
                    key_of(&object).ok_or_else(|| bad("the object has no metadata.name".into()))?;
                cache.remove(&kind, &key);
                (Arc::new(cache.prepare(object)), None)
            }
            _ => {
                let upsert = cache
                    .upsert(object.clone())
                    .map_err(|e| bad(e.to_string()))?;
                let old = parsed
                    .old_object
                    .map(|o| Arc::new(cache.prepare(o)))
                    .or(upsert.old);
                (upsert.new, old)
            }
        };
        let value = new.to_value();
        let subscriptions: Vec<usize> = plugin
            .manifest()
            .matching_subscriptions(event_type, &value)
            .collect();
        if subscriptions.is_empty() {
            report(Outcome::Unmatched {
                line,
                object: label,
            });
            continue;
        }
        for s in subscriptions {
            let wants_old =
                plugin.manifest().subscriptions[s].old_object && event_type == EventType::Modified;
            let event = Event {
                event_type,
                subscription: u32::try_from(s).unwrap_or(u32::MAX),
                initial: parsed.initial,
                final_state_unknown: parsed.final_state_unknown,
                object: Some(new.clone()),
                old_object: if wants_old { old.clone() } else { None },
                merged: 0,
            };
            report(call(plugin, &event, line, label.clone()));
        }
    }
    Ok(())
}

fn call(plugin: &Plugin, event: &Event, line: usize, object: String) -> Outcome {
    match plugin.handle(event) {
        Ok(actions) => Outcome::Committed { line, actions },
        Err(error) => Outcome::Failed {
            line,
            object,
            error,
        },
    }
}

fn kind_of(v: &Value) -> Option<KindKey> {
    Some(KindKey::new(
        v.get("apiVersion")?.as_str()?,
        v.get("kind")?.as_str()?,
    ))
}

fn key_of(v: &Value) -> Option<ObjectKey> {
    let meta = v.get("metadata")?;
    Some(ObjectKey::new(
        meta.get("namespace")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty()),
        meta.get("name")?.as_str()?,
    ))
}

/// The object as the host's log names it (`object.ref`): `v1/ConfigMap ns/name`.
fn describe(v: &Value) -> String {
    let kind = match kind_of(v) {
        Some(kind) => kind.to_string(),
        None => v
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string(),
    };
    match key_of(v) {
        Some(key) => format!("{kind} {key}"),
        None => kind,
    }
}

/// An action as `informant replay` prints it: the action with the events
/// file's line number.
pub fn action_line(line: usize, action: &Action) -> Value {
    let mut v = serde_json::to_value(action).unwrap_or(Value::Null);
    if let Some(map) = v.as_object_mut() {
        map.insert("event".into(), Value::from(line));
    }
    v
}

/// What the host answered one review of the file.
#[derive(Debug)]
pub struct Reviewed {
    /// 1-based line number.
    pub line: usize,
    /// The request, as the host names it in logs: `CREATE apps/v1
    /// deployments shop/web`.
    pub request: String,
    /// The answer.
    pub answer: crate::admission::decision::Answer,
}

/// Replay every AdmissionReview of `reviews` (one per line, or
/// pretty-printed one after the other) through `plugin`'s webhook, and
/// report each answer. The cache is as the caller seeded it.
///
/// # Errors
/// [`Error`] for a line that is not an AdmissionReview, or a plugin that
/// serves no webhook; lines before it have already been reported.
pub fn reviews(
    plugin: &Plugin,
    reviews: impl BufRead,
    mut report: impl FnMut(Reviewed),
) -> Result<(), Error> {
    use crate::admission::decision::{Failure, Judge};
    let Some(webhook) = plugin.manifest().admission.as_ref() else {
        return Err(Error::Line {
            line: 0,
            reason: format!(
                "plugin {} declares no admission webhook (manifest.admission)",
                plugin.name()
            ),
        });
    };
    let judge = Judge {
        plugin: plugin.name(),
        kind: webhook.mode,
        failure_policy: webhook.failure_policy,
    };
    // The host's budget: half the webhook's timeout, or the plugin's own
    // deadline if shorter.
    let budget = std::time::Duration::from_secs(u64::from(webhook.timeout_seconds)) / 2;
    let mut text = String::new();
    let mut reviews = reviews;
    reviews.read_to_string(&mut text)?;
    let mut stream =
        serde_json::Deserializer::from_str(&text).into_iter::<&serde_json::value::RawValue>();
    loop {
        // The line a review starts on: after the whitespace before it.
        let offset = stream.byte_offset();
        let skipped = text[offset..].len() - text[offset..].trim_start().len();
        let line = text[..offset + skipped].matches('\n').count() + 1;
        let Some(raw) = stream.next() else { break };
        let bad = |reason: String| Error::Line { line, reason };
        let raw = raw.map_err(|e| bad(format!("not JSON: {e}")))?;
        let request = crate::admission::review::parse(raw.get().as_bytes())
            .map_err(|e| bad(e.to_string()))?;
        let result = match plugin.admit(&request, budget) {
            Ok(a) => match a.refused {
                Some(refused) => Err(Failure::Refused(refused)),
                None => Ok(a.verdict),
            },
            Err(e) => Err(Failure::Call(e)),
        };
        report(Reviewed {
            line,
            request: crate::admission::webhooks::describe(&request),
            answer: judge.answer(&request, result),
        });
    }
    Ok(())
}

/// A review's answer as `informant replay --reviews` prints it: the line,
/// the decision, and the response the API server would get, its patch as
/// JSON rather than base64.
pub fn review_line(r: &Reviewed) -> Value {
    let response = &r.answer.response;
    let mut v = serde_json::json!({
        "review": r.line,
        "uid": response.uid,
        "decision": r.answer.decision.as_str(),
        "allowed": response.allowed,
    });
    if let Some(status) = &response.status {
        v["status"] = serde_json::to_value(status).unwrap_or(Value::Null);
    }
    if let Some(patch) = &response.patch {
        v["patch"] = serde_json::from_str(patch).unwrap_or(Value::Null);
    }
    if !response.warnings.is_empty() {
        v["warnings"] = serde_json::json!(response.warnings);
    }
    v
}
