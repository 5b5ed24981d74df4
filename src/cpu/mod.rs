//! The CPU reference: ndarray twins of every GPU kernel, with the same names
//! and the same options. Tests check each GPU kernel against its twin, and
//! the GPU-vs-CPU benchmarks time the twin as the CPU side. ndarray's matrix
//! products go through matrixmultiply with its threading enabled, and the
//! large elementwise loops (the matmul epilogue, the gather, the optimizer
//! update) run on every core with rayon, so this is a multi-threaded
//! baseline, not a strawman. Parallel or not, every element is computed by
//! the same formula, so results do not depend on the thread count.
//!
//! The twins other than `matmul` are generic over [`Real`] (`f32`, `f64`):
//! in `f32` they are what the GPU is compared with, in `f64` they are what
//! the finite-difference [`gradcheck`] proves right.

pub mod activation;
pub mod gather;
pub mod gather_matmul;
pub mod gradcheck;
pub mod layer_backward;
pub mod linalg;
pub mod loss;
pub mod matmul;
pub mod optim;
pub mod real;
pub mod reduce;
pub mod row_step;
pub mod softmax_xent;
pub mod sweep_optim;
pub mod tolerance;
pub mod weight_step;

pub use activation::{activate, activation_backward, activation_grad};
pub use gather::{gather, gather_into};
pub use gather_matmul::gather_matmul;
pub use layer_backward::layer_backward_into;
pub use matmul::{
    matmul, matmul_activation_grad, matmul_activation_grad_into, matmul_into, matmul_ones_column,
    matmul_ones_column_into,
};
pub use optim::CpuOptimizer;
pub use real::Real;
pub use reduce::{
    activation_bias_backward, activation_bias_backward_into, column_sum, column_sum_into,
    loss_correct_sum,
};
pub use row_step::row_step_into;
pub use softmax_xent::{
    SoftmaxXentOutput, softmax_xent, softmax_xent_eval, softmax_xent_into, softmax_xent_totals_into,
};
pub use tolerance::{Mismatch, Tolerance, assert_close, compare};

/// Elementwise loops over at least this many values are split across the
/// cores (rayon); below it, handing work to another thread (~10 µs) costs
/// more than it saves. 16 k is one 128×128 activation of the MLP.
pub const PARALLEL_MIN: usize = 1 << 14;
