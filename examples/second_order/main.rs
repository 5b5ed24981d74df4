//! `cargo run --release --example second_order -- --help`: L-BFGS and Newton-CG against first-order training, with the demos. The same as
//! `wgpu-train second-order`; the flags and the code are `wgpu_train::lab::cli::second_order`.

fn main() -> std::process::ExitCode {
    wgpu_train::lab::cli::second_order::main()
}
