//! The commands of the `informant` binary, one file each: start-up wiring,
//! where errors become messages for the user and exit codes. `host.rs` is
//! what `run` and `dev` share: starting and stopping the host; `new`,
//! `build` and `test` are the plugin author's, over `crate::authoring`.

mod build;
mod check;
mod config_check;
mod dev;
mod host;
mod new;
mod pull;
mod push;
mod registry;
mod replay;
mod run;
mod sign;
mod state;
mod test;

use std::{io::IsTerminal, path::Path, process::ExitCode};

use crate::{
    cli::{Cli, Command, ConfigCommand, LogFormat},
    plugin::Engine,
};
use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;

/// Parse the command line, set up logging, run the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log.log_format, &cli.log.log);
    crate::tls::install_crypto_provider();
    let result = match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Replay(args) => replay::run(&args),
        Command::Dev(args) => dev::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Config(ConfigCommand::Check { file }) => config_check::run(&file),
        Command::Push(args) => push::run(&args),
        Command::Pull(args) => pull::run(&args),
        Command::Sign(args) => sign::run(&args),
        Command::Keygen(args) => sign::keygen(&args),
        Command::New(args) => new::run(&args),
        Command::Build(args) => build::run(&args),
        Command::Test(args) => test::run(&args),
        Command::State(args) => state::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat, filter: &str) {
    // wasmtime and cranelift are chatty at debug; keep them quiet unless asked.
    let filter = format!("wasmtime=warn,cranelift=warn,{filter}");
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|e| {
        eprintln!("warning: invalid log filter {filter:?} ({e}); using \"info\"");
        EnvFilter::new("info")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn read_plugin(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading plugin {}", path.display()))
}

fn engine(compile_cache: Option<&Path>) -> anyhow::Result<Engine> {
    Ok(Engine::new(compile_cache)?)
}

/// Settings given on the command line, if any.
fn settings(arg: Option<&str>) -> anyhow::Result<serde_json::Value> {
    Ok(arg
        .map(crate::settings::from_arg)
        .transpose()?
        .unwrap_or_default())
}
