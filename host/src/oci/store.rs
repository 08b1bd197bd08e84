//! The local content cache of pulled plugins, keyed by manifest digest, so
//! that a restart (or a replica with the same volume) does not pull again.
//! It lives in the compile-cache directory, under `oci/sha256/`.

use std::path::{Path, PathBuf};

/// Components by the digest of the manifest they were pulled by.
#[derive(Debug, Clone)]
pub struct ContentStore {
    dir: PathBuf,
}

impl ContentStore {
    /// A store in `<cache_dir>/oci/sha256`.
    pub fn new(cache_dir: &Path) -> Self {
        Self {
            dir: cache_dir.join("oci").join("sha256"),
        }
    }

    fn path(&self, digest: &str) -> Option<PathBuf> {
        let hex = digest.strip_prefix("sha256:")?;
        (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| self.dir.join(format!("{hex}.wasm")))
    }

    /// The component pulled by `digest`, if it is cached.
    pub fn get(&self, digest: &str) -> Option<Vec<u8>> {
        std::fs::read(self.path(digest)?).ok()
    }

    /// Keep the component pulled by `digest`. Written to a temporary file
    /// and renamed, so that a reader never sees half a component.
    ///
    /// # Errors
    /// The I/O error, if the directory cannot be written.
    pub fn put(&self, digest: &str, bytes: &[u8]) -> std::io::Result<()> {
        let Some(path) = self.path(digest) else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{digest}: not a sha256 digest"),
            ));
        };
        std::fs::create_dir_all(&self.dir)?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, &path)
    }

    /// Forget `digest` (its content did not load).
    pub fn remove(&self, digest: &str) {
        if let Some(path) = self.path(digest) {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_are_kept_by_digest_and_nothing_else_is_a_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::new(dir.path());
        let digest = format!("sha256:{}", "a".repeat(64));
        assert!(store.get(&digest).is_none());
        store.put(&digest, b"component").unwrap();
        assert_eq!(store.get(&digest).unwrap(), b"component");
        store.remove(&digest);
        assert!(store.get(&digest).is_none());
        assert!(store.put("sha256:../../etc", b"x").is_err());
        assert!(store.get("latest").is_none());
    }
}
