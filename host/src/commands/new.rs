//! `informant new`: a plugin project, ready to build.

use std::process::ExitCode;

use crate::{
    authoring::{Language, scaffold, sdk},
    cli::NewArgs,
};

pub(super) fn run(args: &NewArgs) -> anyhow::Result<ExitCode> {
    let dir = scaffold::create(&args.path, args.lang)?;
    let sdk_version = sdk::version(args.lang).unwrap_or_else(|| "?".into());
    println!(
        "created the {} plugin {} in {} (SDK {sdk_version}, informant:plugin@{})",
        args.lang.title(),
        dir.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        dir.display(),
        sdk::contract_version(),
    );
    let first_build = match args.lang {
        Language::Rust => "cargo",
        Language::Python => "componentize-py, installed on the first build",
        Language::Js => "esbuild and componentize-js, installed on the first build",
        Language::Go => "Go, installed on the first build",
    };
    println!(
        "next:\n  cd {}\n  informant build                          # with {first_build}\n  \
         informant test                           # replays tests/example\n  \
         informant dev --plugins target/plugins   # runs it against a local API server",
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
