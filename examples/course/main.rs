//! `cargo run --release --example course -- --list`: the course notebooks'
//! experiments, one command each. The same as `wgpu-train course`; the flags
//! and the code are `wgpu_train::lab::cli::course`.

fn main() -> std::process::ExitCode {
    wgpu_train::lab::cli::course::main()
}
