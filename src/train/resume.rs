//! Checkpoints of a training run: the model's parameters by name, the
//! optimizer's state and step scalars, how many epochs were done, and the
//! kernel versions the autotuner chose (metadata `kernels`, a JSON object).

use super::{Engine, TrainConfig, TrainState};
use crate::checkpoint::{self, Checkpoint, NamedTensor};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::optim::StepScalars;
use std::collections::BTreeMap;
use std::path::Path;

const STEP_WORDS: usize = std::mem::size_of::<StepScalars>() / 4;

/// Writes `engine`'s parameters and optimizer state to `path` (atomically),
/// recording that `epochs_done` epochs are complete.
pub fn save_checkpoint(
    path: &Path,
    model: &dyn Model,
    config: &TrainConfig,
    engine: &mut dyn Engine,
    epochs_done: usize,
) -> Result<()> {
    let state = engine.state()?;
    let mut ck = Checkpoint::new();
    for p in model.parameters() {
        let values = state.params[p.offset..p.offset + p.len()].to_vec();
        ck.push(NamedTensor::f32(p.name.clone(), &p.shape, values));
    }
    for (name, values) in config
        .optimizer
        .state_names()
        .iter()
        .zip(&state.optimizer_state)
    {
        ck.push(NamedTensor::f32(
            format!("optimizer.{name}"),
            &[values.len()],
            values.clone(),
        ));
    }
    let words: &[u32] = bytemuck::cast_slice(std::slice::from_ref(&state.step));
    ck.push(NamedTensor::u32(
        "optimizer.step",
        &[STEP_WORDS],
        words.to_vec(),
    ));
    for (k, v) in [
        ("model", model.name()),
        ("optimizer", config.optimizer.name()),
        ("epochs_done", epochs_done.to_string()),
        ("seed", config.seed.to_string()),
        ("device", engine.device().to_string()),
    ] {
        ck.metadata.insert(k.to_string(), v);
    }
    // The tuner's choices, so that a resumed run (even with tuning off) runs
    // the same kernel versions, hence the same bits ([`Resume::kernels`]).
    let kernels = engine.kernel_choices();
    if !kernels.is_empty() {
        let json = serde_json::to_string(&kernels).map_err(|e| Error::Checkpoint {
            file: Some(path.to_path_buf()),
            msg: format!("cannot record the kernel choices: {e}"),
        })?;
        ck.metadata.insert(KERNELS.to_string(), json);
    }
    checkpoint::save(path, &ck)
}

/// A checkpoint read and checked against a model and optimizer: ready to
/// restore into any number of engines. Read it once, before training, so a
/// `--device both` run resumes both devices from the same state even when
/// the first run saves over the file.
#[derive(Clone, Debug)]
pub struct Resume {
    /// Epochs the checkpointed run had completed.
    pub epochs_done: usize,
    pub state: TrainState,
    /// The kernel versions the checkpointed run chose ([`crate::tune`]);
    /// empty when it ran untuned or on the CPU. Pin them
    /// ([`crate::gpu::TuneRecord::pin`]) before building the engine that resumes.
    pub kernels: BTreeMap<String, String>,
}

/// The checkpoint metadata key of the kernel choices (a JSON object).
const KERNELS: &str = "kernels";

/// A checkpoint's recorded kernel choices: none when it has no such key
/// (an untuned run, or one older than the key); an error when the key is
/// there but does not hold a JSON object of known kernel versions.
pub fn recorded_kernels(ck: &Checkpoint) -> Result<BTreeMap<String, String>> {
    let Some(text) = ck.metadata.get(KERNELS) else {
        return Ok(BTreeMap::new());
    };
    let kernels: BTreeMap<String, String> =
        serde_json::from_str(text).map_err(|e| Error::Checkpoint {
            file: ck.source().map(Path::to_path_buf),
            msg: format!("metadata '{KERNELS}' is not a JSON object of kernel names: {e}"),
        })?;
    crate::tune::check_choices(&kernels).map_err(|e| Error::Checkpoint {
        file: ck.source().map(Path::to_path_buf),
        msg: e.to_string(),
    })?;
    Ok(kernels)
}

/// The most bytes of a `--kernels` JSON file read (a run's `--json`
/// output): a device such as `/dev/zero`, or a larger file, is refused
/// before it is read.
pub const MAX_RECORD_BYTES: u64 = 16 << 20;

/// The kernel choices an earlier run recorded, to replay with
/// [`crate::gpu::TuneRecord::pin`]: from a checkpoint (`.safetensors`, its `kernels`
/// metadata) or from the JSON the training examples print with `--json`
/// (the first line with a `kernels` object; a GPU run's line has one when
/// it was tuned).
pub fn read_recorded(path: &std::path::Path) -> Result<BTreeMap<String, String>> {
    if path.extension().is_some_and(|e| e == "safetensors") {
        return recorded_kernels(&checkpoint::load(path)?);
    }
    let bad = |msg: String| Error::InvalidArgument {
        name: "recorded kernel choices",
        msg: format!("{}: {msg}", path.display()),
    };
    let bytes =
        crate::files::read_bounded(path, MAX_RECORD_BYTES).map_err(|e| bad(e.to_string()))?;
    let choices = parse_recorded(&String::from_utf8_lossy(&bytes)).map_err(bad)?;
    crate::tune::check_choices(&choices)?;
    Ok(choices)
}

/// The `kernels` object of the first JSON line that has one, in a run's
/// `--json` output (names not yet checked: [`crate::tune::check_choices`]).
/// The `--kernels` reader's parsing, in memory: the `recorded` fuzz target
/// drives it.
#[doc(hidden)]
pub fn parse_recorded(text: &str) -> std::result::Result<BTreeMap<String, String>, String> {
    for line in text.lines().filter(|l| l.trim_start().starts_with('{')) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if let Some(k) = v.get("kernels") {
            return serde_json::from_value(k.clone())
                .map_err(|e| format!("'kernels' is not an object of kernel names: {e}"));
        }
    }
    Err("no JSON line with a 'kernels' object (only tuned GPU runs record one)".into())
}

impl Resume {
    /// Reads `path` and checks it with [`Resume::from_checkpoint`].
    pub fn read(path: &Path, model: &dyn Model, config: &TrainConfig) -> Result<Self> {
        Self::from_checkpoint(&checkpoint::load(path)?, model, config)
    }

    /// Checks that `ck` was written by [`save_checkpoint`] for this model
    /// and optimizer, with every tensor of the right shape and every value
    /// finite: a diverged run's NaN or infinite state is refused here, not
    /// discovered an epoch later.
    pub fn from_checkpoint(
        ck: &Checkpoint,
        model: &dyn Model,
        config: &TrainConfig,
    ) -> Result<Self> {
        let error = |msg: String| Error::Checkpoint {
            file: ck.source().map(Path::to_path_buf),
            msg,
        };
        let mismatch = |what: &str, found: &str, want: String| {
            error(format!(
                "was written for {what} '{found}', this run uses '{want}'"
            ))
        };
        let found = ck.meta("model")?;
        if found != model.name() {
            return Err(mismatch("model", found, model.name()));
        }
        let found = ck.meta("optimizer")?;
        if found != config.optimizer.name() {
            return Err(mismatch("optimizer", found, config.optimizer.name()));
        }
        let epochs_done: usize = ck
            .meta("epochs_done")?
            .parse()
            .map_err(|_| error("metadata 'epochs_done' is not a number".into()))?;
        let finite = |name: &str, values: &[f32]| match values.iter().position(|v| !v.is_finite()) {
            None => Ok(()),
            Some(i) => Err(error(format!(
                "tensor '{name}' holds {} at index {i}: the state of a diverged run cannot be resumed",
                values[i]
            ))),
        };
        let mut params = Vec::new();
        for p in model.parameters() {
            let values = ck.f32(&p.name, &p.shape)?;
            finite(&p.name, values)?;
            params.extend_from_slice(values);
        }
        let optimizer_state = config
            .optimizer
            .state_names()
            .iter()
            .map(|name| {
                let name = format!("optimizer.{name}");
                let values = ck.f32(&name, &[params.len()])?;
                finite(&name, values)?;
                Ok(values.to_vec())
            })
            .collect::<Result<Vec<_>>>()?;
        let words = ck.u32("optimizer.step", &[STEP_WORDS])?;
        let step: StepScalars = bytemuck::pod_read_unaligned(bytemuck::cast_slice(words));
        let scalars = [
            step.lr,
            step.decay_factor,
            step.beta1_pow,
            step.beta2_pow,
            step.adagrad_lr,
            step.step_size,
            step.bias_correction2_sqrt,
            step.keras_alpha,
            step.decay,
        ];
        finite("optimizer.step", &scalars)?;
        // The next update would wrap the u32 step count (t − 1 underflows
        // in the optimizer's formulas): no real run gets there.
        if step.t == u32::MAX {
            return Err(error(format!(
                "tensor 'optimizer.step' says {} updates were made, the most a u32 counter \
                 can go on from",
                step.t
            )));
        }
        Ok(Resume {
            kernels: recorded_kernels(ck)?,
            epochs_done,
            state: TrainState {
                params,
                optimizer_state,
                step,
            },
        })
    }

    /// The epoch a run of `epochs` epochs resumes at; an error when the
    /// checkpoint has done them all already (nothing to do).
    pub fn first_epoch(&self, epochs: usize) -> Result<usize> {
        if self.epochs_done >= epochs {
            return Err(super::nothing_to_do(self.epochs_done, epochs));
        }
        Ok(self.epochs_done)
    }

    /// Replaces `engine`'s parameters and optimizer state with the checkpoint's.
    pub fn restore(&self, engine: &mut dyn Engine) -> Result<()> {
        engine.restore(&self.state)
    }
}

/// Restores `engine` from a checkpoint written by [`save_checkpoint`] for
/// the same model and optimizer; returns the number of epochs it had done.
/// See [`Resume`] for the checks.
pub fn load_checkpoint(
    path: &Path,
    model: &dyn Model,
    config: &TrainConfig,
    engine: &mut dyn Engine,
) -> Result<usize> {
    let resume = Resume::read(path, model, config)?;
    resume.restore(engine)?;
    Ok(resume.epochs_done)
}
