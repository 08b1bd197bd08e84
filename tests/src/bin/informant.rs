//! The `informant` binary, built inside the tests package so that its
//! integration tests can run it (cargo only exposes a package's own binaries
//! to its tests). It is the same one line as `host/src/main.rs`.

fn main() -> std::process::ExitCode {
    informant::commands::main()
}
