//! `informant push`: publish a plugin in the CNCF Wasm OCI layout.

use std::process::ExitCode;

use super::{read_plugin, registry};
use crate::cli::PushArgs;

/// Push the component, print `REF@DIGEST` on stdout.
pub(super) fn run(args: &PushArgs) -> anyhow::Result<ExitCode> {
    let bytes = read_plugin(&args.plugin)?;
    if !bytes.starts_with(b"\0asm") {
        anyhow::bail!(
            "{}: not a WebAssembly file (no \\0asm header); push a component built for wasm32-wasip2",
            args.plugin.display()
        );
    }
    let target = registry::target(&args.reference, &args.registry, None)?;
    if target.reference.digest().is_some() {
        anyhow::bail!(
            "{}: push to a tag (registry/repository:tag); the digest is what the push prints",
            args.reference
        );
    }
    let digest = registry::block_on(target.fetcher.registry().push(
        &target.reference,
        &bytes,
        &target.auth,
    ))??;
    eprintln!(
        "pushed {} ({} bytes) to {}",
        args.plugin.display(),
        bytes.len(),
        target.reference.whole()
    );
    println!(
        "{}/{}@{digest}",
        target.reference.registry(),
        target.reference.repository()
    );
    Ok(ExitCode::SUCCESS)
}
