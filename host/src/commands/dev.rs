//! `informant dev`: the embedded API server, and the host against it.

use std::process::ExitCode;

use anyhow::{Context, bail};
use informant_apiserver::{self as devserver, ApiServer};

use super::host::{resolve, say, shutdown_signal, start_host, stop_host};
use crate::{cli::DevArgs, informer};

pub(super) fn run(args: &DevArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    if let Some(dir) = args.manifests.as_ref().filter(|d| !d.is_dir()) {
        bail!("--manifests {}: not a directory", dir.display());
    }
    // The embedded server calls the plugins' webhooks, served on a free
    // loopback port with a certificate made at start, unless told otherwise.
    let mut overrides = args.host.overrides();
    if overrides.webhook_addr.is_none() {
        overrides.webhook_addr = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    }
    if overrides.webhook_cert_dir.is_none() {
        overrides.webhook_generate_cert = true;
    }
    let mut host_config = resolve(&args.host, overrides)?;
    if args.server_only {
        host_config.plugin_dir = None;
    } else if host_config.plugin_dir.is_none() && crate::examples::available() {
        let dir = std::env::temp_dir().join("informant-dev").join("plugins");
        let dir = crate::examples::write_to(&dir)
            .with_context(|| format!("writing the example plugins into {}", dir.display()))?;
        host_config.plugin_dir = Some(dir);
    }
    runtime.block_on(async {
        let config = devserver::Config::default()
            .port(args.port)
            .fault_endpoint(args.faults);
        let server = ApiServer::start(config)
            .await
            .context("starting the embedded API server")?;
        let path = match &args.kubeconfig {
            Some(p) => p.clone(),
            None => {
                let dir = std::env::temp_dir().join("informant-dev");
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                dir.join("kubeconfig")
            }
        };
        server.write_kubeconfig(&path)?;
        // The durable state tier's kind, as deploy/ installs it in a cluster.
        devserver::seed::Seeder::new(server.storage().clone())
            .sync_text(
                std::path::Path::new("deploy/base/crd-pluginstate.yaml"),
                include_str!("../../../deploy/base/crd-pluginstate.yaml"),
            )
            .context("installing the PluginState CRD")?;
        let mut seeder = devserver::seed::Seeder::new(server.storage().clone());
        let stop = tokio_util::sync::CancellationToken::new();
        match &args.manifests {
            Some(dir) => {
                for e in seeder.sync_dir(dir) {
                    tracing::error!(error = %e, "manifest not applied");
                }
                let (dir, stop) = (dir.clone(), stop.clone());
                tokio::spawn(async move {
                    if let Err(e) = devserver::seed::watch_dir(seeder, dir.clone(), stop).await {
                        tracing::error!(error = %e, dir = %dir.display(), "cannot watch the manifests directory; edits will not be picked up");
                    }
                });
            }
            None => {
                let samples = std::path::Path::new("samples/demo.yaml");
                seeder.sync_text(samples, include_str!("../../samples/demo.yaml")).context("seeding the sample objects")?;
            }
        }
        say(&format!(
            "embedded API server at {}\nKUBECONFIG={} kubectl get ns",
            server.url(),
            path.display()
        ));
        let mut host = match host_config.plugin_dir {
            Some(_) => {
                let url = server.url().parse().context("the server's URL")?;
                let config = informer::client_config(kube::Config::new(url), informer::IDLE_TIMEOUT);
                let host = start_host(
                    config,
                    crate::transport::Transport::embedded(),
                    host_config,
                    &stop,
                )
                .await?;
                Some(host)
            }
            None => None,
        };
        shutdown_signal().await?;
        if let Some(host) = &mut host {
            stop_host(host).await;
        }
        stop.cancel();
        server.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}
