//! `cargo run --release --example gpu_vs_cpu -- --help`: every kernel family and a training step, timed on the GPU and the CPU. The same as
//! `wgpu-train bench`; the flags and the code are `wgpu_train::lab::cli::gpu_vs_cpu`.

fn main() -> std::process::ExitCode {
    wgpu_train::lab::cli::gpu_vs_cpu::main()
}
