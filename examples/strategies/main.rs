//! `cargo run --release --example strategies -- --help`: the course notebook's four optimisation strategies, GPU and CPU. The same as
//! `wgpu-train strategies`; the flags and the code are `wgpu_train::lab::cli::strategies`.

fn main() -> std::process::ExitCode {
    wgpu_train::lab::cli::strategies::main()
}
