//! One whole second-order training run of the linear classifier, as
//! `train_linear --optimizer lbfgs|newton-cg` and `src/lab/cli/second_order.rs` (the `second_order` example)
//! use it: the course's initialisation, the objective on the chosen device,
//! [`minimize`], and the test set at the end.

use crate::data::Dataset;
use crate::error::Result;
use crate::gpu::Gpu;
use crate::model::{LinearSoftmax, Model};
use crate::second_order::{
    CpuObjective, FullBatchConfig, GpuObjective, Iteration, Objective, Outcome, SecondOrderConfig,
    minimize,
};

/// Where to run.
#[derive(Clone, Copy, Debug)]
pub enum Device<'g> {
    Gpu(&'g Gpu),
    Cpu,
}

/// What [`fit_linear`] returns.
#[derive(Clone, Debug)]
pub struct LinearRun {
    pub outcome: Outcome,
    pub test_loss: f64,
    pub test_accuracy: f64,
    /// "gpu" or "cpu".
    pub device: &'static str,
    pub adapter: String,
    /// Readbacks of the whole run (the test set's included).
    pub readbacks: usize,
}

/// Trains `LinearSoftmax` (W C×(D+1), initialised from `seed` as the
/// first-order runs are) on all of `train` with `config.method`, then
/// evaluates on `test`.
pub fn fit_linear(
    device: Device<'_>,
    train: &Dataset,
    test: &Dataset,
    data: &FullBatchConfig,
    config: &SecondOrderConfig,
    seed: u64,
    on_iteration: &mut dyn FnMut(&Iteration),
) -> Result<LinearRun> {
    config.validate()?;
    data.validate()?;
    // Without the L2 term the loss of separable data has no minimum: the
    // weights grow without bound while the gradient vanishes, and a method
    // would report "converged" at a meaningless point.
    if data.l2 <= 0.0 {
        return Err(crate::Error::InvalidArgument {
            name: "l2",
            msg: format!(
                "a second-order run needs λ > 0 (got {}): without the L2 term the loss of \
                 separable data has no minimum",
                data.l2
            ),
        });
    }
    let model = LinearSoftmax::new(train.dim(), train.classes)?;
    let w0 = model.init(seed);
    let mut obj: Box<dyn Objective + '_> = match device {
        Device::Gpu(gpu) => Box::new(GpuObjective::new(
            gpu,
            train,
            Some(test),
            config.slots(),
            data,
        )?),
        Device::Cpu => Box::new(CpuObjective::<f32>::new(
            train,
            Some(test),
            config.slots(),
            data,
        )?),
    };
    let outcome = minimize(obj.as_mut(), &w0, config, on_iteration)?;
    let (test_loss, test_accuracy) = obj.evaluate_test(outcome.slot)?;
    Ok(LinearRun {
        outcome,
        test_loss,
        test_accuracy,
        device: obj.device(),
        adapter: obj.adapter(),
        readbacks: obj.readbacks(),
    })
}
