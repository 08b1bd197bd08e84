//! `informant run`: the host against a cluster.

use std::process::ExitCode;

use anyhow::Context;

use super::host::{host_config, shutdown_signal, start_host, stop_host};
use crate::{cli::RunArgs, informer};

pub(super) fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let config = host_config(&args.host)?;
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async {
        let options = kube::config::KubeConfigOptions {
            context: args.context.clone(),
            ..Default::default()
        };
        let kube_config = match &args.kubeconfig {
            Some(path) => {
                let kc = kube::config::Kubeconfig::read_from(path)
                    .with_context(|| format!("reading kubeconfig {}", path.display()))?;
                kube::Config::from_custom_kubeconfig(kc, &options)
                    .await
                    .with_context(|| format!("using kubeconfig {}", path.display()))?
            }
            None if args.context.is_some() => kube::Config::from_kubeconfig(&options)
                .await
                .context("loading the kubeconfig")?,
            None => kube::Config::infer()
                .await
                .context("no kubeconfig found and not running in a cluster")?,
        };
        let kube_config = informer::client_config(kube_config, informer::IDLE_TIMEOUT);
        let stop = tokio_util::sync::CancellationToken::new();
        let mut host = start_host(
            kube_config,
            crate::transport::Transport::default(),
            config,
            &stop,
        )
        .await?;
        shutdown_signal().await?;
        stop.cancel();
        stop_host(&mut host).await;
        Ok(ExitCode::SUCCESS)
    })
}
