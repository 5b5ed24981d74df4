//! `cargo run --release --example sweep -- --help`: K configurations trained together in one GPU run. The same as
//! `wgpu-train sweep`; the flags and the code are `wgpu_train::lab::cli::sweep`.

fn main() -> std::process::ExitCode {
    wgpu_train::lab::cli::sweep::main()
}
