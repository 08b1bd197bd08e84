//! `informant-go`: build a Go package into an Informant plugin component, or
//! regenerate the Go SDK's glue from the contract.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

/// Go plugins for Informant.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build a Go package (package main) into a plugin component, installing
    /// the pinned Go on first use.
    Build {
        /// The package's directory.
        #[arg(default_value = ".")]
        package: PathBuf,
        /// The component to write (default: <package directory name>.wasm).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// The contract's WIT directory (default: the contract this tool was
        /// built with).
        #[arg(long, env = "INFORMANT_WIT")]
        wit: Option<PathBuf>,
        /// The Go SDK's directory, for a package without a go.mod (default:
        /// the SDK beside this tool's sources).
        #[arg(long, env = "INFORMANT_GO_SDK")]
        sdk: Option<PathBuf>,
        /// Where the pinned Go is installed (default: guest-toolchains in the
        /// Cargo target directory, else the user's cache).
        #[arg(long, env = "INFORMANT_GO_TOOLCHAINS")]
        toolchains: Option<PathBuf>,
    },
    /// Generate the Go SDK's canonical-ABI glue (package internal/wit) from
    /// the contract.
    Bindings {
        /// The contract's WIT directory (default: the contract this tool was
        /// built with).
        #[arg(long)]
        wit: Option<PathBuf>,
        /// The directory to write the Go files to (default: the SDK's
        /// internal/wit beside this tool's sources).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Build {
            package,
            output,
            wit,
            sdk,
            toolchains,
        } => {
            let output = output.unwrap_or_else(|| {
                let name = std::path::absolute(&package)
                    .ok()
                    .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .unwrap_or_else(|| "plugin".into());
                PathBuf::from(format!("{name}.wasm"))
            });
            let started = std::time::Instant::now();
            let built = informant_go::build(&informant_go::Build {
                package: package.clone(),
                output: output.clone(),
                wit,
                sdk,
                toolchains: toolchains.unwrap_or_else(informant_go::toolchain::default_dir),
            })?;
            println!(
                "built {} ({:.1} MB) from {} in {:.1} s",
                output.display(),
                built.bytes as f64 / 1e6,
                package.display(),
                started.elapsed().as_secs_f64()
            );
        }
        Command::Bindings { wit, out } => {
            let generated = informant_go::bindings(wit.as_deref(), informant_go::component::WORLD)?;
            let out = out.unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../go/internal/wit")
            });
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            for (name, text) in generated.files {
                let path = out.join(name);
                std::fs::write(&path, text)
                    .with_context(|| format!("writing {}", path.display()))?;
                println!("wrote {}", path.display());
            }
        }
    }
    Ok(())
}
