//! A project's test cases, replayed as `informant replay` would: each is a
//! directory under `tests/` with
//!
//! - `events.jsonl`: watch events, one per line (as `kubectl get -w -o json
//!   --output-watch-events` prints them), fed to the plugin in order;
//! - `objects.yaml` (or `.yml`, `.json`), optional: what the cache holds
//!   before the first event;
//! - `settings.json` (or `.yaml`, `.yml`, `.toml`), optional: the plugin's
//!   settings;
//! - `expected.jsonl`: the actions the plugin must commit, one per line, as
//!   `informant replay` prints them (each with the line of its `event`).
//!
//! A case passes when every call succeeds and the actions are the expected
//! ones, in order.

use std::{
    fs::File,
    io::BufReader,
    path::{Path, PathBuf},
    sync::Arc,
};

use serde_json::Value;

use super::{Error, diff};
use crate::{
    cache::{self, Store},
    config::Config,
    plugin::{Engine, Plugin},
    replay::{self, Outcome},
};

/// The events file of a case.
pub const EVENTS: &str = "events.jsonl";
/// The expected actions of a case.
pub const EXPECTED: &str = "expected.jsonl";

/// One test case: a directory with an events file.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// The directory's name.
    pub name: String,
    /// The directory.
    pub dir: PathBuf,
}

/// What replaying a case found.
#[derive(Debug)]
pub struct Report {
    /// The committed actions, as `informant replay` prints them.
    pub actions: Vec<Value>,
    /// The calls that failed, in the host's words.
    pub failures: Vec<String>,
    /// The events no subscription of the plugin matched.
    pub unmatched: Vec<String>,
    /// The expected actions; `None` without an `expected.jsonl`.
    pub expected: Option<Vec<Value>>,
}

impl Fixture {
    /// The cases in `dir`: its subdirectories with an `events.jsonl`, by name.
    ///
    /// # Errors
    /// [`Error::Io`] if `dir` cannot be read (a missing `dir` has no cases).
    pub fn all(dir: &Path) -> Result<Vec<Self>, Error> {
        if !dir.is_dir() {
            return Ok(Vec::new());
        }
        let mut cases: Vec<Self> = std::fs::read_dir(dir)
            .map_err(Error::io(dir))?
            .flatten()
            .filter(|e| e.path().join(EVENTS).is_file())
            .map(|e| Self {
                name: e.file_name().to_string_lossy().into_owned(),
                dir: e.path(),
            })
            .collect();
        cases.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(cases)
    }

    /// Replay the case through the component `bytes`, loaded as `informant
    /// run` loads it with the host's default limits and the case's settings,
    /// into a cache holding the case's objects.
    ///
    /// # Errors
    /// A file of the case that cannot be read, settings the plugin refuses,
    /// or a plugin that does not load.
    pub fn run(&self, engine: &Engine, bytes: &[u8], component: &Path) -> Result<Report, Error> {
        let settings =
            crate::settings::beside(&self.dir.join("settings")).map_err(|e| Error::Project {
                path: e.path.clone(),
                reason: e.reason,
            })?;
        let cache = Arc::new(Store::new(cache::Config::default()));
        for name in ["objects.yaml", "objects.yml", "objects.json"] {
            let path = self.dir.join(name);
            if path.is_file() {
                replay::seed(&cache, &path).map_err(|e| Error::Project {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            }
        }
        let expected = self.expected()?;
        let options = crate::runtime::load_options(&Config::default(), engine, bytes, settings)
            .max_idle_instances(1);
        let plugin =
            Plugin::load(engine, bytes, cache.clone(), options).map_err(|source| Error::Load {
                path: component.to_path_buf(),
                source,
            })?;
        let events_path = self.dir.join(EVENTS);
        let events = File::open(&events_path).map_err(Error::io(&events_path))?;
        let mut report = Report {
            actions: Vec::new(),
            failures: Vec::new(),
            unmatched: Vec::new(),
            expected,
        };
        replay::replay(
            &plugin,
            &cache,
            BufReader::new(events),
            |outcome| match outcome {
                Outcome::Committed { line, actions } => report
                    .actions
                    .extend(actions.iter().map(|a| replay::action_line(line, a))),
                Outcome::Failed {
                    line,
                    object,
                    error,
                } => report.failures.push(format!(
                    "{EVENTS}:{line}: plugin call failed: {object} ({}): {error}",
                    error.outcome()
                )),
                Outcome::Unmatched { line, object } => report.unmatched.push(format!(
                    "{EVENTS}:{line}: {object}: no subscription of {} matches",
                    plugin.name()
                )),
            },
        )
        .map_err(|e| Error::Project {
            path: events_path.clone(),
            reason: e.to_string(),
        })?;
        Ok(report)
    }

    fn expected(&self) -> Result<Option<Vec<Value>>, Error> {
        let path = self.dir.join(EXPECTED);
        if !path.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(Error::io(&path))?;
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                serde_json::from_str(l).map_err(|e| Error::Project {
                    path: path.clone(),
                    reason: format!("line {}: {e}", i + 1),
                })
            })
            .collect::<Result<Vec<Value>, Error>>()
            .map(Some)
    }

    /// Write `actions` as the case's `expected.jsonl`.
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot be written.
    pub fn record(&self, actions: &[Value]) -> Result<(), Error> {
        let text: String = actions
            .iter()
            .map(|a| diff::canonical_line(a) + "\n")
            .collect();
        super::write_file(&self.dir.join(EXPECTED), &text)
    }
}

impl Report {
    /// Whether every call succeeded and the actions are the expected ones.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
            && self
                .expected
                .as_ref()
                .is_some_and(|e| diff::actions(e, &self.actions).is_none())
    }

    /// Why the case failed, for the user: the failed calls, then how the
    /// actions differ from the expected ones.
    pub fn explain(&self) -> String {
        let mut out: Vec<String> = self.failures.clone();
        match &self.expected {
            None => out.push(format!(
                "no {EXPECTED}: write the actions the plugin must take there, one JSON line each, \
                 or record what it does now with `informant test --update`"
            )),
            Some(expected) => {
                if let Some(diff) = diff::actions(expected, &self.actions) {
                    out.push(format!(
                        "the actions differ from {EXPECTED} (- expected, + taken):"
                    ));
                    out.push(diff);
                }
            }
        }
        if !out.is_empty() && !self.unmatched.is_empty() {
            out.push("events no subscription matched:".into());
            out.extend(self.unmatched.iter().map(|u| format!("  {u}")));
        }
        out.join("\n")
    }
}
