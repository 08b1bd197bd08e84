//! `informant replay`: a plugin against recorded events, offline.

use std::{
    fs::File,
    io::{BufReader, Write},
    process::ExitCode,
    sync::Arc,
    time::Duration,
};

use super::{engine, read_plugin, settings};
use crate::{
    cache::{self, Store},
    cli::ReplayArgs,
    plugin::{Limits, LoadOptions, Plugin},
    replay::{self, Outcome},
};
use anyhow::{Context, bail};

pub(super) fn run(args: &ReplayArgs) -> anyhow::Result<ExitCode> {
    let bytes = read_plugin(&args.plugin)?;
    let settings = settings(args.settings.as_deref())?;
    let cache = Arc::new(Store::new(cache::Config::default()));
    for path in &args.objects {
        replay::seed(&cache, path)?;
    }
    let engine = engine(args.compile_cache.dir.as_deref())?;
    let limits = Limits::default()
        .deadline(Duration::from_millis(args.deadline_ms))
        .memory_bytes(args.memory_mib << 20);
    let options = LoadOptions::default()
        .limits(limits.clone())
        .ceiling(limits)
        .settings(settings)
        .max_idle_instances(1);
    let plugin = Plugin::load(&engine, &bytes, cache.clone(), options)
        .with_context(|| format!("loading plugin {}", args.plugin.display()))?;

    let events: Box<dyn std::io::BufRead> = if args.events.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let file = File::open(&args.events)
            .with_context(|| format!("opening events file {}", args.events.display()))?;
        Box::new(BufReader::new(file))
    };
    let mut stdout = std::io::stdout().lock();
    let (mut failed, mut committed) = (0usize, 0usize);
    let mut write_error = None;
    replay::replay(&plugin, &cache, events, |outcome| match outcome {
        Outcome::Committed { line, actions, .. } => {
            for action in &actions {
                committed += 1;
                if let Err(e) = writeln!(stdout, "{}", replay::action_line(line, action)) {
                    write_error.get_or_insert(e);
                }
            }
        }
        Outcome::Failed {
            line,
            object,
            error,
        } => {
            failed += 1;
            // The host's words: its log says `plugin call failed` with these.
            eprintln!(
                "{}:{line}: plugin call failed: {object} ({}): {error}",
                args.events.display(),
                error.outcome()
            );
        }
        Outcome::Unmatched { line, object } => {
            eprintln!(
                "{}:{line}: {object}: no subscription of {} matches; skipped",
                args.events.display(),
                plugin.name()
            );
        }
    })
    .with_context(|| format!("replaying {}", args.events.display()))?;
    if let Some(e) = write_error {
        bail!("writing actions to stdout: {e}");
    }
    if failed > 0 {
        eprintln!("{failed} call(s) failed; {committed} action(s) committed");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
