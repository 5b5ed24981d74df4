//! Launchers: one module per shader file. A launcher checks shapes and
//! limits on the CPU side, builds its pipeline (cached) and bind group once,
//! and then records dispatches into any number of encoders.

pub mod activation;
pub mod gather;
pub mod gather_matmul;
pub mod layer_backward;
pub mod linalg;
pub mod matmul;
#[cfg(test)]
mod mirror;
pub mod optim;
pub mod reduce;
pub mod row_step;
pub mod softmax_xent;
pub mod sweep_optim;
pub mod weight_step;

pub use activation::{ActivationBackward, activation_backward};
pub use gather::{Gather, GatherOptions, GpuDataset};
pub use gather_matmul::GatherMatmul;
pub use layer_backward::LayerBackward;
pub use matmul::{
    BatchStrides, Matmul, MatmulEpilogue, MatmulKernel, Vec4Operands, matmul,
    matmul_activation_grad, matmul_ones_column, matmul_with,
};
pub use optim::GpuOptimizer;
pub use reduce::{
    ColumnSum, ColumnSumKernel, LossCorrectSum, activation_bias_backward, column_sum,
    loss_correct_sum,
};
pub use row_step::RowStep;
pub use softmax_xent::{
    SoftmaxXent, SoftmaxXentKernel, SoftmaxXentOutput, softmax_xent, softmax_xent_eval,
    softmax_xent_with,
};
pub use sweep_optim::SweepOptimizer;
pub use weight_step::WeightStep;

use crate::error::{Error, Result};
use crate::gpu::{Deferred, Element, Gpu, GpuTensor};
use std::ops::Range;

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

/// A uniform buffer holding `params`.
pub(crate) fn uniform<P: bytemuck::Pod>(
    gpu: &Gpu,
    label: &str,
    params: &P,
) -> Result<Deferred<wgpu::Buffer>> {
    gpu.buffer_init(
        label,
        bytemuck::bytes_of(params),
        wgpu::BufferUsages::UNIFORM,
    )
}

/// A tensor as one binding of a dispatch: its name for messages, its buffer
/// and the elements it covers.
pub(crate) struct Operand<'a> {
    name: &'a str,
    buffer: &'a wgpu::Buffer,
    range: Range<usize>,
}

impl<'a> Operand<'a> {
    pub(crate) fn of<T: Element>(name: &'a str, t: &'a GpuTensor<T>) -> Self {
        Operand {
            name,
            buffer: t.buffer(),
            range: t.offset()..t.offset() + t.len(),
        }
    }
}

impl Operand<'_> {
    /// Widens the operand to the windows of a batch of `count`, `stride`
    /// elements apart, checking that the last one lies inside its buffer
    /// (every element type here is 4 bytes).
    pub(crate) fn batch(&mut self, op: &'static str, count: usize, stride: usize) -> Result<()> {
        let len = self.range.len();
        let end = count
            .saturating_sub(1)
            .checked_mul(stride)
            .and_then(|e| e.checked_add(self.range.end))
            .filter(|&e| e as u64 * 4 <= self.buffer.size())
            .ok_or_else(|| {
                Error::shape(
                    op,
                    format!(
                        "{} windows of {} ({len} elements, {stride} apart) do not fit its buffer of {} elements",
                        count,
                        self.name,
                        self.buffer.size() / 4
                    ),
                )
            })?;
        self.range.end = end;
        Ok(())
    }
}

/// Widens `operands` to a batch of `count` (one stride each) and checks
/// that the windows of a written operand do not overlap each other.
pub(crate) fn check_batch(
    op: &'static str,
    count: usize,
    operands: &mut [Operand<'_>],
    strides: &[usize],
    written: bool,
) -> Result<()> {
    if count == 0 {
        return Err(Error::InvalidArgument {
            name: "batch",
            msg: format!("{op}: a batch needs at least one element"),
        });
    }
    for (o, &stride) in operands.iter_mut().zip(strides) {
        if written && count > 1 && stride < o.range.len() {
            return Err(Error::shape(
                op,
                format!(
                    "the batch's windows of output {} ({} elements) are only {stride} apart: they overlap",
                    o.name,
                    o.range.len()
                ),
            ));
        }
        o.batch(op, count, stride)?;
    }
    Ok(())
}

/// Checks the operands of one dispatch: each buffer fits a storage binding;
/// no output shares a buffer with an input (WebGPU forbids binding a buffer
/// for reading and writing in one dispatch); outputs that share a buffer (views
/// into one gradient buffer) do not overlap.
pub(crate) fn check_operands(
    gpu: &Gpu,
    op: &'static str,
    reads: &[Operand<'_>],
    writes: &[Operand<'_>],
) -> Result<()> {
    for o in reads.iter().chain(writes) {
        gpu.check_storage_binding(&format!("{op} operand {}", o.name), o.buffer.size())?;
    }
    for w in writes {
        if let Some(r) = reads.iter().find(|r| r.buffer == w.buffer) {
            return Err(Error::shape(
                op,
                format!(
                    "output {} shares a buffer with input {}; WebGPU forbids writing a buffer that is also bound for reading",
                    w.name, r.name
                ),
            ));
        }
    }
    for (i, a) in writes.iter().enumerate() {
        for b in &writes[i + 1..] {
            if a.buffer == b.buffer && a.range.start < b.range.end && b.range.start < a.range.end {
                return Err(Error::shape(
                    op,
                    format!("outputs {} and {} overlap in one buffer", a.name, b.name),
                ));
            }
        }
    }
    Ok(())
}

/// Checks that a tensor has the shape an operation needs.
pub(crate) fn check_shape<T: Element>(
    op: &'static str,
    name: &str,
    t: &GpuTensor<T>,
    want: &[usize],
) -> Result<()> {
    if t.shape() != want {
        return Err(Error::shape(
            op,
            format!("{name} must have shape {want:?}, got {:?}", t.shape()),
        ));
    }
    Ok(())
}

/// One dispatch, built once: what every launcher holds. Recording it costs a
/// pipeline switch, a bind-group switch and the dispatch, nothing else.
pub(crate) struct Dispatch {
    label: &'static str,
    pipeline: std::sync::Arc<crate::gpu::KernelPipeline>,
    bind_group: Deferred<wgpu::BindGroup>,
    grid: [u32; 3],
}

impl Dispatch {
    pub(crate) fn new(
        label: &'static str,
        pipeline: std::sync::Arc<crate::gpu::KernelPipeline>,
        bind_group: Deferred<wgpu::BindGroup>,
        grid: [u32; 3],
    ) -> Self {
        Dispatch {
            label,
            pipeline,
            bind_group,
            grid,
        }
    }

    /// Changes the grid, for launchers whose work size is set per use.
    pub(crate) fn set_grid(&mut self, grid: [u32; 3]) {
        self.grid = grid;
    }

    /// Records the dispatch into an open compute pass.
    pub(crate) fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        let [x, y, z] = self.grid;
        pass.set_pipeline(&self.pipeline.pipeline);
        pass.set_bind_group(0, &*self.bind_group, &[]);
        pass.dispatch_workgroups(x, y, z);
    }

    /// Records `repeats` copies in one pass of a new encoder and submits it
    /// (no wait, no readback).
    pub(crate) fn run(&self, gpu: &Gpu, repeats: usize) -> Result<()> {
        run_repeated(gpu, self.label, repeats, |pass| self.record(pass))
    }
}

/// Records `repeats` copies of one launcher's dispatch in one pass of a new
/// encoder and submits it (no wait, no readback).
pub(crate) fn run_repeated(
    gpu: &Gpu,
    label: &str,
    repeats: usize,
    record: impl Fn(&mut wgpu::ComputePass<'_>),
) -> Result<()> {
    let mut encoder = gpu.encoder(label);
    {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(label),
            timestamp_writes: None,
        });
        for _ in 0..repeats {
            record(&mut pass);
        }
    }
    gpu.submit(encoder)?;
    Ok(())
}

/// The error for a subgroup version asked of a device without
/// `wgpu::Features::SUBGROUP` (chosen explicitly, or replayed from a run
/// recorded on another adapter).
pub(crate) fn needs_subgroups(op: &'static str, version: &str, gpu: &Gpu) -> Error {
    Error::InvalidArgument {
        name: "kernel version",
        msg: format!(
            "{op} {version} needs subgroups (wgpu::Features::SUBGROUP), which this device \
             ({}) was not created with; choose another version, or replay the run on an \
             adapter with subgroups",
            gpu.summary().name
        ),
    }
}
