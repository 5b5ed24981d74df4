//! Autotuning: the first time a kernel family meets a shape on an adapter,
//! time every valid version of it there and keep the fastest.
//!
//! Layering: the tuner sits *above* the kernels. It writes its choices into
//! the [`Gpu`]'s record ([`TuneRecord`], plain data in the device layer);
//! a launcher built with `Auto` reads that record (else its fixed rule) and
//! never measures; the engines (training, sweeps, second order, the lab's
//! strategies and benchmarks) call the functions here — [`matmul_for`],
//! [`softmax_xent_for`], [`column_sum_for`], [`new_optimizer`] — for each
//! launcher they build, which is when tuning happens. So no kernel calls
//! back into the tuner and the crate's import graph has no circle
//! (`scripts/import_graph.py`).
//!
//! Users run this crate on GPUs we never see, so a version chosen by a rule
//! reasoned on one machine ([`MatmulKernel::choose`]) is a guess elsewhere.
//! The tuner replaces the guess with a measurement, as burn/CubeCL do, for
//! the families with several versions and an `Auto`: matmul (v1..v6,
//! [`matmul`]), softmax-CE (v1, v2, [`softmax_xent`]) and the
//! column sums (v1, v2, [`column_sum`]), and the optimizer's
//! elements per thread ([`optimizer`], 1 to 16: the same bits at
//! every size).
//! - **when**: the first time an engine builds a launcher for a (shape,
//!   options) key, before the first training step; the choice is then
//!   fixed for the life of the [`Gpu`];
//! - **how**: each version is checked to build (limits), run once to warm
//!   up, then timed over 3 runs (GPU timestamps where the adapter has them,
//!   else the wall clock to device idle) by [`crate::timing`], the helper the
//!   benchmarks use; the median per product decides.
//!   A version whose first run is 20× slower than the best so far is not
//!   timed further, which bounds the cost of a bad version;
//! - **where it is kept**: in memory, and in
//!   `$XDG_CACHE_HOME/wgpu-train/autotune-<adapter hash>.json` (else
//!   `~/.cache/…`), written atomically. The hash covers the adapter's name,
//!   backend, vendor and device ids, driver and driver version, so a driver
//!   update starts a new file, whether the device has subgroups (a
//!   choice of a subgroup version is no use without them) and its limits (a
//!   `WGPU_TRAIN_LIMITS` cap). A corrupt or foreign file is ignored with a
//!   warning and kept: the cache replaces only a file it wrote (issue 28;
//!   the file rules are [`TuneRecord`]'s).
//!
//! `WGPU_TRAIN_AUTOTUNE=off|on|refresh` (or [`crate::GpuOptions::autotune`]):
//! `off` (the library's default, and the tests') uses the fixed rule and
//! touches no file; `on` (the examples' default) reads the cache and tunes
//! what is missing; `refresh` ignores the cache and tunes everything again.
//!
//! Reproducibility: matmul v1..v4 and v6 accumulate over k in increasing order;
//! whether two of them give the same bits depends on the driver's
//! floating-point contraction (on lavapipe they do). v5 (split-K) adds
//! chunks of K and then the chunks, a different association: its bits
//! differ from the others' (by rounding, within the tolerance the tests
//! hold every version to), though it gives the same bits run after run for
//! one shape, its split depending on the shape alone. The tuner may choose
//! it: the rule is that a run's choices are fixed before its first
//! step, recorded, and reusable, not that every choice gives the same bits.
//! So a run's choices are reported by [`TuneRecord::choices`] (the examples
//! record them in the run's JSON and the checkpoint's metadata), and
//! [`TuneRecord::pin`] replays them: `WGPU_TRAIN_AUTOTUNE=off` plus the recorded
//! choices repeats a tuned run bit for bit (`tests/gpu/tune.rs`). A run that
//! must match an untuned one bit for bit runs with tuning off.
//!
//! The subgroup versions (softmax-CE v4, column sums v3) are offered only
//! on devices with `wgpu::Features::SUBGROUP`. Their order is fixed by the
//! shape alone, not by the subgroup size (a quad of 4 lanes combined by
//! shuffle-xor 1 then 2; see `shaders/softmax_xent_subgroup.wgsl`), so a
//! recorded choice of them repeats the same bits on any adapter that has
//! subgroups, whatever its size. Replayed on one without (or a version
//! replayed past a capped device's limits), the choice is decided again,
//! by tuning or by the fixed rule, with a warning that names the key, both
//! versions and that the bits may differ: never an error.

use crate::error::{Error, Result};
#[cfg(not(target_arch = "wasm32"))]
use crate::gpu::GpuTimer;
use crate::gpu::{Gpu, GpuLabels, GpuTensor};
pub use crate::gpu::{TuneMode, TuneRecord};
use crate::kernels;
pub use crate::kernels::matmul::tune_key as matmul_key;
use crate::kernels::optim::{DEFAULT_ELEMS_PER_THREAD, elems_name, elems_named};
pub use crate::kernels::optim::{OPTIMIZER_ELEMS, tune_key as optimizer_key};
pub use crate::kernels::reduce::tune_key as column_sum_key;
pub use crate::kernels::softmax_xent::tune_key as softmax_xent_key;
use crate::kernels::{
    ColumnSum, ColumnSumKernel, GpuOptimizer, Matmul, MatmulKernel, SoftmaxXent, SoftmaxXentKernel,
};
use crate::optim::OptimizerConfig;
use crate::options::{Activation, MatmulOptions, MatmulShape, SoftmaxXentShape};
use std::collections::BTreeMap;

/// The matmul version for `shape`: the recorded one (pinned or cached),
/// else, with tuning on, the fastest measured now and recorded; else the
/// fixed rule ([`MatmulKernel::choose`]).
pub fn matmul(gpu: &Gpu, shape: &MatmulShape, opts: &MatmulOptions, bias: bool) -> MatmulKernel {
    kernels::decide(
        gpu,
        matmul_key(shape, opts, bias),
        MatmulKernel::choose(gpu, shape),
        MatmulKernel::name,
        MatmulKernel::from_name,
        &|k| {
            k.check_fits(gpu, shape, opts, bias)
                .map_err(|e| e.to_string())
        },
        Some(&mut || tune_matmul(gpu, shape, opts, bias)),
    )
}

/// [`matmul`] for the product a launcher would build from these operands
/// (`Auto` itself where the shapes do not fit: the launcher then reports
/// them); any other `kernel` is returned as it is.
pub fn matmul_for(
    gpu: &Gpu,
    a: &GpuTensor<f32>,
    b: &GpuTensor<f32>,
    bias: Option<&GpuTensor<f32>>,
    opts: &MatmulOptions,
    kernel: MatmulKernel,
) -> MatmulKernel {
    if kernel != MatmulKernel::Auto {
        return kernel;
    }
    match MatmulShape::resolve(a.shape(), b.shape(), bias.map(|t| t.shape()), opts) {
        Ok(shape) => matmul(gpu, &shape, opts, bias.is_some()),
        Err(_) => MatmulKernel::Auto,
    }
}

/// The softmax-CE version for `shape` (with or without dlogits), as
/// [`matmul`] chooses a matmul's. v1 and v2 add a row's terms in different
/// orders (v2 in a tree), so, as for matmul v5, the record of the choice is
/// what makes a tuned run repeatable.
pub fn softmax_xent(gpu: &Gpu, shape: &SoftmaxXentShape, with_grad: bool) -> SoftmaxXentKernel {
    kernels::decide(
        gpu,
        softmax_xent_key(shape, with_grad),
        SoftmaxXentKernel::choose(gpu, shape),
        SoftmaxXentKernel::name,
        SoftmaxXentKernel::from_name,
        &|k| {
            kernels::offered(
                k,
                &SoftmaxXentKernel::available(gpu),
                SoftmaxXentKernel::name,
            )
        },
        Some(&mut || tune_softmax_xent(gpu, shape, with_grad)),
    )
}

/// [`softmax_xent`] for the launcher's `logits` ([N, C]); as [`matmul_for`].
pub fn softmax_xent_for(
    gpu: &Gpu,
    logits: &GpuTensor<f32>,
    with_grad: bool,
    kernel: SoftmaxXentKernel,
) -> SoftmaxXentKernel {
    match (kernel, logits.shape()) {
        (SoftmaxXentKernel::Auto, &[n, c]) => {
            softmax_xent(gpu, &SoftmaxXentShape { n, c }, with_grad)
        }
        _ => kernel,
    }
}

/// The column-sum version for an R×C sum (with the fused activation
/// backward when `activation` is given). v1 adds each column's rows in
/// order, v2 in a tree: their bits differ, as softmax-CE's do.
pub fn column_sum(
    gpu: &Gpu,
    rows: usize,
    cols: usize,
    activation: Option<Activation>,
) -> ColumnSumKernel {
    kernels::decide(
        gpu,
        column_sum_key(rows, cols, activation),
        ColumnSumKernel::choose(gpu),
        ColumnSumKernel::name,
        ColumnSumKernel::from_name,
        &|k| kernels::offered(k, &ColumnSumKernel::available(gpu), ColumnSumKernel::name),
        Some(&mut || tune_column_sum(gpu, rows, cols, activation)),
    )
}

/// [`column_sum`] for the launcher's `x` ([R, C]); as [`matmul_for`].
pub fn column_sum_for(
    gpu: &Gpu,
    x: &GpuTensor<f32>,
    activation: Option<Activation>,
    kernel: ColumnSumKernel,
) -> ColumnSumKernel {
    match (kernel, x.shape()) {
        (ColumnSumKernel::Auto, &[rows, cols]) => column_sum(gpu, rows, cols, activation),
        _ => kernel,
    }
}

/// The optimizer's elements per thread for `config` over `n` parameters
/// (one of [`OPTIMIZER_ELEMS`]). The update is elementwise, so every
/// choice gives the same bits: only the speed differs.
pub fn optimizer(gpu: &Gpu, config: &OptimizerConfig, n: usize) -> u32 {
    kernels::decide(
        gpu,
        optimizer_key(config, n),
        DEFAULT_ELEMS_PER_THREAD,
        elems_name,
        elems_named,
        // Every size builds and gives the same bits.
        &|_| Ok(()),
        Some(&mut || tune_optimizer(gpu, config, n)),
    )
}

/// [`GpuOptimizer::new`] with the elements per thread [`optimizer`] chooses.
pub fn new_optimizer(
    gpu: &Gpu,
    config: OptimizerConfig,
    params: &GpuTensor<f32>,
    grads: &GpuTensor<f32>,
) -> Result<GpuOptimizer> {
    let elems = optimizer(gpu, &config, params.len());
    GpuOptimizer::with_elems_per_thread(gpu, config, params, grads, elems)
}

/// Checks recorded choices (a checkpoint's, a run's JSON): every value must
/// name a kernel version this build has, or replaying them would silently
/// fall back to another version.
pub fn check_choices(choices: &BTreeMap<String, String>) -> Result<()> {
    match choices.iter().find(|(k, v)| !known(k, v)) {
        None => Ok(()),
        Some((k, v)) => Err(Error::InvalidArgument {
            name: "recorded kernel choices",
            msg: format!(
                "'{k}' is recorded as '{v}', which is not a version of that kernel in this build ({})",
                versions(k).join(", ")
            ),
        }),
    }
}

/// The training steps `--fused auto` chooses between
/// (`train::choose_step`): the reference program, the per-layer fused
/// step, the row-block step.
pub const TRAIN_STEPS: [&str; 3] = ["reference", "layers", "rows"];

/// The version names of the family a key belongs to (by its first word).
fn versions(key: &str) -> Vec<&'static str> {
    if key.starts_with("train_step ") {
        TRAIN_STEPS.to_vec()
    } else if key.starts_with("softmax_xent ") {
        SoftmaxXentKernel::EVERY
            .map(SoftmaxXentKernel::name)
            .to_vec()
    } else if key.starts_with("column_sum ") {
        ColumnSumKernel::EVERY.map(ColumnSumKernel::name).to_vec()
    } else if key.starts_with("optimizer ") {
        OPTIMIZER_ELEMS.map(elems_name).to_vec()
    } else {
        MatmulKernel::ALL.map(MatmulKernel::name).to_vec()
    }
}

/// Whether `name` is a version of `key`'s family.
fn known(key: &str, name: &str) -> bool {
    versions(key).contains(&name)
}

/// The tuner's timing: the sizing run, then 3 timed runs of about 2 ms each
/// (so the timer's resolution and a pass's fixed cost do not decide).
#[cfg(not(target_arch = "wasm32"))]
const PLAN: crate::timing::Plan = crate::timing::Plan {
    warmup: 1,
    runs: 3,
    target_run_s: 0.002,
    max_reps: 64,
};

/// Times every version on scratch tensors of `shape` and returns the fastest.
fn tune_matmul(
    gpu: &Gpu,
    shape: &MatmulShape,
    opts: &MatmulOptions,
    bias: bool,
) -> Result<MatmulKernel> {
    let sa = if opts.trans_a {
        [shape.batch, shape.k, shape.m]
    } else {
        [shape.batch, shape.m, shape.k]
    };
    let sb = if opts.trans_b {
        [shape.n, shape.k]
    } else {
        [shape.k, shape.n]
    };
    let fill = |n: usize| -> Vec<f32> { (0..n).map(|i| ((i % 17) as f32 - 8.0) / 8.0).collect() };
    let a_shape: &[usize] = if shape.batch == 1 { &sa[1..] } else { &sa };
    let a = GpuTensor::from_slice(gpu, a_shape, &fill(sa.iter().product()))?;
    let b = GpuTensor::from_slice(gpu, &sb, &fill(sb.iter().product()))?;
    let bias_t = GpuTensor::from_slice(gpu, &[shape.n], &fill(shape.n))?;
    let c = GpuTensor::<f32>::zeros(gpu, &shape.output_shape())?;
    fastest(
        gpu,
        MatmulKernel::ALL
            .into_iter()
            .filter(|k| k.worth_timing(shape, opts)),
        |kernel| Matmul::new(gpu, &a, &b, bias.then_some(&bias_t), &c, *opts, kernel),
        |mm, pass| mm.record(pass),
    )
}

/// Times every softmax-CE version on scratch tensors of `shape`.
fn tune_softmax_xent(
    gpu: &Gpu,
    shape: &SoftmaxXentShape,
    with_grad: bool,
) -> Result<SoftmaxXentKernel> {
    let (n, c) = (shape.n, shape.c);
    let logits: Vec<f32> = (0..n * c).map(|i| ((i % 13) as f32 - 6.0) / 2.0).collect();
    let labels: Vec<u32> = (0..n).map(|i| (i * 7 % c) as u32).collect();
    let logits = GpuTensor::from_slice(gpu, &[n, c], &logits)?;
    let labels = GpuLabels::new(gpu, &labels, c)?;
    let loss = GpuTensor::<f32>::zeros(gpu, &[n])?;
    let correct = GpuTensor::<u32>::zeros(gpu, &[n])?;
    let dlogits = GpuTensor::<f32>::zeros(gpu, &[n, c])?;
    fastest(
        gpu,
        SoftmaxXentKernel::available(gpu).into_iter(),
        |kernel| {
            SoftmaxXent::new(
                gpu,
                &logits,
                &labels,
                &loss,
                &correct,
                with_grad.then_some(&dlogits),
                kernel,
            )
        },
        |sx, pass| sx.record(pass),
    )
}

/// Times the optimizer's update over `n` scratch parameters at each size.
fn tune_optimizer(gpu: &Gpu, config: &OptimizerConfig, n: usize) -> Result<u32> {
    let fill: Vec<f32> = (0..n).map(|i| ((i % 7) as f32 - 3.0) * 1e-3).collect();
    let params = GpuTensor::from_slice(gpu, &[n], &fill)?;
    let grads = GpuTensor::from_slice(gpu, &[n], &fill)?;
    fastest(
        gpu,
        OPTIMIZER_ELEMS.into_iter(),
        |elems| GpuOptimizer::with_elems_per_thread(gpu, *config, &params, &grads, elems),
        |opt, pass| opt.record(pass),
    )
}

/// Times every column-sum version on scratch tensors.
fn tune_column_sum(
    gpu: &Gpu,
    rows: usize,
    cols: usize,
    activation: Option<Activation>,
) -> Result<ColumnSumKernel> {
    let fill: Vec<f32> = (0..rows * cols).map(|i| ((i % 11) as f32) / 11.0).collect();
    let x = GpuTensor::from_slice(gpu, &[rows, cols], &fill)?;
    let h = GpuTensor::from_slice(gpu, &[rows, cols], &fill)?;
    let dz = GpuTensor::<f32>::zeros(gpu, &[rows, cols])?;
    let sums = GpuTensor::<f32>::zeros(gpu, &[cols])?;
    fastest(
        gpu,
        ColumnSumKernel::available(gpu).into_iter(),
        |kernel| match activation {
            None => ColumnSum::new(gpu, &x, &sums, kernel),
            Some(a) => ColumnSum::with_activation(gpu, &x, &h, &dz, &sums, a, kernel),
        },
        |sum, pass| sum.record(pass),
    )
}

/// The fastest of `versions` by the median of [`PLAN`]'s runs. A version
/// that cannot be built (past this device's limits) is skipped, and one
/// whose first run is 20× slower than the best so far is not timed further,
/// which bounds the cost of a bad version.
#[cfg(target_arch = "wasm32")]
fn fastest<K: Copy, L>(
    _: &Gpu,
    _: impl Iterator<Item = K>,
    _: impl Fn(K) -> Result<L>,
    _: impl Fn(&L, &mut wgpu::ComputePass<'_>),
) -> Result<K> {
    Err(Error::InvalidArgument {
        name: "autotune",
        msg: "kernels are not timed in a browser".into(),
    })
}

#[cfg(not(target_arch = "wasm32"))]
fn fastest<K: Copy, L>(
    gpu: &Gpu,
    versions: impl Iterator<Item = K>,
    build: impl Fn(K) -> Result<L>,
    record: impl Fn(&L, &mut wgpu::ComputePass<'_>),
) -> Result<K> {
    let timer = GpuTimer::new(gpu)?;
    let mut best: Option<(f64, f64, K)> = None; // (median, first, version)
    for version in versions {
        let Ok(launcher) = build(version) else {
            continue;
        };
        let run = |reps: usize| {
            timer.time(gpu, |pass| {
                for _ in 0..reps {
                    record(&launcher, pass);
                }
            })
        };
        let first = run(1)?;
        if best.is_some_and(|(_, f, _)| first > 20.0 * f) {
            continue;
        }
        let median = crate::timing::measure_after(&PLAN, timer.kind().name(), first, run)?.seconds;
        if best.is_none_or(|(m, _, _)| median < m) {
            best = Some((median, first, version));
        }
    }
    best.map(|(_, _, k)| k).ok_or_else(|| {
        Error::shape(
            "autotune",
            "no version of the kernel could be built for this shape".to_string(),
        )
    })
}
