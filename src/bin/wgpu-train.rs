//! `wgpu-train`: train, verify, benchmark and report on your GPU, one
//! subcommand per front end (`wgpu-train --help`); the code is
//! `wgpu_train::lab::cli`, which the examples run too.

fn main() -> std::process::ExitCode {
    wgpu_train::lab::cli::main()
}
