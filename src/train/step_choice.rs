//! `--fused auto`: which training step a model runs on this device, chosen
//! by measurement the first time (issue 23) and recorded with the kernels'
//! choices ([`crate::gpu::TuneRecord`]: the run's JSON, the checkpoint, the
//! autotune cache), not guessed from "software or hardware adapter".
//!
//! The candidates are [`crate::tune::TRAIN_STEPS`]: the reference program
//! (one kernel per operation), the per-layer fused step and the row-block
//! step (three dispatches where the device binds the update's buffers).
//! Each is timed on a few batches of synthetic data of the run's shapes;
//! the fastest median epoch wins. With tuning off (the library's default,
//! and the tests') the fixed rule decides: [`GpuEngine::fused_by_default`].

use super::{Engine, FusedStep, GpuEngine, TrainConfig, TrainData};
use crate::data::synthetic;
use crate::error::Result;
use crate::gpu::{Gpu, TuneMode};
use crate::model::Model;
use crate::tune::TRAIN_STEPS;

/// Batches a candidate trains per timed epoch.
const STEPS: usize = 16;
/// Timed epochs per candidate, after one untimed (pipelines, tuning).
const RUNS: usize = 5;

/// Bytes of synthetic images the timing may allocate.
const MAX_BYTES: usize = 64 << 20;

/// The batch a run of `config` on `train_len` examples really steps with:
/// the engines clamp it to the training set.
fn batch_of(config: &TrainConfig, train_len: usize) -> usize {
    config.batch.min(train_len).max(1)
}

/// The tuner's key of `config`'s step for `model` on `train_len` examples.
pub fn step_key(model: &dyn Model, config: &TrainConfig, train_len: usize) -> String {
    format!(
        "train_step {} batch {} {}",
        model.name(),
        batch_of(config, train_len),
        config.optimizer.name()
    )
}

/// `config` with [`TrainConfig::fused`] and [`TrainConfig::fused_step`] set
/// to the step recorded for this device (pinned, cached), else measured now
/// where tuning is on, else the fixed rule. `train_len`: the examples the
/// run trains on (its batch is at most that).
pub fn choose_step(
    gpu: &Gpu,
    model: &dyn Model,
    config: &TrainConfig,
    train_len: usize,
) -> TrainConfig {
    let key = step_key(model, config, train_len);
    let fixed = if GpuEngine::fused_by_default(gpu) {
        "layers"
    } else {
        "reference"
    };
    let known = |n: &str| TRAIN_STEPS.contains(&n);
    let record = gpu.tune_record();
    // Recorded or cached: no measuring. The record's lock is held while it
    // decides, and timing a step builds engines that tune their kernels
    // through the same record: so the timing happens between two calls.
    let mut chosen = record.decide(key.clone(), fixed, &known, &|_| Ok(()), None);
    if chosen.is_none() && record.mode() != TuneMode::Off && !cfg!(target_arch = "wasm32") {
        let name = fastest(gpu, model, config, train_len).unwrap_or_else(|e| {
            eprintln!("wgpu-train: warning: timing the training steps failed ({e}); using {fixed}");
            fixed
        });
        chosen = record.decide(key, fixed, &known, &|_| Ok(()), Some(&mut || Ok(name)));
    }
    with_step(config, chosen.as_deref().unwrap_or(fixed))
}

/// A step's name in reports and in the tuner's record: `reference`
/// (`None`), `layers` (the per-layer fused kernels), `rows` (the row block,
/// the update in the weight tiles), `rows-apart` (the row block, the update
/// its own dispatch). [`with_step`] reads the first three back.
pub fn step_name(fused_step: Option<FusedStep>) -> &'static str {
    match fused_step {
        None => "reference",
        Some(FusedStep::Layers) => "layers",
        Some(FusedStep::Rows) => "rows",
        Some(FusedStep::RowsUpdateApart) => "rows-apart",
    }
}

/// `config` running the step named `name` ([`step_name`]'s names; any
/// other is the reference program).
pub fn with_step(config: &TrainConfig, name: &str) -> TrainConfig {
    let step = [
        FusedStep::Layers,
        FusedStep::Rows,
        FusedStep::RowsUpdateApart,
    ]
    .into_iter()
    .find(|&s| step_name(Some(s)) == name);
    TrainConfig {
        fused: step.is_some(),
        fused_step: step.unwrap_or(config.fused_step),
        ..config.clone()
    }
}

/// Times every candidate step; the name of the fastest.
fn fastest(
    gpu: &Gpu,
    model: &dyn Model,
    config: &TrainConfig,
    train_len: usize,
) -> Result<&'static str> {
    let dim = model.input_dim() - usize::from(model.appends_one());
    let batch = batch_of(config, train_len);
    // Fewer steps for a big batch, at least one: a bounded allocation.
    let steps = (MAX_BYTES / batch.saturating_mul(dim).max(1)).clamp(1, STEPS);
    let train = synthetic::images(steps * batch, [1, 1, dim], model.classes(), 51)?;
    let test = synthetic::images(batch, [1, 1, dim], model.classes(), 52)?;
    let data = TrainData::new(train, test, 0, 0)?;
    let order = data.epoch_order(0, 0);
    let mut best: Option<(f64, &'static str)> = None;
    let mut report = Vec::with_capacity(TRAIN_STEPS.len());
    for name in TRAIN_STEPS {
        let candidate = TrainConfig {
            epochs: 1,
            batch,
            validation: 0,
            ..with_step(config, name)
        };
        let mut engine = GpuEngine::new(gpu, model, &data, &candidate)?;
        let mut times = Vec::with_capacity(RUNS);
        for run in 0..=RUNS {
            let start = std::time::Instant::now();
            engine.train_epoch(&order, &mut |_, _| {})?;
            if run > 0 {
                times.push(start.elapsed().as_secs_f64());
            }
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        report.push(format!("{name} {:.3} ms", median * 1e3 / steps as f64));
        if best.is_none_or(|(t, _)| median < t) {
            best = Some((median, name));
        }
    }
    let chosen = best.map_or("reference", |(_, n)| n);
    // Once per (device, model, batch, optimizer): what the choice rests on.
    eprintln!(
        "wgpu-train: timed the training steps of {} at batch {} a step: {}; running {chosen}",
        model.name(),
        batch,
        report.join(", ")
    );
    Ok(chosen)
}
