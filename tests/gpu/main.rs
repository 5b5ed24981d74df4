//! Every GPU test, in one binary: one link, one adapter (`common::gpu`,
//! created once and shared by every test), one file to carry to a machine
//! with a real GPU. A module per kernel family, named like its shader
//! (`shaders/X.wgsl` ↔ `src/kernels/X.rs` ↔ `src/cpu/X.rs` ↔ `tests/gpu/X.rs`),
//! each checking its launchers against the CPU twin on random inputs with
//! NaN-poisoned outputs; then whole programs and runs on both devices. The
//! checks that need no GPU are in `tests/cpu`.

#[path = "../common/mod.rs"]
mod common;
use common::data_util;

// Kernel families, one per shader.
mod activation;
mod descent;
mod gather;
mod gather_matmul;
mod layer_backward;
mod linalg;
mod loss;
mod matmul;
mod optim;
mod reduce;
mod row_step;
mod softmax_xent;
mod sweep_optim;
mod weight_step;

// Whole programs and runs, bad input, the application code.
mod backend_paths;
mod concurrency;
mod errors;
mod fused;
mod gpu_vs_cpu;
mod hostile_input;
mod latency;
mod model_gradient;
mod readme_snippet;
#[cfg(feature = "cli")]
mod report;
mod second_order;
mod strategies;
mod sweep;
mod train;
mod tune;
mod verify;
