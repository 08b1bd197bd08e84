//! `informant check`: load a plugin as `run` would, and say what it asks for.

use std::{path::Path, process::ExitCode, sync::Arc};

use anyhow::Context;

use super::{engine, read_plugin, settings};
use crate::{
    cache::{self, Store},
    cli::CheckArgs,
    config::Config,
    plugin::Plugin,
};

/// Load a plugin as `informant run` would (the configuration's limits and
/// ceiling, the settings beside it, `init`), print its manifest, and say
/// what it asks for beyond the host's defaults.
pub(super) fn run(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let config = match &args.config {
        Some(path) => Config::load(path).context("invalid configuration")?,
        None => Config::default(),
    };
    let settings = match &args.settings {
        Some(arg) => settings(Some(arg))?,
        None => crate::settings::beside(&args.plugin)?,
    };
    let compile_cache = args
        .compile_cache
        .dir
        .as_deref()
        .or(config.compile_cache_dir.as_deref());
    let (plugin, verdict) = checked(
        &args.plugin,
        &config,
        args.config.is_some(),
        settings,
        compile_cache,
    )?;
    println!("{}", serde_json::to_string_pretty(plugin.manifest())?);
    eprintln!("{verdict}");
    Ok(ExitCode::SUCCESS)
}

/// Load the plugin at `path` as `informant run` would with `config` and
/// `settings`, and say so: its name, version and contract, and what it asks
/// for beyond the defaults. `with_config` says whether `config` is the
/// user's file.
pub(super) fn checked(
    path: &Path,
    config: &Config,
    with_config: bool,
    settings: serde_json::Value,
    compile_cache: Option<&Path>,
) -> anyhow::Result<(Plugin, String)> {
    let bytes = read_plugin(path)?;
    let engine = engine(compile_cache)?;
    let options = crate::runtime::load_options(config, &engine, &bytes, settings);
    let cache = Arc::new(Store::new(cache::Config::default()));
    let plugin = Plugin::load(&engine, &bytes, cache, options)
        .with_context(|| format!("{} is not a plugin this host would run", path.display()))?;
    let resources = &plugin.manifest().resources;
    let (defaults, _) = config.limits_for(plugin.name());
    let mut asks = Vec::new();
    if let Some(mib) = resources.memory_mib {
        asks.push(format!(
            "{mib} MiB of memory (host default {} MiB)",
            defaults.memory_bytes >> 20
        ));
    }
    if let Some(ms) = resources.deadline_ms {
        asks.push(format!(
            "a {ms} ms deadline (host default {} ms)",
            defaults.deadline.as_millis()
        ));
    }
    if let Some(n) = resources.instances {
        asks.push(format!("at most {n} instance(s) at a time"));
    }
    let verdict = format!(
        "{}: loads as informant run{} would load it: {} {} (informant:plugin@{}), {}",
        path.display(),
        if with_config { " --config" } else { "" },
        plugin.name(),
        plugin.manifest().version,
        plugin.contract_version(),
        if asks.is_empty() {
            "asks for nothing beyond the host's defaults".to_string()
        } else {
            format!("asks for {}", asks.join(", "))
        }
    );
    Ok((plugin, verdict))
}
