//! Launchers: one module per shader file. A launcher checks shapes and
//! limits on the CPU side, builds its pipeline (cached) and bind group once,
//! and then records dispatches into any number of encoders.

pub mod data;
pub mod matmul;
pub mod optim;

pub use data::{Gather, GatherOptions, GpuDataset};
pub use matmul::{Matmul, MatmulKernel, matmul, matmul_with};
pub use optim::GpuOptimizer;

/// Workgroups needed to cover `n` items with `per_group` items per workgroup.
pub(crate) fn groups(n: usize, per_group: usize) -> u32 {
    n.div_ceil(per_group) as u32
}

/// Lays `groups` workgroups out as a grid within the per-dimension limit
/// (65,535 on most adapters). Shaders recover the linear workgroup index as
/// `workgroup_id.y * num_workgroups.x + workgroup_id.x` and skip the few
/// past the end.
pub(crate) fn fold(gpu: &crate::Gpu, what: &str, groups: u64) -> crate::Result<[u32; 3]> {
    let limit = u64::from(gpu.limits().max_compute_workgroups_per_dimension).max(1);
    let groups = groups.max(1);
    let y = groups.div_ceil(limit);
    let x = groups.div_ceil(y);
    let grid = [
        u32::try_from(x).unwrap_or(u32::MAX),
        u32::try_from(y).unwrap_or(u32::MAX),
        1,
    ];
    gpu.check_dispatch(what, grid)?;
    Ok(grid)
}
