//! What `push`, `pull`, `sign` and `check REF` share: the reference, the
//! registry client and the credentials.

use std::path::PathBuf;

use anyhow::Context;

use crate::{
    cli::RegistryArgs,
    oci::{self, Reference, RegistryAuth},
};

/// The reference, a registry client for it, and its credentials.
pub(super) struct Target {
    pub(super) reference: Reference,
    pub(super) fetcher: oci::Fetcher,
    pub(super) auth: RegistryAuth,
}

/// Parse `reference` and get ready to reach its registry, with the
/// operator's `oci` configuration (its signature policy, its insecure
/// registries) if given.
pub(super) fn target(
    reference: &str,
    args: &RegistryArgs,
    config: Option<oci::Config>,
) -> anyhow::Result<Target> {
    let reference = oci::parse_reference(reference)?;
    let mut config = config.unwrap_or_default();
    if args.plain_http {
        config
            .insecure_registries
            .push(reference.resolve_registry().to_string());
    }
    let docker_config = args.docker_config.clone().or_else(default_docker_config);
    let auth = match &docker_config {
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            oci::from_docker_config(
                &bytes,
                &path.display().to_string(),
                reference.resolve_registry(),
            )?
        }
        None => RegistryAuth::Anonymous,
    };
    let fetcher = oci::Fetcher::new(config, None)?;
    Ok(Target {
        reference,
        fetcher,
        auth,
    })
}

/// `$DOCKER_CONFIG/config.json`, then `~/.docker/config.json`, if present.
fn default_docker_config() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("DOCKER_CONFIG").map(|d| PathBuf::from(d).join("config.json")),
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json")),
    ];
    candidates.into_iter().flatten().find(|p| p.is_file())
}

/// A runtime for a command that talks to a registry.
pub(super) fn block_on<T>(future: impl std::future::Future<Output = T>) -> anyhow::Result<T> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    Ok(runtime.block_on(future))
}
