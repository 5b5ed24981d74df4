//! Training: epochs of minibatches on the GPU or on the CPU, with the same
//! model program, the same data order and the same optimizer formulas.
//!
//! [`fit`] drives either [`GpuEngine`] or [`CpuEngine`] through the
//! [`Engine`] trait. The GPU engine keeps the dataset resident, records many
//! steps per command encoder (gather → forward → loss → backward → update,
//! [`GpuEngine::dispatches_per_step`] dispatches each) and reads loss and
//! accuracy back once per epoch.

mod cpu;
mod gpu;
mod gpu_program;
#[cfg(not(target_arch = "wasm32"))]
mod gradient;
#[cfg(not(target_arch = "wasm32"))]
mod resume;
#[cfg(not(target_arch = "wasm32"))]
mod step_choice;
#[cfg(not(target_arch = "wasm32"))]
pub mod sweep;

pub use cpu::{CpuEngine, predict};
pub use gpu::GpuEngine;
// The lab's strategies run the linear model's program through the same runners.
#[cfg(all(feature = "lab", not(target_arch = "wasm32")))]
pub(crate) use cpu::CpuProgram;
#[cfg(all(feature = "lab", not(target_arch = "wasm32")))]
pub(crate) use gpu_program::{Bindings, GpuProgram};
#[cfg(not(target_arch = "wasm32"))]
pub use gradient::{Gradient, gradient_cpu, gradient_gpu};
#[cfg(not(target_arch = "wasm32"))]
pub use resume::{
    MAX_RECORD_BYTES, Resume, load_checkpoint, parse_recorded, read_recorded, recorded_kernels,
    save_checkpoint,
};
#[cfg(not(target_arch = "wasm32"))]
pub use step_choice::{choose_step, step_key, step_name, with_step};

use crate::data::Dataset;
use crate::error::{Error, Result, positive};
use crate::kernels::GatherOptions;
use crate::metrics::{EpochMetrics, History};
use crate::model::Model;
use crate::optim::{OptimizerConfig, StepScalars};
use rand::{SeedableRng, seq::SliceRandom};
use web_time::Instant;

/// How to train.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch: usize,
    /// Seeds the parameter initialisation and every epoch's shuffle.
    pub seed: u64,
    pub optimizer: OptimizerConfig,
    /// Examples held out of the training set for validation (0: none).
    pub validation: usize,
    /// Rows per evaluation batch.
    pub eval_batch: usize,
    /// Pixel normalisation `(x/255 − mean)/std`.
    pub mean: f32,
    pub std: f32,
    /// GPU steps recorded per command encoder (one submit each).
    pub steps_per_submit: usize,
    /// Run the models' fused programs ([`Model::fused_train_program`]) and
    /// the optimizer with host-planned step scalars: fewer dispatches per
    /// step, the same arithmetic. `false` runs the reference kernels, one
    /// per unfused operation (to compare the two on a real GPU).
    pub fused: bool,
    /// Which fused step `fused` runs: the per-layer fused kernels of issue
    /// 13 ([`FusedStep::Layers`], the default: on lavapipe it is still the
    /// faster, and the row block is not yet measured on hardware) or the
    /// row block of issue 23 ([`FusedStep::Rows`]), fewer dispatches.
    pub fused_step: FusedStep,
}

/// The two fused training steps (see [`TrainConfig::fused_step`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FusedStep {
    /// [`Model::row_train_program`]: the first layer, one row block
    /// (forward, loss, every delta) and the weight gradients, which apply
    /// the optimizer's update themselves where the device binds the buffers
    /// ([`crate::kernels::weight_step::Update`]): three dispatches.
    Rows,
    /// [`FusedStep::Rows`] with the update a dispatch of its own (four),
    /// kept to measure what fusing the update gains.
    RowsUpdateApart,
    /// [`Model::fused_train_program`]: a fused kernel per layer.
    #[default]
    Layers,
}

/// Which of a model's training programs a step runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepProgram {
    /// [`Model::train_program`]: one op per unfused kernel.
    Reference,
    /// [`Model::fused_train_program`].
    Layers,
    /// [`Model::row_train_program`].
    Rows,
}

impl StepProgram {
    /// The program `config` trains with.
    pub fn of(config: &TrainConfig) -> Self {
        match (config.fused, config.fused_step) {
            (false, _) => StepProgram::Reference,
            (true, FusedStep::Layers) => StepProgram::Layers,
            (true, FusedStep::Rows | FusedStep::RowsUpdateApart) => StepProgram::Rows,
        }
    }

    /// `model`'s training program for a batch of `rows`.
    pub fn program(self, model: &dyn Model, rows: usize) -> crate::model::Program {
        match self {
            StepProgram::Reference => model.train_program(rows),
            StepProgram::Layers => model.fused_train_program(rows),
            StepProgram::Rows => model.row_train_program(rows),
        }
    }
}

/// `false`: the reference program; `true`: the per-layer fused one.
impl From<bool> for StepProgram {
    fn from(fused: bool) -> Self {
        if fused {
            StepProgram::Layers
        } else {
            StepProgram::Reference
        }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 10,
            batch: 128,
            seed: 0,
            optimizer: OptimizerConfig::adam(),
            validation: 0,
            eval_batch: 1000,
            mean: 0.0,
            std: 1.0,
            steps_per_submit: 64,
            fused: true,
            fused_step: FusedStep::Layers,
        }
    }
}

impl TrainConfig {
    /// Checks everything that does not depend on the data.
    pub fn validate(&self) -> Result<()> {
        positive("epochs", self.epochs)?;
        positive("batch", self.batch)?;
        positive("eval_batch", self.eval_batch)?;
        positive("steps_per_submit", self.steps_per_submit)?;
        self.optimizer.validate()?;
        self.gather_options(false).affine()?;
        Ok(())
    }

    pub(crate) fn gather_options(&self, append_one: bool) -> GatherOptions {
        GatherOptions {
            mean: self.mean,
            std: self.std,
            append_one,
        }
    }
}

/// The training and test sets, and which training examples are held out.
pub struct TrainData {
    pub train: Dataset,
    pub test: Dataset,
    /// Indices into `train` used for training.
    pub train_idx: Vec<u32>,
    /// Indices into `train` held out for validation.
    pub val_idx: Vec<u32>,
}

impl TrainData {
    /// Holds out `validation` examples of `train`, chosen by `seed`.
    pub fn new(train: Dataset, test: Dataset, validation: usize, seed: u64) -> Result<Self> {
        if train.dim() != test.dim() || train.classes != test.classes {
            return Err(Error::shape(
                "TrainData",
                format!(
                    "train ({} pixels, {} classes) and test ({} pixels, {} classes) differ",
                    train.dim(),
                    train.classes,
                    test.dim(),
                    test.classes
                ),
            ));
        }
        if validation >= train.len() {
            return Err(Error::InvalidArgument {
                name: "validation",
                msg: format!(
                    "{validation} would leave none of the {} training examples",
                    train.len()
                ),
            });
        }
        let mut all: Vec<u32> = (0..train.len() as u32).collect();
        if validation > 0 {
            all.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed ^ 0x5eed_5b11));
        }
        let val_idx = all.split_off(train.len() - validation);
        let mut train_idx = all;
        train_idx.sort_unstable();
        Ok(TrainData {
            train,
            test,
            train_idx,
            val_idx,
        })
    }

    /// The training order of `epoch`: the training indices shuffled by a
    /// generator seeded from (`seed`, `epoch`), the same on every device.
    pub fn epoch_order(&self, seed: u64, epoch: usize) -> Vec<u32> {
        let mut order = self.train_idx.clone();
        let mut rng = rand::rngs::StdRng::seed_from_u64(
            seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ epoch as u64,
        );
        order.shuffle(&mut rng);
        order
    }
}

/// Which examples to evaluate on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvalSet {
    Validation,
    Test,
}

/// Parameters and optimizer state: everything a checkpoint holds.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainState {
    pub params: Vec<f32>,
    pub optimizer_state: Vec<Vec<f32>>,
    pub step: StepScalars,
}

impl TrainState {
    /// Checks that the state is for a model with `params` parameters, before
    /// an engine restores it.
    pub(crate) fn check_params(&self, params: usize) -> Result<()> {
        if self.params.len() == params {
            return Ok(());
        }
        Err(Error::shape(
            "restore",
            format!(
                "{} parameters given, the model has {params}",
                self.params.len()
            ),
        ))
    }
}

/// What [`fit`] needs from a device.
pub trait Engine {
    /// "gpu" or "cpu".
    fn device(&self) -> &'static str;
    /// The adapter, or the CPU's description.
    fn adapter(&self) -> String;
    /// One epoch over `order` (indices into the training set). Calls
    /// `progress(steps_done, steps_total)` as work completes. Returns the
    /// mean loss and the accuracy over the epoch's batches.
    fn train_epoch(
        &mut self,
        order: &[u32],
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<(f64, f64)>;
    /// Mean loss and accuracy on a whole set, in evaluation batches.
    fn evaluate(&mut self, set: EvalSet) -> Result<(f64, f64)>;
    /// Lets the plateau schedule see the epoch's metric (lower is better).
    fn end_epoch(&mut self, metric: f32) -> Result<()>;
    /// Parameters and optimizer state, read back.
    fn state(&mut self) -> Result<TrainState>;
    /// Replaces parameters and optimizer state (resuming from a checkpoint).
    fn restore(&mut self, state: &TrainState) -> Result<()>;
    /// Dispatches recorded per training step (GPU only).
    fn dispatches_per_step(&self) -> Option<f64> {
        None
    }
    /// The kernel versions the autotuner chose (GPU only; empty when
    /// tuning is off).
    fn kernel_choices(&self) -> std::collections::BTreeMap<String, String> {
        Default::default()
    }
    /// Blocking waits on the device in the last epoch (GPU only).
    fn host_syncs_last_epoch(&self) -> Option<usize> {
        None
    }
}

/// The outcome of [`fit`].
#[derive(Clone, Debug)]
pub struct FitResult {
    pub history: History,
    pub test_loss: f64,
    pub test_accuracy: f64,
}

/// What [`fit`] reports while it runs.
pub enum Event<'a> {
    /// Steps done out of the epoch's total.
    Step {
        epoch: usize,
        done: usize,
        total: usize,
    },
    /// An epoch finished.
    Epoch(&'a EpochMetrics),
}

/// Trains for `config.epochs` epochs starting at `first_epoch` (0 unless
/// resuming), evaluates on the validation set after each epoch when there is
/// one, and on the test set at the end.
///
/// A training, validation or test loss that is NaN or infinite stops the run
/// with [`Error::Diverged`] (after the epoch's [`Event::Epoch`], so its line
/// can still be shown); the engine keeps the diverged state, which a caller
/// may still save on purpose. `first_epoch >= config.epochs` is an error:
/// there is nothing to train.
pub fn fit(
    engine: &mut dyn Engine,
    data: &TrainData,
    config: &TrainConfig,
    first_epoch: usize,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<FitResult> {
    config.validate()?;
    if first_epoch >= config.epochs {
        return Err(nothing_to_do(first_epoch, config.epochs));
    }
    let device = engine.device();
    let diverged = |epoch: usize, what: &'static str, value: f64| Error::Diverged {
        device,
        epoch,
        what,
        value,
        advice: crate::error::divergence_advice(
            config.optimizer.lr,
            config.optimizer.weight_decay(),
        ),
    };
    let mut history = History::new();
    for epoch in first_epoch..config.epochs {
        let order = data.epoch_order(config.seed, epoch);
        let m = train_and_validate(engine, data, epoch, &order, &mut |done, total| {
            on_event(Event::Step { epoch, done, total })
        })?;
        let (train_loss, val_loss) = (m.train_loss, m.val_loss);
        on_event(Event::Epoch(&m));
        // The loss read back once per epoch (no extra sync) tells whether
        // the run diverged; stop before the schedule or a save sees it.
        if !train_loss.is_finite() {
            return Err(diverged(epoch + 1, "training loss", train_loss));
        }
        if let Some(v) = val_loss.filter(|v| !v.is_finite()) {
            return Err(diverged(epoch + 1, "validation loss", v));
        }
        engine.end_epoch(val_loss.unwrap_or(train_loss) as f32)?;
        history.push(m);
    }
    let (test_loss, test_accuracy) = engine.evaluate(EvalSet::Test)?;
    if !test_loss.is_finite() {
        return Err(diverged(config.epochs, "test loss", test_loss));
    }
    Ok(FitResult {
        history,
        test_loss,
        test_accuracy,
    })
}

/// Epoch `epoch` (0-based) of `engine` on `order`, then the validation
/// set if the data has one: the epoch's metrics.
pub(crate) fn train_and_validate(
    engine: &mut dyn Engine,
    data: &TrainData,
    epoch: usize,
    order: &[u32],
    progress: &mut dyn FnMut(usize, usize),
) -> Result<EpochMetrics> {
    let start = Instant::now();
    let (train_loss, train_accuracy) = engine.train_epoch(order, progress)?;
    let seconds = start.elapsed().as_secs_f64();
    let (val_loss, val_accuracy) = if data.val_idx.is_empty() {
        (None, None)
    } else {
        let (l, a) = engine.evaluate(EvalSet::Validation)?;
        (Some(l), Some(a))
    };
    Ok(EpochMetrics {
        epoch: epoch + 1,
        train_loss,
        train_accuracy,
        val_loss,
        val_accuracy,
        seconds,
        samples_per_sec: order.len() as f64 / seconds.max(1e-12),
    })
}

/// The error for a resumed run that has no epoch left to train.
pub(crate) fn nothing_to_do(epochs_done: usize, epochs: usize) -> Error {
    Error::InvalidArgument {
        name: "epochs",
        msg: format!(
            "the checkpoint has already trained {epochs_done} epochs and this run asks for \
             {epochs} in all: nothing to do; ask for more than {epochs_done} (--epochs) to \
             continue training"
        ),
    }
}

pub(crate) fn eval_order(data: &TrainData, set: EvalSet) -> Vec<u32> {
    match set {
        EvalSet::Validation => data.val_idx.clone(),
        EvalSet::Test => (0..data.test.len() as u32).collect(),
    }
}

pub(crate) fn check_model(model: &dyn Model, data: &TrainData) -> Result<()> {
    let pixels = model.input_dim() - usize::from(model.appends_one());
    if pixels != data.train.dim() || model.classes() != data.train.classes {
        return Err(Error::shape(
            "train",
            format!(
                "model {} expects {pixels} pixels and {} classes; the data has {} pixels and {} classes",
                model.name(),
                model.classes(),
                data.train.dim(),
                data.train.classes
            ),
        ));
    }
    Ok(())
}

/// Runs whole-batch programs of the full batch size and of the short last
/// batch, built once each.
pub(crate) fn batch_sizes(n: usize, batch: usize) -> Vec<usize> {
    let mut sizes = vec![batch.min(n)];
    if n > batch && !n.is_multiple_of(batch) {
        sizes.push(n % batch);
    }
    sizes
}
