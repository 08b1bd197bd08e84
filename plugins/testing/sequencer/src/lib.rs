//! sequencer: a test fixture for dispatch order. Each ConfigMap labelled
//! `informant.test/sequence` carries a counter in `data.seq`; the plugin logs
//! `sequence <namespace>/<name> <seq> <delivery>[ initial][ merged=N]` for every event it handles,
//! so a test can check per-object order and what the plugin saw last.
//!
//! `informant.test/sequence=latest` objects come through a latest-state
//! subscription, `=every` ones through an every-event subscription; the
//! `wide` build adds `=wide`.
//!
//! Settings `{"namespace": "ns"}` confine the reports to one namespace, so
//! that several hosts sharing one cluster (tests running in parallel in one
//! process) each report only their own objects; `{"work": n}` spins n rounds
//! per call, to make a plugin slower than the cluster.

use informant_sdk::{info, prelude::*};

struct Sequencer {
    /// Report only objects in this namespace, if set.
    namespace: Option<String>,
    /// Spin this many rounds per call: a plugin slower than the cluster.
    work: u64,
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
        let work = settings
            .value()
            .get("work")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        Ok(Sequencer { namespace, work })
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
        let mut spin = 0u64;
        for i in 0..self.work {
            spin = std::hint::black_box(spin.wrapping_add(i));
        }
        let initial = if event.initial { " initial" } else { "" };
        let merged = match event.merged {
            0 => String::new(),
            n => format!(" merged={n}"),
        };
        info!(
            "sequence {}/{} {seq} {delivery}{initial}{merged}",
            cm.namespace().unwrap_or(""),
            cm.name()
        );
        Ok(())
    }
}

informant_sdk::export_plugin!(Sequencer);
