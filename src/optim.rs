//! Optimizer rules, their hyperparameters, learning-rate schedules and the
//! validation that runs before anything touches a GPU.
//!
//! One [`OptimizerConfig`] drives both the fused GPU update
//! ([`crate::kernels::optim::GpuOptimizer`], `shaders/optim.wgsl`) and its
//! CPU twin ([`crate::cpu::optim::CpuOptimizer`]); both evaluate the formulas
//! below in the same order, in f32.
//!
//! # The rules
//!
//! Semantics and defaults follow PyTorch's `torch.optim` (2.x), including
//! its names. Below, `p` is a parameter, `g` its gradient, `t` the 1-based
//! number of the update, `lr` the scheduled learning rate of that update
//! (see [`Schedule`]) and `wd` the weight decay. Every rule first applies L2
//! weight decay `g ← g + wd·p` (a no-op at the default `wd = 0`), except
//! Adam with `decoupled_weight_decay` (AdamW).
//!
//! | rule | state | update |
//! |---|---|---|
//! | [`Sgd`] | — | `p ← p − lr·g` |
//! | [`Sgd`] with momentum μ, dampening τ | `b` | `b ← g` at t = 1, else `b ← μ·b + (1−τ)·g`; `p ← p − lr·b` |
//! | [`Sgd`] Nesterov (τ = 0) | `b` | as above, then `p ← p − lr·(g + μ·b)` |
//! | [`Adagrad`] (lr_decay, eps, initial value s₀) | `s = s₀` | `clr = lr / (1 + (t−1)·lr_decay)`; `s ← s + g²`; `p ← p − clr·g / (√s + eps)` |
//! | [`RmsProp`] (α, eps) | `v` | `v ← α·v + (1−α)·g²`; `p ← p − lr·g / (√v + eps)` |
//! | [`RmsProp`] centered | `v, ḡ` | also `ḡ ← ḡ + (1−α)·(g − ḡ)`; denominator `√max(v − ḡ², 0) + eps` |
//! | [`RmsProp`] momentum μ | `v, b` | `b ← μ·b + g / denominator`; `p ← p − lr·b` |
//! | [`Adam`] (β₁, β₂, eps) | `m, v` | `m ← m + (1−β₁)·(g − m)`; `v ← β₂·v + (1−β₂)·g²`; `p ← p − (lr / (1−β₁ᵗ))·m / (√v / √(1−β₂ᵗ) + eps)` |
//! | [`Adam`] amsgrad | `m, v, v̂` | `v̂ ← max(v̂, v)`, and `v̂` replaces `v` in the denominator |
//! | AdamW ([`Adam::adamw`]) | `m, v` | `p ← p·(1 − lr·wd)` first (decoupled decay, no L2 term), then Adam |
//!
//! Two rules have a Keras 3 variant, chosen explicitly, never by default:
//!
//! - [`AdamVariant::Keras`]: eps is added to the *uncorrected* `√v`, and both
//!   bias corrections are folded into the step size:
//!   `p ← p − (lr·√(1−β₂ᵗ) / (1−β₁ᵗ))·m / (√v + eps)`. The two agree when
//!   eps is negligible beside `√v`; with tiny gradients Keras' effective eps
//!   is `1/√(1−β₂ᵗ)` times larger (≈32× at t = 1). Keras' own default eps is
//!   1e-7, not 1e-8: set it if you want Keras' numbers.
//! - [`RmsPropVariant::Keras`]: eps inside the square root,
//!   `p ← p − lr·g / √(v + eps)` (centered: `√(v − ḡ² + eps)`), and its
//!   momentum buffer accumulates whole increments,
//!   `b ← μ·b + lr·g / √(v + eps)`, `p ← p − b` (the same as torch's at a
//!   constant lr). Keras' defaults are α (rho) = 0.9, eps = 1e-7, lr = 1e-3.
//!
//! Where torch would take the square root of a slightly negative
//! `v − ḡ²` (rounding, centered RMSprop) and produce NaN, we clamp at 0.
//!
//! # Per-step values stay on the GPU
//!
//! The step count `t`, the scheduled `lr`, the bias corrections `1−βᵗ` and
//! the other per-update scalars ([`StepScalars`]) reach the update kernel in
//! one of two ways, and any number of steps can be recorded into one command
//! encoder with no CPU round trip either way:
//!
//! - v1: a small GPU buffer that a one-thread `advance` kernel rewrites
//!   before each update (running products `βᵗ ← βᵗ·β`, the schedule), so
//!   each step is two dispatches and every workgroup of one update sees the
//!   same `t`;
//! - v2 (the fused training step): the host, which knows each step's index
//!   when it records it, computes the scalars of an epoch's updates with
//!   [`StepScalars::advance`] — the CPU twin's own code, so the two sides
//!   use the same bits — and writes them into per-step slots once per epoch;
//!   each update reads its slot at a dynamic offset: one dispatch a step.
//!
//! Only [`Schedule::ReduceOnPlateau`] acts between epochs, from the host.

use crate::error::{Error, Result};

/// A rule, its hyperparameters, the base learning rate and its schedule.
///
/// ```
/// use wgpu_train::optim::{Adam, OptimizerConfig, Schedule};
/// let cfg = OptimizerConfig::new(1e-3, Adam { amsgrad: true, ..Adam::default() })
///     .with_schedule(Schedule::Cosine { t_max: 4690, eta_min: 0.0 });
/// cfg.validate().unwrap();
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OptimizerConfig {
    /// Base learning rate (> 0).
    pub lr: f32,
    pub rule: Rule,
    pub schedule: Schedule,
}

/// The update rule and its hyperparameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rule {
    Sgd(Sgd),
    Adagrad(Adagrad),
    RmsProp(RmsProp),
    Adam(Adam),
}

impl From<Sgd> for Rule {
    fn from(r: Sgd) -> Self {
        Rule::Sgd(r)
    }
}
impl From<Adagrad> for Rule {
    fn from(r: Adagrad) -> Self {
        Rule::Adagrad(r)
    }
}
impl From<RmsProp> for Rule {
    fn from(r: RmsProp) -> Self {
        Rule::RmsProp(r)
    }
}
impl From<Adam> for Rule {
    fn from(r: Adam) -> Self {
        Rule::Adam(r)
    }
}

/// `torch.optim.SGD`: plain, with momentum and dampening, or Nesterov.
/// Defaults as torch: everything 0 / false.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sgd {
    /// μ ≥ 0; 0 disables the momentum buffer.
    pub momentum: f32,
    /// τ in [0, 1]: the buffer takes `(1−τ)·g` (not at the first step).
    pub dampening: f32,
    /// Nesterov momentum; needs μ > 0 and τ = 0, as in torch.
    pub nesterov: bool,
    /// L2 weight decay (≥ 0), added to the gradient.
    pub weight_decay: f32,
}

impl Sgd {
    /// SGD with momentum μ (torch's classical, "heavy ball" form).
    pub fn momentum(momentum: f32) -> Self {
        Sgd {
            momentum,
            ..Sgd::default()
        }
    }
    /// SGD with Nesterov momentum μ.
    pub fn nesterov(momentum: f32) -> Self {
        Sgd {
            momentum,
            nesterov: true,
            ..Sgd::default()
        }
    }
}

/// `torch.optim.Adagrad`. Defaults as torch: lr_decay 0, eps 1e-10,
/// initial_accumulator_value 0, weight_decay 0 (and lr 1e-2, see
/// [`OptimizerConfig::adagrad`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adagrad {
    /// ≥ 0: the step is `lr / (1 + (t−1)·lr_decay)`.
    pub lr_decay: f32,
    /// > 0, added to `√s`.
    pub eps: f32,
    /// ≥ 0: the accumulator's starting value.
    pub initial_accumulator_value: f32,
    pub weight_decay: f32,
}

impl Default for Adagrad {
    fn default() -> Self {
        Adagrad {
            lr_decay: 0.0,
            eps: 1e-10,
            initial_accumulator_value: 0.0,
            weight_decay: 0.0,
        }
    }
}

/// Where RMSprop puts eps (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RmsPropVariant {
    /// torch: `g / (√v + eps)`; momentum buffer without lr.
    #[default]
    Torch,
    /// Keras 3: `g / √(v + eps)`; momentum buffer holds lr-scaled increments.
    Keras,
}

/// `torch.optim.RMSprop`. Defaults as torch: alpha 0.99, eps 1e-8,
/// momentum 0, not centered, weight_decay 0 (and lr 1e-2).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RmsProp {
    /// α in [0, 1): smoothing of the squared-gradient average (Keras: rho).
    pub alpha: f32,
    /// > 0.
    pub eps: f32,
    /// μ ≥ 0; 0 disables the momentum buffer.
    pub momentum: f32,
    /// Divide by an estimate of the gradient's variance instead of its second moment.
    pub centered: bool,
    pub weight_decay: f32,
    pub variant: RmsPropVariant,
}

impl Default for RmsProp {
    fn default() -> Self {
        RmsProp {
            alpha: 0.99,
            eps: 1e-8,
            momentum: 0.0,
            centered: false,
            weight_decay: 0.0,
            variant: RmsPropVariant::Torch,
        }
    }
}

/// Where Adam puts eps (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AdamVariant {
    /// torch: `m̂ / (√v̂ + eps)` with both moments bias-corrected.
    #[default]
    Torch,
    /// Keras 3: `m / (√v + eps)`, corrections folded into the step size.
    Keras,
}

/// `torch.optim.Adam` / `torch.optim.AdamW`. Defaults as torch's Adam:
/// betas (0.9, 0.999), eps 1e-8, weight_decay 0, no amsgrad, L2 decay
/// (and lr 1e-3). [`Adam::adamw`] gives AdamW's defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adam {
    /// β₁ in [0, 1).
    pub beta1: f32,
    /// β₂ in [0, 1).
    pub beta2: f32,
    /// > 0.
    pub eps: f32,
    /// ≥ 0. L2 (added to the gradient) unless `decoupled_weight_decay`.
    pub weight_decay: f32,
    /// Keep the running maximum of `v` and divide by it.
    pub amsgrad: bool,
    /// AdamW: `p ← p·(1 − lr·wd)` before the update instead of L2.
    pub decoupled_weight_decay: bool,
    pub variant: AdamVariant,
}

impl Default for Adam {
    fn default() -> Self {
        Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
            decoupled_weight_decay: false,
            variant: AdamVariant::Torch,
        }
    }
}

impl Adam {
    /// `torch.optim.AdamW`'s defaults: decoupled weight decay 1e-2.
    pub fn adamw() -> Self {
        Adam {
            weight_decay: 1e-2,
            decoupled_weight_decay: true,
            ..Adam::default()
        }
    }
}

/// How the learning rate changes with the update count `t` (1-based).
///
/// Schedules count optimizer updates, not epochs, so that they run on the
/// GPU inside a recorded chunk of steps. To decay once per epoch, as torch's
/// schedulers usually do, multiply by the steps per epoch: e.g.
/// `StepDecay { step_size: 30 * steps_per_epoch, gamma: 0.1 }` is torch's
/// `StepLR(step_size=30, gamma=0.1)` stepped each epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Schedule {
    /// `lr`.
    #[default]
    Constant,
    /// `lr·γ^⌊(t−1)/step_size⌋`: updates 1..=step_size use `lr`, the next
    /// `step_size` use `lr·γ`, … (γ^k kept as a running product).
    StepDecay { step_size: u32, gamma: f32 },
    /// `eta_min + (lr − eta_min)·(1 + cos(π·min(t−1, t_max)/t_max))/2`:
    /// torch's `CosineAnnealingLR` closed form over one half period, then
    /// held at `eta_min` (torch's would rise again after `t_max`).
    Cosine { t_max: u32, eta_min: f32 },
    /// The course's rule: constant within an epoch; after each epoch the
    /// caller reports a metric (lower is better, e.g. the validation loss)
    /// and when it did not improve on the best so far the learning rate is
    /// multiplied by `factor` (0.95: "reduce the step by 5%"). Acts between
    /// epochs, from the host (`end_epoch` on either optimizer). This is
    /// torch's `ReduceLROnPlateau(mode="min", patience=0, threshold=0)`;
    /// torch's defaults differ (patience 10, relative threshold 1e-4).
    ReduceOnPlateau { factor: f32 },
}

impl Schedule {
    /// The course's "reduce by 5% when an epoch brings no improvement".
    pub fn reduce_on_plateau() -> Self {
        Schedule::ReduceOnPlateau { factor: 0.95 }
    }
}

impl OptimizerConfig {
    /// A rule at learning rate `lr` with a constant schedule.
    pub fn new(lr: f32, rule: impl Into<Rule>) -> Self {
        OptimizerConfig {
            lr,
            rule: rule.into(),
            schedule: Schedule::Constant,
        }
    }

    /// The same optimizer with another schedule.
    pub fn with_schedule(self, schedule: Schedule) -> Self {
        OptimizerConfig { schedule, ..self }
    }

    /// Plain SGD (torch requires an explicit lr).
    pub fn sgd(lr: f32) -> Self {
        Self::new(lr, Sgd::default())
    }
    /// SGD with momentum μ.
    pub fn momentum(lr: f32, momentum: f32) -> Self {
        Self::new(lr, Sgd::momentum(momentum))
    }
    /// SGD with Nesterov momentum μ.
    pub fn nesterov(lr: f32, momentum: f32) -> Self {
        Self::new(lr, Sgd::nesterov(momentum))
    }
    /// Adagrad with torch's defaults (lr 1e-2).
    pub fn adagrad() -> Self {
        Self::new(1e-2, Adagrad::default())
    }
    /// RMSprop with torch's defaults (lr 1e-2).
    pub fn rmsprop() -> Self {
        Self::new(1e-2, RmsProp::default())
    }
    /// Adam with torch's defaults (lr 1e-3).
    pub fn adam() -> Self {
        Self::new(1e-3, Adam::default())
    }
    /// AdamW with torch's defaults (lr 1e-3, weight decay 1e-2).
    pub fn adamw() -> Self {
        Self::new(1e-3, Adam::adamw())
    }

    /// Short name for tables and messages ("adam", "sgd_nesterov", …).
    pub fn name(&self) -> String {
        match self.rule {
            Rule::Sgd(s) if s.nesterov => "sgd_nesterov".into(),
            Rule::Sgd(s) if s.momentum > 0.0 => "sgd_momentum".into(),
            Rule::Sgd(_) => "sgd".into(),
            Rule::Adagrad(_) => "adagrad".into(),
            Rule::RmsProp(r) => format!(
                "rmsprop{}{}{}",
                if r.centered { "_centered" } else { "" },
                if r.momentum > 0.0 { "_momentum" } else { "" },
                if r.variant == RmsPropVariant::Keras {
                    "_keras"
                } else {
                    ""
                }
            ),
            Rule::Adam(a) => format!(
                "{}{}{}",
                if a.decoupled_weight_decay {
                    "adamw"
                } else {
                    "adam"
                },
                if a.amsgrad { "_amsgrad" } else { "" },
                if a.variant == AdamVariant::Keras {
                    "_keras"
                } else {
                    ""
                }
            ),
        }
    }

    /// The names of the per-parameter state buffers, torch's names, in the
    /// order both optimizers store them.
    pub fn state_names(&self) -> Vec<&'static str> {
        self.state_slots().into_iter().flatten().collect()
    }

    /// The state buffer bound to each of the shader's slots `s1`, `s2`,
    /// `s3` (None: unused by this configuration).
    pub fn state_slots(&self) -> [Option<&'static str>; 3] {
        let some = |b: bool, name| if b { Some(name) } else { None };
        match self.rule {
            Rule::Sgd(s) => [some(s.momentum > 0.0, "momentum_buffer"), None, None],
            Rule::Adagrad(_) => [Some("sum"), None, None],
            Rule::RmsProp(r) => [
                Some("square_avg"),
                some(r.centered, "grad_avg"),
                some(r.momentum > 0.0, "momentum_buffer"),
            ],
            Rule::Adam(a) => [
                Some("exp_avg"),
                Some("exp_avg_sq"),
                some(a.amsgrad, "max_exp_avg_sq"),
            ],
        }
    }

    /// Bytes one update moves per parameter, at minimum: the parameter read
    /// and written, the gradient read, each state buffer read and written
    /// (12 + 8·state buffers). Benchmarks report GB/s from this.
    pub fn bytes_per_param(&self) -> u64 {
        12 + 8 * self.state_names().len() as u64
    }

    /// The value every state buffer starts from (Adagrad's initial
    /// accumulator; 0 elsewhere).
    pub fn initial_state(&self) -> f32 {
        match self.rule {
            Rule::Adagrad(a) => a.initial_accumulator_value,
            _ => 0.0,
        }
    }

    /// The weight decay of any rule.
    pub fn weight_decay(&self) -> f32 {
        match self.rule {
            Rule::Sgd(r) => r.weight_decay,
            Rule::Adagrad(r) => r.weight_decay,
            Rule::RmsProp(r) => r.weight_decay,
            Rule::Adam(r) => r.weight_decay,
        }
    }

    /// Checks every hyperparameter; the error names the first bad one.
    /// Both optimizers call this before allocating anything.
    pub fn validate(&self) -> Result<()> {
        positive("lr", self.lr)?;
        match self.rule {
            Rule::Sgd(s) => {
                non_negative("momentum", s.momentum)?;
                finite("dampening", s.dampening)?;
                if !(0.0..=1.0).contains(&s.dampening) {
                    return Err(invalid(
                        "dampening",
                        format!("must be in [0, 1], got {}", s.dampening),
                    ));
                }
                non_negative("weight_decay", s.weight_decay)?;
                if s.nesterov && (s.momentum <= 0.0 || s.dampening != 0.0) {
                    return Err(invalid(
                        "nesterov",
                        format!(
                            "Nesterov momentum requires momentum > 0 and dampening = 0, got momentum {} and dampening {}",
                            s.momentum, s.dampening
                        ),
                    ));
                }
            }
            Rule::Adagrad(a) => {
                non_negative("lr_decay", a.lr_decay)?;
                positive("eps", a.eps)?;
                non_negative("initial_accumulator_value", a.initial_accumulator_value)?;
                non_negative("weight_decay", a.weight_decay)?;
            }
            Rule::RmsProp(r) => {
                unit_interval("alpha", r.alpha)?;
                positive("eps", r.eps)?;
                non_negative("momentum", r.momentum)?;
                non_negative("weight_decay", r.weight_decay)?;
            }
            Rule::Adam(a) => {
                unit_interval("beta1", a.beta1)?;
                unit_interval("beta2", a.beta2)?;
                positive("eps", a.eps)?;
                non_negative("weight_decay", a.weight_decay)?;
            }
        }
        match self.schedule {
            Schedule::Constant => {}
            Schedule::StepDecay { step_size, gamma } => {
                if step_size == 0 {
                    return Err(invalid("step_size", "must be at least 1, got 0"));
                }
                positive("gamma", gamma)?;
            }
            Schedule::Cosine { t_max, eta_min } => {
                if t_max == 0 {
                    return Err(invalid("t_max", "must be at least 1, got 0"));
                }
                non_negative("eta_min", eta_min)?;
                if eta_min > self.lr {
                    return Err(invalid(
                        "eta_min",
                        format!("must not exceed lr ({}), got {eta_min}", self.lr),
                    ));
                }
            }
            Schedule::ReduceOnPlateau { factor } => {
                finite("factor", factor)?;
                if !(factor > 0.0 && factor < 1.0) {
                    return Err(invalid(
                        "factor",
                        format!("must be in (0, 1), got {factor}"),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn invalid(name: &'static str, msg: impl Into<String>) -> Error {
    Error::InvalidArgument {
        name,
        msg: msg.into(),
    }
}

fn finite(name: &'static str, x: f32) -> Result<()> {
    if x.is_finite() {
        Ok(())
    } else {
        Err(invalid(name, format!("must be a finite number, got {x}")))
    }
}

fn positive(name: &'static str, x: f32) -> Result<()> {
    finite(name, x)?;
    if x > 0.0 {
        Ok(())
    } else {
        Err(invalid(name, format!("must be > 0, got {x}")))
    }
}

fn non_negative(name: &'static str, x: f32) -> Result<()> {
    finite(name, x)?;
    if x >= 0.0 {
        Ok(())
    } else {
        Err(invalid(name, format!("must be ≥ 0, got {x}")))
    }
}

fn unit_interval(name: &'static str, x: f32) -> Result<()> {
    finite(name, x)?;
    if (0.0..1.0).contains(&x) {
        Ok(())
    } else {
        Err(invalid(name, format!("must be in [0, 1), got {x}")))
    }
}

/// The per-update scalars both optimizers compute once per step, before the
/// elementwise update. On the GPU this is the layout of the step buffer that
/// the one-thread `advance` kernel of `shaders/optim.wgsl` rewrites each
/// step (v1), and of each per-step slot the host plans (v2);
/// [`StepScalars::advance`] is the CPU twin of `advance` and what plans the
/// slots.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct StepScalars {
    /// Updates begun so far: during update `t` this is `t` (1-based).
    pub t: u32,
    /// The scheduled learning rate of update `t`.
    pub lr: f32,
    /// `γ^⌊(t−1)/step_size⌋` for [`Schedule::StepDecay`], 1 otherwise.
    pub decay_factor: f32,
    /// `β₁ᵗ` (Adam; 0 for the other rules).
    pub beta1_pow: f32,
    /// `β₂ᵗ`.
    pub beta2_pow: f32,
    /// Adagrad's `lr / (1 + (t−1)·lr_decay)`.
    pub adagrad_lr: f32,
    /// torch Adam's step size `lr / (1 − β₁ᵗ)`.
    pub step_size: f32,
    /// torch Adam's `√(1 − β₂ᵗ)`.
    pub bias_correction2_sqrt: f32,
    /// Keras Adam's step size `lr·√(1 − β₂ᵗ) / (1 − β₁ᵗ)`.
    pub keras_alpha: f32,
    /// AdamW's factor `1 − lr·wd`.
    pub decay: f32,
    pub _pad: [u32; 2],
}

impl StepScalars {
    /// Before the first update: `t = 0` and the running products at 1.
    pub fn initial() -> Self {
        StepScalars {
            t: 0,
            lr: 0.0,
            decay_factor: 1.0,
            beta1_pow: 1.0,
            beta2_pow: 1.0,
            adagrad_lr: 0.0,
            step_size: 0.0,
            bias_correction2_sqrt: 0.0,
            keras_alpha: 0.0,
            decay: 1.0,
            _pad: [0; 2],
        }
    }
}

/// The hyperparameters the `advance` kernel reads, as the uniform holds them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ScalarHyper {
    pub lr: f32,
    pub weight_decay: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub lr_decay: f32,
    /// 0 constant (and plateau), 1 step decay, 2 cosine.
    pub schedule: u32,
    pub step_size: u32,
    pub gamma: f32,
    pub t_max: u32,
    pub eta_min: f32,
}

impl ScalarHyper {
    pub(crate) fn of(cfg: &OptimizerConfig, lr: f32) -> Self {
        let (beta1, beta2) = match cfg.rule {
            Rule::Adam(a) => (a.beta1, a.beta2),
            _ => (0.0, 0.0),
        };
        let lr_decay = match cfg.rule {
            Rule::Adagrad(a) => a.lr_decay,
            _ => 0.0,
        };
        let (schedule, step_size, gamma, t_max, eta_min) = match cfg.schedule {
            Schedule::Constant | Schedule::ReduceOnPlateau { .. } => (0, 1, 1.0, 1, 0.0),
            Schedule::StepDecay { step_size, gamma } => (1, step_size, gamma, 1, 0.0),
            Schedule::Cosine { t_max, eta_min } => (2, 1, 1.0, t_max, eta_min),
        };
        ScalarHyper {
            lr,
            weight_decay: cfg.weight_decay(),
            beta1,
            beta2,
            lr_decay,
            schedule,
            step_size,
            gamma,
            t_max,
            eta_min,
        }
    }
}

/// The host side of [`Schedule::ReduceOnPlateau`] (and a no-op for every
/// other schedule): the best metric so far and the current lr multiplier.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plateau {
    factor: Option<f32>,
    best: Option<f32>,
    scale: f32,
}

impl Plateau {
    pub fn new(schedule: &Schedule) -> Self {
        Plateau {
            factor: match *schedule {
                Schedule::ReduceOnPlateau { factor } => Some(factor),
                _ => None,
            },
            best: None,
            scale: 1.0,
        }
    }

    /// Records an epoch's metric (lower is better). Returns whether the
    /// learning rate was reduced. The first epoch only sets the best.
    pub fn observe(&mut self, metric: f32) -> Result<bool> {
        if metric.is_nan() {
            return Err(invalid("metric", "the epoch's metric is NaN"));
        }
        let Some(factor) = self.factor else {
            return Ok(false);
        };
        match self.best {
            Some(best) if metric >= best => {
                self.scale *= factor;
                Ok(true)
            }
            _ => {
                self.best = Some(metric);
                Ok(false)
            }
        }
    }

    /// The multiplier of the base learning rate (`factor^reductions`).
    pub fn scale(&self) -> f32 {
        self.scale
    }

    /// The best metric seen.
    pub fn best(&self) -> Option<f32> {
        self.best
    }
}

/// The optimizers the training examples offer by name (`--optimizer`), with
/// the hyperparameters of the PyTorch peer the README compares against:
/// momentum and Nesterov 0.9; RMSprop α 0.9; Adam, AdamW and RMSprop with
/// eps 1e-7 (Keras' default, which the peer sets). These differ from the
/// bare constructors ([`OptimizerConfig::adam`] has torch's eps 1e-8), so a
/// library caller who wants the main job's numbers asks for the preset.
impl OptimizerConfig {
    /// The names [`OptimizerConfig::preset`] accepts.
    pub const PRESETS: [&'static str; 7] = [
        "sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw",
    ];

    /// The preset `name` (one of [`OptimizerConfig::PRESETS`]) at learning
    /// rate `lr`, validated.
    ///
    /// ```
    /// use wgpu_train::optim::OptimizerConfig;
    /// let main_job = OptimizerConfig::preset("adam", 1e-3).unwrap();
    /// assert_ne!(main_job, OptimizerConfig::adam()); // eps 1e-7, not 1e-8
    /// ```
    pub fn preset(name: &str, lr: f32) -> Result<Self> {
        const EPS: f32 = 1e-7;
        let cfg = match name {
            "sgd" => Self::sgd(lr),
            "momentum" => Self::momentum(lr, 0.9),
            "nesterov" => Self::nesterov(lr, 0.9),
            "adagrad" => Self::new(lr, Adagrad::default()),
            "rmsprop" => Self::new(
                lr,
                RmsProp {
                    alpha: 0.9,
                    eps: EPS,
                    ..RmsProp::default()
                },
            ),
            "adam" => Self::new(
                lr,
                Adam {
                    eps: EPS,
                    ..Adam::default()
                },
            ),
            "adamw" => Self::new(
                lr,
                Adam {
                    eps: EPS,
                    ..Adam::adamw()
                },
            ),
            _ => {
                return Err(invalid(
                    "optimizer",
                    format!(
                        "unknown preset '{name}'; use one of {}",
                        Self::PRESETS.join(", ")
                    ),
                ));
            }
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

/// Checks a restored optimizer state: one buffer per state name, each of `n`.
pub(crate) fn check_restore(buffers: usize, n: usize, state: &[Vec<f32>]) -> Result<()> {
    if state.len() != buffers || state.iter().any(|v| v.len() != n) {
        return Err(Error::shape(
            "optimizer restore",
            format!(
                "expected {buffers} state buffers of {n} values, got {:?}",
                state.iter().map(Vec::len).collect::<Vec<_>>()
            ),
        ));
    }
    Ok(())
}
