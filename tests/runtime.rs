//! The plugin runtime with real compiled plugins: the examples at work, and
//! hostile guests that must never take the host down.

// Tests and benchmarks fail loudly: unwrapping is the point.
#![allow(clippy::unwrap_used)]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use informant::{
    action::Action,
    cache::{self, Store},
    plugin::{CallError, Engine, Error, Event, Limits, LoadOptions, Plugin},
    vocabulary::EventType,
};
use informant_testkit::plugin_bytes;
use serde_json::{Value, json};

fn load(name: &str, cache: &Arc<Store>, options: LoadOptions) -> Result<Plugin, Error> {
    let engine = Engine::new(None)?;
    Plugin::load(&engine, &plugin_bytes(name), cache.clone(), options)
}

fn event(cache: &Store, event_type: EventType, object: Value) -> Event {
    let object = Arc::new(cache.prepare(object));
    Event {
        event_type,
        subscription: 0,
        initial: false,
        final_state_unknown: false,
        object: Some(object),
        old_object: None,
        merged: 0,
    }
}

fn configmap(name: &str, mode: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": name, "namespace": "default", "resourceVersion": "1"},
           "data": {"mode": mode}})
}

fn hostile(limits: Limits) -> (Arc<Store>, Plugin) {
    let cache = Arc::new(Store::new(cache::Config::default()));
    let plugin = load(
        "hostile",
        &cache,
        LoadOptions::default()
            .limits(limits.clone())
            .ceiling(limits),
    )
    .unwrap();
    (cache, plugin)
}

fn call(plugin: &Plugin, cache: &Store, mode: &str) -> Result<Vec<Action>, CallError> {
    plugin.handle(&event(cache, EventType::Added, configmap(mode, mode)))
}

/// After any misbehaviour, the same plugin still serves the next event.
fn still_serves(plugin: &Plugin, cache: &Store) {
    let actions = call(plugin, cache, "ok").expect("the next event is handled");
    assert_eq!(actions.len(), 1);
    assert!(matches!(&actions[0], Action::MergePatch { target, .. } if target.name == "ok"));
}

#[test]
fn an_infinite_loop_is_stopped_within_twice_the_deadline() {
    let deadline = Duration::from_millis(100);
    let (cache, plugin) = hostile(Limits::default().deadline(deadline));
    let started = Instant::now();
    let err = call(&plugin, &cache, "loop").unwrap_err();
    let took = started.elapsed();
    assert_eq!(err, CallError::Timeout { deadline });
    assert!(took < deadline * 2, "stopped after {took:?}");
    still_serves(&plugin, &cache);
    assert_eq!(plugin.counts().timed_out, 1);
}

#[test]
fn memory_growth_past_the_cap_is_reported_as_out_of_memory() {
    // Time enough to grow to the cap on a loaded machine: this is about
    // memory, not the deadline.
    let limits = Limits::default()
        .memory_bytes(32 << 20)
        .deadline(Duration::from_secs(10));
    let (cache, plugin) = hostile(limits);
    let err = call(&plugin, &cache, "grow").unwrap_err();
    assert!(
        matches!(err, CallError::OutOfMemory { limit_bytes, .. } if limit_bytes == 32 << 20),
        "{err:?}"
    );
    still_serves(&plugin, &cache);
}

/// Linear memory never shrinks: an instance that grew for one large call
/// is not kept idle at that size; the next call gets a fresh one.
#[test]
fn an_instance_grown_by_one_large_call_gives_its_memory_back() {
    // Time enough to grow on a loaded machine: this is about memory.
    let limits = Limits::default()
        .memory_bytes(64 << 20)
        .deadline(Duration::from_secs(10));
    let (cache, plugin) = hostile(limits);
    still_serves(&plugin, &cache);
    let at_rest = plugin.peak_memory_bytes();
    assert!(at_rest > 0 && at_rest < 8 << 20, "{at_rest} bytes at rest");
    let actions = call(&plugin, &cache, "spike").unwrap();
    assert_eq!(actions.len(), 1, "the large call succeeded");
    let counts = plugin.counts();
    assert_eq!(counts.recycled, 1, "{counts:?}");
    // Nothing that large is kept idle; the next call works on a fresh one.
    assert!(plugin.peak_memory_bytes() < 8 << 20);
    still_serves(&plugin, &cache);
    assert_eq!(plugin.counts().instances, counts.instances + 1);
    assert!(plugin.peak_memory_bytes() < 8 << 20);
}

#[test]
fn a_panic_traps_and_the_instance_is_replaced() {
    let (cache, plugin) = hostile(Limits::default());
    let before = plugin.counts().instances;
    let err = call(&plugin, &cache, "panic").unwrap_err();
    // The panic's own words and where it happened are the error, not wasm's
    // "unreachable instruction executed".
    assert!(
        matches!(&err, CallError::Trap(msg)
            if msg.starts_with("panicked at testing/hostile/src/lib.rs:")
                && msg.ends_with(": panicking on purpose for ConfigMap default/panic")),
        "{err:?}"
    );
    assert_eq!(err.outcome().as_str(), "trap");
    still_serves(&plugin, &cache);
    assert_eq!(
        plugin.counts().instances,
        before + 1,
        "a trapped instance is never reused"
    );
}

#[test]
fn unbounded_recursion_traps() {
    let (cache, plugin) = hostile(Limits::default());
    let err = call(&plugin, &cache, "recurse").unwrap_err();
    assert!(
        matches!(err, CallError::Trap(_) | CallError::OutOfMemory { .. }),
        "{err:?}"
    );
    still_serves(&plugin, &cache);
}

#[test]
fn a_100_mib_string_from_the_guest_is_cut_down_or_refused() {
    // With room to build it, the guest's 100 MiB error message arrives
    // truncated. (The deadline is generous: building 100 MiB takes time, and
    // time is not what this test is about.)
    let (cache, plugin) = hostile(
        Limits::default()
            .memory_bytes(512 << 20)
            .deadline(Duration::from_secs(5)),
    );
    match call(&plugin, &cache, "huge-error").unwrap_err() {
        CallError::Failed { message, .. } => {
            assert!(message.len() <= 4096, "{} bytes kept", message.len())
        }
        other => panic!("expected a failed call, got {other:?}"),
    }
    // A 100 MiB action is refused at enqueue, before any of it is queued.
    match call(&plugin, &cache, "huge-action").unwrap_err() {
        CallError::Failed { code, message } => {
            assert_eq!(code, "limit-exceeded");
            assert!(message.contains("more than the limit"), "{message}");
        }
        other => panic!("expected a failed call, got {other:?}"),
    }
    still_serves(&plugin, &cache);
    // Under the default cap, the guest cannot even build it.
    let (cache, plugin) = hostile(Limits::default());
    assert!(matches!(
        call(&plugin, &cache, "huge-error").unwrap_err(),
        CallError::OutOfMemory { .. }
    ));
    still_serves(&plugin, &cache);
}

#[test]
fn malformed_and_forbidden_actions_are_refused_at_enqueue() {
    let (cache, plugin) = hostile(Limits::default());
    let cases = [
        ("invalid-json", "invalid", "not valid JSON"),
        ("undeclared-kind", "forbidden", "may not delete v1/Secret"),
        ("read-undeclared", "forbidden", "may not read v1/Secret"),
        ("too-many-actions", "limit-exceeded", "at most 100 actions"),
    ];
    for (mode, want_code, want_message) in cases {
        match call(&plugin, &cache, mode).unwrap_err() {
            CallError::Failed { code, message } => {
                assert_eq!(code, want_code, "{mode}: {message}");
                assert!(message.contains(want_message), "{mode}: {message}");
            }
            other => panic!("{mode}: expected a failed call, got {other:?}"),
        }
    }
    still_serves(&plugin, &cache);
}

#[test]
fn actions_of_a_failed_call_are_discarded() {
    let (cache, plugin) = hostile(Limits::default());
    let err = call(&plugin, &cache, "fail-after-enqueue").unwrap_err();
    assert!(matches!(err, CallError::Failed { .. }));
    // The next successful call commits only its own action.
    still_serves(&plugin, &cache);
    assert_eq!(plugin.counts().failed, 1);
    assert_eq!(plugin.counts().ok, 1);
}

#[test]
fn a_chatty_guest_is_capped_not_fatal() {
    let (cache, plugin) = hostile(Limits::default().deadline(Duration::from_secs(5)));
    assert!(call(&plugin, &cache, "chatty").unwrap().is_empty());
    still_serves(&plugin, &cache);
}

#[test]
fn the_guest_is_told_which_log_lines_the_host_records() {
    // The host records warn and above: the SDK skips info, debug and trace
    // lines without formatting them, and sends the rest.
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(std::io::sink)
        .finish();
    let message = tracing::subscriber::with_default(subscriber, || {
        let (cache, plugin) = hostile(Limits::default());
        match call(&plugin, &cache, "log-levels").unwrap_err() {
            CallError::Failed { message, .. } => message,
            other => panic!("expected the fixture's report, got {other:?}"),
        }
    });
    assert_eq!(message, "log levels on: [warn error]");
}

#[test]
fn bad_files_fail_at_load_with_the_reason() {
    let cache = Arc::new(Store::default());
    let engine = Engine::new(None).unwrap();
    let load = |bytes: &[u8]| {
        Plugin::load(&engine, bytes, cache.clone(), LoadOptions::default()).unwrap_err()
    };
    assert!(matches!(load(b"garbage"), Error::NotWasm));
    assert!(matches!(
        load(&wat::parse_str("(module)").unwrap()),
        Error::CoreModule
    ));
    let err = load(&wat::parse_str("(component)").unwrap());
    assert!(
        matches!(&err, Error::Incompatible(msg) if msg.contains("describe")),
        "{err}"
    );
    let err = load(
        &wat::parse_str(
            r#"(component (import "acme:other/api@1.0.0" (instance (export "f" (func)))))"#,
        )
        .unwrap(),
    );
    assert!(
        matches!(&err, Error::Incompatible(msg) if msg.contains("acme:other/api")),
        "{err}"
    );
    let good = plugin_bytes("label_enforcer");
    assert!(matches!(load(&good[..good.len() / 3]), Error::Compile(_)));
    // Settings that init refuses keep the plugin from loading.
    let options = LoadOptions::default().settings(json!({"refuse": true}));
    let err = Plugin::load(&engine, &plugin_bytes("hostile"), cache.clone(), options).unwrap_err();
    assert!(
        matches!(&err, Error::Init(msg) if msg.contains("refused on purpose")),
        "{err}"
    );
}

#[test]
fn the_label_enforcer_patches_what_is_missing_and_respects_opt_outs() {
    let cache = Arc::new(Store::default());
    cache
        .upsert(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}))
        .unwrap();
    cache
        .upsert(json!({"apiVersion": "v1", "kind": "Namespace",
                       "metadata": {"name": "legacy", "labels": {"informant.dev/enforce-labels": "disabled"}}}))
        .unwrap();
    let plugin = load("label_enforcer", &cache, LoadOptions::default()).unwrap();
    let cm = |ns: &str, labels: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": ns, "labels": labels}});

    let actions = plugin
        .handle(&event(&cache, EventType::Added, cm("shop", json!({}))))
        .unwrap();
    assert_eq!(actions.len(), 1);
    let Action::MergePatch { target, patch } = &actions[0] else {
        panic!("{actions:?}")
    };
    assert_eq!(target.to_string(), "v1/ConfigMap shop/c");
    assert_eq!(
        patch,
        &json!({"metadata": {"labels": {"owner": "unassigned"}}})
    );

    assert!(
        plugin
            .handle(&event(
                &cache,
                EventType::Added,
                cm("shop", json!({"owner": "ann"}))
            ))
            .unwrap()
            .is_empty()
    );
    assert!(
        plugin
            .handle(&event(&cache, EventType::Added, cm("legacy", json!({}))))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn instances_are_reused_across_calls() {
    let (cache, plugin) = hostile(Limits::default());
    for _ in 0..50 {
        still_serves(&plugin, &cache);
    }
    assert_eq!(
        plugin.counts().instances,
        1,
        "one instance served every call"
    );
    assert_eq!(plugin.counts().ok, 50);
}

#[test]
fn plugins_handle_events_from_many_threads_at_once() {
    let (cache, plugin) = hostile(Limits::default());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..25 {
                    still_serves(&plugin, &cache);
                }
            });
        }
    });
    assert_eq!(plugin.counts().ok, 100);
}

#[test]
fn a_compile_cache_directory_keeps_compiled_plugins_for_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = plugin_bytes("label_enforcer");
    let engine = informant::plugin::Engine::new(Some(dir.path())).unwrap();
    engine.compile(&bytes).unwrap();
    let entries = cache_entries(dir.path());
    assert!(
        !entries.is_empty(),
        "nothing was written to the compile cache"
    );
    // A new engine (a restarted host) compiles the same bytes from the cache:
    // no new entry (wasmtime may add usage statistics beside it).
    let again = informant::plugin::Engine::new(Some(dir.path())).unwrap();
    again.compile(&bytes).unwrap();
    assert_eq!(
        cache_entries(dir.path()),
        entries,
        "the second compile found its entry"
    );
}

/// The compiled artifacts under `dir`: wasmtime names them by hash, with no
/// extension; its usage statistics (`.stats`) and locks have one.
fn cache_entries(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(cache_entries(&path));
        } else if path.extension().is_none() {
            out.push(path);
        }
    }
    out.sort();
    out
}
