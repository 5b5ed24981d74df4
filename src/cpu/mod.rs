//! The CPU reference: ndarray twins of every GPU kernel, with the same names
//! and the same options. Tests check each GPU kernel against its twin, and
//! the GPU-vs-CPU benchmarks time the twin as the CPU side. ndarray's matrix
//! products go through matrixmultiply with its threading enabled, so this is
//! a multi-threaded baseline, not a strawman.

pub mod data;
pub mod matmul;
pub mod optim;
pub mod tolerance;

pub use data::gather;
pub use matmul::matmul;
pub use optim::CpuOptimizer;
pub use tolerance::{Mismatch, Tolerance, assert_close, compare};
