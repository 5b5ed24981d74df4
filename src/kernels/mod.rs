//! Launchers: one module per shader file. A launcher checks shapes and
//! limits on the CPU side, builds its pipeline (cached) and bind group once,
//! and then records dispatches into any number of encoders.
//!
//! # Trusted modules
//!
//! wgpu's `create_shader_module` adds runtime checks to every kernel (on
//! Vulkan: indices of workgroup and private arrays and of vectors clamped,
//! buffer indices clamped where the device lacks robustBufferAccess2, a
//! counter bounding every loop, guards on integer division), and pipelines
//! zero their workgroup memory before each workgroup starts. The shaders
//! marked `trusted` (the [`crate::gpu::Shader`] each kernel module declares)
//! are built with `create_shader_module_trusted(…,
//! ShaderRuntimeChecks::unchecked())` and without the zeroing
//! ([`crate::Gpu::trusts`]; `WGPU_TRAIN_CHECKED=1` puts both back
//! everywhere). That is sound only where, for every entry point of the file,
//! (a) every index it computes is in range and every loop ends, given what
//! its launcher checks, and no divisor can be 0; and (b) every element of
//! its workgroup memory is written before it is read, on every
//! invocation's path, edge tiles included. The argument, per file:
//!
//! | shader | entry points | (a) indices, loops, divisors | (b) workgroup memory |
//! |---|---|---|---|
//! | activation | `activation_backward` | `i < len` returns early; dh, h, dz are views of `len` elements inside their buffers (`GpuTensor::view`, `check_operands`); no loop, no division | none |
//! | gather | `gather` | `t / stride_words`, `t % stride_words`: `stride_words ≥ 1` (a `Dataset` has ≥ 1 pixel); `row < rows ≤` x's rows; `start + row` < the order's length (`Gather` sizes the steps from it); the example is checked in the shader to lie in the bound chunk, so its words and label are in range; `col < dim`; `j < 4` | none |
//! | gather_matmul | `gather_matmul` | as `gather` for X and y, the example clamped into the one bound chunk in the shader (the order buffer is a public tensor, so `write_order`'s check alone is not relied on); rows and columns clamped to `m − 1`, `n − 1` (`m, n ≥ 1` checked); `kw < stride_words`, `kw < dim / 4`, `kk < k = dim (+1)`, W a checked `n × k` view; divisions by the constant 4 | none |
//! | layer_backward | `layer_backward` | `rows, outs, ins ≥ 1` (checked); rows and columns clamped with `min(…, outs − 1)`, `min(…, ins − 1)`, `min(…, rows − 1)`; k loops end at `rows` / `outs`; `% groups0_x`, `/ groups1_x`: both ≥ 1 (sized from `ins ≥ 1`); `accs[i][j]`, `i, j < 4`; stores guarded by `row <` and `col <` | none |
//! | matmul, matmul_vec4 | v1 `matmul_naive`, v2 `matmul_blocked`, v3 `matmul_tiled`, v4 `matmul_tiled_8x8`, v5 `matmul_split_k` + `…_reduce`, v6 `matmul_vec4` | `m, n, k, batch ≥ 1` (`MatmulShape`); A, B, bias/H, C and the ones column are checked windows (`check_operands`, `check_batch`, `fused_operands`); loads either guarded (`row < m && kk < k`: v1, v3) or clamped (`min(·, m − 1)`, `min(·, k − 1)`, `min(·, n − 1)`: v2, v4, v5; `min(·, m − 4)` / `min(·, k − 4)` in v6's vec4 loads, set only where that dimension is a multiple of 4 and the window 16-byte aligned, `Vec4Operands::of`); stores guarded by `row < m`, `col < n_out`; grid z is `batch · splits`, `s = z / batch`, `s < splits` checked, the split-K scratch holds `splits · partial_stride`; the reduce's `i < partial_stride`, `% n_out`, `% m` nonzero; tile indices: v3 `kk·64 + r < 1024`, v4/v6 `buf + kk·32 + r/4 < 512` and component `r % 4`; k loops end at `k` (or the chunk's end), stage loops at `⌈k/BK⌉`, the rest at constants | v3: the 256 threads write elements `tid + 256·i`, `i < 4`, of both tiles, i.e. all 1,024 each, zero past the edges (the loader writes 0, it never skips), before the barrier, read after it, and a second barrier comes before the next stage's writes. v4, v6: stage 0 writes every (k, row) slot of buffer 0 (scalar path: `e = tid + 256·i` covers 8 × 128; vec4 path: slot `t` of 256, or every `(kk + j, r)`) before the first barrier; stage s writes all of the other buffer before the barrier that ends it, and that buffer was last read before the previous barrier. v1, v2, v5: none |
//! | matmul_v7 | `matmul_v7_<tile>`, one per `V7Tile` candidate (v7) | as v6 for `m, n, k, batch ≥ 1`, the windows and the vec4 flags; loads clamped (`min(·, m − 1)`, `min(·, k − 1)`, `min(·, n − 1)`, and `min(·, m − 4)` / `min(·, k − 4)` / `min(·, n − 4)` in the vec4 loads, set as v6's); stores through `v7_store4`, guarded by `row < m` and `col + j < n_out`; tile slots `buf + kk·S + (q ^ sw)` with `buf ∈ {0, BK·S}`, `kk < BK`, `q < S = BM/4` (or BN/4), a multiple of 8, and `sw < 8`, so `q ^ sw < S` and the slot is below `2·BK·S`, the array's length; lane `r % 4`; the stage loop ends at `⌈k/BK⌉`, no other loop; divisions by constants | stage 0 writes every slot of buffer 0 of both tiles before the first barrier: groups `e = t + T·i` (`T` threads, `i <` loads per thread) cover all `BM·BK/4` groups, each group writes its 4 `(kk, row)` elements (or one vec4 slot), and the swizzle is a permutation of each kk row (unit test `the_swizzle_permutes_each_row`), zero past the edges; stage s writes all of the other buffer before the barrier that ends it, and that buffer was last read before the previous barrier |
//! | optim | `advance`, `sgd`, `adagrad`, `rmsprop`, `adam` | `i < n`, stride `threads ≥ 1` (the launcher's grid); params and grads are checked views of `n`; `s1..s3` hold `n` elements wherever the rule's constants read them (`GpuOptimizer` allocates them; placeholders only for states the rule does not read); `st` is one slot (dynamic offset within the planned slots, `record_planned` checks the slot); `% step_size` only with `SCHEDULE == 1`, where `step_size ≥ 1` is validated | none |
//! | reduce, reduce_subgroup | `column_sum_serial`, `column_sum`, `loss_correct_sum`, `column_sum_subgroup` | `col < cols` guards every access (threads past the end add nothing); loops end at `rows`; the sweep's `z` < K with strides from `check_batch`; `partial[lane·16 + x]`, `lane, x < 16`; `partial[lid]`, `lid < 256`, tree reads at `lid + half < 256`; `% 4`, `/ 4` by constants | `column_sum`: every thread (past the last column too, with 0) writes its slot before the first barrier; the tree reads slots `< 16·16`, written. `loss_correct_sum`: every thread writes `partial[lid]`, `partial_count[lid]` before the first barrier. The subgroup version has none |
//! | softmax_xent, softmax_xent_subgroup | `xent_row`, `xent_workgroup`, `xent_totals`, `xent_subgroup` | `c ≥ 1`, `n ≥ 1` (`SoftmaxXentShape`); `row < n` before any access; the label is clamped to `c − 1` in the shader (`label_of`), so a bad label cannot index out of the row; `j < c`; tree indices `lid < 64` (256), `lid + half` below it; the sweep's `z` as in reduce | v2: `tree_max`, `tree_arg`, `tree_sum` written at `lid` by every thread before each tree's first barrier (the early return is per workgroup, so uniform); v3: `part_loss`, `part_count` likewise. v1, v4: none |
//! | loss | `mse_row`, `hinge_row`, `logistic_row` | `n, k ≥ 1`, `n·k` within u32 (`LossShape`); `row < n` before any access; input, targets, loss, flags and grad are checked windows of `n·k` or `n` (`check_operands`); the label is clamped to 0 when `≥ k` (so within the row); `j < k`; divisors `f32(n·k)`, `f32(n)`, `f32(k)` are ≥ 1 | none |
//! | latency | `bump`, `idle` (the floor benchmark) | `i < n` and `i < arrayLength`; no loop | none |
//!
//! Not marked, so still checked: `linalg` (the second-order drivers)
//! and `sweep_optim`, whose launchers have not been read for this argument.

pub mod activation;
pub mod descent;
pub mod gather;
pub mod gather_matmul;
pub mod layer_backward;
pub mod linalg;
pub mod loss;
pub mod matmul;
pub mod matmul_v7;
#[cfg(test)]
pub(crate) mod mirror;
pub mod optim;
pub mod reduce;
pub mod row_step;
pub mod shaders;
pub mod softmax_xent;
pub mod sweep_optim;
pub mod weight_step;

pub use activation::{ActivationBackward, activation_backward};
pub use gather::{Gather, GatherOptions, GpuDataset};
pub use gather_matmul::GatherMatmul;
pub use layer_backward::LayerBackward;
pub use loss::{Hinge, Logistic, LossKind, Mse};
pub use matmul::{
    BatchStrides, Matmul, MatmulEpilogue, MatmulKernel, V7Tile, Vec4Operands, matmul,
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

/// The version a launcher built with `Auto` runs for `key`: the one
/// recorded on this device ([`Gpu::tune_record`]: pinned, read from the
/// cache, or measured earlier by [`crate::tune`]), else `fixed`, the
/// family's rule. Launchers never measure: the engines call the tuner
/// before building them, so the kernels stay below it.
/// A recorded version that `fits` refuses on this device is decided again
/// ([`crate::gpu::TuneRecord::decide`]): a warning, never an error.
pub(crate) fn recorded<K: Copy>(
    gpu: &Gpu,
    key: String,
    fixed: K,
    name: fn(K) -> &'static str,
    parse: fn(&str) -> Option<K>,
    fits: &dyn Fn(K) -> std::result::Result<(), String>,
) -> K {
    decide(gpu, key, fixed, name, parse, fits, None)
}

/// The version for `key`: the one recorded on this device that `fits` it,
/// else one `measure` times now (where given and tuning is on: the tuner's
/// way, [`crate::tune`]), else `fixed`. [`recorded`] is this without
/// `measure`, for the launchers.
pub(crate) fn decide<K: Copy>(
    gpu: &Gpu,
    key: String,
    fixed: K,
    name: fn(K) -> &'static str,
    parse: fn(&str) -> Option<K>,
    fits: &dyn Fn(K) -> std::result::Result<(), String>,
    measure: Option<&mut dyn FnMut() -> Result<K>>,
) -> K {
    let fits_name = |n: &str| parse(n).map_or(Ok(()), fits);
    let mut named;
    let measure: Option<&mut dyn FnMut() -> Result<&'static str>> = match measure {
        Some(m) => {
            named = move || m().map(name);
            Some(&mut named)
        }
        None => None,
    };
    gpu.tune_record()
        .decide(
            key,
            name(fixed),
            &|n| parse(n).is_some(),
            &fits_name,
            measure,
        )
        .and_then(|n| parse(&n))
        .unwrap_or(fixed)
}

/// `Ok` when `kernel` is one of the versions this device offers (`offered`:
/// the family's `available`), else why not: how a recorded subgroup version
/// is checked on a device without subgroups.
pub(crate) fn offered<K: Copy + PartialEq>(
    kernel: K,
    offered: &[K],
    name: fn(K) -> &'static str,
) -> std::result::Result<(), String> {
    if offered.contains(&kernel) {
        return Ok(());
    }
    let names: Vec<&str> = offered.iter().map(|&k| name(k)).collect();
    Err(format!(
        "this device offers {} (no subgroups, or a capped device)",
        names.join(", ")
    ))
}

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

    /// Records the dispatch with dynamic offsets for its slot bindings.
    pub(crate) fn record_with_offsets(&self, pass: &mut wgpu::ComputePass<'_>, offsets: &[u32]) {
        let [x, y, z] = self.grid;
        pass.set_pipeline(&self.pipeline.pipeline);
        pass.set_bind_group(0, &*self.bind_group, offsets);
        pass.dispatch_workgroups(x, y, z);
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
