//! Second-order training of the linear softmax classifier: L-BFGS and
//! Newton-CG on the full training set, on the GPU or the CPU.
//!
//! The classifier's loss, the mean softmax cross-entropy plus `(λ/2)·‖W‖²`,
//! is convex, and strictly so for λ > 0; W is only C×(D+1) (7,850 weights
//! for Fashion-MNIST, 30,730 for CIFAR-10), so a method that models the
//! curvature reaches the optimum in tens of full-batch iterations where
//! minibatch SGD only circles it. Each iteration is a few large matrix
//! products over the whole resident dataset — the GPU's best case.
//!
//! The pieces:
//! - [`Objective`]: the full-batch loss, gradient and Hessian-vector product
//!   (`Hv = Xᵀ·((diag(p) − p pᵀ)·(X·Vᵀ))/N + λV`, no Hessian stored), over a
//!   bank of vectors that live on the device, with linear combinations and
//!   batched dot products. [`GpuObjective`] keeps the bank in one GPU buffer
//!   and reads back only scalars; [`CpuObjective`] is its ndarray twin, in
//!   `f32` or `f64`. Formulas and their finite-difference checks:
//!   [`crate::cpu::linalg`].
//! - [`minimize`]: runs [`Method::Lbfgs`] or [`Method::NewtonCg`] against any
//!   objective. The algorithm is written once: both devices run the same
//!   scalar decisions, so their trajectories agree (a test holds them within
//!   1e-5 per iteration).
//!
//! **L-BFGS** (Nocedal & Wright, Algorithms 7.4–7.5) keeps the last m
//! (default 10) steps `s = x⁺ − x` and gradient changes `y = g⁺ − g` on the
//! device and runs the two-loop recursion on their Gram matrix instead of on
//! the vectors ("vector-free" L-BFGS, Chen, Wang & Zhou, NIPS 2014): every
//! dot product of the recursion is a combination of inner products between
//! s's, y's and g, which one batched dispatch computes when a pair arrives;
//! the recursion then runs on the host in f64 and yields the coefficients of
//! the direction `d = Σ δ_j b_j`, which one combine forms on the device. The
//! line search satisfies the strong Wolfe conditions (c₁ = 1e-4, c₂ = 0.9),
//! which guarantees `sᵀy > 0` and so keeps the implicit inverse-Hessian
//! approximation positive definite.
//!
//! **Newton-CG** (N&W Algorithm 7.1) solves `H·d = −g` by conjugate gradient
//! on Hessian-vector products, stopping at the forcing tolerance
//! `‖r‖ ≤ min(0.5, √‖g‖)·‖g‖`, after `max_cg` steps, or at the first
//! direction of non-positive curvature. Its line search is backtracking
//! Armijo from the unit step: the Newton step's natural length is 1 and is
//! taken as is near the optimum, so a search usually costs one evaluation,
//! and unlike L-BFGS it maintains no curvature pairs that would need the
//! Wolfe curvature condition.
//!
//! **What comes back to the host.** Vectors never do (only the final
//! weights, once). Each evaluation of the loss returns, in one readback, the
//! loss total, the correct count and the dot products the line search needs
//! (‖g‖², gᵀd). L-BFGS reads one more batch per iteration (the new rows of
//! the Gram matrix); Newton-CG one batch per CG step (`pᵀHp`, `rᵀHp`,
//! `‖Hp‖²`, from which `‖r⁺‖²` follows without a second readback). Every
//! [`Iteration`] reports its readbacks.
//!
//! **Stops.** [`Stop::Converged`] when `‖g‖ ≤ gtol` ([`Stop::TargetReached`]
//! when a target loss was given and reached); otherwise a reported
//! [`Stop::MaxIterations`], [`Stop::LineSearchFailed`] or
//! [`Stop::NonFinite`] (a NaN or infinite loss or gradient where a finite one
//! was needed), each with the last good weights. [`Stop::Stalled`] when
//! [`STALL_STEPS`] accepted steps in a row found no loss below the lowest so
//! far: the arithmetic's precision is reached before `gtol` (a `gtol` of 0,
//! say), and more iterations would only walk in the rounding noise. Every
//! loop is bounded: nothing hangs. A non-finite loss at a trial step only
//! shortens the step. [`Stop::is_success`] tells the stops a caller may
//! report as a result (converged, target, iteration limit) from failures.

pub mod cpu;
pub mod gpu;
mod lbfgs;
mod line_search;
mod newton_cg;
#[cfg(test)]
mod quadratic;

pub use cpu::CpuObjective;
pub use gpu::GpuObjective;

use crate::error::{Error, Result};
use std::fmt;
use std::time::Instant;

/// A vector of an objective's bank, by index (`0..slots()`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Slot(pub usize);

/// What one full-batch evaluation returns.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// Mean cross-entropy plus `(λ/2)·‖W‖²`.
    pub loss: f64,
    /// Training examples whose argmax is their label.
    pub correct: u64,
    /// The dot products asked for, computed after the gradient was written.
    pub dots: Vec<f64>,
}

/// The full-batch problem: loss, gradient and Hessian-vector products of
/// the L2-regularised linear softmax classifier over a whole training set,
/// with vectors (`C·(D+1)` weights each) kept in a bank on the device.
pub trait Objective {
    /// "gpu" or "cpu".
    fn device(&self) -> &'static str;
    /// The adapter, or a description of the CPU.
    fn adapter(&self) -> String;
    /// Weights per vector, `C·(D+1)`.
    fn dim(&self) -> usize;
    /// Vectors in the bank.
    fn slots(&self) -> usize;
    /// Training examples N.
    fn examples(&self) -> usize;
    /// The L2 coefficient λ.
    fn l2(&self) -> f64;
    /// Uploads `values` (`dim()` of them) into `slot`.
    fn write(&mut self, slot: Slot, values: &[f32]) -> Result<()>;
    /// Copies `slot` back to the host.
    fn read(&mut self, slot: Slot) -> Result<Vec<f32>>;
    /// Loss at `w` and its gradient into `g` (`g ≠ w`), then the dot
    /// products `pairs`: one pass over the data, one readback.
    fn loss_grad(&mut self, w: Slot, g: Slot, pairs: &[(Slot, Slot)]) -> Result<Evaluation>;
    /// `out = H(w)·v` (`out` differs from `w` and `v`), then the dot
    /// products `pairs`: one pass over the data, one readback unless
    /// `pairs` is empty.
    fn hvp(&mut self, w: Slot, v: Slot, out: Slot, pairs: &[(Slot, Slot)]) -> Result<Vec<f64>>;
    /// `out = Σ c_t·v_t` (a term may be `out` itself). No readback.
    fn combine(&mut self, out: Slot, terms: &[(f64, Slot)]) -> Result<()>;
    /// Dot products, in one readback.
    fn dots(&mut self, pairs: &[(Slot, Slot)]) -> Result<Vec<f64>>;
    /// Mean cross-entropy (without the L2 term) and accuracy on the test set
    /// at `w`, in one readback.
    fn evaluate_test(&mut self, w: Slot) -> Result<(f64, f64)>;
    /// Readbacks so far: the calls above that return scalars (on the GPU,
    /// each is one wait and one copy to the host).
    fn readbacks(&self) -> usize;
}

/// The problem both objectives set up: the L2 coefficient and how the data
/// is read.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FullBatchConfig {
    /// λ of the `(λ/2)·‖W‖²` term (the whole of W, bias column included, as
    /// the course's `reg·‖W‖²` with λ = 2·reg).
    pub l2: f64,
    /// Examples gathered (as f32 rows) per chunk of a pass; fewer where a
    /// chunk would exceed the storage binding limit.
    pub chunk_rows: usize,
    /// Pixel normalisation `(x/255 − mean)/std`, as in training.
    pub mean: f32,
    pub std: f32,
    /// Gather the f32 rows once and keep them (4 bytes per pixel, on the
    /// device), instead of gathering them from the resident bytes on every
    /// pass (a quarter of the memory, one more kernel per chunk and pass).
    pub resident: bool,
}

impl Default for FullBatchConfig {
    /// λ = 1e-4, 8,192 rows per chunk, pixels in [0, 1], rows resident.
    fn default() -> Self {
        FullBatchConfig {
            l2: 1e-4,
            chunk_rows: 8192,
            mean: 0.0,
            std: 1.0,
            resident: true,
        }
    }
}

impl FullBatchConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        if !(self.l2.is_finite() && self.l2 >= 0.0) {
            return Err(Error::InvalidArgument {
                name: "l2",
                msg: format!("must be finite and ≥ 0, got {}", self.l2),
            });
        }
        crate::error::positive("chunk_rows", self.chunk_rows)?;
        self.gather_options().affine()?;
        Ok(())
    }

    pub(crate) fn gather_options(&self) -> crate::kernels::GatherOptions {
        crate::kernels::GatherOptions {
            mean: self.mean,
            std: self.std,
            append_one: true,
        }
    }
}

/// Checks that the train and test sets fit one classifier.
pub(crate) fn check_data(train: &crate::Dataset, test: Option<&crate::Dataset>) -> Result<()> {
    if train.is_empty() {
        return Err(Error::shape("full batch", "the training set is empty"));
    }
    if let Some(t) = test
        && (t.dim() != train.dim() || t.classes != train.classes || t.is_empty())
    {
        return Err(Error::shape(
            "full batch",
            format!(
                "train ({} pixels, {} classes) and test ({} pixels, {} classes, {} examples) do not fit one classifier",
                train.dim(),
                train.classes,
                t.dim(),
                t.classes,
                t.len()
            ),
        ));
    }
    Ok(())
}

/// Which second-order method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Lbfgs,
    NewtonCg,
}

impl Method {
    /// "lbfgs" or "newton-cg".
    pub fn name(self) -> &'static str {
        match self {
            Method::Lbfgs => "lbfgs",
            Method::NewtonCg => "newton-cg",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How to run [`minimize`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SecondOrderConfig {
    pub method: Method,
    /// Outer iterations at most (each one accepted step).
    pub max_iterations: usize,
    /// Converged when `‖∇L‖₂ ≤ gtol`.
    pub gtol: f64,
    /// L-BFGS: curvature pairs kept (m).
    pub history: usize,
    /// Newton-CG: CG steps per Newton step at most.
    pub max_cg: usize,
    /// Sufficient decrease (Armijo) constant c₁.
    pub c1: f64,
    /// Curvature constant c₂ of the strong Wolfe conditions (L-BFGS).
    pub c2: f64,
    /// Loss evaluations per line search at most.
    pub max_evaluations: usize,
    /// Stop as soon as an accepted point's loss is at most this
    /// ([`Stop::TargetReached`]); `None`: run to `gtol`.
    pub target_loss: Option<f64>,
}

impl SecondOrderConfig {
    /// Defaults for `method`: 100 iterations, gtol 1e-5, m = 10, 20 CG steps,
    /// c₁ = 1e-4, c₂ = 0.9, 20 evaluations per line search.
    pub fn new(method: Method) -> Self {
        SecondOrderConfig {
            method,
            max_iterations: 100,
            gtol: 1e-5,
            history: 10,
            max_cg: 20,
            c1: 1e-4,
            c2: 0.9,
            max_evaluations: 20,
            target_loss: None,
        }
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        let bad = |name, msg: String| Err(Error::InvalidArgument { name, msg });
        if self.max_iterations == 0 {
            return bad("max_iterations", "must be at least 1".into());
        }
        if !(self.gtol.is_finite() && self.gtol >= 0.0) {
            return bad("gtol", format!("must be finite and ≥ 0, got {}", self.gtol));
        }
        if self.history == 0 || self.history > 64 {
            return bad(
                "history",
                format!("must be in 1..=64, got {}", self.history),
            );
        }
        if self.max_cg == 0 {
            return bad("max_cg", "must be at least 1".into());
        }
        if !(self.c1 > 0.0 && self.c1 < self.c2 && self.c2 < 1.0) {
            return bad(
                "line search constants",
                format!("need 0 < c1 < c2 < 1, got c1 {} c2 {}", self.c1, self.c2),
            );
        }
        if self.max_evaluations == 0 {
            return bad("max_evaluations", "must be at least 1".into());
        }
        if let Some(t) = self.target_loss
            && !t.is_finite()
        {
            return bad("target_loss", format!("must be finite, got {t}"));
        }
        Ok(())
    }

    /// Bank slots the method needs.
    pub fn slots(&self) -> usize {
        match self.method {
            Method::Lbfgs => lbfgs::slots(self.history),
            Method::NewtonCg => newton_cg::SLOTS,
        }
    }
}

/// Why [`minimize`] stopped.
#[derive(Clone, Debug, PartialEq)]
pub enum Stop {
    /// `‖∇L‖ ≤ gtol`.
    Converged,
    /// The loss reached `target_loss`.
    TargetReached,
    /// `max_iterations` steps taken without converging.
    MaxIterations,
    /// No step satisfying the line search's conditions was found.
    LineSearchFailed(String),
    /// A loss or gradient was NaN or infinite where a finite one was needed.
    NonFinite(String),
    /// [`STALL_STEPS`] accepted steps in a row without a new lowest loss.
    Stalled(String),
}

/// Accepted steps in a row without a new lowest loss after which
/// [`minimize`] stops with [`Stop::Stalled`]. Before the precision floor
/// every accepted step lowers the loss (the line search's sufficient
/// decrease), so only rounding noise makes ten in a row fail to.
pub const STALL_STEPS: usize = 10;

impl Stop {
    /// Whether the run ended as asked: converged, reached its target, or
    /// used its iterations. A failed line search, a non-finite value or a
    /// stall is a failure, which the examples report with a non-zero exit.
    pub fn is_success(&self) -> bool {
        matches!(
            self,
            Stop::Converged | Stop::TargetReached | Stop::MaxIterations
        )
    }
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stop::Converged => f.write_str("converged"),
            Stop::TargetReached => f.write_str("target reached"),
            Stop::MaxIterations => f.write_str("iteration limit reached"),
            Stop::LineSearchFailed(why) => write!(f, "line search failed: {why}"),
            Stop::NonFinite(why) => write!(f, "non-finite value: {why}"),
            Stop::Stalled(why) => write!(f, "stalled: {why}"),
        }
    }
}

/// One accepted step (iteration 0 is the starting point).
#[derive(Clone, Debug, PartialEq)]
pub struct Iteration {
    pub iteration: usize,
    /// Training loss (with the L2 term) at the new point.
    pub loss: f64,
    /// Training accuracy at the new point.
    pub train_accuracy: f64,
    pub grad_norm: f64,
    /// Step length taken along the search direction.
    pub step: f64,
    /// Loss-and-gradient evaluations in this iteration (the line search's).
    pub evaluations: usize,
    /// Newton-CG: CG steps (one Hessian-vector product each).
    pub cg_steps: usize,
    /// Readbacks in this iteration.
    pub readbacks: usize,
    /// Passes over the training data since the start (a loss-and-gradient
    /// evaluation or a Hessian-vector product is one each).
    pub passes: usize,
    /// Seconds since the start.
    pub seconds: f64,
}

/// What [`minimize`] returns.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub iterations: Vec<Iteration>,
    pub stop: Stop,
    /// The final weights (read back once).
    pub weights: Vec<f32>,
    /// The slot that holds them on the device.
    pub slot: Slot,
}

impl Outcome {
    /// The last iteration's record.
    pub fn last(&self) -> &Iteration {
        // minimize always records iteration 0.
        &self.iterations[self.iterations.len() - 1]
    }
}

/// Counts passes and readbacks and times iterations for the records.
pub(crate) struct Recorder<'a> {
    start: Instant,
    passes: usize,
    readbacks_at_start: usize,
    on_iteration: &'a mut dyn FnMut(&Iteration),
    iterations: Vec<Iteration>,
    /// The lowest loss recorded, and the records since it was set.
    best: f64,
    since_best: usize,
}

impl<'a> Recorder<'a> {
    fn new(obj: &dyn Objective, on_iteration: &'a mut dyn FnMut(&Iteration)) -> Self {
        Recorder {
            start: Instant::now(),
            passes: 0,
            readbacks_at_start: obj.readbacks(),
            on_iteration,
            iterations: Vec::new(),
            best: f64::INFINITY,
            since_best: 0,
        }
    }

    /// Why the run has stalled ([`STALL_STEPS`] accepted steps without a new
    /// lowest loss), if it has.
    pub(crate) fn stalled(&self) -> Option<String> {
        let last = self.iterations.last()?;
        (self.since_best >= STALL_STEPS).then(|| {
            format!(
                "the loss has not gone below {:e} in {STALL_STEPS} accepted steps (‖g‖ {:.2e}): \
                 the arithmetic's precision is reached before gtol; use a larger gtol",
                self.best, last.grad_norm
            )
        })
    }

    /// Adds `n` passes over the data.
    pub(crate) fn pass(&mut self, n: usize) {
        self.passes += n;
    }

    /// Records an accepted point.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn record(
        &mut self,
        obj: &dyn Objective,
        loss: f64,
        correct: u64,
        grad_norm: f64,
        step: f64,
        evaluations: usize,
        cg_steps: usize,
    ) {
        let before: usize = self.iterations.iter().map(|i| i.readbacks).sum();
        let it = Iteration {
            iteration: self.iterations.len(),
            loss,
            train_accuracy: correct as f64 / obj.examples().max(1) as f64,
            grad_norm,
            step,
            evaluations,
            cg_steps,
            readbacks: obj.readbacks() - self.readbacks_at_start - before,
            passes: self.passes,
            seconds: self.start.elapsed().as_secs_f64(),
        };
        if loss < self.best {
            self.best = loss;
            self.since_best = 0;
        } else {
            self.since_best += 1;
        }
        (self.on_iteration)(&it);
        self.iterations.push(it);
    }
}

/// Minimises the objective from `w0` with `config.method`, calling
/// `on_iteration` after the start and after every accepted step. Errors are
/// for bad arguments and device failures; a run that cannot make progress
/// returns normally with its [`Stop`] reason.
pub fn minimize(
    obj: &mut dyn Objective,
    w0: &[f32],
    config: &SecondOrderConfig,
    on_iteration: &mut dyn FnMut(&Iteration),
) -> Result<Outcome> {
    config.validate()?;
    if w0.len() != obj.dim() {
        return Err(Error::shape(
            "minimize",
            format!(
                "w0 holds {} values, the objective has {}",
                w0.len(),
                obj.dim()
            ),
        ));
    }
    if let Some(i) = w0.iter().position(|v| !v.is_finite()) {
        return Err(Error::InvalidArgument {
            name: "w0",
            msg: format!("element {i} is {}", w0[i]),
        });
    }
    if obj.slots() < config.slots() {
        return Err(Error::InvalidArgument {
            name: "objective slots",
            msg: format!(
                "{} needs {} bank slots, the objective has {}",
                config.method,
                config.slots(),
                obj.slots()
            ),
        });
    }
    let mut rec = Recorder::new(obj, on_iteration);
    let (stop, slot) = match config.method {
        Method::Lbfgs => lbfgs::run(obj, w0, config, &mut rec)?,
        Method::NewtonCg => newton_cg::run(obj, w0, config, &mut rec)?,
    };
    let weights = obj.read(slot)?;
    Ok(Outcome {
        iterations: rec.iterations,
        stop,
        weights,
        slot,
    })
}

/// A non-finite check with a message for [`Stop::NonFinite`].
pub(crate) fn finite(what: &str, v: f64) -> std::result::Result<f64, String> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(format!("{what} is {v}"))
    }
}
