//! Writing plugins outside this repository. `informant new` writes a
//! project (`scaffold`) with the SDK this binary carries ([`sdk`]);
//! `informant build` builds its component with the language's pinned
//! toolchain ([`builder`], installed on first use by [`toolchain`]) and
//! checks it; `informant test` replays the project's fixtures and compares
//! the actions with the expected ones (`fixture`, `diff`).
//!
//! The test kit builds this repository's Python and JavaScript examples with
//! the same [`toolchain`] and [`builder`] code, so that installing and
//! running the toolchains is written once.

pub mod builder;
pub(crate) mod diff;
pub(crate) mod fixture;
mod language;
pub mod project;
pub(crate) mod scaffold;
pub mod sdk;
pub mod toolchain;

use std::path::{Path, PathBuf};

pub use language::Language;
pub use project::Project;

/// Why an authoring step failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// A program the language's build needs is not installed.
    #[error("{what} is not installed; {purpose}")]
    Missing {
        /// The program, as a user would install it.
        what: String,
        /// What needs it.
        purpose: String,
    },
    /// A tool ran and failed; what it printed, when it was captured.
    #[error("{step} failed{}", if output.is_empty() { String::new() } else { format!(":\n{output}") })]
    Tool {
        /// What was being done, with the command to do it by hand.
        step: String,
        /// What the tool printed, when captured (else the user saw it).
        output: String,
    },
    /// The component does not load (with a test case's settings).
    #[error("{} does not load", path.display())]
    Load {
        /// The component.
        path: PathBuf,
        /// Why.
        #[source]
        source: crate::plugin::Error,
    },
    /// The project (its `informant.toml`, its layout, a test case) is not
    /// usable.
    #[error("{}: {reason}", path.display())]
    Project {
        /// The file or directory at fault.
        path: PathBuf,
        /// What is wrong, and what to do.
        reason: String,
    },
}

impl Error {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Where a step says what it is doing (installing a toolchain, building):
/// the binary prints it, the test kit keeps quiet.
pub type Say<'a> = &'a dyn Fn(&str);

/// Write `text` to `path`, creating its directory.
fn write_file(path: &Path, text: &str) -> Result<(), Error> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
    }
    std::fs::write(path, text).map_err(Error::io(path))
}
