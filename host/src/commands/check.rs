//! `informant check`: load a plugin as `run` would, and say what it asks
//! for; a plugin in a registry is first resolved, verified as the
//! configuration's signature policy requires, and pulled.

use std::{path::Path, process::ExitCode, sync::Arc};

use anyhow::Context;

use super::{engine, read_plugin, registry, settings};
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
    let (bytes, settings) = if is_reference(&args.plugin) {
        let shown = args.plugin.to_string_lossy();
        let target = registry::target(&shown, &args.registry, Some(config.oci.clone()))?;
        let fetched = registry::block_on(async {
            let digest = target
                .fetcher
                .resolve(&target.reference, &target.auth)
                .await?;
            target
                .fetcher
                .fetch(&target.reference, &digest, &target.auth)
                .await
        })?
        .with_context(|| format!("{shown} cannot be had as this host would have it"))?;
        let how = match &fetched.verified {
            crate::oci::Verified::Signed { by } => format!("signature verified ({by})"),
            crate::oci::Verified::NotRequired => {
                "no signature required by the signature policy".to_string()
            }
        };
        eprintln!("{shown}: resolved to {}; {how}", fetched.digest);
        (fetched.bytes, settings(args.settings.as_deref())?)
    } else {
        let bytes = read_plugin(&args.plugin)?;
        let settings = match &args.settings {
            Some(arg) => settings(Some(arg))?,
            None => crate::settings::beside(&args.plugin)?,
        };
        (bytes, settings)
    };
    let compile_cache = args
        .compile_cache
        .dir
        .as_deref()
        .or(config.compile_cache_dir.as_deref());
    let (plugin, verdict) = checked(
        &args.plugin,
        bytes,
        &config,
        args.config.is_some(),
        settings,
        compile_cache,
    )?;
    println!("{}", serde_json::to_string_pretty(plugin.manifest())?);
    eprintln!("{verdict}");
    Ok(ExitCode::SUCCESS)
}

/// Load the plugin `bytes` (from `path`, a file or a reference) as
/// `informant run` would with `config` and `settings`, and say so: its
/// name, version and contract, and what it asks for beyond the defaults.
/// `with_config` says whether `config` is the user's file.
pub(super) fn checked(
    path: &Path,
    bytes: Vec<u8>,
    config: &Config,
    with_config: bool,
    settings: serde_json::Value,
    compile_cache: Option<&Path>,
) -> anyhow::Result<(Plugin, String)> {
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

/// Whether `informant check` was given a registry reference rather than a
/// file: no such file, and it names a registry and a tag or digest.
fn is_reference(arg: &Path) -> bool {
    let text = arg.to_string_lossy();
    !arg.exists()
        && text.contains('/')
        && (text.contains('@')
            || text
                .rsplit('/')
                .next()
                .is_some_and(|last| last.contains(':')))
        && crate::oci::parse_reference(&text).is_ok()
}
