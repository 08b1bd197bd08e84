//! `informant check`: load a plugin as `run` would, and say what it asks for.

use std::{process::ExitCode, sync::Arc};

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
    let bytes = read_plugin(&args.plugin)?;
    let settings = match &args.settings {
        Some(arg) => settings(Some(arg))?,
        None => crate::settings::beside(&args.plugin)?,
    };
    let engine = engine(
        args.compile_cache
            .dir
            .as_deref()
            .or(config.compile_cache_dir.as_deref()),
    )?;
    let options = crate::runtime::load_options(&config, &engine, &bytes, settings);
    let cache = Arc::new(Store::new(cache::Config::default()));
    let plugin = Plugin::load(&engine, &bytes, cache, options).with_context(|| {
        format!(
            "{} is not a plugin this host would run",
            args.plugin.display()
        )
    })?;
    println!("{}", serde_json::to_string_pretty(plugin.manifest())?);
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
    let state = &plugin.manifest().state;
    if state.tier != crate::state::Tier::Memory {
        asks.push(format!("a {} state store", state.tier));
    }
    for (quota, value) in [
        ("keys", state.max_keys.map(u64::from)),
        ("bytes per value", state.max_value_bytes.map(u64::from)),
        ("bytes in all", state.max_total_bytes),
    ] {
        if let Some(n) = value {
            asks.push(format!("a state quota of {n} {quota}"));
        }
    }
    if let Some(webhook) = &plugin.manifest().admission {
        let operator = config
            .admission
            .as_ref()
            .map(|a| (a.effective(plugin.name(), webhook), a));
        let changed = match &operator {
            Some((None, _)) => " (disabled by the configuration: admission.plugins.NAME.enabled)",
            Some((Some(w), _)) if w != webhook => {
                " (changed by the configuration: admission.plugins.NAME)"
            }
            _ => "",
        };
        asks.push(format!(
            "a {} admission webhook{}",
            webhook.mode,
            changed.replace("NAME", plugin.name())
        ));
    }
    eprintln!(
        "{}: loads as informant run{} would load it: {} {} (informant:plugin@{}), {}",
        args.plugin.display(),
        if args.config.is_some() {
            " --config"
        } else {
            ""
        },
        plugin.name(),
        plugin.manifest().version,
        plugin.contract_version(),
        if asks.is_empty() {
            "asks for nothing beyond the host's defaults".to_string()
        } else {
            format!("asks for {}", asks.join(", "))
        }
    );
    Ok(ExitCode::SUCCESS)
}
