//! The GPU runner: compiles a model's [`Program`] into launchers once, then
//! records it into any number of steps.

use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuLabels, GpuTensor};
use crate::kernels::{
    ColumnSum, ColumnSumKernel, LossCorrectSum, Matmul, MatmulKernel, SoftmaxXent,
    SoftmaxXentKernel,
};
use crate::model::{Op, Program, Region};

enum Launch {
    Matmul(Matmul),
    Softmax(SoftmaxXent),
    Sum(ColumnSum),
}

impl Launch {
    fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        match self {
            Launch::Matmul(m) => m.record(pass),
            Launch::Softmax(s) => s.record(pass),
            Launch::Sum(c) => c.record(pass),
        }
    }
}

enum Slot {
    F32(GpuTensor<f32>),
    U32(GpuTensor<u32>),
}

/// A program bound to its buffers: every launcher built, nothing left to
/// decide when a step is recorded.
pub(crate) struct GpuProgram {
    launches: Vec<Launch>,
    totals: LossCorrectSum,
}

/// Where a program's inputs and outputs live on the GPU.
pub(crate) struct Bindings<'a> {
    /// Gather output rows (`[batch, input_dim]`); the program uses the first `rows`.
    pub x: &'a GpuTensor<f32>,
    /// Gather output labels (`[batch]`), already checked against `classes`.
    pub y: &'a GpuTensor<u32>,
    pub classes: usize,
    pub params: &'a GpuTensor<f32>,
    pub grads: &'a GpuTensor<f32>,
    /// Running totals for the epoch: loss sum `[1]` and correct count `[1]`.
    pub loss_total: &'a GpuTensor<f32>,
    pub correct_total: &'a GpuTensor<u32>,
}

impl GpuProgram {
    pub(crate) fn compile(gpu: &Gpu, program: &Program, b: &Bindings<'_>) -> Result<Self> {
        let rows = program.rows;
        let mut slots = Vec::with_capacity(program.tensors.len());
        for spec in &program.tensors {
            let len: usize = spec.shape.iter().product();
            slots.push(match spec.region {
                Region::Input => {
                    let width = spec.shape.get(1).copied().unwrap_or(0);
                    if b.x.shape().get(1) != Some(&width) || b.x.shape()[0] < rows {
                        return Err(Error::shape(
                            "program",
                            format!("input {:?} cannot hold {:?}", b.x.shape(), spec.shape),
                        ));
                    }
                    Slot::F32(b.x.view(0, &spec.shape)?)
                }
                Region::Param { offset } => Slot::F32(b.params.view(offset, &spec.shape)?),
                Region::Grad { offset } => Slot::F32(b.grads.view(offset, &spec.shape)?),
                Region::Work => Slot::F32(GpuTensor::zeros(gpu, &spec.shape)?),
                Region::WorkU32 => Slot::U32(GpuTensor::zeros(gpu, &[len])?),
            });
        }
        let f = |id: crate::model::TensorId| -> Result<&GpuTensor<f32>> {
            match &slots[id.0] {
                Slot::F32(t) => Ok(t),
                Slot::U32(_) => Err(Error::shape(
                    "program",
                    format!("{} is not an f32 tensor", program.spec(id).name),
                )),
            }
        };
        let u = |id: crate::model::TensorId| -> Result<&GpuTensor<u32>> {
            match &slots[id.0] {
                Slot::U32(t) => Ok(t),
                Slot::F32(_) => Err(Error::shape(
                    "program",
                    format!("{} is not a u32 tensor", program.spec(id).name),
                )),
            }
        };
        let labels = GpuLabels::from_checked(b.y.view(0, &[rows])?, b.classes);
        let mut launches = Vec::with_capacity(program.ops.len());
        for op in &program.ops {
            launches.push(match *op {
                Op::Matmul {
                    a,
                    b: bb,
                    bias,
                    out,
                    opts,
                } => {
                    let bias = match bias {
                        Some(id) => Some(f(id)?),
                        None => None,
                    };
                    Launch::Matmul(Matmul::new(
                        gpu,
                        f(a)?,
                        f(bb)?,
                        bias,
                        f(out)?,
                        opts,
                        MatmulKernel::Auto,
                    )?)
                }
                Op::SoftmaxXent {
                    logits,
                    loss,
                    correct,
                    dlogits,
                } => {
                    let d = match dlogits {
                        Some(id) => Some(f(id)?),
                        None => None,
                    };
                    Launch::Softmax(SoftmaxXent::new(
                        gpu,
                        f(logits)?,
                        &labels,
                        f(loss)?,
                        u(correct)?,
                        d,
                        SoftmaxXentKernel::Auto,
                    )?)
                }
                Op::ActivationBiasBackward {
                    dh,
                    h,
                    dz,
                    db,
                    activation,
                } => Launch::Sum(ColumnSum::with_activation(
                    gpu,
                    f(dh)?,
                    f(h)?,
                    f(dz)?,
                    f(db)?,
                    activation,
                    ColumnSumKernel::Auto,
                )?),
                Op::ColumnSum { x, sums } => {
                    Launch::Sum(ColumnSum::new(gpu, f(x)?, f(sums)?, ColumnSumKernel::Auto)?)
                }
            });
        }
        let totals = LossCorrectSum::new(
            gpu,
            f(program.loss)?,
            u(program.correct)?,
            b.loss_total,
            b.correct_total,
            true,
        )?;
        Ok(GpuProgram { launches, totals })
    }

    /// Records the program and the accumulation of its loss and correct count.
    pub(crate) fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        for l in &self.launches {
            l.record(pass);
        }
        self.totals.record(pass);
    }

    /// Dispatches one recording makes (the loss total is a single dispatch).
    pub(crate) fn dispatches(&self) -> usize {
        self.launches.len() + 1
    }
}
