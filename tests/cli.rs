//! `informant check` and `informant replay`, run as a user runs them.

// Tests and benchmarks fail loudly: unwrapping is the point.
#![allow(clippy::unwrap_used)]

use std::{path::Path, process::Command};

use informant_testkit::{fixture, plugin_path};
use serde_json::Value;

const EXAMPLES: [&str; 4] = [
    "label-enforcer",
    "replicator",
    "restarter",
    "tenant-namespaces",
];

fn informant() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_informant"));
    c.env_remove("INFORMANT_LOG")
        .env_remove("INFORMANT_LOG_FORMAT");
    c
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().expect("the informant binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

#[test]
fn check_prints_the_manifest_of_every_example() {
    for name in EXAMPLES {
        let (code, stdout, stderr) = run(informant()
            .arg("check")
            .arg(plugin_path(&name.replace('-', "_"))));
        assert_eq!(code, 0, "{name}: {stderr}");
        let manifest: Value = serde_json::from_str(&stdout).expect("check prints JSON");
        assert_eq!(manifest["name"], name);
        assert!(!manifest["subscriptions"].as_array().unwrap().is_empty());
    }
}

/// Contract 0.3.0: a component of the `plugin-with-admission` world that
/// declares its webhook loads, and says so; one whose `admission` export
/// and manifest disagree does not, and the error says which way.
#[test]
fn check_tells_a_plugin_that_serves_admission_and_refuses_a_mismatch() {
    let (code, stdout, stderr) = run(informant().arg("check").arg(plugin_path("webhook")));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("(informant:plugin@0.3.0), asks for a validating admission webhook"),
        "{stderr}"
    );
    let manifest: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(manifest["admission"]["mode"], "validating");
    assert_eq!(
        manifest["admission"]["rules"][0]["resources"][0],
        "deployments"
    );
    assert_eq!(manifest["admission"]["rules"][0]["scope"], "Namespaced");
    assert_eq!(manifest["admission"]["timeoutSeconds"], 5);
    assert_eq!(manifest["state"]["tier"], "memory");
    check_fails(
        &plugin_path("webhook_undeclared"),
        "exports informant:plugin/admission@0.3.0 but its manifest declares no webhook",
    );
    check_fails(
        &plugin_path("webhook_unexported"),
        "does not export informant:plugin/admission@0.3.0: build it for the plugin-with-admission world",
    );
}

fn check_fails(file: &Path, reason: &str) {
    let (code, stdout, stderr) = run(informant().arg("check").arg(file));
    assert_ne!(code, 0, "check accepted {}", file.display());
    assert!(stdout.is_empty(), "nothing on stdout on failure: {stdout}");
    assert!(
        stderr.contains(&file.display().to_string()),
        "the error names the file: {stderr}"
    );
    assert!(
        stderr.contains(reason),
        "the error says {reason:?}: {stderr}"
    );
}

/// `check` loads a plugin as `run` would, with the same configuration:
/// what `run` refuses, `check` refuses, and it says what a plugin asks for.
#[test]
fn check_validates_as_run_does_and_says_what_a_plugin_asks_for() {
    let (code, stdout, stderr) = run(informant().arg("check").arg(plugin_path("reader_single")));
    assert_eq!(code, 0, "{stderr}");
    let manifest: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(manifest["resources"]["instances"], 1);
    assert!(
        stderr.contains(
            "reader-single 0.1.0 (informant:plugin@0.3.0), asks for at most 1 instance(s) at a time"
        ),
        "{stderr}"
    );
    for (fixture, version) in [("legacy", "0.1.0"), ("legacy_v2", "0.2.0")] {
        let (code, _, stderr) = run(informant().arg("check").arg(plugin_path(fixture)));
        assert_eq!(code, 0, "{stderr}");
        assert!(
            stderr.contains(&format!(
                "(informant:plugin@{version}), asks for nothing beyond the host's defaults"
            )),
            "{stderr}"
        );
    }

    // An operator who allows 1 MiB per instance: too little for the plugin
    // to start, and `check --config` says so, as `run` would.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("informant.yaml");
    std::fs::write(&config, "limits:\n  memoryMib: 1\n  max: {memoryMib: 1}\n").unwrap();
    let (code, stdout, stderr) = run(informant()
        .arg("check")
        .arg(plugin_path("reader_single"))
        .arg("--config")
        .arg(&config));
    assert_ne!(code, 0, "{stdout}");
    assert!(stderr.contains("over its 1 MiB cap"), "{stderr}");
    // Settings are part of it: `init` runs with them, and may refuse them.
    let (code, _, stderr) = run(informant()
        .arg("check")
        .arg(plugin_path("hostile"))
        .args(["--settings", r#"{"refuse": true}"#]));
    assert_ne!(code, 0);
    assert!(
        stderr.contains("init failed") && stderr.contains("refused on purpose"),
        "{stderr}"
    );
}

#[test]
fn check_explains_what_is_wrong_with_a_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    check_fails(
        &write("script.wasm", b"#!/bin/sh\necho not wasm\n"),
        "not a WebAssembly file",
    );
    check_fails(
        &write("core.wasm", &wat::parse_str("(module)").unwrap()),
        "core WebAssembly module",
    );
    check_fails(
        &write("empty.wasm", &wat::parse_str("(component)").unwrap()),
        "does not match the informant:plugin",
    );
    let other_world = wat::parse_str(
        r#"(component (import "acme:other/api@1.0.0" (instance (export "f" (func)))))"#,
    )
    .unwrap();
    check_fails(&write("other.wasm", &other_world), "acme:other/api");
    let truncated = std::fs::read(plugin_path("label_enforcer")).unwrap();
    check_fails(
        &write("truncated.wasm", &truncated[..truncated.len() / 2]),
        "does not compile",
    );
    let (code, _, stderr) = run(informant()
        .arg("check")
        .arg(dir.path().join("missing.wasm")));
    assert_ne!(code, 0);
    assert!(stderr.contains("missing.wasm"), "{stderr}");
}

#[test]
fn replay_produces_the_expected_actions_for_every_example() {
    for name in EXAMPLES {
        let dir = fixture(&format!("replay/{name}"));
        let mut cmd = informant();
        cmd.arg("replay")
            .arg(plugin_path(&name.replace('-', "_")))
            .arg("--events")
            .arg(dir.join("events.jsonl"))
            .arg("--objects")
            .arg(dir.join("objects.yaml"));
        if dir.join("settings.json").exists() {
            cmd.arg("--settings")
                .arg(format!("@{}", dir.join("settings.json").display()));
        }
        let (code, stdout, stderr) = run(&mut cmd);
        assert_eq!(code, 0, "{name}: {stderr}");
        let expected = json_lines(&std::fs::read_to_string(dir.join("expected.jsonl")).unwrap());
        assert_eq!(json_lines(&stdout), expected, "{name}: stderr was {stderr}");
    }
}

#[test]
fn replay_reports_failed_calls_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let cm = |name: &str, mode: &str| {
        format!(
            r#"{{"type":"ADDED","object":{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}","namespace":"default"}},"data":{{"mode":"{mode}"}}}}}}"#
        )
    };
    std::fs::write(&events, [cm("spins", "loop"), cm("fine", "ok")].join("\n")).unwrap();
    let (code, stdout, stderr) = run(informant()
        .arg("replay")
        .arg(plugin_path("hostile"))
        .arg("--events")
        .arg(&events)
        .args(["--deadline-ms", "50"]));
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("events.jsonl:1: plugin call failed: v1/ConfigMap default/spins (timeout): the call ran past"),
        "{stderr}"
    );
    assert!(stderr.contains("deadline"), "{stderr}");
    // The call after the failure still ran and committed its action.
    let actions = json_lines(&stdout);
    assert_eq!(actions.len(), 1, "{stdout}");
    assert_eq!(actions[0]["event"], 2);
    assert_eq!(actions[0]["target"]["name"], "fine");
}

#[test]
fn replay_rejects_bad_settings_and_bad_event_lines_with_their_location() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    std::fs::write(
        &events,
        "{\"type\":\"ADDED\",\"object\":{}}\n{\"type\":\"EXPLODED\"}\n",
    )
    .unwrap();
    let (code, _, stderr) = run(informant()
        .arg("replay")
        .arg(plugin_path("hostile"))
        .arg("--events")
        .arg(&events));
    assert_ne!(code, 0);
    assert!(stderr.contains("line 1"), "{stderr}");

    std::fs::write(&events, "\n{\"type\":\"EXPLODED\"}\n").unwrap();
    let (code, _, stderr) = run(informant()
        .arg("replay")
        .arg(plugin_path("hostile"))
        .arg("--events")
        .arg(&events));
    assert_ne!(code, 0);
    assert!(
        stderr.contains("line 2") && stderr.contains("EXPLODED"),
        "{stderr}"
    );

    let (code, _, stderr) = run(informant()
        .arg("replay")
        .arg(plugin_path("hostile"))
        .arg("--events")
        .arg(&events)
        .args(["--settings", r#"{"refuse": true}"#]));
    assert_ne!(code, 0);
    assert!(
        stderr.contains("init failed") && stderr.contains("refused on purpose"),
        "{stderr}"
    );
}

#[test]
fn help_explains_the_commands_to_a_newcomer() {
    let (code, stdout, _) = run(informant().arg("--help"));
    assert_eq!(code, 0);
    assert!(
        stdout.contains("check") && stdout.contains("replay"),
        "{stdout}"
    );
    let (code, stdout, _) = run(informant().args(["replay", "--help"]));
    assert_eq!(code, 0);
    for needle in ["--events", "--objects", "--settings", "JSON Lines"] {
        assert!(
            stdout.contains(needle),
            "replay --help mentions {needle}: {stdout}"
        );
    }
}
