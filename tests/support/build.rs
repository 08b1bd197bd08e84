//! Build the plugins workspace (`plugins/`) for wasm32-wasip2, so that every
//! test runs real compiled components: the test fixtures, the examples, and
//! the fixtures' feature builds. Nothing prebuilt is committed. (The host's
//! build script builds the examples it carries for `informant dev`; the
//! Python and JavaScript examples are built by the tests that use them, so
//! that the demo needs neither language: see `src/guest.rs`.)

#[path = "../../build-support/wasm_plugins.rs"]
mod wasm_plugins;

use std::{env, path::PathBuf};

fn main() {
    let manifest_dir =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .ancestors()
        .nth(2)
        .expect("the test kit lives in tests/support of the workspace")
        .to_path_buf();
    let plugins = root.join("plugins");
    let target_dir = wasm_plugins::target_dir(&root);
    wasm_plugins::watch_inputs(&root);
    wasm_plugins::ensure_wasm_target();

    // First the feature builds: other versions of a fixture, under other
    // names (the sequencer with other watches for the reload tests, the
    // reader's latest-state and one-instance builds, the hostile fixture
    // that sees only ConfigMaps labelled for it, the legacy fixture built
    // against contract 0.2.0, the webhook fixture's exports disagreeing
    // with its manifest, the gatekeeper as a mutating webhook, the state
    // store's counter kept in the cluster, its version 0.2.0 and its
    // benchmark build). Into the same target
    // directory, so they share every dependency; the full build after them
    // rebuilds the plain fixtures over them.
    let out = target_dir.join("wasm32-wasip2").join("release");
    for (package, feature, copy) in [
        ("sequencer", "wide", "sequencer_wide"),
        ("reader", "latest", "reader_latest"),
        ("reader", "single", "reader_single"),
        ("reader", "labels", "reader_labels"),
        ("hostile", "labelled", "hostile_labelled"),
        ("legacy", "v2", "legacy_v2"),
        ("webhook", "undeclared", "webhook_undeclared"),
        ("webhook", "unexported", "webhook_unexported"),
        ("gatekeeper", "mutating", "gatekeeper_mutating"),
        ("counter", "durable", "counter_durable"),
        ("counter", "v2", "counter_v2"),
        ("counter", "bench", "counter_bench"),
        ("counter", "bench,durable", "counter_bench_durable"),
    ] {
        let output = wasm_plugins::build_wasm(
            &plugins,
            &target_dir,
            &["-p", package, "--features", feature],
        );
        if !output.status.success() {
            panic!(
                "building {package} with {feature} failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let to = out.join(format!("{copy}.wasm"));
        std::fs::copy(out.join(format!("{package}.wasm")), &to)
            .unwrap_or_else(|e| panic!("copying {package} to {}: {e}", to.display()));
    }

    let output = wasm_plugins::build_wasm(&plugins, &target_dir, &[]);
    if !output.status.success() {
        panic!(
            "building the plugins in {} failed.\n\
             The wasm32-wasip2 target comes from rust-toolchain.toml; with rustup it installs itself.\n\
             --- cargo stderr ---\n{}",
            plugins.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    println!("cargo:rustc-env=INFORMANT_TEST_PLUGINS={}", out.display());
}
