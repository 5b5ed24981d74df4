//! CPU twin of `shaders/sweep_optim.wgsl` ([`crate::kernels::SweepOptimizer`]):
//! the updates of K models over one `[K, P]` parameter buffer, model k by its
//! own [`CpuOptimizer`] on its window.

use super::CpuOptimizer;
use crate::error::{Error, Result};
use crate::optim::OptimizerConfig;

/// K optimizers, one per model, over consecutive windows of one flat buffer.
#[derive(Clone, Debug)]
pub struct CpuSweepOptimizer {
    models: Vec<CpuOptimizer>,
    per_model: usize,
}

impl CpuSweepOptimizer {
    /// One optimizer per configuration, each for `per_model` parameters.
    pub fn new(configs: &[OptimizerConfig], per_model: usize) -> Result<Self> {
        Ok(CpuSweepOptimizer {
            models: configs
                .iter()
                .map(|&c| CpuOptimizer::new(c, per_model))
                .collect::<Result<_>>()?,
            per_model,
        })
    }

    /// One update of every model: window k of `params` from window k of `grads`.
    pub fn step(&mut self, params: &mut [f32], grads: &[f32]) -> Result<()> {
        let n = self.models.len() * self.per_model;
        if params.len() != n || grads.len() != n {
            return Err(Error::shape(
                "sweep optimizer",
                format!(
                    "{} models of {} parameters need {n} parameters and gradients, got {} and {}",
                    self.models.len(),
                    self.per_model,
                    params.len(),
                    grads.len()
                ),
            ));
        }
        for ((opt, p), g) in self
            .models
            .iter_mut()
            .zip(params.chunks_exact_mut(self.per_model))
            .zip(grads.chunks_exact(self.per_model))
        {
            opt.step(p, g)?;
        }
        Ok(())
    }

    /// Model `model`'s optimizer (its state, step scalars, plateau).
    pub fn model(&mut self, model: usize) -> Option<&mut CpuOptimizer> {
        self.models.get_mut(model)
    }
}
