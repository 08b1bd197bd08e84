//! One step from a Go package to a plugin component: `go build` for
//! `wasip1`/`wasm` as a reactor, then [`componentize`](crate::component::componentize).
//!
//! A package inside a Go module (a `go.mod` in its directory or above) is
//! built in place, as the module says: its `go.mod` requires the SDK
//! (`github.com/informant-dev/informant/guest-sdk/go`), usually through a
//! `replace` to a copy of it. A directory of `.go` files without a module is
//! built as a module of its own that uses the SDK named by `sdk`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::toolchain;

/// The SDK's module path.
pub const SDK_MODULE: &str = "github.com/informant-dev/informant/guest-sdk/go";

/// What to build.
pub struct Build {
    /// The Go package's directory (package `main`).
    pub package: PathBuf,
    /// The component to write.
    pub output: PathBuf,
    /// The contract's WIT directory; none for the one built in.
    pub wit: Option<PathBuf>,
    /// The SDK's directory, for packages outside a module.
    pub sdk: Option<PathBuf>,
    /// Where the pinned Go is installed.
    pub toolchains: PathBuf,
}

/// What a build made.
pub struct Built {
    /// The component's size in bytes.
    pub bytes: usize,
}

/// The SDK beside this tool's sources, when it is there.
#[must_use]
pub fn default_sdk() -> Option<PathBuf> {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../go");
    sdk.join("go.mod").is_file().then_some(sdk)
}

/// Build `b.package` into the component `b.output`.
///
/// # Errors
/// If the package is missing or not Go, Go cannot be had, `go build` fails
/// (its output is in the error), or the module does not fit the contract.
pub fn build(b: &Build) -> Result<Built> {
    let package = std::path::absolute(&b.package)
        .with_context(|| format!("{}: not a usable path", b.package.display()))?;
    if !package.is_dir() {
        bail!(
            "{}: no such directory (a Go plugin is a package: a directory)",
            package.display()
        );
    }
    let has_go = std::fs::read_dir(&package)
        .with_context(|| format!("reading {}", package.display()))?
        .flatten()
        .any(|e| e.path().extension().is_some_and(|x| x == "go"));
    if !has_go {
        bail!("{}: no .go files in this directory", package.display());
    }
    let go = toolchain::go(&b.toolchains)?;
    let work = tempfile_dir()?;
    let core = work.path().join("core.wasm");

    let in_module = package.ancestors().any(|a| a.join("go.mod").is_file());
    let dir = if in_module {
        package.clone()
    } else {
        let sdk = b.sdk.clone().or_else(default_sdk).context(
            "the package has no go.mod and the Go SDK's directory is unknown: name it with --sdk",
        )?;
        let sdk = std::path::absolute(&sdk)?;
        let module = work.path().join("module");
        std::fs::create_dir(&module)?;
        std::fs::write(
            module.join("go.mod"),
            format!(
                "module informant.plugin/main\n\ngo 1.24\n\nrequire {SDK_MODULE} v0.0.0\n\nreplace {SDK_MODULE} => {}\n",
                sdk.display()
            ),
        )?;
        for entry in std::fs::read_dir(&package)?.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".go") && !name.ends_with("_test.go") {
                std::fs::copy(&path, module.join(&name))
                    .with_context(|| format!("copying {}", path.display()))?;
            }
        }
        module
    };

    let out = go
        .command()
        .current_dir(&dir)
        .env("GOOS", "wasip1")
        .env("GOARCH", "wasm")
        .env("CGO_ENABLED", "0")
        .env("GOTOOLCHAIN", "local")
        .env("GOWORK", "off")
        .args(["build", "-buildmode=c-shared", "-trimpath", "-o"])
        .arg(&core)
        .arg(".")
        .output()
        .with_context(|| format!("running {}", go.program.display()))?;
    if !out.status.success() {
        bail!(
            "go build failed for {}:\n{}{}",
            package.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let module = std::fs::read(&core).with_context(|| format!("reading {}", core.display()))?;
    let component = crate::component::componentize(&module, b.wit.as_deref())
        .with_context(|| format!("making a component of {}", package.display()))?;
    let output = std::path::absolute(&b.output)?;
    if let Some(parent) = output.parent() {
        std::fs::create_dir_all(parent)?;
    }
    // Whole or not at all: a plugin directory never sees half a file.
    let partial = output.with_extension("wasm.partial");
    std::fs::write(&partial, &component)
        .with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, &output).with_context(|| format!("writing {}", output.display()))?;
    Ok(Built {
        bytes: component.len(),
    })
}

/// A temporary directory, removed when dropped.
fn tempfile_dir() -> Result<TempDir> {
    let base = std::env::temp_dir();
    for attempt in 0..100u32 {
        let path = base.join(format!(
            "informant-go-{}-{}-{attempt}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
        ));
        if std::fs::create_dir(&path).is_ok() {
            return Ok(TempDir(path));
        }
    }
    bail!(
        "could not create a temporary directory in {}",
        base.display()
    )
}

struct TempDir(PathBuf);

impl TempDir {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
