//! The `rotor` binary: a thin wrapper around [`rotor::cli::run`].

fn main() -> std::process::ExitCode {
    rotor::cli::run()
}
