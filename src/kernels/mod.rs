//! Launchers: one module per shader file. A launcher checks shapes and
//! limits on the CPU side, builds its pipeline (cached) and bind group once,
//! and then records dispatches into any number of encoders.

pub mod matmul;
pub mod optim;

pub use matmul::{Matmul, MatmulKernel, matmul, matmul_with};
pub use optim::GpuOptimizer;

/// Workgroups needed to cover `n` items with `per_group` items per workgroup.
pub(crate) fn groups(n: usize, per_group: usize) -> u32 {
    n.div_ceil(per_group) as u32
}
