//! `informant config check`: validate a configuration file.

use std::{path::Path, process::ExitCode};

use crate::config::Config;

pub(super) fn run(file: &Path) -> anyhow::Result<ExitCode> {
    let config = Config::load(file)?;
    println!(
        "{}: valid ({} plugin allowlist entries, actions {} QPS burst {}, leader election {})",
        file.display(),
        config.allowlist.len(),
        config.actions.qps,
        config.actions.burst,
        if config.leader.enabled { "on" } else { "off" }
    );
    Ok(ExitCode::SUCCESS)
}
