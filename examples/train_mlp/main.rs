//! `cargo run --release --example train_mlp -- --help`: the main job: the MLP 784-128-128-10 on Fashion-MNIST, GPU then CPU. The same as
//! `wgpu-train train mlp`; the flags and the code are `wgpu_train::lab::cli::train_mlp`.

fn main() -> std::process::ExitCode {
    wgpu_train::lab::cli::train_mlp::main()
}
