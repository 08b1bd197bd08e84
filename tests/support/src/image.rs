//! The container image, as `deploy/build-image.sh` makes it, around the
//! binary the tests run: built once per test run (across test binaries, under
//! a lock, again only when the binary or the recipe is newer), for the image
//! tests and the tests on a real node.

use std::path::{Path, PathBuf};

/// An image archive built by `deploy/build-image.sh`.
#[derive(Debug, Clone)]
pub struct Image {
    /// The OCI archive.
    pub archive: PathBuf,
    /// The name it carries (`ghcr.io/informant-dev/informant:0.1.0`).
    pub name: String,
    /// Its manifest digest, `sha256:...`.
    pub digest: String,
}

/// Why the image cannot be built on this machine (not a failure of the
/// recipe): the test that needs it says so and skips.
pub fn missing_tools() -> Option<String> {
    for (tool, why) in [
        ("dpkg-deb", "Debian's dpkg"),
        ("apt-get", "Debian's apt"),
        ("tar", "GNU tar"),
        ("gzip", "gzip"),
    ] {
        let found = std::process::Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return Some(format!(
                "building the image needs {tool} ({why}), which this machine lacks"
            ));
        }
    }
    None
}

/// The workspace root.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .expect("the test kit lives in tests/support of the workspace")
}

/// Build the image around `binary` into `out` with the default name, by
/// running `deploy/build-image.sh --binary` as a user would.
///
/// # Panics
/// With the script's output, if it fails.
pub fn build(binary: &Path, out: &Path) -> Image {
    let output = std::process::Command::new("bash")
        .arg(root().join("deploy/build-image.sh"))
        .arg("--binary")
        .arg(binary)
        .arg("--out")
        .arg(out)
        // The revision label is pinned: a commit made while the tests run
        // does not make two builds of one binary differ.
        .env("IMAGE_REVISION", "test")
        .current_dir(root())
        .output()
        .expect("bash runs deploy/build-image.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "deploy/build-image.sh failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The last line: `<archive>: <name> sha256:<digest>`.
    let line = stdout.lines().last().unwrap_or_default();
    let mut words = line.rsplit(' ');
    let digest = words.next().unwrap_or_default().to_string();
    let name = words.next().unwrap_or_default().to_string();
    assert!(
        digest.starts_with("sha256:") && !name.is_empty(),
        "deploy/build-image.sh did not end with `<archive>: <name> sha256:<digest>`:\n{stdout}"
    );
    Image {
        archive: out.to_path_buf(),
        name,
        digest,
    }
}

/// The image around `binary`, in `<target>/image/test/informant.tar`, built
/// when it is missing or older than the binary or the recipe.
///
/// # Panics
/// If the image cannot be built.
pub fn shared(binary: &Path) -> Image {
    use std::sync::OnceLock;
    static IMAGE: OnceLock<Image> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            let dir = crate::target_dir().join("image").join("test");
            std::fs::create_dir_all(&dir).expect("the image directory can be made");
            let lock = std::fs::File::create(dir.join(".lock")).expect("the image lock file");
            lock.lock().expect("the image lock");
            let archive = dir.join("informant.tar");
            let stamp = dir.join("informant.tar.built");
            let newest_input = [
                binary.to_path_buf(),
                root().join("deploy/build-image.sh"),
                root().join("deploy/image/packages.lock"),
            ]
            .iter()
            .filter_map(|p| p.metadata().and_then(|m| m.modified()).ok())
            .max();
            let fresh = archive
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .zip(newest_input)
                .is_some_and(|(built, input)| built > input);
            if fresh && let Ok(text) = std::fs::read_to_string(&stamp) {
                let mut parts = text.split_whitespace();
                if let (Some(name), Some(digest)) = (parts.next(), parts.next()) {
                    return Image {
                        archive,
                        name: name.into(),
                        digest: digest.into(),
                    };
                }
            }
            let image = build(binary, &archive);
            std::fs::write(&stamp, format!("{} {}\n", image.name, image.digest))
                .expect("the image stamp is written");
            image
        })
        .clone()
}
