//! `informant build`: a plugin project's component, built and checked.

use std::process::ExitCode;

use super::check::checked;
use crate::{
    authoring::{Project, builder, toolchain::Toolchains},
    cli::{BuildArgs, ProjectArgs},
    config::Config,
};

pub(super) fn run(args: &BuildArgs) -> anyhow::Result<ExitCode> {
    let (project, toolchains) = open(&args.project)?;
    build(&project, &toolchains)?;
    let component = project.component();
    let settings = crate::settings::beside(&component)?;
    let cache = project.compile_cache();
    let bytes = super::read_plugin(&component)?;
    let (_, verdict) = checked(
        &component,
        bytes,
        &Config::default(),
        false,
        settings,
        Some(&cache),
    )?;
    eprintln!("{verdict}");
    println!("{}", project.show(&component));
    Ok(ExitCode::SUCCESS)
}

/// The project the flags name, and where its toolchains go.
pub(super) fn open(args: &ProjectArgs) -> anyhow::Result<(Project, Toolchains)> {
    let project = match &args.project {
        Some(dir) => Project::load(dir)?,
        None => Project::find(&std::env::current_dir()?)?,
    };
    let toolchains = match &args.toolchains {
        Some(dir) => Toolchains::at(std::path::absolute(dir)?),
        None => Toolchains::for_user(),
    };
    Ok((project, toolchains))
}

/// Build the project, saying what happens on stderr.
pub(super) fn build(project: &Project, toolchains: &Toolchains) -> anyhow::Result<()> {
    let say = |line: &str| eprintln!("informant: {line}");
    let built = builder::build(project, toolchains, &say)?;
    if !built {
        eprintln!(
            "informant: {} is up to date",
            project.show(&project.component())
        );
    }
    Ok(())
}
