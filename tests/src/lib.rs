//! Helpers shared by the end-to-end tests: where the compiled example plugins
//! and the fixtures are.

use std::path::PathBuf;

/// The directory holding the example plugins compiled by `build.rs`.
pub fn plugin_dir() -> PathBuf {
    PathBuf::from(env!("INFORMANT_TEST_PLUGINS"))
}

/// The path of a compiled plugin: `plugin_path("label_enforcer")`.
pub fn plugin_path(name: &str) -> PathBuf {
    plugin_dir().join(format!("{name}.wasm"))
}

/// The bytes of a compiled plugin.
///
/// # Panics
/// If the plugin was not built, which means `build.rs` did not run.
pub fn plugin_bytes(name: &str) -> Vec<u8> {
    let path = plugin_path(name);
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; build.rs should have built it", path.display()))
}

/// A file under `tests/fixtures/`.
pub fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(path)
}
