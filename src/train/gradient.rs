//! One training program on one batch, on either runner, returning the
//! gradient buffer before any optimizer touches it.
//!
//! The engines never expose the gradient (the optimizer consumes it in the
//! same pass), and both runners execute the same [`Program`](crate::model::Program), so comparing
//! the runners with each other cannot find a miswired program. These two
//! functions exist so that tests can compare each model's whole gradient with
//! the f64 reference of [`crate::cpu::gradcheck`] (`mlp_loss`,
//! `linear_softmax_loss`), which computes it without the program.

use super::cpu::CpuProgram;
use super::gpu_program::{Bindings, GpuProgram};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuLabels, GpuTensor};
use crate::model::{Model, parameter_count};
use ndarray::ArrayView2;

/// What one run of a model's training program computes.
#[derive(Clone, Debug, PartialEq)]
pub struct Gradient {
    /// The sum of the per-row losses (the gradient is that of their mean).
    pub loss_sum: f32,
    /// Rows whose prediction is the label.
    pub correct: u32,
    /// The flat gradient, laid out as [`Model::parameters`]. Poisoned with
    /// NaN before the run, so an element the program never writes is NaN.
    pub grads: Vec<f32>,
}

/// Checks the batch and the parameters against the model.
fn check(model: &dyn Model, x: &ArrayView2<'_, f32>, labels: &[u32], params: &[f32]) -> Result<()> {
    let n = parameter_count(model);
    if x.nrows() == 0 || x.nrows() != labels.len() || x.ncols() != model.input_dim() {
        return Err(Error::shape(
            "gradient",
            format!(
                "{} expects a batch of [rows ≥ 1, {}] with one label per row, got {:?} and {} labels",
                model.name(),
                model.input_dim(),
                x.shape(),
                labels.len()
            ),
        ));
    }
    if params.len() != n {
        return Err(Error::shape(
            "gradient",
            format!(
                "{} has {n} parameters, {} given",
                model.name(),
                params.len()
            ),
        ));
    }
    Ok(())
}

/// The training program `step` of `model` (`false`: the reference one,
/// `true`: the per-layer fused one, or a [`super::StepProgram`]) through the CPU runner (the ndarray twins). `x` is
/// `[rows, model.input_dim()]` (ending in the 1 when [`Model::appends_one`]).
pub fn gradient_cpu(
    model: &dyn Model,
    step: impl Into<super::StepProgram>,
    x: ArrayView2<'_, f32>,
    labels: &[u32],
    params: &[f32],
) -> Result<Gradient> {
    check(model, &x, labels, params)?;
    let mut program = CpuProgram::new(step.into().program(model, x.nrows()));
    let mut grads = vec![f32::NAN; params.len()];
    let (loss_sum, correct) = program.run(x.into_dyn(), labels, params, &mut grads)?;
    Ok(Gradient {
        loss_sum,
        correct,
        grads,
    })
}

/// As [`gradient_cpu`], through the GPU runner: compiled, recorded into one
/// pass, submitted, read back.
pub fn gradient_gpu(
    gpu: &Gpu,
    model: &dyn Model,
    step: impl Into<super::StepProgram>,
    x: ArrayView2<'_, f32>,
    labels: &[u32],
    params: &[f32],
) -> Result<Gradient> {
    check(model, &x, labels, params)?;
    let classes = model.classes();
    let xs = GpuTensor::from_array(gpu, &x)?;
    let y = GpuLabels::new(gpu, labels, classes)?;
    let p = GpuTensor::from_slice(gpu, &[params.len()], params)?;
    let g = GpuTensor::<f32>::zeros(gpu, &[params.len()])?;
    g.fill(gpu, f32::NAN)?;
    let loss_total = GpuTensor::<f32>::zeros(gpu, &[1])?;
    let correct_total = GpuTensor::<u32>::zeros(gpu, &[1])?;
    let bindings = Bindings {
        x: &xs,
        y: y.tensor(),
        classes,
        params: &p,
        grads: &g,
        loss_total: &loss_total,
        correct_total: &correct_total,
        models: 1,
        per_model: p.len(),
        update: None,
    };
    let program =
        GpuProgram::compile(gpu, &step.into().program(model, x.nrows()), &bindings, None)?;
    let mut encoder = gpu.encoder("gradient");
    {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("gradient"),
            timestamp_writes: None,
        });
        program.record_rows(&mut pass)?;
    }
    gpu.submit(encoder)?;
    Ok(Gradient {
        grads: g.read(gpu)?,
        loss_sum: loss_total.read(gpu)?[0],
        correct: correct_total.read(gpu)?[0],
    })
}
