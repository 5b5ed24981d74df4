//! The course notebook's four optimisation strategies for the CIFAR-shaped
//! linear softmax classifier, on the GPU and on the CPU twins.
//!
//! The classifier is `scores = x·Wᵀ` with W of shape C×(D+1): the bias is
//! folded in as W's last column and every row of x ends in a 1 (CS231n's
//! "bias trick"). The notebook walks from "a very bad idea" to what everyone
//! does:
//!
//! 1. [`random_search`]: score many random W (1e-4·randn) on every training
//!    example and keep the best. On the GPU a whole group of candidates is
//!    scored by one matrix product per chunk of examples (see [`ScoreLayout`]).
//! 2. [`local_search`]: perturb the current W by `step·randn`, keep the
//!    perturbation when the training loss drops.
//! 3. [`gradient_check`]: the analytic gradient on a minibatch against
//!    centred finite differences (in f64, on the CPU: the GPU computes in f32,
//!    where a difference of two losses near 2.3 would be all rounding), then
//!    the minibatch loss after one step `W − s·dW` for `s` = 1e-10 … 1e-1.
//! 4. [`descent`]: minibatch gradient descent, then the test accuracy.
//!
//! Each strategy is written once against the [`Backend`] trait, which
//! [`GpuBackend`] implements with the crate's kernels and [`CpuBackend`] with
//! their ndarray twins, so the two runs do the same work in the same order
//! and their results and times can be set side by side. [`Strategies`]
//! bundles a problem, both backends and the options, and runs each strategy
//! on both: `src/lab/cli/strategies.rs` (the `strategies` example) prints what it returns, and
//! `tests/gpu/strategies.rs` checks it.
//!
//! The training examples are held as f32 rows (the Gaussian data of the
//! notebook has no u8 form) and split into chunks of [`Options::chunk_rows`]
//! rows, each its own GPU tensor: 50,000 × 3,073 f32 is 615 MB, far over a
//! 128 MiB storage binding. Loss totals are summed across chunks on the GPU
//! and read back once per scoring.

mod cpu;
mod gpu;

pub use cpu::CpuBackend;
pub use gpu::GpuBackend;

use crate::cpu::gradcheck::{linear_softmax_loss, rel_error};
use crate::data::{Splits, synthetic};
use crate::error::{Error, Result, positive};
use crate::gpu::Gpu;
use crate::kernels::GatherOptions;
use ndarray::{Array2, s};
use rand::{RngExt, SeedableRng, rngs::StdRng};
use rand_distr::StandardNormal;
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

/// The notebook's CIFAR-10 shape: 3,072 pixel values per example.
pub const CIFAR_DIM: usize = 3072;
/// CIFAR-10's classes.
pub const CIFAR_CLASSES: usize = 10;

/// Training and test examples as f32 rows, each ending in the bias column's 1.
#[derive(Clone, Debug)]
pub struct Problem {
    /// What the data is ("synthetic Gaussian", "CIFAR-10", …), for reports.
    pub name: String,
    /// N×(D+1); the last column is all ones.
    pub x_train: Array2<f32>,
    pub y_train: Vec<u32>,
    /// M×(D+1); the last column is all ones.
    pub x_test: Array2<f32>,
    pub y_test: Vec<u32>,
    pub classes: usize,
}

impl Problem {
    /// The notebook's synthetic data: X from N(0, 1), labels uniform in
    /// `0..classes`, `train` and `test` examples of `dim` values (plus the 1),
    /// from `seed`. Nothing in it can be learned: the test accuracy of any W
    /// is chance (1/classes), and the loss of a small random W is near
    /// ln(classes).
    pub fn synthetic(
        train: usize,
        test: usize,
        dim: usize,
        classes: usize,
        seed: u64,
    ) -> Result<Self> {
        let with_one = |n: usize, seed: u64| -> Result<(Array2<f32>, Vec<u32>)> {
            let s = synthetic::gaussian(n, dim, classes, seed)?;
            let mut x = Array2::<f32>::ones((n, dim + 1));
            x.slice_mut(s![.., ..dim]).assign(&s.x);
            Ok((x, s.labels.iter().map(|&l| u32::from(l)).collect()))
        };
        let (x_train, y_train) = with_one(train, seed)?;
        let (x_test, y_test) = with_one(test, seed.wrapping_add(1))?;
        Ok(Problem {
            name: "synthetic Gaussian".into(),
            x_train,
            y_train,
            x_test,
            y_test,
            classes,
        })
    }

    /// A real dataset (e.g. CIFAR-10 from `--data DIR`): at most `train` and
    /// `test` examples (the first ones; all when `None`), normalised with the
    /// training pixels' mean and standard deviation (one scalar each), with
    /// the trailing 1 appended.
    pub fn from_splits(splits: &Splits, train: Option<usize>, test: Option<usize>) -> Result<Self> {
        let tr = splits.train.first(train.unwrap_or(usize::MAX));
        let te = splits.test.first(test.unwrap_or(usize::MAX));
        if tr.is_empty() || te.is_empty() {
            return Err(Error::InvalidArgument {
                name: "examples",
                msg: format!(
                    "need at least one training and one test example, got {} and {}",
                    tr.len(),
                    te.len()
                ),
            });
        }
        let (mean, std) = pixel_stats(&tr.images);
        let opts = GatherOptions {
            mean,
            std,
            append_one: true,
        };
        let rows = |d: &crate::Dataset| -> Result<(Array2<f32>, Vec<u32>)> {
            let order: Vec<u32> = (0..d.len() as u32).collect();
            crate::cpu::gather(d, &order, 0, d.len(), opts)
        };
        let (x_train, y_train) = rows(&tr)?;
        let (x_test, y_test) = rows(&te)?;
        Ok(Problem {
            name: splits.name.clone(),
            x_train,
            y_train,
            x_test,
            y_test,
            classes: splits.train.classes,
        })
    }

    /// Values per row, the trailing 1 included (D + 1 = 3,073 for CIFAR).
    pub fn features(&self) -> usize {
        self.x_train.ncols()
    }

    /// Elements of one W: C·(D+1).
    pub fn weights(&self) -> usize {
        self.classes * self.features()
    }

    /// Checks that shapes, label counts and labels agree.
    pub fn check(&self) -> Result<()> {
        let f = self.features();
        let ok = f >= 2
            && self.x_test.ncols() == f
            && self.x_train.nrows() == self.y_train.len()
            && self.x_test.nrows() == self.y_test.len()
            && !self.y_train.is_empty()
            && !self.y_test.is_empty()
            && self.classes >= 1;
        if !ok {
            return Err(Error::shape(
                "Problem",
                format!(
                    "x_train {:?} with {} labels and x_test {:?} with {} labels do not form a problem of {} classes",
                    self.x_train.shape(),
                    self.y_train.len(),
                    self.x_test.shape(),
                    self.y_test.len(),
                    self.classes
                ),
            ));
        }
        crate::options::check_labels(&self.y_train, self.classes)?;
        crate::options::check_labels(&self.y_test, self.classes)
    }
}

/// How many whole C×(D+1) weights `w` holds (at least one), or an error
/// naming `what`.
fn weight_count(problem: &Problem, w: &[f32], what: &str) -> Result<usize> {
    let per = problem.weights();
    if w.is_empty() || !w.len().is_multiple_of(per) {
        return Err(Error::shape(
            "strategies",
            format!(
                "{what}: {} values are not a whole number of {}×{} weights",
                w.len(),
                problem.classes,
                problem.features()
            ),
        ));
    }
    Ok(w.len() / per)
}

/// Checks that `w` is exactly one C×(D+1) weight, for `op`.
fn one_weight(problem: &Problem, w: &[f32], op: &'static str) -> Result<()> {
    if weight_count(problem, w, "W")? != 1 {
        return Err(Error::shape(op, "expects exactly one W"));
    }
    Ok(())
}

/// Mean and standard deviation of `byte / 255` over all pixels.
fn pixel_stats(images: &[u8]) -> (f32, f32) {
    let mut hist = [0u64; 256];
    for &b in images {
        hist[b as usize] += 1;
    }
    let n = images.len().max(1) as f64;
    let mean = (0..256).map(|v| hist[v] as f64 * v as f64).sum::<f64>() / n / 255.0;
    let var = (0..256)
        .map(|v| hist[v] as f64 * (v as f64 / 255.0 - mean).powi(2))
        .sum::<f64>()
        / n;
    // A constant image set has no spread; leave it unscaled.
    let std = if var > 0.0 { var.sqrt() } else { 1.0 };
    (mean as f32, std as f32)
}

/// Which rows an backend works on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Split {
    /// All training examples.
    Train,
    /// All test examples.
    Test,
    /// The first [`Options::grad_batch`] training examples (strategy 3).
    Minibatch,
}

/// How the GPU arranges the scores of K candidates on one chunk of R rows.
/// Both compute the same losses; they differ in kernel shapes and dispatch
/// counts. Measured on lavapipe and noted in BENCHMARKS.md.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ScoreLayout {
    /// [`ScoreLayout::Wide`]: one GEMM with N = 10·K instead of K GEMMs with
    /// N = 10, and 3 dispatches per chunk instead of K + 2.
    #[default]
    Auto,
    /// The batched matmul as the issue describes it: the K candidates as a
    /// `[K, C, D+1]` batched B operand (trans_b), X as the broadcast A, C
    /// `[K, R, C]`; softmax-CE over it viewed as `[K·R, C]` with the labels
    /// tiled K times; then one loss sum per candidate over its contiguous R
    /// rows (accumulated across chunks): K + 2 dispatches per chunk. N = 10
    /// leaves most of a 4-column-blocked matmul's lanes idle.
    Batched,
    /// The K candidates as one `[K·C, D+1]` matrix: C = X·Wᵀ is `[R, K·C]`,
    /// read as `[R·K, C]` with each label repeated K times, so the per-row
    /// losses form an R×K matrix whose column sums are the K totals: matmul,
    /// softmax-CE, one column sum per chunk, and one column sum over the
    /// chunks' totals at the end. Loss only: correct counts are u32 and the
    /// column sum is f32, so accuracy always goes through `Batched` with K = 1
    /// (where the two layouts are the same).
    Wide,
}

impl ScoreLayout {
    /// The layout that runs (never `Auto`).
    pub fn resolve(self) -> ScoreLayout {
        match self {
            ScoreLayout::Auto => ScoreLayout::Wide,
            l => l,
        }
    }

    /// Short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            ScoreLayout::Auto => "auto",
            ScoreLayout::Batched => "batched",
            ScoreLayout::Wide => "wide",
        }
    }
}

/// Work an [`Backend`] can prepare before it is timed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// [`Backend::score`] of this many candidates on `split`.
    Score { split: Split, candidates: usize },
    /// [`Backend::gradient`].
    Gradient,
    /// [`Backend::descend`] with this batch size.
    Descent { batch: usize },
}

/// Mean loss and accuracy of one W on a split.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation {
    pub loss: f32,
    pub accuracy: f32,
}

/// One epoch's running totals: mean minibatch loss and training accuracy
/// while W was changing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochStats {
    pub loss: f32,
    pub accuracy: f32,
}

/// What one side (GPU or CPU) does for the strategies. Weights are passed
/// and returned as row-major host slices: C×(D+1) for one W, K·C×(D+1) for
/// K candidates.
pub trait Backend {
    /// "GPU" or "CPU".
    fn label(&self) -> &'static str;

    /// Mean loss of each of the `w.len() / weights` candidates on `split`.
    fn score(&mut self, split: Split, w: &[f32]) -> Result<Vec<f32>>;

    /// Mean loss and accuracy of one W on `split`.
    fn evaluate(&mut self, split: Split, w: &[f32]) -> Result<Evaluation>;

    /// Mean loss and its gradient on [`Split::Minibatch`].
    fn gradient(&mut self, w: &[f32]) -> Result<(f32, Vec<f32>)>;

    /// `epochs` epochs of minibatch SGD (learning rate `lr`) from `w0` over
    /// the training set in order, in batches of `batch` rows (none crosses a
    /// chunk, so a chunk's last batch may be smaller): per-epoch stats and
    /// the final W.
    fn descend(
        &mut self,
        w0: &[f32],
        batch: usize,
        epochs: usize,
        lr: f32,
    ) -> Result<(Vec<EpochStats>, Vec<f32>)>;

    /// Builds what `task` needs (GPU: pipelines, bind groups, scratch
    /// buffers), so that timings measure the work and not the one-time
    /// setup. Optional: the work builds it on first use anyway.
    fn prepare(&mut self, _task: Task) -> Result<()> {
        Ok(())
    }

    /// Dispatches the last [`Backend::score`] call recorded (GPU only).
    fn score_dispatches(&self) -> Option<usize> {
        None
    }

    /// Dispatches per step of [`Backend::descend`] (GPU only).
    fn descent_dispatches_per_step(&self) -> Option<usize> {
        None
    }
}

/// The row ranges of one split's chunks: `n` rows in chunks of `chunk_rows`.
pub fn chunk_ranges(n: usize, chunk_rows: usize) -> Vec<Range<usize>> {
    let step = chunk_rows.max(1);
    (0..n).step_by(step).map(|s| s..(s + step).min(n)).collect()
}

/// The minibatches of one epoch: consecutive `batch` rows within each chunk;
/// a chunk's remainder is a smaller last batch. Both backends use this.
pub fn step_ranges(n: usize, chunk_rows: usize, batch: usize) -> Vec<Range<usize>> {
    let batch = batch.max(1);
    chunk_ranges(n, chunk_rows)
        .into_iter()
        .flat_map(|c| {
            let end = c.end;
            (c.start..end)
                .step_by(batch)
                .map(move |s| s..(s + batch).min(end))
        })
        .collect()
}

/// Everything the four strategies can be told.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// Strategy 1: random candidates and their scale (W = scale·randn).
    pub candidates: usize,
    pub candidate_scale: f32,
    /// Strategy 1 on the GPU: how many candidates one pass scores (fewer
    /// when the device's binding limit demands), and how.
    pub candidates_per_pass: usize,
    pub layout: ScoreLayout,
    /// Strategy 2: iterations, initial scale of W and the perturbation's.
    pub iterations: usize,
    pub local_init_scale: f32,
    pub local_step: f32,
    /// Strategy 3: minibatch rows, coordinates checked, difference step h,
    /// and the step sizes tried (W is 1e-3·uniform[0, 1), as in the notebook).
    pub grad_batch: usize,
    pub grad_checks: usize,
    pub grad_h: f64,
    pub step_sizes: Vec<f32>,
    /// Strategy 4: batch sizes (one run each), epochs, SGD learning rate and
    /// W's initial scale.
    pub batches: Vec<usize>,
    pub epochs: usize,
    pub lr: f32,
    pub descent_init_scale: f32,
    /// Rows per chunk of examples: each chunk is one GPU tensor and one pass
    /// of every kernel. Lowered to fit the device's storage binding limit.
    pub chunk_rows: usize,
    pub seed: u64,
}

impl Default for Options {
    /// The notebook's configuration.
    fn default() -> Self {
        Options {
            candidates: 100,
            candidate_scale: 1e-4,
            candidates_per_pass: 100,
            layout: ScoreLayout::Auto,
            iterations: 100,
            local_init_scale: 1e-3,
            local_step: 1e-4,
            grad_batch: 256,
            grad_checks: 10,
            grad_h: 1e-5,
            step_sizes: (-10..=-1).map(|e| 10f32.powi(e)).collect(),
            batches: vec![256, 1000],
            epochs: 5,
            lr: 1e-3,
            descent_init_scale: 1e-3,
            chunk_rows: 8000,
            seed: 0,
        }
    }
}

impl Options {
    /// A configuration for [`Problem`]s of a few thousand examples that runs
    /// in seconds on lavapipe: fewer epochs, the rest as the notebook.
    pub fn quick() -> Self {
        Options {
            epochs: 3,
            ..Options::default()
        }
    }

    /// Checks every option; the message names the bad one.
    pub fn validate(&self) -> Result<()> {
        positive("candidates", self.candidates)?;
        positive("candidates per pass", self.candidates_per_pass)?;
        positive("iterations", self.iterations)?;
        positive("gradient check batch", self.grad_batch)?;
        positive("gradient checks", self.grad_checks)?;
        positive("epochs", self.epochs)?;
        positive("chunk rows", self.chunk_rows)?;
        if self.batches.is_empty() || self.batches.contains(&0) {
            return Err(Error::InvalidArgument {
                name: "batch sizes",
                msg: format!("need at least one, each at least 1, got {:?}", self.batches),
            });
        }
        for (name, v) in [
            ("candidate scale", self.candidate_scale),
            ("local search initial scale", self.local_init_scale),
            ("local search step", self.local_step),
            ("learning rate", self.lr),
            ("descent initial scale", self.descent_init_scale),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::InvalidArgument {
                    name,
                    msg: format!("must be finite and ≥ 0, got {v}"),
                });
            }
        }
        if !(self.grad_h.is_finite() && self.grad_h > 0.0) {
            return Err(Error::InvalidArgument {
                name: "finite-difference step h",
                msg: format!("must be finite and > 0, got {}", self.grad_h),
            });
        }
        if self.step_sizes.is_empty() || self.step_sizes.iter().any(|s| !s.is_finite()) {
            return Err(Error::InvalidArgument {
                name: "step sizes",
                msg: format!("need at least one, all finite, got {:?}", self.step_sizes),
            });
        }
        Ok(())
    }
}

/// A result from the GPU and the same from the CPU twins.
#[derive(Clone, Debug, PartialEq)]
pub struct Compared<T> {
    pub gpu: T,
    pub cpu: T,
}

/// Strategy 1's outcome on one backend.
#[derive(Clone, Debug, PartialEq)]
pub struct RandomSearch {
    /// Mean training loss of each candidate, in order.
    pub losses: Vec<f32>,
    /// Index of the lowest loss (the first among ties).
    pub best: usize,
    /// The best candidate on the test set.
    pub best_test: Evaluation,
    /// Seconds spent scoring (the search itself, without the test evaluation).
    pub seconds: f64,
    /// GPU dispatches per pass of candidates (per scoring call).
    pub dispatches: Option<usize>,
}

/// Strategy 2's outcome on one backend.
#[derive(Clone, Debug, PartialEq)]
pub struct LocalSearch {
    /// Training loss of each try.
    pub tried: Vec<f32>,
    /// Best loss after each iteration.
    pub best: Vec<f32>,
    /// How many tries were kept.
    pub accepted: usize,
    /// The final W on the test set.
    pub test: Evaluation,
    pub seconds: f64,
}

/// One checked coordinate of strategy 3.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CoordinateCheck {
    /// Row (class) and column (feature; the last one is the bias) of W.
    pub row: usize,
    pub col: usize,
    /// Centred difference `(L(w+h) − L(w−h)) / 2h` in f64.
    pub numeric: f64,
    /// The backend's analytic gradient (f32).
    pub analytic: f32,
    /// `|analytic − numeric| / max(|analytic|, |numeric|, 1e-10)`.
    pub rel_error: f64,
}

/// Strategy 3's outcome on one backend.
#[derive(Clone, Debug, PartialEq)]
pub struct GradientCheck {
    /// Minibatch loss at W.
    pub loss: f32,
    pub checks: Vec<CoordinateCheck>,
    pub max_rel_error: f64,
    /// Seconds for the analytic gradient (one forward and backward).
    pub gradient_seconds: f64,
    /// `(step size, minibatch loss after W − step·dW)`.
    pub sweep: Vec<(f32, f32)>,
    /// Seconds for scoring the sweep's candidates.
    pub sweep_seconds: f64,
}

/// The finite differences strategy 3 compares both backends against, with the
/// f64 twin's own analytic gradient as a check on the differences.
#[derive(Clone, Debug, PartialEq)]
pub struct NumericalGradient {
    /// Flat indices into W (row-major).
    pub indices: Vec<usize>,
    pub numeric: Vec<f64>,
    /// Largest relative error of the f64 analytic gradient against `numeric`
    /// (tiny: shows the differences are exact enough to judge f32 with).
    pub f64_max_rel_error: f64,
    pub seconds: f64,
}

/// Strategy 4's outcome for one batch size on one backend.
#[derive(Clone, Debug, PartialEq)]
pub struct Descent {
    pub batch: usize,
    pub steps_per_epoch: usize,
    pub epochs: Vec<EpochStats>,
    pub test: Evaluation,
    pub seconds: f64,
    /// GPU dispatches per step.
    pub dispatches_per_step: Option<usize>,
}

fn timed<T>(f: impl FnOnce() -> Result<T>) -> Result<(T, f64)> {
    let t = Instant::now();
    let v = f()?;
    Ok((v, t.elapsed().as_secs_f64()))
}

/// `len` values from N(0, scale²), from `seed`.
pub fn randn(len: usize, scale: f32, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..len)
        .map(|_| scale * rng.sample::<f32, _>(StandardNormal))
        .collect()
}

/// [`randn`], with an error instead of an abort when `len` values do not
/// fit in memory (`len` comes from the command line).
pub fn try_randn(len: usize, scale: f32, seed: u64) -> Result<Vec<f32>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len)
        .map_err(|_| Error::InvalidArgument {
            name: "candidates",
            msg: format!("cannot allocate {len} random values"),
        })?;
    let mut rng = StdRng::seed_from_u64(seed);
    v.extend((0..len).map(|_| scale * rng.sample::<f32, _>(StandardNormal)));
    Ok(v)
}

/// Index of the smallest value (the first among ties; NaN never wins).
fn argmin(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x < v[best] || v[best].is_nan() {
            best = i;
        }
    }
    best
}

/// Strategy 1 on one backend: score `candidates` (K weights, row-major, each
/// C×(D+1)) on the training set, keep the best, evaluate it on the test set.
pub fn random_search(
    backend: &mut dyn Backend,
    candidates: &[f32],
    weights: usize,
) -> Result<RandomSearch> {
    backend.prepare(Task::Score {
        split: Split::Train,
        candidates: candidates.len() / weights.max(1),
    })?;
    let (losses, seconds) = timed(|| backend.score(Split::Train, candidates))?;
    let best = argmin(&losses);
    let w = &candidates[best * weights..(best + 1) * weights];
    let best_test = backend.evaluate(Split::Test, w)?;
    Ok(RandomSearch {
        losses,
        best,
        best_test,
        seconds,
        dispatches: backend.score_dispatches(),
    })
}

/// Strategy 2 on one backend: from `w0`, `iterations` tries of
/// `W + step·randn` (perturbations drawn from `seed`, the same on every
/// backend), each kept when its training loss is lower than the best so far.
pub fn local_search(
    backend: &mut dyn Backend,
    w0: &[f32],
    iterations: usize,
    step: f32,
    seed: u64,
) -> Result<LocalSearch> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut w = w0.to_vec();
    let mut try_w = vec![0.0f32; w.len()];
    let mut best_loss = f32::INFINITY;
    // Not `with_capacity(iterations)`: a huge --iterations must not abort.
    let mut tried = Vec::new();
    let mut best = Vec::new();
    let mut accepted = 0;
    backend.prepare(Task::Score {
        split: Split::Train,
        candidates: 1,
    })?;
    let start = Instant::now();
    for _ in 0..iterations {
        for (t, &x) in try_w.iter_mut().zip(&w) {
            *t = x + step * rng.sample::<f32, _>(StandardNormal);
        }
        let loss = backend.score(Split::Train, &try_w)?[0];
        if loss < best_loss {
            std::mem::swap(&mut w, &mut try_w);
            best_loss = loss;
            accepted += 1;
        }
        tried.push(loss);
        best.push(best_loss);
    }
    let seconds = start.elapsed().as_secs_f64();
    let test = backend.evaluate(Split::Test, &w)?;
    Ok(LocalSearch {
        tried,
        best,
        accepted,
        test,
        seconds,
    })
}

/// Centred differences of the minibatch loss in f64 at `count` coordinates
/// of `w` chosen from `seed`: `(L(w + h·e_i) − L(w − h·e_i)) / 2h`, as the
/// notebook's `grad_check_sparse`. f64 keeps the rounding of the difference
/// (≈ 2e-16·L/h) far below what f32 gradients are judged by.
pub fn numerical_gradient(
    problem: &Problem,
    rows: usize,
    w: &[f32],
    count: usize,
    h: f64,
    seed: u64,
) -> Result<NumericalGradient> {
    let start = Instant::now();
    let (c, f) = (problem.classes, problem.features());
    let rows = rows.min(problem.y_train.len());
    let x = problem.x_train.slice(s![..rows, ..f - 1]).mapv(f64::from);
    let y = &problem.y_train[..rows];
    let mut w64 = Array2::from_shape_vec((c, f), w.iter().map(|&v| f64::from(v)).collect())
        .map_err(|e| Error::shape("numerical_gradient", e))?;
    let (_, grad64) = linear_softmax_loss(w64.view(), x.view(), y)?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut indices = rand::seq::index::sample(&mut rng, c * f, count.min(c * f)).into_vec();
    indices.sort_unstable();
    let mut numeric = Vec::with_capacity(indices.len());
    let mut f64_max_rel_error = 0.0f64;
    for &i in &indices {
        let (r, col) = (i / f, i % f);
        let old = w64[[r, col]];
        w64[[r, col]] = old + h;
        let (plus, _) = linear_softmax_loss(w64.view(), x.view(), y)?;
        w64[[r, col]] = old - h;
        let (minus, _) = linear_softmax_loss(w64.view(), x.view(), y)?;
        w64[[r, col]] = old;
        let d = (plus - minus) / (2.0 * h);
        f64_max_rel_error = f64_max_rel_error.max(rel_error(grad64[[r, col]], d, 1e-10));
        numeric.push(d);
    }
    Ok(NumericalGradient {
        indices,
        numeric,
        f64_max_rel_error,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Strategy 3 on one backend: its analytic gradient at `w` on the minibatch,
/// compared with `numerical` coordinate by coordinate; then the minibatch
/// loss after `W − s·dW` for each step size (all scored as one group of
/// candidates).
pub fn gradient_check(
    backend: &mut dyn Backend,
    w: &[f32],
    numerical: &NumericalGradient,
    features: usize,
    step_sizes: &[f32],
) -> Result<GradientCheck> {
    backend.prepare(Task::Gradient)?;
    let ((loss, grad), gradient_seconds) = timed(|| backend.gradient(w))?;
    let mut checks = Vec::with_capacity(numerical.indices.len());
    for (&i, &numeric) in numerical.indices.iter().zip(&numerical.numeric) {
        let analytic = grad.get(i).copied().unwrap_or(f32::NAN);
        checks.push(CoordinateCheck {
            row: i / features,
            col: i % features,
            numeric,
            analytic,
            rel_error: rel_error(f64::from(analytic), numeric, 1e-10),
        });
    }
    // NaN counts as the worst error there is.
    let max_rel_error =
        checks.iter().map(|c| c.rel_error).fold(
            0.0,
            |m: f64, e| if e.is_nan() { f64::NAN } else { m.max(e) },
        );
    let mut candidates = Vec::with_capacity(step_sizes.len() * w.len());
    for &s in step_sizes {
        candidates.extend(w.iter().zip(&grad).map(|(&x, &g)| x - s * g));
    }
    backend.prepare(Task::Score {
        split: Split::Minibatch,
        candidates: step_sizes.len(),
    })?;
    let (losses, sweep_seconds) = timed(|| backend.score(Split::Minibatch, &candidates))?;
    Ok(GradientCheck {
        loss,
        checks,
        max_rel_error,
        gradient_seconds,
        sweep: step_sizes.iter().copied().zip(losses).collect(),
        sweep_seconds,
    })
}

/// Strategy 4 on one backend for one batch size.
pub fn descent(
    backend: &mut dyn Backend,
    w0: &[f32],
    batch: usize,
    epochs: usize,
    lr: f32,
    steps_per_epoch: usize,
) -> Result<Descent> {
    backend.prepare(Task::Descent { batch })?;
    let ((stats, w), seconds) = timed(|| backend.descend(w0, batch, epochs, lr))?;
    let test = backend.evaluate(Split::Test, &w)?;
    Ok(Descent {
        batch,
        steps_per_epoch,
        epochs: stats,
        test,
        seconds,
        dispatches_per_step: backend.descent_dispatches_per_step(),
    })
}

/// A problem, a GPU backend and a CPU backend over the same chunks, and the
/// options: each method runs one strategy on both backends from the same
/// random draws.
pub struct Strategies<'g> {
    problem: Arc<Problem>,
    options: Options,
    chunk_rows: usize,
    gpu: GpuBackend<'g>,
    cpu: CpuBackend,
    upload_seconds: f64,
}

impl<'g> Strategies<'g> {
    /// Validates the options, picks the chunk size (the requested one, or
    /// fewer rows where a chunk would exceed the device's storage binding)
    /// and uploads the data to the GPU.
    pub fn new(gpu: &'g Gpu, problem: Problem, options: Options) -> Result<Self> {
        options.validate()?;
        problem.check()?;
        let problem = Arc::new(problem);
        let chunk_rows = gpu::max_chunk_rows(gpu, problem.features())?.min(options.chunk_rows);
        let grad_rows = options.grad_batch.min(problem.y_train.len());
        let ((gpu_backend, cpu_backend), upload_seconds) = timed(|| {
            let g = GpuBackend::new(
                gpu,
                Arc::clone(&problem),
                chunk_rows,
                grad_rows,
                options.candidates_per_pass,
                options.layout,
            )?;
            Ok((
                g,
                CpuBackend::new(Arc::clone(&problem), chunk_rows, grad_rows)?,
            ))
        })?;
        Ok(Strategies {
            problem,
            options,
            chunk_rows,
            gpu: gpu_backend,
            cpu: cpu_backend,
            upload_seconds,
        })
    }

    pub fn problem(&self) -> &Problem {
        &self.problem
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Rows per chunk actually used.
    pub fn chunk_rows(&self) -> usize {
        self.chunk_rows
    }

    /// Chunks of the training set.
    pub fn train_chunks(&self) -> usize {
        chunk_ranges(self.problem.y_train.len(), self.chunk_rows).len()
    }

    /// Seconds the upload of both splits to the GPU took.
    pub fn upload_seconds(&self) -> f64 {
        self.upload_seconds
    }

    /// Candidates per GPU pass actually used (binding limits may lower it).
    pub fn candidates_per_pass(&self) -> usize {
        self.gpu.candidates_per_pass()
    }

    fn seed(&self, strategy: u64) -> u64 {
        self.options
            .seed
            .wrapping_mul(0x9e37_79b9)
            .wrapping_add(strategy)
    }

    /// Strategy 1 on both backends, from the same candidates.
    pub fn random_search(&mut self) -> Result<Compared<RandomSearch>> {
        let o = &self.options;
        let len = o
            .candidates
            .checked_mul(self.problem.weights())
            .ok_or_else(|| Error::InvalidArgument {
                name: "candidates",
                msg: format!(
                    "{} candidates of {} weights overflow",
                    o.candidates,
                    self.problem.weights()
                ),
            })?;
        let candidates = try_randn(len, o.candidate_scale, self.seed(1))?;
        Ok(Compared {
            gpu: random_search(&mut self.gpu, &candidates, self.problem.weights())?,
            cpu: random_search(&mut self.cpu, &candidates, self.problem.weights())?,
        })
    }

    /// Strategy 2 on both backends, from the same W and perturbations.
    pub fn local_search(&mut self) -> Result<Compared<LocalSearch>> {
        let o = self.options.clone();
        let w0 = randn(self.problem.weights(), o.local_init_scale, self.seed(2));
        let seed = self.seed(3);
        Ok(Compared {
            gpu: local_search(&mut self.gpu, &w0, o.iterations, o.local_step, seed)?,
            cpu: local_search(&mut self.cpu, &w0, o.iterations, o.local_step, seed)?,
        })
    }

    /// Strategy 3: the f64 finite differences once, then each backend's
    /// analytic gradient and step-size sweep.
    pub fn gradient_check(&mut self) -> Result<(NumericalGradient, Compared<GradientCheck>)> {
        let o = self.options.clone();
        // The notebook's W for this step: 1e-3 · uniform[0, 1).
        let mut rng = StdRng::seed_from_u64(self.seed(4));
        let w: Vec<f32> = (0..self.problem.weights())
            .map(|_| 1e-3 * rng.random::<f32>())
            .collect();
        let numerical = numerical_gradient(
            &self.problem,
            o.grad_batch,
            &w,
            o.grad_checks,
            o.grad_h,
            self.seed(5),
        )?;
        let f = self.problem.features();
        let compared = Compared {
            gpu: gradient_check(&mut self.gpu, &w, &numerical, f, &o.step_sizes)?,
            cpu: gradient_check(&mut self.cpu, &w, &numerical, f, &o.step_sizes)?,
        };
        Ok((numerical, compared))
    }

    /// Strategy 4 for one batch size on both backends, from the same W.
    pub fn descent(&mut self, batch: usize) -> Result<Compared<Descent>> {
        if batch == 0 {
            return Err(Error::InvalidArgument {
                name: "batch size",
                msg: "must be at least 1".into(),
            });
        }
        let o = self.options.clone();
        let w0 = randn(self.problem.weights(), o.descent_init_scale, self.seed(6));
        let steps = step_ranges(self.problem.y_train.len(), self.chunk_rows, batch).len();
        Ok(Compared {
            gpu: descent(&mut self.gpu, &w0, batch, o.epochs, o.lr, steps)?,
            cpu: descent(&mut self.cpu, &w0, batch, o.epochs, o.lr, steps)?,
        })
    }
}
