//! Many configurations of one model trained together: the course notebook's
//! learning-rate sweep and optimizer comparison.
//!
//! A sweep is K [`SweepRun`]s (learning rate, update rule and its
//! hyperparameters, schedule, initial-weight seed) of one [`Model`] over one
//! [`TrainData`], all seeing the same minibatches in the same order (the
//! order of [`TrainConfig::seed`], so the comparison is fair).
//!
//! - On the GPU ([`sweep_gpu`], [`gpu::SweepEngine`]) the K models train in
//!   the same dispatches: every product of the model's reference program is
//!   one batched matmul over the K models (`Matmul::batched`), softmax
//!   cross-entropy, the column sums and the loss/accuracy totals run with
//!   the models along the grid's z, the minibatch is gathered once for all,
//!   and the K optimizer updates are one dispatch per rule variant present
//!   (`SweepOptimizer`, per-model hyperparameters in a storage buffer).
//!   Per-model loss and accuracy totals are read back once per epoch.
//! - On the CPU ([`sweep_cpu`]) the same K configurations run one after
//!   another with the existing [`CpuEngine`].
//!
//! Each model of a GPU sweep computes the bits of that configuration trained
//! alone by [`GpuEngine`] with the reference program (`TrainConfig::fused`
//! off) and the same order ([`train_alone`]): every batched kernel runs the
//! version the unbatched call would, each model's work is its own batch
//! element, and nothing is summed across models. So a model that diverges
//! (NaN or inf) changes nothing for the others; it is reported with the
//! epoch it diverged in, and its later epochs are not reported.
//!
//! # How K scales
//!
//! Per model the GPU holds its parameters, gradients and optimizer state
//! (P floats each: 118,282 for the MLP 784-128-128-10) and its activations
//! (for the MLP, about `batch × 790` floats for training and
//! `eval_batch × 270` for evaluation); the data and the gathered minibatch
//! are shared. Every per-model buffer of the K models is one storage
//! binding, so K is bounded by the device's `max_storage_buffer_binding_size`
//! over the largest per-model buffer (128 MiB on lavapipe: 262 MLPs, the
//! largest buffer being the evaluation batch's 1,000 × 128 activations), and by
//! `max_compute_workgroups_per_dimension` (the models' grid axis).
//! [`max_models`] computes the bound; past it a sweep fails with
//! [`Error::TooLarge`] before anything is allocated.

pub mod gpu;

pub use gpu::{SweepEngine, max_models};

use super::{CpuEngine, Engine, EvalSet, GpuEngine, TrainConfig, TrainData};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::metrics::EpochMetrics;
use crate::model::Model;
use crate::optim::OptimizerConfig;
use std::time::Instant;

/// One configuration of a sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepRun {
    /// Its name in tables and plots ("sgd lr 0.1 seed 0").
    pub label: String,
    pub optimizer: OptimizerConfig,
    /// Seeds the initial parameters (not the minibatch order, which the
    /// sweep's [`TrainConfig::seed`] gives to every model).
    pub seed: u64,
}

impl SweepRun {
    /// A run labelled `"<rule> lr <lr>[ seed <seed>]"`.
    pub fn new(optimizer: OptimizerConfig, seed: u64, with_seed: bool) -> Self {
        let mut label = format!("{} lr {}", optimizer.name(), optimizer.lr);
        if with_seed {
            label.push_str(&format!(" seed {seed}"));
        }
        SweepRun {
            label,
            optimizer,
            seed,
        }
    }

    /// The [`TrainConfig`] of this run trained alone (its optimizer, its
    /// seed), on `base`'s data settings.
    pub fn config(&self, base: &TrainConfig) -> TrainConfig {
        TrainConfig {
            optimizer: self.optimizer,
            seed: self.seed,
            ..base.clone()
        }
    }
}

/// The most runs one sweep may hold: the models' grid axis is one dispatch
/// dimension, which no device makes longer than 65,535 workgroups (and the
/// CPU path, one model after another, gains nothing from more). Checked
/// before the run list is built, so an absurd `--seeds` is an error, not a
/// list that grows until memory runs out.
pub const MAX_RUNS: usize = 65_535;

/// Every configuration of `configs` repeated over `seeds` initial-weight
/// seeds (`first_seed`, `first_seed + 1`, …, wrapping past `u64::MAX`),
/// configurations outermost. The count is checked, in checked arithmetic,
/// against [`MAX_RUNS`] before anything is allocated.
pub fn runs_over_seeds(
    configs: &[OptimizerConfig],
    seeds: usize,
    first_seed: u64,
) -> Result<Vec<SweepRun>> {
    crate::error::positive("seeds", seeds)?;
    let count = configs.len().checked_mul(seeds).filter(|&n| n <= MAX_RUNS);
    let Some(count) = count else {
        return Err(Error::InvalidArgument {
            name: "seeds",
            msg: format!(
                "{} configurations × {seeds} seeds is more than the {MAX_RUNS} models a sweep may hold",
                configs.len()
            ),
        });
    };
    let mut out = Vec::with_capacity(count);
    for cfg in configs {
        for s in 0..seeds as u64 {
            out.push(SweepRun::new(*cfg, first_seed.wrapping_add(s), seeds > 1));
        }
    }
    Ok(out)
}

/// Where and why a model diverged.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Divergence {
    /// 1-based epoch (the last epoch for the test loss).
    pub epoch: usize,
    /// "training loss", "validation loss" or "test loss".
    pub what: &'static str,
    pub value: f64,
}

/// One model's outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelOutcome {
    /// Epochs trained, up to and including the one it diverged in.
    pub history: Vec<EpochMetrics>,
    pub diverged: Option<Divergence>,
    /// Test loss and accuracy (None when it diverged before the test).
    pub test: Option<(f64, f64)>,
    /// Final parameters, flat.
    pub params: Vec<f32>,
}

/// A whole sweep's outcome, models in the order of the runs given.
#[derive(Clone, Debug)]
pub struct SweepResult {
    pub runs: Vec<SweepRun>,
    pub models: Vec<ModelOutcome>,
    /// "gpu" or "cpu".
    pub device: &'static str,
    pub adapter: String,
    /// Wall-clock seconds of training and evaluation (setup excluded).
    pub seconds: f64,
    /// Wall-clock seconds of the training epochs alone (no evaluation): the
    /// K models' shared epochs on the GPU, the sum of every run's on the CPU.
    pub train_seconds: f64,
    /// Training samples per epoch (per model).
    pub samples_per_epoch: usize,
    /// Dispatches recorded per training step for all K models (GPU).
    pub dispatches_per_step: Option<f64>,
}

impl SweepResult {
    /// Models × training samples per second of training (epochs trained by
    /// all models × samples per epoch, over [`SweepResult::train_seconds`]).
    pub fn model_samples_per_sec(&self) -> f64 {
        let epochs: usize = self.models.iter().map(|m| m.history.len()).sum();
        (epochs * self.samples_per_epoch) as f64 / self.train_seconds.max(1e-12)
    }

    /// The training seconds of runs trained one after another.
    pub fn sequential_train_seconds(models: &[ModelOutcome]) -> f64 {
        models
            .iter()
            .flat_map(|m| &m.history)
            .map(|e| e.seconds)
            .sum()
    }
}

/// What a sweep reports as it runs.
pub enum SweepEvent<'a> {
    /// Epoch `epoch` (1-based) of every model still training (GPU), or of
    /// model `model` (CPU, one model after another).
    Epoch {
        model: Option<usize>,
        epoch: usize,
        metrics: &'a [Option<EpochMetrics>],
    },
}

fn check_runs(runs: &[SweepRun], config: &TrainConfig) -> Result<()> {
    config.validate()?;
    if runs.is_empty() {
        return Err(Error::InvalidArgument {
            name: "sweep",
            msg: "needs at least one configuration".into(),
        });
    }
    crate::error::at_most("sweep runs", runs.len(), MAX_RUNS)?;
    for r in runs {
        r.optimizer.validate()?;
    }
    Ok(())
}

/// Trains one configuration alone, as a sweep's model trains: `config`'s
/// optimizer, epochs and minibatch order (`config.seed`, unless
/// `order_seed` differs) on an engine built from the run's own seed. This
/// is [`super::fit`]'s loop, except that a divergence ends the run with an
/// outcome instead of an error. The reference every sweep model is
/// compared with.
pub fn train_alone(
    engine: &mut dyn Engine,
    data: &TrainData,
    config: &TrainConfig,
    order_seed: u64,
) -> Result<ModelOutcome> {
    config.validate()?;
    let mut history = Vec::new();
    let mut diverged = None;
    for epoch in 0..config.epochs {
        let order = data.epoch_order(order_seed, epoch);
        let m = super::train_and_validate(engine, data, epoch, &order, &mut |_, _| {})?;
        let (train_loss, val_loss) = (m.train_loss, m.val_loss);
        history.push(m);
        diverged = divergence(epoch + 1, train_loss, val_loss);
        if diverged.is_some() {
            break;
        }
        engine.end_epoch(val_loss.unwrap_or(train_loss) as f32)?;
    }
    let mut test = None;
    if diverged.is_none() {
        let (loss, accuracy) = engine.evaluate(EvalSet::Test)?;
        if loss.is_finite() {
            test = Some((loss, accuracy));
        } else {
            diverged = Some(Divergence {
                epoch: config.epochs,
                what: "test loss",
                value: loss,
            });
        }
    }
    Ok(ModelOutcome {
        history,
        diverged,
        test,
        params: engine.state()?.params,
    })
}

/// The epoch's divergence, if its training or validation loss is not finite.
pub(crate) fn divergence(epoch: usize, train: f64, val: Option<f64>) -> Option<Divergence> {
    if !train.is_finite() {
        return Some(Divergence {
            epoch,
            what: "training loss",
            value: train,
        });
    }
    val.filter(|v| !v.is_finite()).map(|value| Divergence {
        epoch,
        what: "validation loss",
        value,
    })
}

/// The CPU path: the K configurations one after another, each with
/// [`CpuEngine`] and [`train_alone`].
pub fn sweep_cpu(
    model: &dyn Model,
    data: &TrainData,
    config: &TrainConfig,
    runs: &[SweepRun],
    on_event: &mut dyn FnMut(SweepEvent<'_>),
) -> Result<SweepResult> {
    check_runs(runs, config)?;
    let mut models = Vec::with_capacity(runs.len());
    let mut seconds = 0.0;
    let mut adapter = String::new();
    for (k, run) in runs.iter().enumerate() {
        let mut engine = CpuEngine::new(model, data, &run.config(config))?;
        adapter = engine.adapter();
        let start = Instant::now();
        let outcome = train_alone(&mut engine, data, &run.config(config), config.seed)?;
        seconds += start.elapsed().as_secs_f64();
        for m in &outcome.history {
            on_event(SweepEvent::Epoch {
                model: Some(k),
                epoch: m.epoch,
                metrics: std::slice::from_ref(&Some(m.clone())),
            });
        }
        models.push(outcome);
    }
    Ok(SweepResult {
        runs: runs.to_vec(),
        train_seconds: SweepResult::sequential_train_seconds(&models),
        models,
        device: "cpu",
        adapter,
        seconds,
        samples_per_epoch: data.train_idx.len(),
        dispatches_per_step: None,
    })
}

/// The GPU path: the K configurations in the same dispatches
/// ([`SweepEngine`]).
pub fn sweep_gpu(
    gpu: &Gpu,
    model: &dyn Model,
    data: &TrainData,
    config: &TrainConfig,
    runs: &[SweepRun],
    on_event: &mut dyn FnMut(SweepEvent<'_>),
) -> Result<SweepResult> {
    check_runs(runs, config)?;
    let mut engine = SweepEngine::new(gpu, model, data, config, runs)?;
    let start = Instant::now();
    let models = engine.run(data, config, on_event)?;
    // Every model shares each epoch's time; a diverged one stops counting.
    let train_seconds = models
        .iter()
        .map(|m| m.history.iter().map(|e| e.seconds).sum::<f64>())
        .fold(0.0, f64::max);
    Ok(SweepResult {
        train_seconds,
        runs: runs.to_vec(),
        models,
        device: "gpu",
        adapter: gpu.summary().to_string(),
        seconds: start.elapsed().as_secs_f64(),
        samples_per_epoch: data.train_idx.len(),
        dispatches_per_step: Some(engine.dispatches_per_step()),
    })
}

/// The GPU reference for one configuration: [`GpuEngine`] with the
/// reference program, trained alone by [`train_alone`] in the sweep's order.
pub fn train_alone_gpu(
    gpu: &Gpu,
    model: &dyn Model,
    data: &TrainData,
    config: &TrainConfig,
    run: &SweepRun,
) -> Result<ModelOutcome> {
    let solo = TrainConfig {
        fused: false,
        ..run.config(config)
    };
    let mut engine = GpuEngine::new(gpu, model, data, &solo)?;
    train_alone(&mut engine, data, &solo, config.seed)
}
