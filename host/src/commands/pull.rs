//! `informant pull`: download a plugin from a registry.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context;

use super::registry;
use crate::cli::PullArgs;

/// Pull the component (by tag or digest), write it, print the digest.
pub(super) fn run(args: &PullArgs) -> anyhow::Result<ExitCode> {
    let target = registry::target(&args.reference, &args.registry, None)?;
    let artifact = registry::block_on(
        target
            .fetcher
            .registry()
            .pull(&target.reference, &target.auth),
    )??;
    let output = args.output.clone().unwrap_or_else(|| {
        let last = target
            .reference
            .repository()
            .rsplit('/')
            .next()
            .unwrap_or("plugin");
        PathBuf::from(format!("{last}.wasm"))
    });
    std::fs::write(&output, &artifact.bytes)
        .with_context(|| format!("writing {}", output.display()))?;
    eprintln!(
        "pulled {} ({} bytes) into {}",
        target.reference.whole(),
        artifact.bytes.len(),
        output.display()
    );
    println!("{}", artifact.digest);
    Ok(ExitCode::SUCCESS)
}
