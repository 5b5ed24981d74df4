//! The CPU reference: ndarray twins of every GPU kernel, with the same names
//! and the same options. Tests check each GPU kernel against its twin, and
//! the GPU-vs-CPU benchmarks time the twin as the CPU side. ndarray's matrix
//! products go through matrixmultiply with its threading enabled, so this is
//! a multi-threaded baseline, not a strawman.
//!
//! The twins other than `matmul` are generic over [`Real`] (`f32`, `f64`):
//! in `f32` they are what the GPU is compared with, in `f64` they are what
//! the finite-difference [`gradcheck`] proves right.

pub mod activation;
pub mod data;
pub mod gradcheck;
pub mod matmul;
pub mod optim;
pub mod real;
pub mod reduce;
pub mod softmax_xent;
pub mod tolerance;

pub use activation::{activate, activation_backward, activation_bias_backward, activation_grad};
pub use data::gather;
pub use matmul::matmul;
pub use optim::CpuOptimizer;
pub use real::Real;
pub use reduce::{column_sum, loss_correct_sum};
pub use softmax_xent::{SoftmaxXentOutput, softmax_xent, softmax_xent_eval};
pub use tolerance::{Mismatch, Tolerance, assert_close, compare};
