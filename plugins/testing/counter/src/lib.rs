//! counter: a fixture for the state store. Two instances at once
//! (`instances: 2`) share one store. For each ConfigMap event (`added`, or
//! `resync` when it brought an object back) labelled `informant.test/counter`:
//!
//! - by default it increments `total` and `per/<namespace>/<name>`, and
//!   while the latter is below `settings.rounds` (1 by default) asks for
//!   the object again at once (`requeue-after` 0 ms), so a few objects make
//!   many calls, from both instances at once; and it records
//!   `first/<namespace>/<name>` = `settings.replica` if no one has yet
//!   (compare-and-swap), so a test can tell which host saw the object first;
//! - with the label `informant.test/counter=fail` it increments `failed`
//!   and sets `failed/<name>`, then returns an error: none of it may stay;
//!   with `=trap` it does the same and panics;
//! - with `=big` it sets `big/<name>` to a value of `settings.big` bytes
//!   and, when the host refuses, labels the ConfigMap
//!   `informant.test/refused=<code>`.
//!
//! `synced` events, and objects outside `settings.namespace` when it is
//! given, are ignored. The `durable` build keeps
//! the store in the cluster; `v2` is version 0.2.0 of the same plugin, for
//! hot reloads; `bench` does `settings.ops` gets and sets per call instead
//! (`bench/<i>`), for the speed of the store from inside a call.

use std::time::Duration;

use informant_sdk::{action, prelude::*, state};

#[derive(Debug, Default, serde::Deserialize)]
struct Options {
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    replica: Option<String>,
    #[serde(default)]
    rounds: Option<i64>,
    #[serde(default)]
    big: Option<usize>,
    #[serde(default)]
    ops: Option<usize>,
}

struct Counter {
    settings: Options,
}

const NAME: &str = if cfg!(feature = "bench") {
    "counter-bench"
} else {
    "counter"
};

impl Plugin for Counter {
    fn describe() -> Manifest {
        let manifest = Manifest::new(
            NAME,
            if cfg!(feature = "v2") {
                "0.2.0"
            } else {
                "0.1.0"
            },
        )
        .subscribe(
            Subscription::to("v1", "ConfigMap")
                .label_selector("informant.test/counter")
                .events([EventType::Added, EventType::Resync]),
        )
        .writes("v1", "ConfigMap", [Verb::Patch])
        .instances(2);
        if cfg!(feature = "durable") {
            manifest.state(StateTier::Durable)
        } else {
            manifest
        }
    }

    fn init(settings: Settings) -> Result<Self> {
        Ok(Counter {
            settings: settings.parse()?,
        })
    }

    fn handle(&mut self, event: Event) -> Result<()> {
        if event.event_type == EventType::Synced {
            return Ok(());
        }
        if cfg!(feature = "bench") {
            return self.bench();
        }
        let cm = &event.object;
        let r = cm.object_ref();
        if self.settings.namespace.is_some() && r.namespace != self.settings.namespace {
            return Ok(());
        }
        let name = r.name.clone();
        match cm.label("informant.test/counter") {
            Some("fail") => {
                state::increment("failed", 1)?;
                state::set(&format!("failed/{name}"), &true)?;
                Err(Error::failed(format!("failing {name} on purpose")))
            }
            Some("trap") => {
                state::increment("failed", 1)?;
                state::set(&format!("failed/{name}"), &true)?;
                panic!("trapping on {name} on purpose");
            }
            Some("big") => {
                let size = self.settings.big.unwrap_or(1 << 20);
                let refused =
                    match state::set_bytes(&format!("big/{name}"), &vec![b'x'; size], None) {
                        Ok(()) => return Ok(()),
                        Err(e) => e.code,
                    };
                let code = match refused {
                    ErrorCode::LimitExceeded => "limit-exceeded",
                    ErrorCode::Forbidden => "forbidden",
                    ErrorCode::Invalid => "invalid",
                    ErrorCode::NotFound => "not-found",
                    ErrorCode::Failed => "failed",
                };
                action::merge_patch(
                    &r,
                    json!({"metadata": {"labels": {"informant.test/refused": code}}}),
                )
                .enqueue()
            }
            _ => {
                state::increment("total", 1)?;
                let namespace = r.namespace.clone().unwrap_or_default();
                let mine = state::increment(&format!("per/{namespace}/{name}"), 1)?;
                let replica = self.settings.replica.as_deref().unwrap_or("");
                state::compare_and_swap(&format!("first/{namespace}/{name}"), None, replica)?;
                if mine < self.settings.rounds.unwrap_or(1) {
                    action::requeue_after(&r, Duration::ZERO).enqueue()?;
                }
                Ok(())
            }
        }
    }
}

impl Counter {
    /// `settings.ops` gets and sets of small JSON values.
    fn bench(&self) -> Result<()> {
        let ops = self.settings.ops.unwrap_or(100);
        for i in 0..ops {
            let key = format!("bench/{}", i % 64);
            let n: i64 = state::get(&key)?.unwrap_or(0);
            state::set(&key, &(n + 1))?;
        }
        Ok(())
    }
}

informant_sdk::export_plugin!(Counter);
