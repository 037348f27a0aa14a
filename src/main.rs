//! The `herald` binary: everything lives in the library; see `herald::cli`.

fn main() -> std::process::ExitCode {
    herald::cli::run(std::env::args_os())
}
