//! `cargo run --release --example gpu_info -- --help`: the adapter, its limits and features. The same as
//! `wgpu-train info`; the flags and the code are `wgpu_train::lab::cli::gpu_info`.

fn main() -> std::process::ExitCode {
    wgpu_train::lab::cli::gpu_info::main()
}
