//! Launchers for `shaders/reduce.wgsl`: column sums (the bias gradient,
//! optionally fused with the activation backward) and the batch's loss and
//! correct-count totals. Every sum runs in a fixed order, so repeated runs
//! give identical bits.

use super::{Dispatch, Operand, check_operands, check_shape, fold, uniform};
use crate::error::Result;
use crate::gpu::{Gpu, GpuTensor, PipelineKey};
use crate::options::{Activation, check_same_shape, matrix_shape};

use crate::gpu::{Binding, Shader};

// The shader file of this kernel family and its bind-group layout
// (binding i of group 0 is `bindings[i]`).
pub static REDUCE: Shader = Shader {
    name: "reduce",
    source: concat!(
        include_str!("../../shaders/reduce.wgsl"),
        include_str!("../../shaders/shared/activation_grad.wgsl")
    ),
    bindings: REDUCE_BINDINGS,
    workgroup_memory: REDUCE_WORKGROUP_MEMORY,
    trusted: true,
};

const REDUCE_WORKGROUP_MEMORY: &[(&str, u32)] = &[("column_sum", 1024), ("loss_correct_sum", 2048)];

const REDUCE_BINDINGS: &[Binding] = &[
    Binding::Uniform,          // params
    Binding::StorageRead,      // x
    Binding::StorageRead,      // h
    Binding::StorageReadWrite, // dz
    Binding::StorageReadWrite, // sums
    Binding::StorageRead,      // flags
    Binding::StorageReadWrite, // count
];

/// reduce.wgsl with the subgroup column sum (v3) in front, for devices with
/// `wgpu::Features::SUBGROUP` only (see [`SOFTMAX_XENT_SUBGROUP`]).
pub static REDUCE_SUBGROUP: Shader = Shader {
    name: "reduce_subgroup",
    source: concat!(
        include_str!("../../shaders/reduce_subgroup.wgsl"),
        include_str!("../../shaders/reduce.wgsl"),
        include_str!("../../shaders/shared/activation_grad.wgsl")
    ),
    bindings: REDUCE_BINDINGS,
    workgroup_memory: REDUCE_WORKGROUP_MEMORY,
    trusted: true,
};

/// Which version of the column sum to run. Each is deterministic; they add
/// in different orders, so their bits differ from each other's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ColumnSumKernel {
    /// The autotuner's choice where autotuning is on ([`crate::tune`]),
    /// else the fixed rule [`ColumnSumKernel::choose`].
    #[default]
    Auto,
    /// v1: one thread per column, rows in order; no barriers.
    V1Serial,
    /// v2: 16 lanes per column, then a tree in workgroup memory.
    V2Tree,
    /// v3: 4 lanes per column, combined by subgroup shuffles in a fixed
    /// order that does not depend on the subgroup size
    /// (`shaders/reduce_subgroup.wgsl`). Only on devices with
    /// `wgpu::Features::SUBGROUP` ([`ColumnSumKernel::available`]); not in
    /// [`ColumnSumKernel::ALL`], which every device runs.
    V3Subgroup,
}

impl ColumnSumKernel {
    /// Every concrete version, for tests and benchmarks.
    pub const ALL: [ColumnSumKernel; 2] = [ColumnSumKernel::V1Serial, ColumnSumKernel::V2Tree];

    /// The versions this device can run: [`ColumnSumKernel::ALL`], and v3
    /// where the device has subgroups. What the tuner times.
    pub fn available(gpu: &Gpu) -> Vec<ColumnSumKernel> {
        let mut all = Self::ALL.to_vec();
        if gpu.subgroup_sizes().is_some() {
            all.push(ColumnSumKernel::V3Subgroup);
        }
        all
    }

    /// Every version this build has, whatever the device: the names a
    /// recorded choice may hold.
    pub const EVERY: [ColumnSumKernel; 3] = [
        ColumnSumKernel::V1Serial,
        ColumnSumKernel::V2Tree,
        ColumnSumKernel::V3Subgroup,
    ];

    /// Short name for tables ("v1_serial").
    pub fn name(self) -> &'static str {
        match self {
            ColumnSumKernel::Auto => "auto",
            ColumnSumKernel::V1Serial => "v1_serial",
            ColumnSumKernel::V2Tree => "v2_tree",
            ColumnSumKernel::V3Subgroup => "v3_subgroup",
        }
    }

    fn entry(self) -> &'static str {
        match self {
            ColumnSumKernel::Auto | ColumnSumKernel::V2Tree => "column_sum",
            ColumnSumKernel::V1Serial => "column_sum_serial",
            ColumnSumKernel::V3Subgroup => "column_sum_subgroup",
        }
    }

    /// Columns per workgroup.
    fn columns_per_group(self) -> usize {
        match self {
            ColumnSumKernel::Auto | ColumnSumKernel::V2Tree => 16,
            ColumnSumKernel::V1Serial => 64,
            ColumnSumKernel::V3Subgroup => 16,
        }
    }

    /// The version `Auto` runs on `gpu`: on software adapters (lavapipe)
    /// the tree's barriers cost more than the sum itself (BENCHMARKS.md), so
    /// v1; on GPUs v2, which keeps 16× the threads busy (a 10-column bias
    /// gradient is 10 threads in v1) and shortens each serial chain.
    pub fn choose(gpu: &Gpu) -> ColumnSumKernel {
        if gpu.is_software() {
            ColumnSumKernel::V1Serial
        } else {
            ColumnSumKernel::V2Tree
        }
    }

    /// `Auto` resolved: the autotuner's choice where tuning is on
    /// ([`crate::tune`]), else [`ColumnSumKernel::choose`].
    /// A recorded (pinned) v3 on a device without subgroups is an error:
    /// replaying it as another version would change the bits.
    fn resolve(
        self,
        gpu: &Gpu,
        op: &'static str,
        rows: usize,
        cols: usize,
        activation: Option<Activation>,
    ) -> Result<ColumnSumKernel> {
        let kernel = match self {
            ColumnSumKernel::Auto => super::recorded(
                gpu,
                tune_key(rows, cols, activation),
                ColumnSumKernel::choose(gpu),
                ColumnSumKernel::name,
                ColumnSumKernel::from_name,
                &|k| super::offered(k, &ColumnSumKernel::available(gpu), ColumnSumKernel::name),
            ),
            k => k,
        };
        if kernel == ColumnSumKernel::V3Subgroup && gpu.subgroup_sizes().is_none() {
            return Err(super::needs_subgroups(op, kernel.name(), gpu));
        }
        Ok(kernel)
    }
}

/// The tuner's key of one column sum ([`crate::gpu::TuneRecord`]): its
/// sizes and the fused activation.
pub fn tune_key(rows: usize, cols: usize, activation: Option<Activation>) -> String {
    match activation {
        None => format!("column_sum {rows}x{cols}"),
        Some(a) => format!("column_sum {rows}x{cols} {a:?} backward"),
    }
}

impl ColumnSumKernel {
    /// The version called `name` ([`ColumnSumKernel::name`]), if any.
    pub fn from_name(name: &str) -> Option<ColumnSumKernel> {
        ColumnSumKernel::EVERY
            .into_iter()
            .find(|k| k.name() == name)
    }
}

/// The uniform block of `reduce.wgsl` (48 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    cols: u32,
    x_offset: u32,
    h_offset: u32,
    dz_offset: u32,
    sums_offset: u32,
    flags_offset: u32,
    count_offset: u32,
    sums_batch_stride: u32,
    _pad: [u32; 3],
}

fn column_key(kernel: ColumnSumKernel, activation: Option<Activation>) -> PipelineKey {
    PipelineKey {
        shader: if kernel == ColumnSumKernel::V3Subgroup {
            &REDUCE_SUBGROUP
        } else {
            &REDUCE
        },
        entry: kernel.entry(),
        constants: vec![
            ("ACTIVATION", activation.map_or(0.0, |a| a.shader_code())),
            ("WRITE_DZ", if activation.is_some() { 1.0 } else { 0.0 }),
        ],
    }
}

fn totals_key(accumulate: bool) -> PipelineKey {
    PipelineKey {
        shader: &REDUCE,
        entry: "loss_correct_sum",
        constants: vec![("ACCUMULATE", if accumulate { 1.0 } else { 0.0 })],
    }
}

/// Every pipeline these launchers can build on any device (validated by
/// `tests/cpu/shaders.rs`); the subgroup ones are [`subgroup_specialisations`].
pub fn specialisations() -> Vec<PipelineKey> {
    let mut keys = Vec::new();
    for kernel in ColumnSumKernel::ALL {
        keys.push(column_key(kernel, None));
        for a in [Activation::Identity, Activation::Sigmoid, Activation::Relu] {
            keys.push(column_key(kernel, Some(a)));
        }
    }
    keys.push(totals_key(false));
    keys.push(totals_key(true));
    keys
}

/// The subgroup version's pipelines (validated with naga's SUBGROUP
/// capability by `tests/cpu/shaders.rs`).
pub fn subgroup_specialisations() -> Vec<PipelineKey> {
    let k = ColumnSumKernel::V3Subgroup;
    let mut keys = vec![column_key(k, None)];
    for a in [Activation::Identity, Activation::Sigmoid, Activation::Relu] {
        keys.push(column_key(k, Some(a)));
    }
    keys
}

/// A column sum, or the fused activation backward and column sum, ready to
/// record.
pub struct ColumnSum {
    dispatch: Dispatch,
    bytes: u64,
    kernel: ColumnSumKernel,
}

impl ColumnSum {
    /// Prepares `sums[c] = Σ_r x[r, c]` for `x` R×C into `sums` (`[C]`).
    pub fn new(
        gpu: &Gpu,
        x: &GpuTensor<f32>,
        sums: &GpuTensor<f32>,
        kernel: ColumnSumKernel,
    ) -> Result<Self> {
        Self::batched(gpu, x, sums, kernel, 1, 0)
    }

    /// `count` column sums in one dispatch (a sweep of `count` models): sum
    /// `i` is [`ColumnSum::new`] on the R×C matrix that follows matrix
    /// `i − 1` in `x`'s buffer, into the `[C]` window `sums_stride`
    /// elements after sum `i − 1`'s. The tensors given are batch 0's.
    pub fn batched(
        gpu: &Gpu,
        x: &GpuTensor<f32>,
        sums: &GpuTensor<f32>,
        kernel: ColumnSumKernel,
        count: usize,
        sums_stride: usize,
    ) -> Result<Self> {
        const OP: &str = "column_sum";
        let (rows, cols) = matrix_shape(OP, "x", x.shape())?;
        check_shape(OP, "sums", sums, &[cols])?;
        let mut reads = [Operand::of("x", x)];
        let mut writes = [Operand::of("sums", sums)];
        super::check_batch(OP, count, &mut reads, &[rows * cols], false)?;
        super::check_batch(OP, count, &mut writes, &[sums_stride], true)?;
        check_operands(gpu, OP, &reads, &writes)?;
        let params = Params {
            rows: rows as u32,
            cols: cols as u32,
            x_offset: x.offset() as u32,
            sums_offset: sums.offset() as u32,
            sums_batch_stride: sums_stride as u32,
            ..Params::default()
        };
        let kernel = kernel.resolve(gpu, OP, rows, cols, None)?;
        let pipeline = gpu.pipeline(&column_key(kernel, None))?;
        let uniform = uniform(gpu, "column_sum params", &params)?;
        let bind_group = gpu.bind_group(
            &pipeline,
            &[
                &uniform,
                x.buffer(),
                gpu.placeholder(),
                gpu.placeholder_rw(),
                sums.buffer(),
                gpu.placeholder(),
                gpu.placeholder_rw(),
            ],
        )?;
        Ok(ColumnSum {
            dispatch: Dispatch::new(
                OP,
                pipeline,
                bind_group,
                batch_grid(gpu, OP, cols.div_ceil(kernel.columns_per_group()), count)?,
            ),
            bytes: 4 * (rows * cols + cols) as u64 * count as u64,
            kernel,
        })
    }

    /// Prepares the backward of `h = act(z)`, `z = x·Wᵀ + b`, up to the bias,
    /// in one pass: `dz = dh ⊙ act'(z)` from the stored `h` (as
    /// [`super::ActivationBackward`]) and `db = Σ_rows dz`. `dh`, `h`, `dz`
    /// are R×C, `db` is `[C]`; `dz` and `db` may be views into one buffer
    /// (not overlapping) but not into an input's.
    pub fn with_activation(
        gpu: &Gpu,
        dh: &GpuTensor<f32>,
        h: &GpuTensor<f32>,
        dz: &GpuTensor<f32>,
        db: &GpuTensor<f32>,
        activation: Activation,
        kernel: ColumnSumKernel,
    ) -> Result<Self> {
        Self::with_activation_batched(gpu, dh, h, dz, db, activation, kernel, 1, 0)
    }

    /// `count` of [`ColumnSum::with_activation`] in one dispatch (a sweep):
    /// batch `i`'s `dh`, `h` and `dz` follow batch `i − 1`'s (R·C elements
    /// on), its `db` is `db_stride` elements on. The tensors given are
    /// batch 0's.
    #[allow(clippy::too_many_arguments)]
    pub fn with_activation_batched(
        gpu: &Gpu,
        dh: &GpuTensor<f32>,
        h: &GpuTensor<f32>,
        dz: &GpuTensor<f32>,
        db: &GpuTensor<f32>,
        activation: Activation,
        kernel: ColumnSumKernel,
        count: usize,
        db_stride: usize,
    ) -> Result<Self> {
        const OP: &str = "activation_bias_backward";
        let (rows, cols) = matrix_shape(OP, "dH", dh.shape())?;
        check_same_shape(OP, "dH", dh.shape(), "h", h.shape())?;
        check_shape(OP, "dZ", dz, dh.shape())?;
        check_shape(OP, "db", db, &[cols])?;
        let mut reads = [Operand::of("dH", dh), Operand::of("h", h)];
        let mut writes = [Operand::of("dZ", dz), Operand::of("db", db)];
        super::check_batch(OP, count, &mut reads, &[rows * cols; 2], false)?;
        super::check_batch(OP, count, &mut writes, &[rows * cols, db_stride], true)?;
        check_operands(gpu, OP, &reads, &writes)?;
        let params = Params {
            rows: rows as u32,
            cols: cols as u32,
            x_offset: dh.offset() as u32,
            h_offset: h.offset() as u32,
            dz_offset: dz.offset() as u32,
            sums_offset: db.offset() as u32,
            sums_batch_stride: db_stride as u32,
            ..Params::default()
        };
        let kernel = kernel.resolve(gpu, OP, rows, cols, Some(activation))?;
        let pipeline = gpu.pipeline(&column_key(kernel, Some(activation)))?;
        let uniform = uniform(gpu, "activation_bias_backward params", &params)?;
        let bind_group = gpu.bind_group(
            &pipeline,
            &[
                &uniform,
                dh.buffer(),
                h.buffer(),
                dz.buffer(),
                db.buffer(),
                gpu.placeholder(),
                gpu.placeholder_rw(),
            ],
        )?;
        Ok(ColumnSum {
            dispatch: Dispatch::new(
                OP,
                pipeline,
                bind_group,
                batch_grid(gpu, OP, cols.div_ceil(kernel.columns_per_group()), count)?,
            ),
            bytes: 4 * (3 * rows * cols + cols) as u64 * count as u64,
            kernel,
        })
    }

    /// Records the dispatch into an open compute pass.
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        self.dispatch.record(pass);
    }

    /// Records `repeats` dispatches in one pass and submits them.
    pub fn run(&self, gpu: &Gpu, repeats: usize) -> Result<()> {
        self.dispatch.run(gpu, repeats)
    }

    /// Bytes one dispatch moves (for GB/s figures).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The version that runs (never `Auto`).
    pub fn kernel(&self) -> ColumnSumKernel {
        self.kernel
    }
}

/// `groups` workgroups folded into x and y, `count` batches along z.
fn batch_grid(gpu: &Gpu, op: &'static str, groups: usize, count: usize) -> Result<[u32; 3]> {
    let mut grid = fold(gpu, op, groups as u64)?;
    grid[2] = count as u32;
    gpu.check_dispatch(op, grid)?;
    Ok(grid)
}

/// Column sums into a new tensor, with the automatic version choice. The GPU twin of [`crate::cpu::column_sum`].
pub fn column_sum(gpu: &Gpu, x: &GpuTensor<f32>) -> Result<GpuTensor<f32>> {
    let (_, cols) = matrix_shape("column_sum", "x", x.shape())?;
    let sums = GpuTensor::zeros(gpu, &[cols])?;
    ColumnSum::new(gpu, x, &sums, ColumnSumKernel::Auto)?.run(gpu, 1)?;
    Ok(sums)
}

/// `(dz, db)` into new tensors, in one pass, with the automatic version
/// choice. The GPU twin of
/// [`crate::cpu::activation_bias_backward`].
pub fn activation_bias_backward(
    gpu: &Gpu,
    dh: &GpuTensor<f32>,
    h: &GpuTensor<f32>,
    activation: Activation,
) -> Result<(GpuTensor<f32>, GpuTensor<f32>)> {
    let (_, cols) = matrix_shape("activation_bias_backward", "dH", dh.shape())?;
    let dz = GpuTensor::zeros(gpu, dh.shape())?;
    let db = GpuTensor::zeros(gpu, &[cols])?;
    ColumnSum::with_activation(gpu, dh, h, &dz, &db, activation, ColumnSumKernel::Auto)?
        .run(gpu, 1)?;
    Ok((dz, db))
}

/// The batch's total loss and correct count, ready to record.
pub struct LossCorrectSum {
    dispatch: Dispatch,
    rows: usize,
}

impl LossCorrectSum {
    /// Prepares `total = Σ loss`, `count = Σ correct` over the per-row
    /// outputs of [`super::SoftmaxXent`] (`[N]` each) into one-element
    /// tensors. With `accumulate` the sums are added to what `total` and
    /// `count` already hold, so a whole epoch's totals can stay on the GPU
    /// and be read back once (zero them at the start).
    pub fn new(
        gpu: &Gpu,
        loss: &GpuTensor<f32>,
        correct: &GpuTensor<u32>,
        total: &GpuTensor<f32>,
        count: &GpuTensor<u32>,
        accumulate: bool,
    ) -> Result<Self> {
        Self::batched(gpu, loss, correct, total, count, accumulate, 1)
    }

    /// `batch` totals in one dispatch (a sweep of `batch` models): totals
    /// `i` sum the per-row values that follow batch `i − 1`'s (N elements
    /// on) into the elements after `total` and `count` (1 on). The tensors
    /// given are batch 0's.
    pub fn batched(
        gpu: &Gpu,
        loss: &GpuTensor<f32>,
        correct: &GpuTensor<u32>,
        total: &GpuTensor<f32>,
        count: &GpuTensor<u32>,
        accumulate: bool,
        batch: usize,
    ) -> Result<Self> {
        const OP: &str = "loss_correct_sum";
        let rows = loss.len();
        check_shape(OP, "loss", loss, &[rows])?;
        check_shape(OP, "correct", correct, &[rows])?;
        check_shape(OP, "total", total, &[1])?;
        check_shape(OP, "count", count, &[1])?;
        let mut reads = [Operand::of("loss", loss), Operand::of("correct", correct)];
        let mut writes = [Operand::of("total", total), Operand::of("count", count)];
        super::check_batch(OP, batch, &mut reads, &[rows; 2], false)?;
        super::check_batch(OP, batch, &mut writes, &[1; 2], true)?;
        check_operands(gpu, OP, &reads, &writes)?;
        let params = Params {
            rows: rows as u32,
            x_offset: loss.offset() as u32,
            sums_offset: total.offset() as u32,
            flags_offset: correct.offset() as u32,
            count_offset: count.offset() as u32,
            ..Params::default()
        };
        let pipeline = gpu.pipeline(&totals_key(accumulate))?;
        let uniform = uniform(gpu, "loss_correct_sum params", &params)?;
        let bind_group = gpu.bind_group(
            &pipeline,
            &[
                &uniform,
                loss.buffer(),
                gpu.placeholder(),
                gpu.placeholder_rw(),
                total.buffer(),
                correct.buffer(),
                count.buffer(),
            ],
        )?;
        let grid = [1, 1, batch as u32];
        gpu.check_dispatch(OP, grid)?;
        Ok(LossCorrectSum {
            dispatch: Dispatch::new(OP, pipeline, bind_group, grid),
            rows: rows * batch,
        })
    }

    /// Records the dispatch (one workgroup) into an open compute pass.
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        self.dispatch.record(pass);
    }

    /// Records `repeats` dispatches in one pass and submits them.
    pub fn run(&self, gpu: &Gpu, repeats: usize) -> Result<()> {
        self.dispatch.run(gpu, repeats)
    }

    /// Bytes one dispatch moves (for GB/s figures).
    pub fn bytes(&self) -> u64 {
        8 * self.rows as u64 + 8
    }
}

/// The totals into new one-element tensors. The GPU twin of
/// [`crate::cpu::loss_correct_sum`].
pub fn loss_correct_sum(
    gpu: &Gpu,
    loss: &GpuTensor<f32>,
    correct: &GpuTensor<u32>,
) -> Result<(GpuTensor<f32>, GpuTensor<u32>)> {
    let total = GpuTensor::zeros(gpu, &[1])?;
    let count = GpuTensor::zeros(gpu, &[1])?;
    LossCorrectSum::new(gpu, loss, correct, &total, &count, false)?.run(gpu, 1)?;
    Ok((total, count))
}

#[cfg(test)]
mod layout {
    use crate::kernels::mirror::check_mirror;

    #[test]
    fn params_mirrors_the_wgsl_struct() {
        check_mirror!(super::Params, &super::REDUCE, "Params"; rows, cols, x_offset, h_offset, dz_offset, sums_offset, flags_offset, count_offset, sums_batch_stride, _pad);
    }
}
