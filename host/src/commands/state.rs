//! `informant state`: read plugins' stores through a running host's admin
//! API (the memory tier lives only in the host; the durable tier's view is
//! the host's too).

use std::process::ExitCode;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::cli::{StateArgs, StateCommand};

pub(super) fn run(args: &StateArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        let url: http::Uri = format!("http://{}", args.admin_addr)
            .parse()
            .context("the admin address")?;
        let client =
            kube::Client::try_from(kube::Config::new(url)).context("building an HTTP client")?;
        let admin = Admin {
            client,
            addr: args.admin_addr,
        };
        match &args.command {
            StateCommand::Keys {
                plugin,
                prefix,
                limit,
            } => {
                let mut cursor: Option<String> = None;
                let mut printed = 0;
                loop {
                    let page_size = limit.map_or(1_000, |l| (l - printed).clamp(1, 1_000));
                    let mut query = form_urlencoded::Serializer::new(String::new());
                    query.append_pair("prefix", prefix);
                    query.append_pair("limit", &page_size.to_string());
                    if let Some(c) = &cursor {
                        query.append_pair("cursor", c);
                    }
                    let page = admin
                        .get(&format!("/api/v1/state/{plugin}/keys?{}", query.finish()))
                        .await?;
                    let keys = page["keys"].as_array().cloned().unwrap_or_default();
                    for key in keys.iter().filter_map(Value::as_str) {
                        println!("{key}");
                        printed += 1;
                    }
                    cursor = page["cursor"].as_str().map(str::to_string);
                    if cursor.is_none() || limit.is_some_and(|l| printed >= l) {
                        break;
                    }
                }
            }
            StateCommand::Get { plugin, key } => {
                let query = form_urlencoded::Serializer::new(String::new())
                    .append_pair("key", key)
                    .finish();
                let value = admin
                    .get(&format!("/api/v1/state/{plugin}/value?{query}"))
                    .await?;
                println!("{}", serde_json::to_string_pretty(&value)?);
            }
            StateCommand::Usage => {
                let stores = admin.get("/api/v1/state").await?;
                println!("{}", serde_json::to_string_pretty(&stores["stores"])?);
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

struct Admin {
    client: kube::Client,
    addr: std::net::SocketAddr,
}

impl Admin {
    /// GET a path of the admin API as JSON; its error in its own words.
    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let request = http::Request::get(path)
            .body(kube::client::Body::empty())
            .context("building the request")?;
        let unreachable = || {
            format!(
                "cannot reach the admin API at {} (--admin-addr): is the host running?",
                self.addr
            )
        };
        let response = self.client.send(request).await.with_context(unreachable)?;
        let status = response.status();
        let body = response
            .into_body()
            .collect_bytes()
            .await
            .with_context(unreachable)?;
        let value: Value =
            serde_json::from_slice(&body).context("the admin API's answer is not JSON")?;
        if !status.is_success() {
            // The admin API's errors are {"error": "..."}.
            bail!("{}", value["error"].as_str().unwrap_or(status.as_str()));
        }
        Ok(value)
    }
}
