//! The `informant` binary.

fn main() -> std::process::ExitCode {
    informant::commands::main()
}
