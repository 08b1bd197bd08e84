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

    if let Some(reviews) = &args.reviews {
        return run_reviews(&plugin, reviews);
    }
    let events_path = args
        .events
        .as_deref()
        .context("--events or --reviews is required")?;
    let events: Box<dyn std::io::BufRead> = if events_path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let file = File::open(events_path)
            .with_context(|| format!("opening events file {}", events_path.display()))?;
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
                events_path.display(),
                error.outcome()
            );
        }
        Outcome::Unmatched { line, object } => {
            eprintln!(
                "{}:{line}: {object}: no subscription of {} matches; skipped",
                events_path.display(),
                plugin.name()
            );
        }
    })
    .with_context(|| format!("replaying {}", events_path.display()))?;
    if let Some(e) = write_error {
        bail!("writing actions to stdout: {e}");
    }
    if failed > 0 {
        eprintln!("{failed} call(s) failed; {committed} action(s) committed");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// `--reviews`: each AdmissionReview to the plugin's webhook, each answer
/// printed; reviews the plugin could not decide are reported in the host's
/// words and make the exit status non-zero.
fn run_reviews(plugin: &Plugin, path: &std::path::Path) -> anyhow::Result<ExitCode> {
    let input: Box<dyn std::io::BufRead> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let file =
            File::open(path).with_context(|| format!("opening reviews file {}", path.display()))?;
        Box::new(BufReader::new(file))
    };
    let mut stdout = std::io::stdout().lock();
    let mut failed = 0usize;
    let mut write_error = None;
    replay::reviews(plugin, input, |reviewed| {
        if let Some(failure) = &reviewed.answer.failure {
            failed += 1;
            eprintln!(
                "{}:{}: admission request answered by the failure policy: {} ({}): {failure}",
                path.display(),
                reviewed.line,
                reviewed.request,
                failure.cause()
            );
        }
        if let Err(e) = writeln!(stdout, "{}", replay::review_line(&reviewed)) {
            write_error.get_or_insert(e);
        }
    })
    .with_context(|| format!("replaying {}", path.display()))?;
    if let Some(e) = write_error {
        bail!("writing answers to stdout: {e}");
    }
    if failed > 0 {
        eprintln!("{failed} review(s) could not be decided by the plugin");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
