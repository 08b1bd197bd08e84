//! `informant test`: a plugin project's test cases, replayed and compared.

use std::process::ExitCode;

use anyhow::{Context, bail};

use super::{
    build::{build, open},
    engine, read_plugin,
};
use crate::{authoring::fixture::Fixture, cli::TestArgs};

pub(super) fn run(args: &TestArgs) -> anyhow::Result<ExitCode> {
    let (project, toolchains) = open(&args.project)?;
    if !args.no_build {
        build(&project, &toolchains)?;
    }
    let component = project.component();
    if !component.is_file() {
        bail!(
            "{}: no component; build it with `informant build`",
            project.show(&component)
        );
    }
    let cases: Vec<Fixture> = Fixture::all(&project.tests())?
        .into_iter()
        .filter(|f| {
            args.filter
                .as_ref()
                .is_none_or(|s| f.name.contains(s.as_str()))
        })
        .collect();
    if cases.is_empty() {
        bail!(
            "no test cases{} in {}: a case is a directory with an events.jsonl and an expected.jsonl",
            args.filter
                .as_ref()
                .map_or_else(String::new, |f| format!(" matching {f:?}")),
            project.show(&project.tests())
        );
    }
    let bytes = read_plugin(&component)?;
    let engine = engine(Some(&project.compile_cache()))?;
    println!(
        "testing {} ({}) with {} case(s)",
        project.name,
        project.show(&component),
        cases.len()
    );
    let (mut passed, mut failed) = (0usize, 0usize);
    for case in &cases {
        let outcome = case.run(&engine, &bytes, &component);
        match outcome {
            Ok(report) if args.update && report.failures.is_empty() => {
                case.record(&report.actions)?;
                passed += 1;
                println!(
                    "case {} ... recorded {} action(s) in {}",
                    case.name,
                    report.actions.len(),
                    project.show(&case.dir.join(crate::authoring::fixture::EXPECTED))
                );
            }
            Ok(report) if report.passed() => {
                passed += 1;
                println!(
                    "case {} ... ok ({} action(s))",
                    case.name,
                    report.actions.len()
                );
            }
            Ok(report) => {
                failed += 1;
                println!("case {} ... FAILED", case.name);
                println!("{}", indent(&report.explain()));
            }
            Err(e) => {
                failed += 1;
                println!("case {} ... FAILED", case.name);
                let e = anyhow::Error::from(e).context(format!("in {}", project.show(&case.dir)));
                println!("{}", indent(&format!("{e:#}")));
            }
        }
    }
    let verdict = if failed == 0 { "ok" } else { "FAILED" };
    println!("test result: {verdict}. {passed} passed; {failed} failed");
    std::io::Write::flush(&mut std::io::stdout()).context("writing the results")?;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
