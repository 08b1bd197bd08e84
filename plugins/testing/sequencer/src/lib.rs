//! sequencer: a test fixture for dispatch order. Each ConfigMap labelled
//! `informant.test/sequence` carries a counter in `data.seq`; the plugin logs
//! `sequence <namespace>/<name> <seq> <delivery>[ initial]` for every event it handles,
//! so a test can check per-object order and what the plugin saw last.
//!
//! `informant.test/sequence=latest` objects come through a latest-state
//! subscription, `=every` ones through an every-event subscription; the
//! `wide` build adds `=wide`.
//!
//! Settings `{"namespace": "ns"}` confine the reports to one namespace, so
//! that several hosts sharing one cluster (tests running in parallel in one
//! process) each report only their own objects.

use informant_sdk::{info, prelude::*};

struct Sequencer {
    /// Report only objects in this namespace, if set.
    namespace: Option<String>,
}

impl Plugin for Sequencer {
    fn describe() -> Manifest {
        let events = [EventType::Added, EventType::Modified];
        let manifest = Manifest::new("sequencer", "0.1.0")
            .subscribe(
                Subscription::to("v1", "ConfigMap")
                    .label_selector("informant.test/sequence=latest")
                    .events(events)
                    .latest_state(),
            )
            .subscribe(
                Subscription::to("v1", "ConfigMap")
                    .label_selector("informant.test/sequence=every")
                    .events(events),
            );
        // The `wide` build: one more subscription, so other watches.
        #[cfg(feature = "wide")]
        let manifest = manifest.subscribe(
            Subscription::to("v1", "ConfigMap")
                .label_selector("informant.test/sequence=wide")
                .events(events),
        );
        manifest
    }

    fn init(settings: Settings) -> Result<Self> {
        let namespace = settings
            .value()
            .get("namespace")
            .and_then(Value::as_str)
            .map(str::to_string);
        Ok(Sequencer { namespace })
    }

    fn handle(&mut self, event: Event) -> Result<()> {
        let cm = &event.object;
        if self
            .namespace
            .as_deref()
            .is_some_and(|ns| cm.namespace() != Some(ns))
        {
            return Ok(());
        }
        let seq: u64 = cm
            .get("data.seq")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Error::new(ErrorCode::Invalid, "data.seq is not a number"))?;
        let delivery = match event.subscription {
            0 => "latest",
            1 => "every",
            _ => "wide",
        };
        let initial = if event.initial { " initial" } else { "" };
        info!("sequence {}/{} {seq} {delivery}{initial}", cm.namespace().unwrap_or(""), cm.name());
        Ok(())
    }
}

informant_sdk::export_plugin!(Sequencer);
