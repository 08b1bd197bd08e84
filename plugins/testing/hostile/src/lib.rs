//! hostile: a test fixture that misbehaves on request, so the tests can show
//! that the host survives it. The ConfigMap's `data.mode` chooses how.

use informant_sdk::{action, prelude::*};

struct Hostile;

#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    // black_box keeps the recursion from being turned into a loop.
    std::hint::black_box(recurse(std::hint::black_box(depth + 1))) + 1
}

impl Plugin for Hostile {
    fn describe() -> Manifest {
        let configmaps = Subscription::to("v1", "ConfigMap");
        #[cfg(feature = "labelled")]
        let configmaps = configmaps.label_selector("informant.dev/hostile");
        Manifest::new("hostile", "0.1.0")
            .subscribe(configmaps)
            .writes("v1", "ConfigMap", [Verb::Patch])
    }

    fn init(settings: Settings) -> Result<Self> {
        if settings.value().get("refuse").is_some() {
            return Err(Error::new(
                ErrorCode::Invalid,
                "these settings are refused on purpose",
            ));
        }
        Ok(Hostile)
    }

    fn handle(&mut self, event: Event) -> Result<()> {
        if event.event_type == EventType::Synced {
            return Ok(());
        }
        let cm = &event.object;
        let mode = cm.get("data.mode").and_then(Value::as_str).unwrap_or("ok");
        let target = cm.object_ref();
        match mode {
            "ok" => action::merge_patch(&target, json!({"metadata": {"labels": {"seen": "yes"}}}))
                .enqueue(),
            "fail-after-enqueue" => {
                action::merge_patch(&target, json!({"metadata": {"labels": {"seen": "yes"}}}))
                    .enqueue()?;
                Err(Error::failed("failing on purpose after enqueuing"))
            }
            "loop" => loop {
                std::hint::black_box(());
            },
            "grow" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "spike" => {
                // One large call: 32 MiB used, then freed. Linear memory
                // never shrinks, so the instance stays that large.
                let hoard = vec![7u8; 32 << 20];
                std::hint::black_box(&hoard);
                drop(hoard);
                action::merge_patch(&target, json!({"metadata": {"labels": {"seen": "spike"}}}))
                    .enqueue()
            }
            "panic" => panic!("panicking on purpose for {target}"),
            "recurse" => Err(Error::failed(format!("unreachable {}", recurse(0)))),
            "huge-error" => Err(Error::failed("x".repeat(100 << 20))),
            "huge-action" => {
                let patch = json!({"data": {"blob": "x".repeat(100 << 20)}});
                action::merge_patch(&target, patch).enqueue()
            }
            "invalid-json" => {
                // Bypass the SDK's serialisation to hand the host a broken patch.
                use informant_sdk::bindings::informant::plugin::actions as raw;
                let broken = raw::PatchAction {
                    target: (&target).into(),
                    patch: "{not json",
                };
                raw::enqueue(raw::Action::MergePatch(broken)).map_err(Into::into)
            }
            "undeclared-kind" => {
                let secret = ObjectRef::namespaced("v1", "Secret", "default", "stolen");
                action::delete(&secret).enqueue()
            }
            "read-undeclared" => {
                let secret = ObjectRef::namespaced("v1", "Secret", "default", "stolen");
                informant_sdk::cache::get(&secret).map(|_| ())
            }
            "too-many-actions" => {
                for i in 0..1000 {
                    action::merge_patch(
                        &target,
                        json!({"metadata": {"labels": {"n": i.to_string()}}}),
                    )
                    .enqueue()?;
                }
                Ok(())
            }
            "chatty" => {
                for i in 0..20_000 {
                    println!("line {i} of a very chatty plugin");
                }
                Ok(())
            }
            "log-levels" => {
                // Not misbehaviour: what the host's log level let through to
                // the SDK, reported as the call's error.
                use informant_sdk::log::{Level, enabled};
                let levels = [
                    ("trace", Level::Trace),
                    ("debug", Level::Debug),
                    ("info", Level::Info),
                    ("warn", Level::Warn),
                    ("error", Level::Error),
                ];
                let on: Vec<&str> = levels
                    .iter()
                    .filter(|(_, l)| enabled(*l))
                    .map(|(n, _)| *n)
                    .collect();
                Err(Error::failed(format!("log levels on: [{}]", on.join(" "))))
            }
            other => Err(Error::new(
                ErrorCode::Invalid,
                format!("unknown mode {other:?}"),
            )),
        }
    }
}

informant_sdk::export_plugin!(Hostile);
