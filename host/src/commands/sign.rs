//! `informant sign` and `informant keygen`: cosign signatures with a key.

use std::{io::Write, process::ExitCode};

use anyhow::Context;

use super::registry;
use crate::{
    cli::{KeygenArgs, SignArgs},
    oci,
};

/// Sign the digest the reference resolves to; print the signature's tag.
pub(super) fn run(args: &SignArgs) -> anyhow::Result<ExitCode> {
    let key =
        std::fs::read(&args.key).with_context(|| format!("reading {}", args.key.display()))?;
    let password = std::env::var("COSIGN_PASSWORD").unwrap_or_default();
    let target = registry::target(&args.reference, &args.registry, None)?;
    let insecure = target.fetcher.config().insecure_registries.clone();
    let (digest, tag) = registry::block_on(async {
        let digest = target
            .fetcher
            .resolve(&target.reference, &target.auth)
            .await?;
        let tag = oci::sign(
            &target.reference,
            &digest,
            &key,
            password.as_bytes(),
            &target.auth,
            &insecure,
        )
        .await?;
        Ok::<_, oci::Error>((digest, tag))
    })??;
    eprintln!(
        "signed {} ({digest}) with {}",
        target.reference.whole(),
        args.key.display()
    );
    println!("{tag}");
    Ok(ExitCode::SUCCESS)
}

/// Write NAME.key and NAME.pub, refusing to overwrite.
pub(super) fn keygen(args: &KeygenArgs) -> anyhow::Result<ExitCode> {
    let private_path = args.name.with_extension("key");
    let public_path = args.name.with_extension("pub");
    let (private, public) = oci::generate_key_pair()?;
    let write = |path: &std::path::Path, text: &str, mode: u32| -> anyhow::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
        #[cfg(not(unix))]
        let _ = mode;
        let mut file = options
            .open(path)
            .with_context(|| format!("creating {} (it is never overwritten)", path.display()))?;
        file.write_all(text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))
    };
    write(&private_path, &private, 0o600)?;
    write(&public_path, &public, 0o644)?;
    eprintln!(
        "wrote {} (private: keep it secret) and {} (public: list it in the host's oci.signatures)",
        private_path.display(),
        public_path.display()
    );
    Ok(ExitCode::SUCCESS)
}
