//! CPU twin of `shaders/optim.wgsl`: the same rules, the same formulas in
//! the same order, in f32, one parameter at a time (single-threaded).

use crate::error::{Error, Result};
use crate::optim::{AdamVariant, OptimizerConfig, Plateau, RmsPropVariant, Rule, StepScalars};

/// The CPU twin of [`crate::kernels::optim::GpuOptimizer`].
///
/// ```
/// use wgpu_train::{cpu::optim::CpuOptimizer, optim::OptimizerConfig};
/// let mut w = vec![0.0f32];
/// let mut opt = CpuOptimizer::new(OptimizerConfig::sgd(0.1), 1).unwrap();
/// for _ in 0..100 {
///     let g = [2.0 * (w[0] - 3.0)]; // f(w) = (w − 3)²
///     opt.step(&mut w, &g).unwrap();
/// }
/// assert!((w[0] - 3.0).abs() < 1e-4);
/// ```
#[derive(Clone, Debug)]
pub struct CpuOptimizer {
    config: OptimizerConfig,
    scalars: StepScalars,
    state: Vec<Vec<f32>>,
    plateau: Plateau,
}

impl CpuOptimizer {
    /// Validates `config` and allocates state for `n` parameters.
    pub fn new(config: OptimizerConfig, n: usize) -> Result<Self> {
        config.validate()?;
        let state = config
            .state_names()
            .iter()
            .map(|_| vec![config.initial_state(); n])
            .collect();
        Ok(CpuOptimizer {
            config,
            scalars: StepScalars::initial(),
            state,
            plateau: Plateau::new(&config.schedule),
        })
    }

    /// One update of `params` from `grads` (both of the length given to `new`).
    pub fn step(&mut self, params: &mut [f32], grads: &[f32]) -> Result<()> {
        let n = self.state.first().map_or(params.len(), Vec::len);
        if params.len() != n || grads.len() != n {
            return Err(Error::shape(
                "optimizer",
                format!(
                    "expected {n} parameters and gradients, got {} and {}",
                    params.len(),
                    grads.len()
                ),
            ));
        }
        let lr = self.config.lr * self.plateau.scale();
        self.scalars.advance(&self.config, lr);
        let st = self.scalars;
        match self.config.rule {
            Rule::Sgd(r) => sgd(&st, r, params, grads, self.state.first_mut()),
            Rule::Adagrad(r) => adagrad(&st, r, params, grads, &mut self.state[0]),
            Rule::RmsProp(r) => rmsprop(&st, r, params, grads, &mut self.state),
            Rule::Adam(r) => adam(&st, r, params, grads, &mut self.state),
        }
        Ok(())
    }

    /// [`Schedule::ReduceOnPlateau`](crate::optim::Schedule::ReduceOnPlateau)'s
    /// end of epoch: see [`crate::kernels::optim::GpuOptimizer::end_epoch`].
    pub fn end_epoch(&mut self, metric: f32) -> Result<bool> {
        self.plateau.observe(metric)
    }

    /// Replaces the state and the step scalars (resuming from a checkpoint).
    pub fn restore(&mut self, state: &[Vec<f32>], step: StepScalars) -> Result<()> {
        let n = self.state.first().map_or(0, Vec::len);
        crate::kernels::optim::check_restore(self.state.len(), n, state)?;
        self.state = state.to_vec();
        self.scalars = step;
        Ok(())
    }

    /// `t` and the scalars of the last update.
    pub fn step_scalars(&self) -> &StepScalars {
        &self.scalars
    }

    /// The state, in the order of [`OptimizerConfig::state_names`].
    pub fn state(&self) -> &[Vec<f32>] {
        &self.state
    }

    pub fn lr_scale(&self) -> f32 {
        self.plateau.scale()
    }

    pub fn config(&self) -> &OptimizerConfig {
        &self.config
    }
}

// Each function below is the twin of the kernel of the same name in
// shaders/optim.wgsl; the comments there give the formulas.

fn sgd(
    st: &StepScalars,
    r: crate::optim::Sgd,
    params: &mut [f32],
    grads: &[f32],
    buf: Option<&mut Vec<f32>>,
) {
    match buf {
        None => {
            for (p, &g) in params.iter_mut().zip(grads) {
                let g = g + r.weight_decay * *p;
                *p -= st.lr * g;
            }
        }
        Some(buf) => {
            for ((p, &g), b) in params.iter_mut().zip(grads).zip(buf.iter_mut()) {
                let mut g = g + r.weight_decay * *p;
                let mut nb = g;
                if st.t > 1 {
                    nb = r.momentum * *b + (1.0 - r.dampening) * g;
                }
                *b = nb;
                if r.nesterov {
                    g += r.momentum * nb;
                } else {
                    g = nb;
                }
                *p -= st.lr * g;
            }
        }
    }
}

fn adagrad(
    st: &StepScalars,
    r: crate::optim::Adagrad,
    params: &mut [f32],
    grads: &[f32],
    sum: &mut [f32],
) {
    for ((p, &g), s) in params.iter_mut().zip(grads).zip(sum.iter_mut()) {
        let g = g + r.weight_decay * *p;
        *s += g * g;
        *p -= st.adagrad_lr * (g / (s.sqrt() + r.eps));
    }
}

fn rmsprop(
    st: &StepScalars,
    r: crate::optim::RmsProp,
    params: &mut [f32],
    grads: &[f32],
    state: &mut [Vec<f32>],
) {
    let keras = r.variant == RmsPropVariant::Keras;
    let alpha = r.alpha;
    let (square_avg, rest) = state.split_first_mut().expect("square_avg");
    let (mut grad_avg, rest) = if r.centered {
        let (ga, rest) = rest.split_first_mut().expect("grad_avg");
        (Some(ga), rest)
    } else {
        (None, rest)
    };
    let mut momentum_buffer = if r.momentum > 0.0 {
        Some(&mut rest[0])
    } else {
        None
    };
    for i in 0..params.len() {
        let p = params[i];
        let g = grads[i] + r.weight_decay * p;
        let v = alpha * square_avg[i] + (1.0 - alpha) * (g * g);
        square_avg[i] = v;
        let mut vc = v;
        if let Some(ga) = grad_avg.as_deref_mut() {
            let a = ga[i] + (1.0 - alpha) * (g - ga[i]);
            ga[i] = a;
            vc = (v - a * a).max(0.0);
        }
        let d = if keras {
            (vc + r.eps).sqrt()
        } else {
            vc.sqrt() + r.eps
        };
        params[i] = match momentum_buffer.as_deref_mut() {
            Some(b) if keras => {
                let nb = r.momentum * b[i] + st.lr * g / d;
                b[i] = nb;
                p - nb
            }
            Some(b) => {
                let nb = r.momentum * b[i] + g / d;
                b[i] = nb;
                p - st.lr * nb
            }
            None if keras => p - st.lr * g / d,
            None => p - st.lr * (g / d),
        };
    }
}

fn adam(
    st: &StepScalars,
    r: crate::optim::Adam,
    params: &mut [f32],
    grads: &[f32],
    state: &mut [Vec<f32>],
) {
    let keras = r.variant == AdamVariant::Keras;
    let (exp_avg, rest) = state.split_first_mut().expect("exp_avg");
    let (exp_avg_sq, rest) = rest.split_first_mut().expect("exp_avg_sq");
    let mut max_exp_avg_sq = rest.first_mut();
    for i in 0..params.len() {
        let mut p = params[i];
        let mut g = grads[i];
        if r.decoupled_weight_decay {
            p *= st.decay;
        } else {
            g += r.weight_decay * p;
        }
        let m = exp_avg[i] + (1.0 - r.beta1) * (g - exp_avg[i]);
        exp_avg[i] = m;
        let v = r.beta2 * exp_avg_sq[i] + (1.0 - r.beta2) * (g * g);
        exp_avg_sq[i] = v;
        let mut vv = v;
        if let Some(vmax) = max_exp_avg_sq.as_deref_mut() {
            vv = vmax[i].max(v);
            vmax[i] = vv;
        }
        params[i] = if keras {
            p - st.keras_alpha * (m / (vv.sqrt() + r.eps))
        } else {
            let denom = vv.sqrt() / st.bias_correction2_sqrt + r.eps;
            p - st.step_size * (m / denom)
        };
    }
}
