//! The example plugins `informant dev` carries (built by `build.rs` with the
//! `examples` feature): without `--plugins`, it writes them into a plugin
//! directory of its own and runs them, so the demo is the binary alone.

use std::path::{Path, PathBuf};

/// The examples, by file name.
#[cfg(feature = "examples")]
const EXAMPLES: [(&str, &[u8]); 6] = [
    (
        "label-enforcer.wasm",
        include_bytes!(concat!(env!("OUT_DIR"), "/label-enforcer.wasm")),
    ),
    (
        "replicator.wasm",
        include_bytes!(concat!(env!("OUT_DIR"), "/replicator.wasm")),
    ),
    (
        "restarter.wasm",
        include_bytes!(concat!(env!("OUT_DIR"), "/restarter.wasm")),
    ),
    (
        "tenant-namespaces.wasm",
        include_bytes!(concat!(env!("OUT_DIR"), "/tenant-namespaces.wasm")),
    ),
    (
        "owner-required.wasm",
        include_bytes!(concat!(env!("OUT_DIR"), "/owner-required.wasm")),
    ),
    (
        "default-requests.wasm",
        include_bytes!(concat!(env!("OUT_DIR"), "/default-requests.wasm")),
    ),
];

/// Without the `examples` feature there are none.
#[cfg(not(feature = "examples"))]
const EXAMPLES: [(&str, &[u8]); 0] = [];

/// Whether this binary carries the examples.
pub(crate) fn available() -> bool {
    !EXAMPLES.is_empty()
}

/// Write the examples into `dir` (created if missing), replacing files of
/// the same name whose bytes differ and leaving every other file alone: a
/// plugin the user dropped there stays. Returns the directory.
pub(crate) fn write_to(dir: &Path) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    for (name, bytes) in EXAMPLES {
        let path = dir.join(name);
        if std::fs::read(&path).is_ok_and(|current| current == bytes) {
            continue;
        }
        // Whole files only: the directory may be watched already.
        let partial = dir.join(format!(".{name}.{}.partial", std::process::id()));
        std::fs::write(&partial, bytes)?;
        std::fs::rename(&partial, &path)?;
    }
    Ok(dir.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_are_written_once_and_other_files_are_left_alone() {
        let dir = tempfile_dir();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("mine.wasm"), b"mine").unwrap();
        write_to(&dir).unwrap();
        let names: Vec<_> = EXAMPLES.iter().map(|(n, _)| *n).collect();
        for name in &names {
            assert!(dir.join(name).is_file(), "{name} written");
        }
        assert_eq!(std::fs::read(dir.join("mine.wasm")).unwrap(), b"mine");
        if let Some(first) = names.first() {
            let modified = std::fs::metadata(dir.join(first))
                .unwrap()
                .modified()
                .unwrap();
            write_to(&dir).unwrap();
            let again = std::fs::metadata(dir.join(first))
                .unwrap()
                .modified()
                .unwrap();
            assert_eq!(modified, again, "unchanged files are not rewritten");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("informant-examples-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }
}
