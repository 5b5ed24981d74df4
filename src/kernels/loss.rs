//! Launchers for `shaders/loss.wgsl`, the losses beside softmax
//! cross-entropy: [`Mse`] (mean squared error, for regression and the
//! course's AND neuron), [`Hinge`] (the multiclass SVM loss of CS231n, which
//! the linear classifier trains with, `train_linear --loss svm`) and
//! [`Logistic`] (binary cross-entropy on a sigmoid). Each writes the per-row
//! losses of an N×K input and, optionally, the gradient of their mean; the
//! batch's loss is their sum over N, taken in a fixed order by
//! [`super::LossCorrectSum`] (or on the host), never by atomics. The CPU
//! twins are [`crate::cpu::loss`]; the formulas are in the shader's header.
//!
//! ```no_run
//! # use wgpu_train::{Gpu, GpuLabels, GpuTensor, kernels::loss};
//! # fn main() -> wgpu_train::Result<()> {
//! let gpu = Gpu::new()?;
//! let pred = GpuTensor::from_slice(&gpu, &[2, 1], &[1.5, -0.5])?;
//! let targets = GpuTensor::from_slice(&gpu, &[2, 1], &[1.0, 0.0])?;
//! let out = loss::mse(&gpu, &pred, &targets, true)?;
//! assert_eq!(out.loss.read(&gpu)?, vec![0.25, 0.25]);
//! let scores = GpuTensor::from_slice(&gpu, &[1, 3], &[2.0, 1.5, -1.0])?;
//! let labels = GpuLabels::new(&gpu, &[0u8], 3)?;
//! let svm = loss::hinge(&gpu, &scores, &labels, false)?;
//! assert_eq!(svm.loss.read(&gpu)?, vec![0.5]); // max(0, 1.5 − 2 + 1)
//! # Ok(()) }
//! ```

use super::{Dispatch, Operand, check_operands, check_shape, fold, uniform};
use crate::error::{Error, Result};
use crate::gpu::{Binding, Gpu, GpuLabels, GpuTensor, PipelineKey, Shader};
use crate::options::LossShape;

// The shader file of this kernel family and its bind-group layout
// (binding i of group 0 is `bindings[i]`).
pub static LOSS: Shader = Shader {
    name: "loss",
    source: include_str!("../../shaders/loss.wgsl"),
    bindings: &[
        Binding::Uniform,          // params
        Binding::StorageRead,      // x: predictions, scores or logits
        Binding::StorageRead,      // labels (hinge)
        Binding::StorageRead,      // targets (mse, logistic)
        Binding::StorageReadWrite, // loss
        Binding::StorageReadWrite, // correct (hinge, logistic)
        Binding::StorageReadWrite, // grad
    ],
    workgroup_memory: &[],
    trusted: true,
};

/// Rows per workgroup (one thread per row).
const ROWS_PER_GROUP: usize = 64;

/// The uniform block of `loss.wgsl` (32 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    k: u32,
    x_offset: u32,
    labels_offset: u32,
    targets_offset: u32,
    loss_offset: u32,
    correct_offset: u32,
    grad_offset: u32,
}

/// Which loss: one entry point of `loss.wgsl` each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LossKind {
    /// Mean squared error against f32 targets ([`Mse`]).
    Mse,
    /// The multiclass SVM loss against class labels ([`Hinge`]).
    Hinge,
    /// Binary cross-entropy on a sigmoid against targets in [0, 1] ([`Logistic`]).
    Logistic,
}

impl LossKind {
    /// Every loss of the file.
    pub const ALL: [LossKind; 3] = [LossKind::Mse, LossKind::Hinge, LossKind::Logistic];

    /// Short name for tables and errors ("mse", "hinge", "logistic").
    pub fn name(self) -> &'static str {
        match self {
            LossKind::Mse => "mse",
            LossKind::Hinge => "hinge",
            LossKind::Logistic => "logistic",
        }
    }

    fn entry(self) -> &'static str {
        match self {
            LossKind::Mse => "mse_row",
            LossKind::Hinge => "hinge_row",
            LossKind::Logistic => "logistic_row",
        }
    }
}

fn key(kind: LossKind, with_grad: bool) -> PipelineKey {
    PipelineKey {
        shader: &LOSS,
        entry: kind.entry(),
        constants: vec![("WRITE_GRAD", if with_grad { 1.0 } else { 0.0 })],
    }
}

/// Every pipeline these launchers can build (validated by
/// `tests/cpu/shaders.rs` and `tests/cpu/shader_writers.rs`).
pub fn specialisations() -> Vec<PipelineKey> {
    LossKind::ALL
        .iter()
        .flat_map(|&k| [key(k, true), key(k, false)])
        .collect()
}

/// What one dispatch reads besides the input.
enum Against<'a> {
    Targets(&'a GpuTensor<f32>),
    Labels(&'a GpuLabels),
}

/// The dispatch all three launchers hold.
struct LossDispatch {
    dispatch: Dispatch,
    shape: LossShape,
    with_grad: bool,
}

impl LossDispatch {
    fn build(
        gpu: &Gpu,
        kind: LossKind,
        x: &GpuTensor<f32>,
        against: Against<'_>,
        loss: &GpuTensor<f32>,
        correct: Option<&GpuTensor<u32>>,
        grad: Option<&GpuTensor<f32>>,
    ) -> Result<Self> {
        let op = kind.name();
        let shape = match against {
            Against::Targets(t) => LossShape::with_targets(op, x.shape(), t.shape())?,
            Against::Labels(l) => {
                let shape = LossShape::with_labels(op, x.shape(), l.tensor().shape())?;
                if l.classes() != shape.k {
                    return Err(Error::shape(
                        op,
                        format!(
                            "the labels were checked against {} classes but the scores have {} columns",
                            l.classes(),
                            shape.k
                        ),
                    ));
                }
                shape
            }
        };
        check_shape(op, "loss", loss, &[shape.n])?;
        let mut writes = vec![Operand::of("loss", loss)];
        if let Some(c) = correct {
            check_shape(op, "correct", c, &[shape.n])?;
            writes.push(Operand::of("correct", c));
        }
        if let Some(g) = grad {
            check_shape(op, "grad", g, &[shape.n, shape.k])?;
            writes.push(Operand::of("grad", g));
        }
        let reads = [
            Operand::of("input", x),
            match against {
                Against::Targets(t) => Operand::of("targets", t),
                Against::Labels(l) => Operand::of("labels", l.tensor()),
            },
        ];
        check_operands(gpu, op, &reads, &writes)?;
        let grid = fold(gpu, op, shape.n.div_ceil(ROWS_PER_GROUP) as u64)?;
        // GpuTensor keeps every element index within u32.
        let params = Params {
            n: shape.n as u32,
            k: shape.k as u32,
            x_offset: x.offset() as u32,
            labels_offset: match against {
                Against::Labels(l) => l.tensor().offset() as u32,
                Against::Targets(_) => 0,
            },
            targets_offset: match against {
                Against::Targets(t) => t.offset() as u32,
                Against::Labels(_) => 0,
            },
            loss_offset: loss.offset() as u32,
            correct_offset: correct.map_or(0, |c| c.offset() as u32),
            grad_offset: grad.map_or(0, |g| g.offset() as u32),
        };
        let pipeline = gpu.pipeline(&key(kind, grad.is_some()))?;
        let uniform = uniform(gpu, "loss params", &params)?;
        let (labels, targets) = match against {
            Against::Labels(l) => (l.tensor().buffer(), gpu.placeholder()),
            Against::Targets(t) => (gpu.placeholder(), t.buffer()),
        };
        let bind_group = gpu.bind_group(
            &pipeline,
            &[
                &uniform,
                x.buffer(),
                labels,
                targets,
                loss.buffer(),
                correct.map_or(gpu.placeholder_rw(), |c| c.buffer()),
                grad.map_or(gpu.placeholder_rw(), |g| g.buffer()),
            ],
        )?;
        Ok(LossDispatch {
            dispatch: Dispatch::new(op, pipeline, bind_group, grid),
            shape,
            with_grad: grad.is_some(),
        })
    }

    /// The input and the targets or labels in, the losses (and flags) and
    /// the gradient out.
    fn bytes(&self, targets: bool, flags: bool) -> u64 {
        let (n, nk) = (self.shape.n as u64, (self.shape.n * self.shape.k) as u64);
        let against = if targets { 4 * nk } else { 4 * n };
        4 * nk
            + against
            + 4 * n
            + if flags { 4 * n } else { 0 }
            + if self.with_grad { 4 * nk } else { 0 }
    }
}

macro_rules! recorders {
    ($t:ty) => {
        impl $t {
            /// Records the dispatch into an open compute pass.
            pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
                self.0.dispatch.record(pass);
            }

            /// Records `repeats` dispatches in one pass of a new encoder and
            /// submits it (no wait, no readback).
            pub fn run(&self, gpu: &Gpu, repeats: usize) -> Result<()> {
                self.0.dispatch.run(gpu, repeats)
            }

            /// The resolved sizes: N rows, K columns.
            pub fn shape(&self) -> LossShape {
                self.0.shape
            }
        }
    };
}

/// One mean squared error, ready to record: pipeline and bind group built once.
pub struct Mse(LossDispatch);

impl Mse {
    /// Checks shapes and limits and prepares, for predictions and targets
    /// N×K: per-row `loss` (`[N]`, `Σ_k (p − t)² / K`) and, when `grad` is
    /// given (`[N, K]`), `2·(p − t) / (N·K)`. Outputs may be views into
    /// larger buffers but must not share one with an input.
    pub fn new(
        gpu: &Gpu,
        pred: &GpuTensor<f32>,
        targets: &GpuTensor<f32>,
        loss: &GpuTensor<f32>,
        grad: Option<&GpuTensor<f32>>,
    ) -> Result<Self> {
        let against = Against::Targets(targets);
        LossDispatch::build(gpu, LossKind::Mse, pred, against, loss, None, grad).map(Mse)
    }

    /// Bytes one dispatch moves (for GB/s figures).
    pub fn bytes(&self) -> u64 {
        self.0.bytes(true, false)
    }
}
recorders!(Mse);

/// One multiclass SVM loss, ready to record.
pub struct Hinge(LossDispatch);

impl Hinge {
    /// Checks shapes and limits and prepares, for scores N×C and N labels
    /// checked against C classes: per-row `loss` (`[N]`), `correct` flags
    /// (`[N]`, 1 where argmax = label) and, when `grad` is given (`[N, C]`),
    /// the gradient of the mean loss. Outputs must not share a buffer with
    /// an input.
    pub fn new(
        gpu: &Gpu,
        scores: &GpuTensor<f32>,
        labels: &GpuLabels,
        loss: &GpuTensor<f32>,
        correct: &GpuTensor<u32>,
        grad: Option<&GpuTensor<f32>>,
    ) -> Result<Self> {
        let against = Against::Labels(labels);
        let (k, c) = (LossKind::Hinge, Some(correct));
        LossDispatch::build(gpu, k, scores, against, loss, c, grad).map(Hinge)
    }

    /// Bytes one dispatch moves (for GB/s figures).
    pub fn bytes(&self) -> u64 {
        self.0.bytes(false, true)
    }
}
recorders!(Hinge);

/// One logistic loss, ready to record.
pub struct Logistic(LossDispatch);

impl Logistic {
    /// Checks shapes and limits and prepares, for logits and targets N×K:
    /// per-row `loss` (`[N]`), `correct` flags (`[N]`) and, when `grad` is
    /// given (`[N, K]`), `(σ(z) − t) / (N·K)`. The targets are meant to lie
    /// in [0, 1]; the kernel does not read them back to check (the CPU twin
    /// does): outside it, it returns the formula's value.
    pub fn new(
        gpu: &Gpu,
        logits: &GpuTensor<f32>,
        targets: &GpuTensor<f32>,
        loss: &GpuTensor<f32>,
        correct: &GpuTensor<u32>,
        grad: Option<&GpuTensor<f32>>,
    ) -> Result<Self> {
        let against = Against::Targets(targets);
        let (k, c) = (LossKind::Logistic, Some(correct));
        LossDispatch::build(gpu, k, logits, against, loss, c, grad).map(Logistic)
    }

    /// Bytes one dispatch moves (for GB/s figures).
    pub fn bytes(&self) -> u64 {
        self.0.bytes(true, true)
    }
}
recorders!(Logistic);

/// What [`mse`], [`hinge`] and [`logistic`] return, in new tensors.
#[derive(Debug)]
pub struct LossOutput {
    /// `[N]` per-row losses.
    pub loss: GpuTensor<f32>,
    /// `[N]` flags (hinge, logistic); `None` from [`mse`].
    pub correct: Option<GpuTensor<u32>>,
    /// `[N, K]` gradient of the mean loss, when asked for.
    pub grad: Option<GpuTensor<f32>>,
}

/// The per-row losses and, with `with_grad`, the gradient, as new tensors.
type Outputs = (GpuTensor<f32>, Option<GpuTensor<f32>>);

fn outputs(gpu: &Gpu, shape: LossShape, with_grad: bool) -> Result<Outputs> {
    let grad = if with_grad {
        Some(GpuTensor::zeros(gpu, &[shape.n, shape.k])?)
    } else {
        None
    };
    Ok((GpuTensor::zeros(gpu, &[shape.n])?, grad))
}

/// Per-row mean squared error (and its gradient) into new tensors. The GPU
/// twin of [`crate::cpu::loss::mse`].
pub fn mse(
    gpu: &Gpu,
    pred: &GpuTensor<f32>,
    targets: &GpuTensor<f32>,
    with_grad: bool,
) -> Result<LossOutput> {
    let shape = LossShape::with_targets("mse", pred.shape(), targets.shape())?;
    let (loss, grad) = outputs(gpu, shape, with_grad)?;
    Mse::new(gpu, pred, targets, &loss, grad.as_ref())?.run(gpu, 1)?;
    Ok(LossOutput {
        loss,
        correct: None,
        grad,
    })
}

/// Per-row multiclass SVM loss, flags (and the gradient) into new tensors.
/// The GPU twin of [`crate::cpu::loss::hinge`].
pub fn hinge(
    gpu: &Gpu,
    scores: &GpuTensor<f32>,
    labels: &GpuLabels,
    with_grad: bool,
) -> Result<LossOutput> {
    let shape = LossShape::with_labels("hinge", scores.shape(), labels.tensor().shape())?;
    let (loss, grad) = outputs(gpu, shape, with_grad)?;
    let correct = GpuTensor::zeros(gpu, &[shape.n])?;
    Hinge::new(gpu, scores, labels, &loss, &correct, grad.as_ref())?.run(gpu, 1)?;
    Ok(LossOutput {
        loss,
        correct: Some(correct),
        grad,
    })
}

/// Per-row logistic loss, flags (and the gradient) into new tensors. The
/// GPU twin of [`crate::cpu::loss::logistic`].
pub fn logistic(
    gpu: &Gpu,
    logits: &GpuTensor<f32>,
    targets: &GpuTensor<f32>,
    with_grad: bool,
) -> Result<LossOutput> {
    let shape = LossShape::with_targets("logistic", logits.shape(), targets.shape())?;
    let (loss, grad) = outputs(gpu, shape, with_grad)?;
    let correct = GpuTensor::zeros(gpu, &[shape.n])?;
    Logistic::new(gpu, logits, targets, &loss, &correct, grad.as_ref())?.run(gpu, 1)?;
    Ok(LossOutput {
        loss,
        correct: Some(correct),
        grad,
    })
}

#[cfg(test)]
mod layout {
    use crate::kernels::mirror::check_mirror;

    #[test]
    fn params_mirrors_the_wgsl_struct() {
        check_mirror!(super::Params, &super::LOSS, "Params"; n, k, x_offset, labels_offset, targets_offset, loss_offset, correct_offset, grad_offset);
    }
}
