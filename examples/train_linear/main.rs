//! `cargo run --release --example train_linear -- --help`: the course's linear softmax classifier, first- or second-order. The same as
//! `wgpu-train train linear`; the flags and the code are `wgpu_train::lab::cli::train_linear`.

fn main() -> std::process::ExitCode {
    wgpu_train::lab::cli::train_linear::main()
}
