//! The GPU sweep: [`SweepEngine`] trains K models in the same dispatches:
//! the engine's sets and programs ([`GpuSets`], which compiles a model's
//! reference program into launchers batched over the K models) with K
//! optimizers ([`SweepOptimizer`]).
//!
//! Memory layout: parameters, gradients and optimizer state are `[K, P]`
//! (model k's flat buffer at `k·P`); every work tensor of the program is
//! `[K, …]`; the gathered input rows and labels are one copy shared by all.
//! Models are stored grouped by rule variant (so each variant's updates are
//! one dispatch over consecutive models); results come back in the order of
//! the runs given.

use super::{ModelOutcome, SweepEvent, SweepRun, divergence};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuTensor};
use crate::kernels::SweepOptimizer;
use crate::metrics::EpochMetrics;
use crate::model::{Model, Region, parameter_count};
use crate::train::gpu::{GpuSets, Models};
use crate::train::{EvalSet, TrainConfig, TrainData, check_model};
use std::time::Instant;

/// The most models of `model` one sweep can hold on `gpu` with `config`'s
/// batch sizes: the largest per-model buffer (parameters, or a work tensor
/// of the training or evaluation program) times K must fit one storage
/// binding, and K workgroups one grid dimension. Pass the batch sizes the
/// engine really uses ([`SweepEngine::new`] clamps them to the data, as
/// [`super::super::GpuEngine`] does); sizes are multiplied in saturating
/// arithmetic, so an absurd one gives 0 models, never a wrapped product.
pub fn max_models(gpu: &Gpu, model: &dyn Model, config: &TrainConfig) -> (usize, String) {
    let limits = gpu.limits();
    let binding = limits
        .max_storage_buffer_binding_size
        .min(limits.max_buffer_size)
        .max(1);
    let mut largest = (parameter_count(model), "parameters".to_string());
    for program in [
        model.train_program(config.batch.max(1)),
        model.eval_program(config.eval_batch.max(1)),
    ] {
        for t in &program.tensors {
            if matches!(t.region, Region::Work | Region::WorkU32) {
                let len = t.shape.iter().fold(1usize, |a, &d| a.saturating_mul(d));
                if len > largest.0 {
                    largest = (len, format!("activation {}", t.name));
                }
            }
        }
    }
    let per_model = (largest.0.max(1) as u64).saturating_mul(4);
    let by_memory = usize::try_from(binding / per_model).unwrap_or(usize::MAX);
    let by_grid = limits.max_compute_workgroups_per_dimension as usize;
    (
        by_memory.min(by_grid),
        format!(
            "{} of {} floats ({}) per model, and one storage binding holds {}",
            largest.1,
            largest.0,
            crate::error::bytes(per_model),
            crate::error::bytes(binding)
        ),
    )
}

/// K models of one architecture training in the same dispatches.
pub struct SweepEngine<'g> {
    gpu: &'g Gpu,
    k: usize,
    per_model: usize,
    /// `slot[i]` is where run `i` is stored.
    slot: Vec<usize>,
    params: GpuTensor<f32>,
    optimizer: SweepOptimizer,
    loss_total: GpuTensor<f32>,
    correct_total: GpuTensor<u32>,
    sets: GpuSets,
    steps_per_submit: usize,
    dispatches_per_step: f64,
}

impl<'g> SweepEngine<'g> {
    /// Checks that the K models fit ([`max_models`]), uploads the data and
    /// every model's initial parameters, and builds every launcher once.
    pub fn new(
        gpu: &'g Gpu,
        model: &dyn Model,
        data: &TrainData,
        config: &TrainConfig,
        runs: &[SweepRun],
    ) -> Result<Self> {
        config.validate()?;
        check_model(model, data)?;
        // A batch larger than the training set is one full-set batch, and an
        // evaluation batch larger than every evaluated set is that set: size
        // (and bound) the buffers for what runs, as GpuEngine does.
        let eval_rows = data.test.len().max(data.val_idx.len()).max(1);
        let config = &TrainConfig {
            batch: config.batch.min(data.train_idx.len()).max(1),
            eval_batch: config.eval_batch.min(eval_rows),
            ..config.clone()
        };
        let k = runs.len();
        let (most, why) = max_models(gpu, model, config);
        if k > most {
            return Err(Error::TooLarge {
                what: format!(
                    "a sweep of {k} models of {} (at most {most} fit on this device)",
                    model.name()
                ),
                needed: format!("{k} × the largest per-model buffer: {why}"),
                limit: crate::error::bytes(gpu.limits().max_storage_buffer_binding_size),
                limit_name: "max_storage_buffer_binding_size",
            });
        }
        // Stored grouped by rule variant, stably: one update dispatch each.
        let mut stored: Vec<usize> = (0..k).collect();
        stored.sort_by_key(|&i| runs[i].optimizer.name());
        let mut slot = vec![0; k];
        for (s, &i) in stored.iter().enumerate() {
            slot[i] = s;
        }
        let per_model = parameter_count(model);
        let mut init = Vec::with_capacity(k * per_model);
        for &i in &stored {
            init.extend(model.init(runs[i].seed));
        }
        let params = GpuTensor::from_slice(gpu, &[k * per_model], &init)?;
        let grads = GpuTensor::<f32>::zeros(gpu, &[k * per_model])?;
        let configs: Vec<_> = stored.iter().map(|&i| runs[i].optimizer).collect();
        let steps = data.train_idx.len().div_ceil(config.batch);
        let optimizer = SweepOptimizer::new(gpu, &configs, &params, &grads, steps)?;
        let loss_total = GpuTensor::<f32>::zeros(gpu, &[k])?;
        let correct_total = GpuTensor::<u32>::zeros(gpu, &[k])?;

        // A sweep runs the reference program, whatever `config.fused` says.
        let config = &TrainConfig {
            fused: false,
            ..config.clone()
        };
        let models = Models {
            params: &params,
            grads: &grads,
            loss_total: &loss_total,
            correct_total: &correct_total,
            models: k,
            per_model,
            update: None,
        };
        let sets = GpuSets::new(gpu, model, data, config, &models)?;
        let dispatches_per_step = (sets.dispatches_per_step() + optimizer.dispatches()) as f64;
        Ok(SweepEngine {
            gpu,
            k,
            per_model,
            slot,
            params,
            optimizer,
            loss_total,
            correct_total,
            sets,
            steps_per_submit: config.steps_per_submit,
            dispatches_per_step,
        })
    }

    /// Dispatches per training step, for all K models together.
    pub fn dispatches_per_step(&self) -> f64 {
        self.dispatches_per_step
    }

    /// One epoch over `order` for every model: per-model (mean loss,
    /// accuracy), in the order of the runs.
    pub fn train_epoch(&mut self, order: &[u32]) -> Result<Vec<(f64, f64)>> {
        self.sets.write_train_order(self.gpu, order)?;
        self.optimizer.plan(self.gpu, self.sets.train_steps())?;
        self.pass(None)
    }

    /// Per-model (mean loss, accuracy) on a whole set, in the order of the runs.
    pub fn evaluate(&mut self, set: EvalSet) -> Result<Vec<(f64, f64)>> {
        self.pass(Some(set))
    }

    /// Lets run `run`'s plateau schedule see its epoch metric.
    pub fn end_epoch(&mut self, run: usize, metric: f32) -> Result<()> {
        self.optimizer.end_epoch(self.slot[run], metric).map(|_| ())
    }

    /// Run `run`'s parameters, read back.
    pub fn params(&self, run: usize) -> Result<Vec<f32>> {
        let at = self.slot[run] * self.per_model;
        Ok(self.params.read(self.gpu)?[at..at + self.per_model].to_vec())
    }

    /// Every epoch of `config` for every model, as [`super::train_alone`]
    /// trains one: the shared order, validation after each epoch, a
    /// diverged model reported (and its plateau schedule left alone) from
    /// the epoch it diverged in on, the test set at the end.
    pub fn run(
        &mut self,
        data: &TrainData,
        config: &TrainConfig,
        on_event: &mut dyn FnMut(SweepEvent<'_>),
    ) -> Result<Vec<ModelOutcome>> {
        let k = self.k;
        let mut histories: Vec<Vec<EpochMetrics>> = vec![Vec::new(); k];
        let mut diverged = vec![None; k];
        for epoch in 0..config.epochs {
            let order = data.epoch_order(config.seed, epoch);
            let start = Instant::now();
            let train = self.train_epoch(&order)?;
            let seconds = start.elapsed().as_secs_f64();
            let val = if data.val_idx.is_empty() {
                None
            } else {
                Some(self.evaluate(EvalSet::Validation)?)
            };
            let mut row = vec![None; k];
            for m in 0..k {
                if diverged[m].is_some() {
                    continue;
                }
                let (train_loss, train_accuracy) = train[m];
                let metrics = EpochMetrics {
                    epoch: epoch + 1,
                    train_loss,
                    train_accuracy,
                    val_loss: val.as_ref().map(|v| v[m].0),
                    val_accuracy: val.as_ref().map(|v| v[m].1),
                    seconds,
                    samples_per_sec: order.len() as f64 / seconds.max(1e-12),
                };
                diverged[m] = divergence(epoch + 1, train_loss, metrics.val_loss);
                if diverged[m].is_none() {
                    self.end_epoch(m, metrics.val_loss.unwrap_or(train_loss) as f32)?;
                }
                histories[m].push(metrics.clone());
                row[m] = Some(metrics);
            }
            on_event(SweepEvent::Epoch {
                model: None,
                epoch: epoch + 1,
                metrics: &row,
            });
        }
        let test = self.evaluate(EvalSet::Test)?;
        let all = self.params.read(self.gpu)?;
        let mut out = Vec::with_capacity(k);
        for (m, history) in histories.into_iter().enumerate() {
            let (loss, accuracy) = test[m];
            let mut d = diverged[m];
            let mut t = None;
            if d.is_none() {
                if loss.is_finite() {
                    t = Some((loss, accuracy));
                } else {
                    d = Some(super::Divergence {
                        epoch: config.epochs,
                        what: "test loss",
                        value: loss,
                    });
                }
            }
            let at = self.slot[m] * self.per_model;
            out.push(ModelOutcome {
                history,
                diverged: d,
                test: t,
                params: all[at..at + self.per_model].to_vec(),
            });
        }
        Ok(out)
    }

    /// Records every step of a set for all models, `steps_per_submit` steps
    /// per submit, and reads the K totals back once.
    fn pass(&mut self, which: Option<EvalSet>) -> Result<Vec<(f64, f64)>> {
        let gpu = self.gpu;
        self.loss_total.fill(gpu, 0.0)?;
        self.correct_total.fill(gpu, 0)?;
        let optimizer = &self.optimizer;
        self.sets.pass(
            gpu,
            which,
            self.steps_per_submit,
            |pass, s| optimizer.record_planned(pass, s),
            &mut |_, _| {},
        )?;
        let loss = self.loss_total.read(gpu)?;
        let correct = self.correct_total.read(gpu)?;
        let n = self.sets.len(which).max(1) as f64;
        Ok(self
            .slot
            .iter()
            .map(|&s| (loss[s] as f64 / n, correct[s] as f64 / n))
            .collect())
    }
}
