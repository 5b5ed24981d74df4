//! Checkpoints of a training run: the model's parameters by name, the
//! optimizer's state and step scalars, and how many epochs were done.

use super::{Engine, TrainConfig, TrainState};
use crate::checkpoint::{self, Checkpoint, NamedTensor};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::optim::StepScalars;
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
    checkpoint::save(path, &ck)
}

/// Restores `engine` from a checkpoint written by [`save_checkpoint`] for
/// the same model and optimizer; returns the number of epochs it had done.
pub fn load_checkpoint(
    path: &Path,
    model: &dyn Model,
    config: &TrainConfig,
    engine: &mut dyn Engine,
) -> Result<usize> {
    let ck = checkpoint::load(path)?;
    let mismatch = |what: &str, found: &str, want: String| Error::Checkpoint {
        file: Some(path.to_path_buf()),
        msg: format!("was written for {what} '{found}', this run uses '{want}'"),
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
        .map_err(|_| Error::Checkpoint {
            file: Some(path.to_path_buf()),
            msg: "metadata 'epochs_done' is not a number".into(),
        })?;
    let mut params = Vec::new();
    for p in model.parameters() {
        params.extend_from_slice(ck.f32(&p.name, &p.shape)?);
    }
    let optimizer_state = config
        .optimizer
        .state_names()
        .iter()
        .map(|name| {
            ck.f32(&format!("optimizer.{name}"), &[params.len()])
                .map(<[f32]>::to_vec)
        })
        .collect::<Result<Vec<_>>>()?;
    let words = ck.u32("optimizer.step", &[STEP_WORDS])?;
    let step: StepScalars = bytemuck::pod_read_unaligned(bytemuck::cast_slice(words));
    engine.restore(&TrainState {
        params,
        optimizer_state,
        step,
    })?;
    Ok(epochs_done)
}
