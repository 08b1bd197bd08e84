//! A plugin project: a directory with an `informant.toml` that says the
//! plugin's name and language, the SDK in `informant-sdk/` (with the
//! contract in `informant-sdk/wit/`), and test cases in `tests/`.
//!
//! ```toml
//! name = "team-label"
//! language = "python"     # rust, python, js or go
//! source = "plugin.py"    # Python, JavaScript and Go: the plugin's file
//! settings = "settings.yaml"   # optional: what the plugin is checked and run with
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Error, Language};

/// The project file's name.
pub const FILE: &str = "informant.toml";

/// The project file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    name: String,
    language: Language,
    #[serde(default)]
    source: Option<PathBuf>,
    #[serde(default)]
    settings: Option<PathBuf>,
}

/// A plugin project, read from its `informant.toml`.
#[derive(Debug, Clone)]
pub struct Project {
    /// The project's directory (absolute).
    pub root: PathBuf,
    /// The plugin's name (the name its manifest gives), a DNS label.
    pub name: String,
    /// Its language.
    pub language: Language,
    /// Python and JavaScript: the plugin's file (absolute). Go: a file of
    /// the plugin's package, whose directory is built. Rust: `Cargo.toml`.
    pub source: PathBuf,
    /// The settings file the plugin is checked and run with, if any (absolute).
    pub settings: Option<PathBuf>,
}

impl Project {
    /// The project that `start` is in: the nearest directory, from `start`
    /// up, that holds an `informant.toml`.
    ///
    /// # Errors
    /// [`Error::Project`] when there is none, or it is not valid.
    pub fn find(start: &Path) -> Result<Self, Error> {
        let start = std::path::absolute(start).map_err(Error::io(start))?;
        match start.ancestors().find(|dir| dir.join(FILE).is_file()) {
            Some(root) => Self::load(root),
            None => Err(Error::Project {
                path: start,
                reason: format!(
                    "not in a plugin project (no {FILE} here or above); create one with \
                     `informant new NAME --lang rust|python|js|go`, or name it with --project DIR"
                ),
            }),
        }
    }

    /// The project in `root`.
    ///
    /// # Errors
    /// [`Error::Project`] if `root/informant.toml` is missing or not valid.
    pub fn load(root: &Path) -> Result<Self, Error> {
        let root = root.canonicalize().map_err(Error::io(root))?;
        let file = root.join(FILE);
        let text = std::fs::read_to_string(&file).map_err(Error::io(&file))?;
        let bad = |reason: String| Error::Project {
            path: file.clone(),
            reason,
        };
        let manifest: Manifest = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        check_name(&manifest.name).map_err(|reason| bad(format!("name: {reason}")))?;
        let source = match (manifest.language, manifest.source) {
            (Language::Rust, None) => root.join("Cargo.toml"),
            (Language::Rust, Some(_)) => {
                return Err(bad(
                    "source: a Rust project's sources are its Cargo.toml's; remove `source`".into(),
                ));
            }
            (_, Some(source)) => root.join(source),
            (language, None) => {
                return Err(bad(format!(
                    "source: missing; name the plugin's {} file (source = \"{}\")",
                    language.title(),
                    default_source(language)
                )));
            }
        };
        if !source.is_file() {
            return Err(bad(format!("{}: no such file", source.display())));
        }
        let settings = manifest.settings.map(|s| root.join(s));
        if let Some(settings) = settings.as_ref().filter(|s| !s.is_file()) {
            return Err(bad(format!(
                "settings: {}: no such file",
                settings.display()
            )));
        }
        Ok(Self {
            root,
            name: manifest.name,
            language: manifest.language,
            source,
            settings,
        })
    }

    /// Where `informant build` puts the component:
    /// `target/plugins/NAME.wasm`, a directory `informant dev --plugins`
    /// can load (settings beside it).
    pub fn component(&self) -> PathBuf {
        self.plugin_dir().join(format!("{}.wasm", self.name))
    }

    /// The directory of [`Self::component`].
    pub fn plugin_dir(&self) -> PathBuf {
        self.root.join("target").join("plugins")
    }

    /// Where compiled components are kept between `build` and `test`.
    pub fn compile_cache(&self) -> PathBuf {
        self.root.join("target").join("compile-cache")
    }

    /// The SDK package the project builds with.
    pub fn sdk(&self) -> PathBuf {
        self.root.join(SDK_DIR)
    }

    /// The contract the project builds against, in the SDK.
    pub fn wit(&self) -> PathBuf {
        self.sdk().join("wit")
    }

    /// The test cases' directory.
    pub fn tests(&self) -> PathBuf {
        self.root.join("tests")
    }

    /// The project's path as the user would write it from the current
    /// directory, for messages.
    pub fn show(&self, path: &Path) -> String {
        let here = std::env::current_dir()
            .ok()
            .and_then(|d| d.canonicalize().ok());
        here.and_then(|here| path.strip_prefix(here).ok().map(Path::to_path_buf))
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| path.to_path_buf())
            .display()
            .to_string()
    }
}

/// The SDK's directory in a project.
pub const SDK_DIR: &str = "informant-sdk";

/// The plugin file a new project has.
pub fn default_source(language: Language) -> &'static str {
    match language {
        Language::Rust => "src/lib.rs",
        Language::Python => "plugin.py",
        Language::Js => "plugin.js",
        Language::Go => "main.go",
    }
}

/// Whether `name` can name a plugin, a Rust crate and a directory alike: a
/// DNS label (as a plugin's name must be) that starts with a letter.
///
/// # Errors
/// What is wrong with it.
pub fn check_name(name: &str) -> Result<(), String> {
    if informant_k8s::selector::is_dns1123_label(name)
        && name.starts_with(|c: char| c.is_ascii_lowercase())
    {
        Ok(())
    } else {
        Err(format!(
            "{name:?} cannot name a plugin: use lowercase letters, digits and '-', \
             starting with a letter and ending with a letter or digit, at most 63 characters"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(toml: &str, files: &[&str]) -> (tempfile::TempDir, Result<Project, Error>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), toml).unwrap();
        for file in files {
            std::fs::write(dir.path().join(file), "").unwrap();
        }
        let result = Project::load(dir.path());
        (dir, result)
    }

    #[test]
    fn a_project_is_found_from_a_directory_inside_it() {
        let (dir, _) = project(
            "name = \"team-label\"\nlanguage = \"python\"\nsource = \"plugin.py\"\n",
            &["plugin.py"],
        );
        let inside = dir.path().join("tests/example");
        std::fs::create_dir_all(&inside).unwrap();
        let found = Project::find(&inside).unwrap();
        assert_eq!(found.root, dir.path().canonicalize().unwrap());
        assert_eq!(found.language, Language::Python);
        assert!(
            found
                .component()
                .ends_with("target/plugins/team-label.wasm")
        );
        assert!(found.wit().ends_with("informant-sdk/wit"));
    }

    #[test]
    fn outside_a_project_the_error_says_how_to_make_one() {
        let dir = tempfile::tempdir().unwrap();
        let err = Project::find(dir.path()).unwrap_err().to_string();
        assert!(err.contains("informant new NAME --lang"), "{err}");
    }

    #[test]
    fn a_bad_project_file_is_refused_naming_the_field() {
        for (toml, files, expected) in [
            (
                "name = \"x\"\nlanguage = \"cobol\"\n",
                &[][..],
                "unknown language \"cobol\"; choose one of rust, python, js, go",
            ),
            (
                "name = \"Team\"\nlanguage = \"rust\"\n",
                &["Cargo.toml"][..],
                "name: \"Team\" cannot name a plugin",
            ),
            (
                "name = \"t\"\nlanguage = \"js\"\n",
                &[][..],
                "source = \"plugin.js\"",
            ),
            (
                "name = \"t\"\nlanguage = \"js\"\nsource = \"p.js\"\n",
                &[][..],
                "p.js: no such file",
            ),
            (
                "name = \"t\"\nlanguage = \"rust\"\nsource = \"x\"\n",
                &["Cargo.toml"][..],
                "remove `source`",
            ),
            (
                "name = \"t\"\nlanguage = \"rust\"\ncolour = 1\n",
                &["Cargo.toml"][..],
                "unknown field `colour`",
            ),
            (
                "name = \"t\"\nlanguage = \"rust\"\nsettings = \"s.yaml\"\n",
                &["Cargo.toml"][..],
                "settings: ",
            ),
        ] {
            let (_dir, result) = project(toml, files);
            let err = result.unwrap_err().to_string();
            assert!(
                err.contains("informant.toml") && err.contains(expected),
                "{toml}: {err}"
            );
        }
    }

    #[test]
    fn names_are_dns_labels_that_start_with_a_letter() {
        for good in ["team-label", "a", "x1-y2"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "1abc", "Team", "a_b", "a-", &"a".repeat(64)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
