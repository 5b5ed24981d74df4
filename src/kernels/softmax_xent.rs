//! Launcher for `shaders/softmax_xent.wgsl`: per-row softmax cross-entropy,
//! its gradient and the correct-prediction flag, in one pass over the logits;
//! and ([`SoftmaxXent::with_totals`], v3) the same with the batch's loss and
//! correct count added to running totals in the same dispatch.
//!
//! ```no_run
//! # use wgpu_train::{Gpu, GpuLabels, GpuTensor, kernels::softmax_xent};
//! # fn main() -> wgpu_train::Result<()> {
//! let gpu = Gpu::new()?;
//! let logits = GpuTensor::from_slice(&gpu, &[2, 3], &[2.0, 1.0, 0.0, 0.0, 0.0, 5.0])?;
//! let labels = GpuLabels::new(&gpu, &[0u8, 1], 3)?; // checked: every label < 3
//! let out = softmax_xent(&gpu, &logits, &labels)?;
//! assert_eq!(out.correct.read(&gpu)?, vec![1, 0]);
//! # Ok(()) }
//! ```

use super::{Dispatch, Operand, check_operands, check_shape, fold, uniform};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuLabels, GpuTensor, PipelineKey};
use crate::options::SoftmaxXentShape;

use crate::gpu::{Binding, Shader};

// The shader file of this kernel family and its bind-group layout
// (binding i of group 0 is `bindings[i]`).
pub static SOFTMAX_XENT: Shader = Shader {
    name: "softmax_xent",
    source: include_str!("../../shaders/softmax_xent.wgsl"),
    bindings: XENT_BINDINGS,
    workgroup_memory: XENT_WORKGROUP_MEMORY,
    trusted: true,
};

const XENT_WORKGROUP_MEMORY: &[(&str, u32)] = &[("xent_workgroup", 768), ("xent_totals", 2048)];

const XENT_BINDINGS: &[Binding] = &[
    Binding::Uniform,          // params
    Binding::StorageRead,      // logits
    Binding::StorageRead,      // labels
    Binding::StorageReadWrite, // loss
    Binding::StorageReadWrite, // correct
    Binding::StorageReadWrite, // dlogits
    Binding::StorageReadWrite, // loss_total (v3)
    Binding::StorageReadWrite, // correct_total (v3)
];

/// softmax_xent.wgsl with the subgroup version (v4) in front: a module of
/// its own because its `enable subgroups;` fails to compile on devices
/// without `wgpu::Features::SUBGROUP`. Same bindings as [`SOFTMAX_XENT`].
pub static SOFTMAX_XENT_SUBGROUP: Shader = Shader {
    name: "softmax_xent_subgroup",
    source: concat!(
        include_str!("../../shaders/softmax_xent_subgroup.wgsl"),
        include_str!("../../shaders/softmax_xent.wgsl")
    ),
    bindings: XENT_BINDINGS,
    workgroup_memory: XENT_WORKGROUP_MEMORY,
    trusted: true,
};

/// Which version of the kernel to run; all compute the same thing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SoftmaxXentKernel {
    /// The autotuner's choice where autotuning is on ([`crate::tune`]),
    /// else the fixed rule [`SoftmaxXentKernel::choose`].
    #[default]
    Auto,
    /// v1: one thread per row, the readable reference.
    V1Row,
    /// v2: one 64-thread workgroup per row, tree reductions in workgroup memory.
    V2Workgroup,
    /// v4: four lanes per row, combined by subgroup shuffles in a fixed
    /// order that does not depend on the subgroup size
    /// (`shaders/softmax_xent_subgroup.wgsl`). Only on devices with
    /// `wgpu::Features::SUBGROUP` ([`SoftmaxXentKernel::available`]); not in
    /// [`SoftmaxXentKernel::ALL`], which every device runs.
    V4Subgroup,
}

impl SoftmaxXentKernel {
    /// Every concrete version, for tests and benchmarks.
    pub const ALL: [SoftmaxXentKernel; 2] =
        [SoftmaxXentKernel::V1Row, SoftmaxXentKernel::V2Workgroup];

    /// The versions this device can run: [`SoftmaxXentKernel::ALL`], and
    /// v4 where the device has subgroups. What the tuner times.
    pub fn available(gpu: &Gpu) -> Vec<SoftmaxXentKernel> {
        let mut all = Self::ALL.to_vec();
        if gpu.subgroup_sizes().is_some() {
            all.push(SoftmaxXentKernel::V4Subgroup);
        }
        all
    }

    /// Every version this build has, whatever the device: the names a
    /// recorded choice may hold.
    pub const EVERY: [SoftmaxXentKernel; 3] = [
        SoftmaxXentKernel::V1Row,
        SoftmaxXentKernel::V2Workgroup,
        SoftmaxXentKernel::V4Subgroup,
    ];

    /// Short name for tables ("v1_row").
    pub fn name(self) -> &'static str {
        match self {
            SoftmaxXentKernel::Auto => "auto",
            SoftmaxXentKernel::V1Row => "v1_row",
            SoftmaxXentKernel::V2Workgroup => "v2_workgroup",
            SoftmaxXentKernel::V4Subgroup => "v4_subgroup",
        }
    }

    fn entry(self) -> &'static str {
        match self {
            SoftmaxXentKernel::Auto | SoftmaxXentKernel::V1Row => "xent_row",
            SoftmaxXentKernel::V2Workgroup => "xent_workgroup",
            SoftmaxXentKernel::V4Subgroup => "xent_subgroup",
        }
    }

    /// Rows per workgroup.
    fn rows_per_group(self) -> usize {
        match self {
            SoftmaxXentKernel::Auto | SoftmaxXentKernel::V1Row => 64,
            SoftmaxXentKernel::V2Workgroup => 1,
            SoftmaxXentKernel::V4Subgroup => 16,
        }
    }

    /// The version `Auto` runs for `shape` on `gpu`.
    ///
    /// A thread per row leaves a real GPU nearly idle at batch sizes (128
    /// rows are 128 threads) and walks a long row alone; a workgroup per row
    /// spreads C = 1000 over 64 threads. For C = 10 the workgroup's trees
    /// cost more than the row. Software adapters (lavapipe) run a workgroup
    /// as SIMD loops on a CPU core, where barriers are dear and one thread
    /// per row is already parallel enough: v1 there (BENCHMARKS.md).
    pub fn choose(gpu: &Gpu, shape: &SoftmaxXentShape) -> SoftmaxXentKernel {
        if gpu.is_software() || shape.c <= 64 {
            SoftmaxXentKernel::V1Row
        } else {
            SoftmaxXentKernel::V2Workgroup
        }
    }
}

/// The tuner's key of one softmax-CE ([`crate::gpu::TuneRecord`]): exact
/// sizes and whether it writes the gradient.
pub fn tune_key(shape: &SoftmaxXentShape, with_grad: bool) -> String {
    format!(
        "softmax_xent {}x{}{}",
        shape.n,
        shape.c,
        if with_grad { " +dlogits" } else { "" }
    )
}

impl SoftmaxXentKernel {
    /// The version called `name` ([`SoftmaxXentKernel::name`]), if any.
    pub fn from_name(name: &str) -> Option<SoftmaxXentKernel> {
        SoftmaxXentKernel::EVERY
            .into_iter()
            .find(|k| k.name() == name)
    }
}

/// The uniform block of `softmax_xent.wgsl` (32 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    c: u32,
    logits_offset: u32,
    labels_offset: u32,
    loss_offset: u32,
    correct_offset: u32,
    dlogits_offset: u32,
    total_offset: u32,
    count_offset: u32,
    _pad0: u32,
    _pad1: u32,
}

fn key(kernel: SoftmaxXentKernel, with_grad: bool) -> PipelineKey {
    entry_key(kernel.entry(), with_grad)
}

fn entry_key(entry: &'static str, with_grad: bool) -> PipelineKey {
    PipelineKey {
        shader: if entry == SoftmaxXentKernel::V4Subgroup.entry() {
            &SOFTMAX_XENT_SUBGROUP
        } else {
            &SOFTMAX_XENT
        },
        entry,
        constants: vec![("WRITE_GRAD", if with_grad { 1.0 } else { 0.0 })],
    }
}

/// The fused version's entry point (v3: rows and batch totals).
const TOTALS_ENTRY: &str = "xent_totals";

/// Every pipeline this launcher can build on any device (validated by
/// `tests/cpu/shaders.rs`); the subgroup ones are [`subgroup_specialisations`].
pub fn specialisations() -> Vec<PipelineKey> {
    let mut keys: Vec<PipelineKey> = SoftmaxXentKernel::ALL
        .iter()
        .flat_map(|&k| [key(k, true), key(k, false)])
        .collect();
    keys.push(entry_key(TOTALS_ENTRY, true));
    keys.push(entry_key(TOTALS_ENTRY, false));
    keys
}

/// The subgroup version's pipelines (validated with naga's SUBGROUP
/// capability by `tests/cpu/shaders.rs`).
pub fn subgroup_specialisations() -> Vec<PipelineKey> {
    let k = SoftmaxXentKernel::V4Subgroup;
    vec![key(k, true), key(k, false)]
}

/// One softmax cross-entropy, ready to record: pipeline and bind group are
/// built once.
pub struct SoftmaxXent {
    dispatch: Dispatch,
    shape: SoftmaxXentShape,
    kernel: SoftmaxXentKernel,
    with_grad: bool,
}

impl SoftmaxXent {
    /// Checks shapes and limits and prepares, for logits N×C and N labels
    /// checked against C classes: per-row `loss` (`[N]`), per-row `correct`
    /// flags (`[N]`, 1 where argmax = label) and, when `dlogits` is given
    /// (`[N, C]`), `(softmax − onehot) / N`. Without `dlogits` it is the
    /// forward-only evaluation kernel. Outputs may be views into larger
    /// buffers but must not share one with an input.
    pub fn new(
        gpu: &Gpu,
        logits: &GpuTensor<f32>,
        labels: &GpuLabels,
        loss: &GpuTensor<f32>,
        correct: &GpuTensor<u32>,
        dlogits: Option<&GpuTensor<f32>>,
        kernel: SoftmaxXentKernel,
    ) -> Result<Self> {
        Self::build(gpu, logits, labels, loss, correct, dlogits, kernel, None, 1)
    }

    /// `count` batches in one dispatch (a sweep of `count` models, v1 or
    /// v2): batch `i` is [`SoftmaxXent::new`] on the logits, losses, flags
    /// and dlogits that follow batch `i − 1`'s in their buffers (`N·C`, `N`,
    /// `N`, `N·C` elements on), against the same labels. The tensors given
    /// are batch 0's.
    #[allow(clippy::too_many_arguments)]
    pub fn batched(
        gpu: &Gpu,
        logits: &GpuTensor<f32>,
        labels: &GpuLabels,
        loss: &GpuTensor<f32>,
        correct: &GpuTensor<u32>,
        dlogits: Option<&GpuTensor<f32>>,
        kernel: SoftmaxXentKernel,
        count: usize,
    ) -> Result<Self> {
        Self::build(
            gpu, logits, labels, loss, correct, dlogits, kernel, None, count,
        )
    }

    /// v3, fused with the batch totals: what [`SoftmaxXent::new`] computes
    /// (with v1's arithmetic), and in the same dispatch `total += Σ loss`
    /// and `count += Σ correct` (one-element tensors, zeroed by the caller
    /// at the start of an epoch) in the fixed order of
    /// [`super::LossCorrectSum`] — the same bits as v1 followed by it with
    /// `accumulate`. One workgroup does the whole batch.
    #[allow(clippy::too_many_arguments)]
    pub fn with_totals(
        gpu: &Gpu,
        logits: &GpuTensor<f32>,
        labels: &GpuLabels,
        loss: &GpuTensor<f32>,
        correct: &GpuTensor<u32>,
        dlogits: Option<&GpuTensor<f32>>,
        total: &GpuTensor<f32>,
        count: &GpuTensor<u32>,
    ) -> Result<Self> {
        Self::build(
            gpu,
            logits,
            labels,
            loss,
            correct,
            dlogits,
            SoftmaxXentKernel::V1Row,
            Some((total, count)),
            1,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        gpu: &Gpu,
        logits: &GpuTensor<f32>,
        labels: &GpuLabels,
        loss: &GpuTensor<f32>,
        correct: &GpuTensor<u32>,
        dlogits: Option<&GpuTensor<f32>>,
        kernel: SoftmaxXentKernel,
        totals: Option<(&GpuTensor<f32>, &GpuTensor<u32>)>,
        batch: usize,
    ) -> Result<Self> {
        const OP: &str = "softmax_xent";
        let shape = SoftmaxXentShape::resolve(logits.shape(), labels.tensor().shape())?;
        if labels.classes() != shape.c {
            return Err(Error::shape(
                OP,
                format!(
                    "the labels were checked against {} classes but the logits have {} columns",
                    labels.classes(),
                    shape.c
                ),
            ));
        }
        check_shape(OP, "loss", loss, &[shape.n])?;
        check_shape(OP, "correct", correct, &[shape.n])?;
        let mut writes = vec![Operand::of("loss", loss), Operand::of("correct", correct)];
        if let Some(d) = dlogits {
            check_shape(OP, "dlogits", d, &[shape.n, shape.c])?;
            writes.push(Operand::of("dlogits", d));
        }
        if let Some((total, count)) = totals {
            check_shape(OP, "total", total, &[1])?;
            check_shape(OP, "count", count, &[1])?;
            writes.push(Operand::of("total", total));
            writes.push(Operand::of("count", count));
        }
        let mut reads = [
            Operand::of("logits", logits),
            Operand::of("labels", labels.tensor()),
        ];
        if batch != 1 {
            let (n, c) = (shape.n, shape.c);
            super::check_batch(OP, batch, &mut reads, &[n * c, 0], false)?;
            super::check_batch(OP, batch, &mut writes, &[n, n, n * c], true)?;
        }
        check_operands(gpu, OP, &reads, &writes)?;

        let kernel = match kernel {
            SoftmaxXentKernel::Auto => super::recorded(
                gpu,
                tune_key(&shape, dlogits.is_some()),
                SoftmaxXentKernel::choose(gpu, &shape),
                SoftmaxXentKernel::name,
                SoftmaxXentKernel::from_name,
                &|k| {
                    super::offered(
                        k,
                        &SoftmaxXentKernel::available(gpu),
                        SoftmaxXentKernel::name,
                    )
                },
            ),
            k => k,
        };
        // Also where a recorded (pinned) choice names v4 on a device without
        // subgroups: replaying it as another version would change the bits.
        if kernel == SoftmaxXentKernel::V4Subgroup && gpu.subgroup_sizes().is_none() {
            return Err(super::needs_subgroups(OP, kernel.name(), gpu));
        }
        let mut workgroups = match totals {
            Some(_) => [1, 1, 1],
            None => fold(gpu, OP, shape.n.div_ceil(kernel.rows_per_group()) as u64)?,
        };
        // v3 (totals) is never batched: `batched` does not reach it.
        workgroups[2] = batch as u32;
        gpu.check_dispatch(OP, workgroups)?;
        // GpuTensor keeps every element index within u32.
        let params = Params {
            n: shape.n as u32,
            c: shape.c as u32,
            logits_offset: logits.offset() as u32,
            labels_offset: labels.tensor().offset() as u32,
            loss_offset: loss.offset() as u32,
            correct_offset: correct.offset() as u32,
            dlogits_offset: dlogits.map_or(0, |d| d.offset() as u32),
            total_offset: totals.map_or(0, |(t, _)| t.offset() as u32),
            count_offset: totals.map_or(0, |(_, c)| c.offset() as u32),
            _pad0: 0,
            _pad1: 0,
        };
        let with_grad = dlogits.is_some();
        let pipeline = gpu.pipeline(&match totals {
            Some(_) => entry_key(TOTALS_ENTRY, with_grad),
            None => key(kernel, with_grad),
        })?;
        let uniform = uniform(gpu, "softmax_xent params", &params)?;
        let dlogits_buffer = dlogits.map_or(gpu.placeholder_rw(), |d| d.buffer());
        let bind_group = gpu.bind_group(
            &pipeline,
            &[
                &uniform,
                logits.buffer(),
                labels.tensor().buffer(),
                loss.buffer(),
                correct.buffer(),
                dlogits_buffer,
                totals.map_or(gpu.placeholder_rw(), |(t, _)| t.buffer()),
                totals.map_or(gpu.placeholder_rw(), |(_, c)| c.buffer()),
            ],
        )?;
        Ok(SoftmaxXent {
            dispatch: Dispatch::new(OP, pipeline, bind_group, workgroups),
            shape,
            kernel,
            with_grad,
        })
    }

    /// Records the dispatch into an open compute pass.
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        self.dispatch.record(pass);
    }

    /// Records `repeats` dispatches in one pass of a new encoder and submits
    /// it (no wait, no readback).
    pub fn run(&self, gpu: &Gpu, repeats: usize) -> Result<()> {
        self.dispatch.run(gpu, repeats)
    }

    /// The resolved sizes.
    pub fn shape(&self) -> SoftmaxXentShape {
        self.shape
    }

    /// The version that runs (never `Auto`).
    pub fn kernel(&self) -> SoftmaxXentKernel {
        self.kernel
    }

    /// Bytes one dispatch moves (for GB/s figures).
    pub fn bytes(&self) -> u64 {
        self.shape.bytes(self.with_grad)
    }
}

/// What the GPU [`softmax_xent`] returns, in new tensors.
#[derive(Debug)]
pub struct SoftmaxXentOutput {
    /// `[N]` per-row losses.
    pub loss: GpuTensor<f32>,
    /// `[N]` flags: 1 where the row's argmax (lowest index among ties) is its label.
    pub correct: GpuTensor<u32>,
    /// `[N, C]` `(softmax − onehot) / N`; `None` from [`softmax_xent_eval`].
    pub dlogits: Option<GpuTensor<f32>>,
}

/// Loss, correctness and `dlogits` into new tensors, with the automatic
/// kernel choice. The GPU twin of [`crate::cpu::softmax_xent`].
pub fn softmax_xent(
    gpu: &Gpu,
    logits: &GpuTensor<f32>,
    labels: &GpuLabels,
) -> Result<SoftmaxXentOutput> {
    softmax_xent_with(gpu, logits, labels, true, SoftmaxXentKernel::Auto)
}

/// Loss and correctness only, for evaluation. The GPU twin of
/// [`crate::cpu::softmax_xent_eval`].
pub fn softmax_xent_eval(
    gpu: &Gpu,
    logits: &GpuTensor<f32>,
    labels: &GpuLabels,
) -> Result<SoftmaxXentOutput> {
    softmax_xent_with(gpu, logits, labels, false, SoftmaxXentKernel::Auto)
}

/// [`softmax_xent`] (or, without `with_grad`, [`softmax_xent_eval`]) with an
/// explicit kernel version.
pub fn softmax_xent_with(
    gpu: &Gpu,
    logits: &GpuTensor<f32>,
    labels: &GpuLabels,
    with_grad: bool,
    kernel: SoftmaxXentKernel,
) -> Result<SoftmaxXentOutput> {
    let shape = SoftmaxXentShape::resolve(logits.shape(), labels.tensor().shape())?;
    let loss = GpuTensor::zeros(gpu, &[shape.n])?;
    let correct = GpuTensor::zeros(gpu, &[shape.n])?;
    let dlogits = if with_grad {
        Some(GpuTensor::zeros(gpu, &[shape.n, shape.c])?)
    } else {
        None
    };
    SoftmaxXent::new(
        gpu,
        logits,
        labels,
        &loss,
        &correct,
        dlogits.as_ref(),
        kernel,
    )?
    .run(gpu, 1)?;
    Ok(SoftmaxXentOutput {
        loss,
        correct,
        dlogits,
    })
}

#[cfg(test)]
mod layout {
    use crate::kernels::mirror::check_mirror;

    #[test]
    fn params_mirrors_the_wgsl_struct() {
        check_mirror!(super::Params, &super::SOFTMAX_XENT, "Params"; n, c, logits_offset, labels_offset, loss_offset, correct_offset, dlogits_offset, total_offset, count_offset, _pad0, _pad1);
    }
}
