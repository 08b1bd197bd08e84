//! Hot reload: the plugin directory is watched, and what is in it is what
//! runs.
//!
//! `NAME.wasm` is a plugin, with optional settings in `NAME.json`,
//! `NAME.yaml` or `NAME.toml` beside it; dotfiles and everything else
//! (editors' temp files, a ConfigMap volume's `..data` machinery) are never
//! loaded, only reasons to look again. Bursts of events are debounced into
//! one scan once the directory has been quiet for [`QUIET`]; a file whose
//! size changes while it is read is looked at again later, so a file copied
//! in chunks is loaded once, complete. Symlinks are followed, which is how a
//! ConfigMap or Secret volume's atomic `..data` swap is seen.
//!
//! A scan compares each file's bytes and settings with what runs: a new file
//! is added, a changed one replaces its plugin (see
//! [`Dispatcher::replace`](crate::dispatch::Dispatcher::replace)), a removed
//! one unloads it. A file that fails to load never replaces a running
//! version; the error is kept as the file's status, and a later good file
//! recovers by itself. Compiling happens on a blocking thread, so loading
//! one plugin never delays events for the others.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{
    runtime::{LoadError, Runtime, is_plugin_file},
    settings,
    source::Source,
};

/// How long the directory must be quiet before a scan.
pub const QUIET: Duration = Duration::from_millis(100);

/// What became of a plugin file, for the admin view and metrics.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileStatus {
    /// The file.
    pub file: PathBuf,
    /// The plugin it put in service, if it ever loaded.
    pub plugin: Option<String>,
    /// The digest of the version in service.
    pub digest: Option<String>,
    /// Why the file's current content is not in service, if it is not.
    pub error: Option<String>,
    /// Loads that succeeded.
    pub loads: u64,
    /// Loads that failed.
    pub failures: u64,
}

#[derive(Debug)]
struct Tracked {
    status: FileStatus,
    /// SHA-256 of the bytes and the settings last looked at, good or bad,
    /// so that the same broken file is not loaded again and again.
    fingerprint: [u8; 32],
}

/// The directory watcher and what it has loaded.
pub struct Reloader {
    runtime: Arc<Runtime>,
    dir: PathBuf,
    files: Mutex<HashMap<PathBuf, Tracked>>,
    scanned: AtomicBool,
    /// Scans are serialized.
    scan_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Reloader {
    /// Scan `dir` once (loading what is there), then keep watching it until
    /// `stop` is cancelled.
    ///
    /// # Errors
    /// If the directory cannot be read or watched.
    pub async fn start(
        runtime: Arc<Runtime>,
        dir: PathBuf,
        stop: CancellationToken,
    ) -> Result<Arc<Self>, notify::Error> {
        let this = Arc::new(Self {
            runtime,
            dir,
            files: Mutex::new(HashMap::new()),
            scanned: AtomicBool::new(false),
            scan_lock: tokio::sync::Mutex::new(()),
        });
        // Watch before the first scan, so nothing that arrives during it is missed.
        let (tx, rx) = mpsc::channel::<()>(1);
        let watcher = {
            use notify::Watcher as _;
            let mut watcher =
                notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                    if event.is_ok() {
                        // Full means a scan is already due.
                        let _ = tx.try_send(());
                    }
                })?;
            watcher.watch(&this.dir, notify::RecursiveMode::NonRecursive)?;
            watcher
        };
        if let Err(e) = std::fs::read_dir(&this.dir) {
            return Err(notify::Error::io(e));
        }
        this.scan().await;
        this.scanned.store(true, Ordering::SeqCst);
        tokio::spawn(this.clone().watch(watcher, rx, stop));
        Ok(this)
    }

    /// Whether the first scan is done: part of readiness.
    pub fn scanned(&self) -> bool {
        self.scanned.load(Ordering::SeqCst)
    }

    /// The status of every plugin file seen, by file name.
    pub fn statuses(&self) -> Vec<FileStatus> {
        let mut out: Vec<_> = self
            .files
            .lock()
            .values()
            .map(|t| t.status.clone())
            .collect();
        out.sort_by(|a, b| a.file.cmp(&b.file));
        out
    }

    async fn watch(
        self: Arc<Self>,
        _watcher: notify::RecommendedWatcher,
        mut rx: mpsc::Receiver<()>,
        stop: CancellationToken,
    ) {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                got = rx.recv() => if got.is_none() { return },
            }
            // Debounce: wait for a quiet directory.
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(QUIET) => break,
                    got = rx.recv() => if got.is_none() { return },
                }
            }
            if self.scan().await {
                // Something was still being written: look again.
                tokio::time::sleep(QUIET).await;
                self.scan().await;
            }
        }
    }

    /// Bring what runs in line with the directory. Returns whether a file
    /// was still changing and needs another look.
    pub async fn scan(&self) -> bool {
        let _one_at_a_time = self.scan_lock.lock().await;
        let present: Vec<PathBuf> = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| is_plugin_file(p))
                .collect(),
            Err(e) => {
                tracing::error!(dir = %self.dir.display(), error = %e, "cannot read the plugin directory");
                return false;
            }
        };
        let mut unsettled = false;
        let mut files = present.clone();
        files.sort();
        for file in files {
            match self.look_at(&file).await {
                Ok(()) => {}
                Err(Unsettled) => unsettled = true,
            }
        }
        let gone: Vec<(PathBuf, Option<String>)> = self
            .files
            .lock()
            .iter()
            .filter(|(f, _)| !present.contains(f))
            .map(|(f, t)| (f.clone(), t.status.plugin.clone()))
            .collect();
        for (file, plugin) in gone {
            self.files.lock().remove(&file);
            if let Some(name) = plugin
                && self.owner_of(&name).is_none()
            {
                let source = Source::File(file.clone());
                if self.runtime.sources().holder(&name).as_ref() == Some(&source) {
                    if self.runtime.dispatcher().remove(&name).await {
                        tracing::info!(file = %file.display(), plugin.name = %name, "plugin file removed: plugin unloaded, its watches released");
                    }
                    self.runtime.sources().release(&name, &source);
                }
            }
        }
        unsettled
    }

    /// The file that runs plugin `name`, if any.
    fn owner_of(&self, name: &str) -> Option<PathBuf> {
        self.files
            .lock()
            .iter()
            .find(|(_, t)| t.status.plugin.as_deref() == Some(name))
            .map(|(f, _)| f.clone())
    }

    async fn look_at(&self, file: &Path) -> Result<(), Unsettled> {
        let before = std::fs::metadata(file).map(|m| m.len()).ok();
        let Ok(bytes) = std::fs::read(file) else {
            return Err(Unsettled);
        };
        let after = std::fs::metadata(file).map(|m| m.len()).ok();
        if before != after || after != Some(bytes.len() as u64) {
            return Err(Unsettled);
        }
        let settings = settings::beside(file);
        let mut hasher = Sha256::new();
        hasher.update(&bytes);
        match &settings {
            Ok(v) => hasher.update(v.to_string().as_bytes()),
            Err(e) => hasher.update(e.to_string().as_bytes()),
        }
        let fingerprint: [u8; 32] = hasher.finalize().into();
        if self
            .files
            .lock()
            .get(file)
            .is_some_and(|t| t.fingerprint == fingerprint)
        {
            return Ok(());
        }
        let started = Instant::now();
        let previous = self
            .files
            .lock()
            .get(file)
            .and_then(|t| t.status.plugin.clone());
        let outcome = match settings {
            Ok(settings) => self.load(file, bytes, settings, previous.as_deref()).await,
            Err(e) => Err(e.to_string()),
        };
        let mut files = self.files.lock();
        let tracked = files.entry(file.to_path_buf()).or_insert_with(|| Tracked {
            status: FileStatus {
                file: file.to_path_buf(),
                plugin: None,
                digest: None,
                error: None,
                loads: 0,
                failures: 0,
            },
            fingerprint,
        });
        tracked.fingerprint = fingerprint;
        match outcome {
            Ok((name, digest)) => {
                tracing::info!(file = %file.display(), plugin.name = %name, digest = %digest, elapsed_ms = started.elapsed().as_millis() as u64, "plugin loaded");
                tracked.status.plugin = Some(name);
                tracked.status.digest = Some(digest);
                tracked.status.error = None;
                tracked.status.loads += 1;
            }
            Err(error) => {
                let running = tracked.status.plugin.is_some() && tracked.status.digest.is_some();
                tracing::error!(file = %file.display(), %error, keeps_running = running, "plugin file not loaded");
                tracked.status.error = Some(error);
                tracked.status.failures += 1;
            }
        }
        Ok(())
    }

    /// Load a file's content and put it in service, replacing what the file
    /// ran before. Returns the plugin's name and digest.
    async fn load(
        &self,
        file: &Path,
        bytes: Vec<u8>,
        settings: serde_json::Value,
        previous: Option<&str>,
    ) -> Result<(String, String), String> {
        let plugin = self
            .runtime
            .prepare(file, bytes, settings)
            .await
            .map_err(|e: LoadError| e.to_string())?;
        let name = plugin.name().to_string();
        let source = Source::File(file.to_path_buf());
        if let Err(holder) = self.runtime.sources().claim(&name, &source) {
            plugin.release_indexes();
            return Err(format!(
                "{}: plugin name {name} is already used by {holder}; rename one of them",
                file.display(),
            ));
        }
        let digest = plugin.digest().to_string();
        self.runtime
            .dispatcher()
            .replace(plugin)
            .await
            .map_err(|e| format!("{}: {e}", file.display()))?;
        // The file now runs a plugin under another name: the old one goes.
        if let Some(old) = previous.filter(|p| *p != name) {
            self.runtime.dispatcher().remove(old).await;
            self.runtime.sources().release(old, &source);
        }
        Ok((name, digest))
    }
}

/// A file was changing while it was read.
struct Unsettled;
