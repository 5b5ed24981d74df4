//! The GPU-vs-CPU comparison behind `src/lab/cli/gpu_vs_cpu.rs` (the `gpu_vs_cpu` example): every kernel
//! family at the models' shapes (and square matrix products), and a whole
//! training step of each model, timed on the GPU and on the CPU twin, with
//! the results of both sides checked against each other.
//!
//! Timing, per side and per case: one warm-up run decides how many
//! repetitions a timed run holds (short kernels are repeated until a run
//! lasts about [`Options::target_run_s`], at most [`Options::max_reps`]);
//! more warm-up runs follow, then [`Options::runs`] timed runs; the figure
//! is the median over the timed runs of (run time / repetitions).
//! - GPU kernels: the repetitions are recorded into one compute pass, timed
//!   with timestamp queries where the device has them ([`GpuTimer`]), else
//!   by the wall clock around the submit and the wait. Timestamps exclude
//!   the submit and the wait, not the per-dispatch cost.
//! - CPU kernels: the twin called in a loop, wall clock. The twins write
//!   into buffers allocated once, as the training loop does.
//! - Training steps: one run is one epoch of [`Options::train_steps`]
//!   steps through [`GpuEngine`] / [`CpuEngine`] on synthetic data, wall
//!   clock on both sides, so the GPU figure includes what training really
//!   pays per epoch: the order upload, the submits, the waits and the loss
//!   readback.
//!
//! FLOPs are the counted floors (2·M·N·K per product;
//! [`Model::flops_per_example`] × batch per step); bytes are the minimum a
//! kernel must move (each input read once, each output written once).

use crate::cpu::{self, CpuOptimizer, Tolerance};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuLabels, GpuTensor, GpuTimer};
use crate::kernels::gather::{Gather, GatherOptions, GpuDataset};
use crate::kernels::{Matmul, MatmulKernel, SoftmaxXent, SoftmaxXentKernel};
use crate::model::{LinearSoftmax, Mlp, Model, Op, parameter_count};
use crate::optim::OptimizerConfig;
use crate::options::{Activation, MatmulOptions, MatmulShape};
use crate::train::{CpuEngine, Engine, FusedStep, GpuEngine, TrainConfig, TrainData};
use ndarray::{Array1, Array2, ArrayD, IxDyn};
use serde::Serialize;
use std::time::Instant;

/// What to run and how long.
#[derive(Clone, Debug)]
pub struct Options {
    /// Seconds, not minutes: fewer runs, small datasets, no square products.
    pub quick: bool,
    /// Runs the 4096³ product on software adapters too (137 GFLOP: minutes
    /// on lavapipe); it then runs once per side, without warm-up.
    pub big: bool,
    /// Timed runs per side (the median is reported).
    pub runs: usize,
    /// Untimed runs per side before them (at least 1: it sizes the runs).
    pub warmup: usize,
    /// Target length of one timed kernel run, in seconds.
    pub target_run_s: f64,
    /// Most repetitions of a kernel in one run.
    pub max_reps: usize,
    /// Training steps per timed epoch.
    pub train_steps: usize,
    /// Only cases whose "family/name" contains this.
    pub filter: Option<String>,
}

/// The most runs, warm-up runs, repetitions or training steps a benchmark
/// takes: far beyond any useful median, and bounded so that a typo such as
/// `--runs 18446744073709551615` is an error, not a run that never ends.
pub const MAX_RUNS: usize = 10_000;

impl Options {
    /// The full run.
    pub fn full() -> Self {
        Options {
            quick: false,
            big: false,
            runs: 15,
            warmup: 2,
            target_run_s: 0.005,
            max_reps: 256,
            train_steps: 16,
            filter: None,
        }
    }

    /// A run of a few seconds, for CI.
    pub fn quick() -> Self {
        Options {
            quick: true,
            runs: 3,
            warmup: 1,
            target_run_s: 0.002,
            max_reps: 32,
            train_steps: 2,
            ..Self::full()
        }
    }

    /// Checks the counts and the target time (run calls it too).
    pub fn validate(&self) -> Result<()> {
        // Upper bounds too: a count from a flag must not run for ever.
        for (name, v, max) in [
            ("runs", self.runs, MAX_RUNS),
            ("warmup", self.warmup, MAX_RUNS),
            ("max_reps", self.max_reps, MAX_RUNS),
            ("train_steps", self.train_steps, MAX_RUNS),
        ] {
            if v == 0 {
                return Err(Error::InvalidArgument {
                    name,
                    msg: "must be at least 1".into(),
                });
            }
            crate::error::at_most(name, v, max)?;
        }
        if !(self.target_run_s.is_finite() && self.target_run_s > 0.0) {
            return Err(Error::InvalidArgument {
                name: "target_run_s",
                msg: format!("must be a positive number, got {}", self.target_run_s),
            });
        }
        // A filter that matches nothing would print an empty table and
        // "succeed"; say so instead, with the names it could match.
        let mut cases = case_names();
        // The column sums have versions to compare (`--tune`) but no CPU
        // comparison row.
        cases.extend(COLUMN_SUM_CASES.map(|(n, ..)| ("column_sum", n.to_string())));
        // The scale shapes run with `--versions --big` only.
        cases.extend(scale_cases().into_iter().map(|c| ("matmul", c.name)));
        if let Some(f) = &self.filter
            && !cases.iter().any(|(family, name)| self.wants(family, name))
        {
            return Err(Error::InvalidArgument {
                name: "filter",
                msg: format!(
                    "'{f}' matches no case; the cases are {}",
                    cases
                        .iter()
                        .map(|(family, name)| format!("{family}/{name}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        Ok(())
    }

    /// The runs, as the timing helper takes them.
    pub fn plan(&self) -> crate::timing::Plan {
        crate::timing::Plan {
            warmup: self.warmup,
            runs: self.runs,
            target_run_s: self.target_run_s,
            max_reps: self.max_reps,
        }
    }

    fn wants(&self, family: &str, name: &str) -> bool {
        self.filter
            .as_ref()
            .is_none_or(|f| format!("{family}/{name}").contains(f.as_str()))
    }
}

pub use crate::timing::Measurement;

/// One case timed on both sides.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    /// "matmul", "softmax_xent", "optimizer", "gather" or "train_step".
    pub family: &'static str,
    /// Stable identifier, e.g. "mlp.l1.fwd".
    pub name: String,
    /// Shape and options, e.g. "128x128x784 nt +bias sigmoid".
    pub detail: String,
    /// Counted FLOPs per repetition (0 where FLOPs are not the measure).
    pub flops: u64,
    /// Minimum bytes moved per repetition (0 where bytes are not the measure).
    pub bytes: u64,
    /// Examples per repetition (training steps: the batch).
    pub samples: u64,
    /// GPU dispatches per repetition (training steps; 0 elsewhere).
    pub dispatches: f64,
    pub gpu: Option<Measurement>,
    pub cpu: Option<Measurement>,
    /// Whether the GPU's result agreed with the CPU's (`None`: not run).
    pub agreed: Option<bool>,
    /// What was compared and the tolerance, or the mismatch.
    pub check: String,
    /// Why a side did not run, or how it ran differently.
    pub note: String,
}

impl Comparison {
    fn new(family: &'static str, name: &str, detail: String) -> Self {
        Comparison {
            family,
            name: name.to_string(),
            detail,
            flops: 0,
            bytes: 0,
            samples: 0,
            dispatches: 0.0,
            gpu: None,
            cpu: None,
            agreed: None,
            check: String::new(),
            note: String::new(),
        }
    }

    /// GFLOP/s of a side, where FLOPs are counted.
    pub fn gflops(&self, m: &Measurement) -> Option<f64> {
        (self.flops > 0).then(|| self.flops as f64 / m.seconds / 1e9)
    }

    /// GB/s of a side, where bytes are counted.
    pub fn gbps(&self, m: &Measurement) -> Option<f64> {
        (self.bytes > 0).then(|| self.bytes as f64 / m.seconds / 1e9)
    }

    /// Examples per second of a side (training steps).
    pub fn samples_per_s(&self, m: &Measurement) -> Option<f64> {
        (self.samples > 0).then(|| self.samples as f64 / m.seconds)
    }

    /// CPU time over GPU time: above 1 the GPU is faster.
    pub fn gpu_speedup(&self) -> Option<f64> {
        match (&self.gpu, &self.cpu) {
            (Some(g), Some(c)) => Some(c.seconds / g.seconds),
            _ => None,
        }
    }

    /// True when neither side ran (filtered in but skipped).
    pub fn skipped(&self) -> bool {
        self.gpu.is_none() && self.cpu.is_none()
    }

    /// The side's headline rate: GFLOP/s where FLOPs are counted, else GB/s.
    pub fn rate(&self, m: &Measurement) -> Option<(f64, &'static str)> {
        self.gflops(m)
            .map(|r| (r, "GFLOP/s"))
            .or_else(|| self.gbps(m).map(|r| (r, "GB/s")))
    }

    /// [`Comparison::rate`] as a fraction of the matching peak, if given.
    pub fn fraction_of_peak(
        &self,
        m: &Measurement,
        peak_gflops: Option<f64>,
        peak_gbps: Option<f64>,
    ) -> Option<f64> {
        match self.rate(m)? {
            (r, "GFLOP/s") => peak_gflops.map(|p| r / p),
            (r, _) => peak_gbps.map(|p| r / p),
        }
    }

    /// One machine-readable row: the case, both sides' figures (null for a
    /// side that did not run), the GPU speed-up and the check.
    pub fn to_json(&self, adapter: &str, peaks: &Peaks) -> serde_json::Value {
        let side = |m: &Option<Measurement>, gflops: Option<f64>, gbps: Option<f64>| match m {
            None => serde_json::Value::Null,
            Some(m) => serde_json::json!({
                "seconds": m.seconds,
                "min_seconds": m.min_seconds,
                "max_seconds": m.max_seconds,
                "runs": m.runs,
                "reps": m.reps,
                "timer": m.timer,
                "gflops": self.gflops(m),
                "gbps": self.gbps(m),
                "samples_per_s": self.samples_per_s(m),
                "fraction_of_peak": self.fraction_of_peak(m, gflops, gbps),
            }),
        };
        serde_json::json!({
            "family": self.family,
            "name": self.name,
            "detail": self.detail,
            "adapter": adapter,
            "flops": self.flops,
            "bytes": self.bytes,
            "samples": self.samples,
            "dispatches": self.dispatches,
            "gpu": side(&self.gpu, peaks.gpu_gflops, peaks.gpu_gbps),
            "cpu": side(&self.cpu, peaks.cpu_gflops, peaks.cpu_gbps),
            "gpu_speedup": self.gpu_speedup(),
            "agreed": self.agreed,
            "check": self.check,
            "note": self.note,
        })
    }
}

/// Peak rates to report figures against (`None`: not given).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Peaks {
    pub gpu_gflops: Option<f64>,
    pub gpu_gbps: Option<f64>,
    pub cpu_gflops: Option<f64>,
    pub cpu_gbps: Option<f64>,
}

/// Times `run(reps)` (which returns the seconds it took for `reps`
/// repetitions) with [`crate::timing::measure`].
fn measure(
    opts: &Options,
    timer: &'static str,
    run: impl FnMut(usize) -> Result<f64>,
) -> Result<Measurement> {
    crate::timing::measure(&opts.plan(), timer, run)
}

/// Times `reps` recordings of `record` in one timed pass, with [`measure`].
fn measure_gpu(
    opts: &Options,
    gpu: &Gpu,
    timer: &GpuTimer,
    record: impl Fn(&mut wgpu::ComputePass<'_>),
) -> Result<Measurement> {
    measure(opts, timer.kind().name(), |reps| {
        timer.time(gpu, |pass| {
            for _ in 0..reps {
                record(pass);
            }
        })
    })
}

/// The wall clock around `reps` calls of `f`.
fn cpu_run(reps: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    let start = Instant::now();
    for _ in 0..reps {
        f()?;
    }
    Ok(start.elapsed().as_secs_f64())
}

/// Deterministic values in [-1, 1): the speed does not depend on them.
fn pattern(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8) as f32
                / (1u32 << 23) as f32
                - 1.0
        })
        .collect()
}

fn array(shape: &[usize], seed: u32) -> Result<ArrayD<f32>> {
    ArrayD::from_shape_vec(IxDyn(shape), pattern(shape.iter().product(), seed))
        .map_err(|e| Error::shape("bench", e))
}

/// `n` random images of `shape` with labels in `0..10`, from `seed`
/// ([`crate::data::synthetic::images`]).
pub fn synthetic_images(n: usize, shape: [usize; 3], seed: u64) -> Result<Dataset> {
    crate::data::synthetic::images(n, shape, 10, seed)
}

fn agree(c: &mut Comparison, what: &str, result: std::result::Result<(), Box<cpu::Mismatch>>) {
    match result {
        Ok(()) => {
            c.agreed = Some(true);
            c.check = what.to_string();
        }
        Err(m) => {
            c.agreed = Some(false);
            c.check = format!("{what}: {m}");
        }
    }
}

/// One matrix product to time: the operands' shapes as stored, the options,
/// and whether a bias is added. [`matmul_cases`] derives the model cases from
/// the models' own programs, so the benchmarks time exactly the products a
/// training step records.
#[derive(Clone, Debug, PartialEq)]
pub struct MatmulCase {
    /// e.g. "mlp.h1" (the product that writes `h1`) or "square.1024".
    pub name: String,
    pub a: Vec<usize>,
    pub b: Vec<usize>,
    pub opts: MatmulOptions,
    pub bias: bool,
}

impl MatmulCase {
    /// The resolved sizes (M, N, K, batch).
    pub fn shape(&self) -> Result<MatmulShape> {
        // B is [K, N] or [N, K], after a batch dimension if it has one.
        // (a B of fewer dimensions gets its error from `resolve`).
        let last = self.b.len().saturating_sub(1);
        let at = if self.opts.trans_b {
            last.saturating_sub(1)
        } else {
            last
        };
        let n = self.b.get(at).copied().unwrap_or(0);
        let bias = [n];
        MatmulShape::resolve(&self.a, &self.b, self.bias.then_some(&bias[..]), &self.opts)
    }
}

/// Every matrix product of one training step of `model` at batch `rows`, in
/// the order the step records them, named `{prefix}.{output tensor}`.
pub fn program_matmuls(prefix: &str, model: &dyn Model, rows: usize) -> Vec<MatmulCase> {
    let program = model.train_program(rows);
    program
        .ops
        .iter()
        .filter_map(|op| match op {
            Op::Matmul {
                a,
                b,
                bias,
                out,
                opts,
                ..
            } => Some(MatmulCase {
                name: format!("{prefix}.{}", program.spec(*out).name),
                a: program.spec(*a).shape.clone(),
                b: program.spec(*b).shape.clone(),
                opts: *opts,
                bias: bias.is_some(),
            }),
            _ => None,
        })
        .collect()
}

/// The products the benchmarks time: the MLP 784-128-128-10 at batch 128
/// and the CIFAR-10 linear classifier 10×3073 at batch 256 (bias folded in),
/// straight from their training programs, then square NN products.
pub fn matmul_cases() -> Vec<MatmulCase> {
    let mut cases = program_matmuls("mlp", &Mlp::mnist(Activation::Sigmoid), 128);
    if let Ok(linear) = LinearSoftmax::new(3072, 10) {
        cases.extend(program_matmuls("linear", &linear, 256));
    }
    for n in [1024, 4096] {
        cases.push(MatmulCase {
            name: format!("square.{n}"),
            a: vec![n, n],
            b: vec![n, n],
            opts: MatmulOptions::nn(),
            bias: false,
        });
    }
    cases
}

/// The shapes users bring beyond the models' and 4096³ (issue 24), timed
/// by `--versions --big`: sizes that do not divide any tile (4095³, 4097³),
/// a tall-skinny and a short-wide product, and a batch of 64 products of
/// 512³. On a software adapter they run only when `--filter` names them
/// (e.g. `matmul/scale.batched`): each is 17 to 137 GFLOP per version.
pub fn scale_cases() -> Vec<MatmulCase> {
    let nn = MatmulOptions::nn();
    let case = |name: &str, a: Vec<usize>, b: Vec<usize>, opts| MatmulCase {
        name: format!("scale.{name}"),
        a,
        b,
        opts,
        bias: false,
    };
    vec![
        case("4095", vec![4095, 4095], vec![4095, 4095], nn),
        case("4097", vec![4097, 4097], vec![4097, 4097], nn),
        case(
            "tall_skinny",
            vec![16384, 4096],
            vec![128, 4096],
            MatmulOptions::nt(),
        ),
        case("short_wide", vec![128, 4096], vec![4096, 16384], nn),
        case("batched", vec![64, 512, 512], vec![64, 512, 512], nn),
    ]
}

fn describe(case: &MatmulCase, shape: &MatmulShape) -> String {
    let t = |b: bool| if b { 't' } else { 'n' };
    let mut s = format!(
        "{}x{}x{} {}{}",
        shape.m,
        shape.n,
        shape.k,
        t(case.opts.trans_a),
        t(case.opts.trans_b)
    );
    if case.bias {
        s.push_str(" +bias");
    }
    if shape.batch > 1 {
        s.push_str(&format!(" batch {}", shape.batch));
    }
    match case.opts.activation {
        Activation::Identity => {}
        Activation::Sigmoid => s.push_str(" sigmoid"),
        Activation::Relu => s.push_str(" relu"),
    }
    s
}

/// Why a matrix-product case is not run (`None`: it runs): the squares in
/// quick mode, 4096³ on a software adapter without [`Options::big`].
fn matmul_skip(
    gpu: &Gpu,
    opts: &Options,
    case: &MatmulCase,
    shape: &MatmulShape,
) -> Option<String> {
    if case.name.starts_with("square.") && opts.quick {
        return Some("skipped: --quick runs the model shapes only".into());
    }
    if shape.m >= 4096 && gpu.is_software() && !opts.big {
        return Some(
            "skipped: 137 GFLOP is minutes on a software adapter; --big runs it once".into(),
        );
    }
    None
}

/// A matrix-product case's inputs on both sides, made once for the CPU
/// twin, the check and every GPU version timed on it.
struct MatmulSetup {
    a: ArrayD<f32>,
    b: ArrayD<f32>,
    bias: Array1<f32>,
    ga: GpuTensor<f32>,
    gb: GpuTensor<f32>,
    gbias: GpuTensor<f32>,
    out: GpuTensor<f32>,
    /// Rounding grows with K; an indexing bug is off by O(1).
    tol: Tolerance,
}

impl MatmulSetup {
    fn new(gpu: &Gpu, case: &MatmulCase) -> Result<Self> {
        let shape = case.shape()?;
        let (a, b) = (array(&case.a, 1)?, array(&case.b, 2)?);
        let bias = Array1::from(pattern(shape.n, 3));
        Ok(MatmulSetup {
            ga: GpuTensor::from_array(gpu, &a)?,
            gb: GpuTensor::from_array(gpu, &b)?,
            gbias: GpuTensor::from_slice(gpu, &[shape.n], &pattern(shape.n, 3))?,
            out: GpuTensor::<f32>::zeros(gpu, &shape.output_shape())?,
            tol: Tolerance::new(1e-5 + 1e-6 * shape.k as f32, 1e-4),
            a,
            b,
            bias,
        })
    }

    /// The product on the GPU with `kernel`, writing `self.out`.
    /// The product as `kernel` (`Auto`: the tuner's choice, measured now
    /// where tuning is on and the shape is new).
    fn launcher(&self, gpu: &Gpu, case: &MatmulCase, kernel: MatmulKernel) -> Result<Matmul> {
        let bias = case.bias.then_some(&self.gbias);
        let kernel = crate::tune::matmul_for(gpu, &self.ga, &self.gb, bias, &case.opts, kernel);
        Matmul::new(gpu, &self.ga, &self.gb, bias, &self.out, case.opts, kernel)
    }

    /// The CPU twin's product into `y`.
    fn cpu_into(&self, case: &MatmulCase, y: &mut ArrayD<f32>) -> Result<()> {
        let bias = case.bias.then_some(self.bias.view());
        cpu::matmul_into(&self.a, &self.b, bias, case.opts, y.view_mut())
    }

    fn agreement(&self) -> String {
        format!(
            "output within {} + {}·|cpu| of the CPU twin",
            self.tol.atol, self.tol.rtol
        )
    }
}

fn bench_matmul(
    gpu: &Gpu,
    timer: &GpuTimer,
    opts: &Options,
    case: &MatmulCase,
) -> Result<Comparison> {
    let shape = case.shape()?;
    let mut c = Comparison::new("matmul", &case.name, describe(case, &shape));
    c.flops = shape.flops();
    if let Some(why) = matmul_skip(gpu, opts, case, &shape) {
        c.note = why;
        return Ok(c);
    }
    let mut o = opts.clone();
    if shape.m >= 4096 && gpu.is_software() {
        // One run per side, no warm-up beyond the run that sizes it.
        o.runs = 1;
        o.warmup = 1;
        c.note = "--big on a software adapter: 1 timed run per side after 1 warm-up".into();
    }
    let setup = MatmulSetup::new(gpu, case)?;
    let mm = setup.launcher(gpu, case, MatmulKernel::Auto)?;
    c.detail = format!("{} [{}]", c.detail, mm.kernel().name());
    c.gpu = Some(measure_gpu(&o, gpu, timer, |pass| mm.record(pass))?);

    let mut y = ArrayD::<f32>::zeros(shape.output_shape());
    c.cpu = Some(measure(&o, "wall", |reps| {
        cpu_run(reps, || setup.cpu_into(case, &mut y))
    })?);
    let got = setup.out.to_array(gpu)?;
    agree(
        &mut c,
        &setup.agreement(),
        cpu::compare(&got, &y, setup.tol),
    );
    Ok(c)
}

fn bench_softmax(
    gpu: &Gpu,
    timer: &GpuTimer,
    opts: &Options,
    name: &str,
    n: usize,
) -> Result<Comparison> {
    let classes = 10;
    let mut c = Comparison::new("softmax_xent", name, format!("{n}x{classes} loss+dlogits"));
    let logits = array(&[n, classes], 7)?.mapv(|v| 4.0 * v);
    let labels: Vec<u32> = (0..n as u32).map(|i| i * 7 % classes as u32).collect();
    let gl = GpuTensor::from_array(gpu, &logits)?;
    let glabels = GpuLabels::new(gpu, &labels, classes)?;
    let gloss = GpuTensor::<f32>::zeros(gpu, &[n])?;
    let gcorrect = GpuTensor::<u32>::zeros(gpu, &[n])?;
    let gd = GpuTensor::<f32>::zeros(gpu, &[n, classes])?;
    let sx = SoftmaxXent::new(
        gpu,
        &gl,
        &glabels,
        &gloss,
        &gcorrect,
        Some(&gd),
        crate::tune::softmax_xent_for(gpu, &gl, true, SoftmaxXentKernel::Auto),
    )?;
    c.bytes = sx.bytes();
    c.detail = format!("{} [{}]", c.detail, sx.kernel().name());
    c.gpu = Some(measure_gpu(opts, gpu, timer, |pass| sx.record(pass))?);

    let mut loss = Array1::<f32>::zeros(n);
    let mut correct = vec![0u32; n];
    let mut d = Array2::<f32>::zeros((n, classes));
    c.cpu = Some(measure(opts, "wall", |reps| {
        cpu_run(reps, || {
            cpu::softmax_xent_into(
                &logits,
                &labels,
                loss.view_mut(),
                &mut correct,
                Some(d.view_mut()),
            )
        })
    })?);
    let tol = Tolerance::new(1e-6, 1e-5);
    let got_d = gd.to_array(gpu)?;
    let got_loss = gloss.to_array(gpu)?;
    let result = cpu::compare(&got_d, &d, tol).and_then(|()| cpu::compare(&got_loss, &loss, tol));
    agree(
        &mut c,
        &format!("loss and dlogits within {} + {}·|cpu|", tol.atol, tol.rtol),
        result,
    );
    if c.agreed == Some(true) && gcorrect.read(gpu)? != correct {
        c.agreed = Some(false);
        c.check = "the correct-prediction flags differ".into();
    }
    Ok(c)
}

fn bench_optimizer(
    gpu: &Gpu,
    timer: &GpuTimer,
    opts: &Options,
    name: &str,
    config: OptimizerConfig,
    n: usize,
) -> Result<Comparison> {
    let mut c = Comparison::new(
        "optimizer",
        name,
        format!("{} over {n} parameters", config.name()),
    );
    c.bytes = n as u64 * config.bytes_per_param();
    let p0 = pattern(n, 11);
    let g0: Vec<f32> = pattern(n, 12).iter().map(|g| g * 1e-2).collect();
    let params = GpuTensor::from_slice(gpu, &[n], &p0)?;
    let grads = GpuTensor::from_slice(gpu, &[n], &g0)?;
    let gopt = crate::tune::new_optimizer(gpu, config, &params, &grads)?;
    let mut copt = CpuOptimizer::new(config, n)?;
    let mut p = p0.clone();

    // Agreement first, from the same start: one update each.
    gopt.run(gpu, 1)?;
    copt.step(&mut p, &g0)?;
    let tol = Tolerance::new(2e-6, 2e-5);
    let got = Array1::from(params.read(gpu)?);
    agree(
        &mut c,
        &format!(
            "parameters after one update within {} + {}·|cpu|",
            tol.atol, tol.rtol
        ),
        cpu::compare(&got, &Array1::from(p.clone()), tol),
    );

    c.note = format!(
        "GPU: {} dispatches per update (step scalars, then the update)",
        gopt.dispatches()
    );
    c.gpu = Some(measure_gpu(opts, gpu, timer, |pass| gopt.record(pass))?);
    c.cpu = Some(measure(opts, "wall", |reps| {
        cpu_run(reps, || copt.step(&mut p, &g0))
    })?);
    Ok(c)
}

fn bench_gather(
    gpu: &Gpu,
    timer: &GpuTimer,
    opts: &Options,
    name: &str,
    data: &Dataset,
    batch: usize,
    append_one: bool,
) -> Result<Comparison> {
    let dim = data.dim();
    let width = dim + usize::from(append_one);
    let mut c = Comparison::new(
        "gather",
        name,
        format!(
            "{batch} of {} examples, {dim} u8 -> {width} f32",
            data.len()
        ),
    );
    // Pixels read as bytes, x written as f32, and per row the index read,
    // the label read and written (u32).
    c.bytes = (batch * (dim + 4 * width + 12)) as u64;
    let gopts = GatherOptions {
        mean: 0.5,
        std: 0.25,
        append_one,
    };
    let order: Vec<u32> = (0..data.len() as u32)
        .map(|i| i.wrapping_mul(2_654_435_761) % data.len() as u32)
        .collect();
    let gdata = GpuDataset::upload(gpu, data)?;
    let gorder = gdata.order_buffer(gpu, order.len())?;
    gdata.write_order(gpu, &gorder, &order)?;
    let gx = GpuTensor::<f32>::zeros(gpu, &[batch, width])?;
    let gy = GpuTensor::<u32>::zeros(gpu, &[batch])?;
    let gather = Gather::new(gpu, &gdata, &gorder, &gx, &gy, batch, gopts)?;
    let full_steps = order.len() / batch;
    if full_steps == 0 {
        return Err(Error::InvalidArgument {
            name: "gather benchmark",
            msg: format!("{} examples are fewer than a batch of {batch}", data.len()),
        });
    }
    if gdata.chunk_count() > 1 {
        c.note = format!(
            "the dataset is split into {} GPU buffers: {} dispatches per gather",
            gdata.chunk_count(),
            gdata.chunk_count()
        );
    }

    // Agreement: step 1 on both sides.
    gather.run(gpu, 1)?;
    let (want_x, want_y) = cpu::gather(data, &order, batch, batch, gopts)?;
    let got_x = gx.to_array(gpu)?;
    let tol = Tolerance::new(1e-6, 1e-6);
    agree(
        &mut c,
        &format!("x within {} + {}·|cpu|, labels equal", tol.atol, tol.rtol),
        cpu::compare(&got_x, &want_x, tol),
    );
    if c.agreed == Some(true) && gy.read(gpu)? != want_y {
        c.agreed = Some(false);
        c.check = "the gathered labels differ".into();
    }

    let mut step = 0;
    let mut failed = None;
    c.gpu = Some(measure(opts, timer.kind().name(), |reps| {
        let t = timer.time(gpu, |pass| {
            for _ in 0..reps {
                if let Err(e) = gather.record(pass, step % full_steps) {
                    failed.get_or_insert(e);
                }
                step += 1;
            }
        })?;
        match failed.take() {
            Some(e) => Err(e),
            None => Ok(t),
        }
    })?);
    let mut x = vec![0f32; batch * width];
    let mut y = Vec::with_capacity(batch);
    let mut step = 0;
    c.cpu = Some(measure(opts, "wall", |reps| {
        cpu_run(reps, || {
            let start = (step % full_steps) * batch;
            step += 1;
            cpu::gather_into(data, &order, start, batch, gopts, &mut x, &mut y)
        })
    })?);
    Ok(c)
}

/// The training steps a case runs side by side: (name suffix, what it is,
/// [`TrainConfig::fused`], [`TrainConfig::fused_step`]). The row-block
/// steps only for the MLP, the one model with a row block.
const TRAIN_VARIANTS: [(&str, &str, bool, FusedStep); 4] = [
    ("", "", true, FusedStep::Layers),
    (".unfused", ", unfused", false, FusedStep::Layers),
    (
        ".rows",
        ", row block, update in the weight tiles",
        true,
        FusedStep::Rows,
    ),
    (
        ".rows-apart",
        ", row block, update apart",
        true,
        FusedStep::RowsUpdateApart,
    ),
];

/// The variants of [`TRAIN_VARIANTS`] case `name` runs.
fn train_variants(
    name: &str,
) -> impl Iterator<Item = (&'static str, &'static str, bool, FusedStep)> {
    let rows = name == "mlp";
    TRAIN_VARIANTS
        .into_iter()
        .filter(move |v| rows || v.3 == FusedStep::Layers)
}

/// A training step of `model` in one of [`TRAIN_VARIANTS`] (`variant`:
/// its suffix, description, `fused` and fused step), named `name` plus the
/// suffix. Bytes are the engine's counted floor per step
/// ([`GpuEngine::bytes_per_step`]).
#[allow(clippy::too_many_arguments)]
fn bench_train(
    gpu: &Gpu,
    opts: &Options,
    name: &str,
    model: &dyn Model,
    optimizer: OptimizerConfig,
    batch: usize,
    image_shape: [usize; 3],
    variant: (&str, &str, bool, FusedStep),
) -> Result<Comparison> {
    let (suffix, what, fused, fused_step) = variant;
    let name = format!("{name}{suffix}");
    let mut c = Comparison::new(
        "train_step",
        &name,
        format!(
            "{} ({} params), {} batch {batch}{what}",
            model.name(),
            parameter_count(model),
            optimizer.name(),
        ),
    );
    let steps = opts.train_steps;
    c.flops = model.flops_per_example() * batch as u64;
    c.samples = batch as u64;
    let examples = steps
        .checked_mul(batch)
        .ok_or_else(|| Error::InvalidArgument {
            name: "train_steps",
            msg: format!("{steps} steps of {batch} examples overflow"),
        })?;
    let train = synthetic_images(examples, image_shape, 21)?;
    let test = synthetic_images(batch, image_shape, 22)?;
    let data = TrainData::new(train, test, 0, 0)?;
    let config = TrainConfig {
        epochs: 1,
        batch,
        optimizer,
        eval_batch: batch,
        mean: 0.5,
        std: 0.25,
        fused,
        fused_step,
        ..TrainConfig::default()
    };
    let order = data.epoch_order(0, 0);
    let epoch = |engine: &mut dyn Engine, losses: &mut Vec<f64>, reps: usize| {
        let start = Instant::now();
        for _ in 0..reps {
            let (loss, _) = engine.train_epoch(&order, &mut |_, _| {})?;
            losses.push(loss);
        }
        Ok::<f64, Error>(start.elapsed().as_secs_f64() / steps as f64)
    };
    // One repetition is one step; a run is one epoch of `steps` steps.
    let run_opts = Options {
        max_reps: 1,
        ..opts.clone()
    };
    let mut g_losses = Vec::new();
    let mut ge = GpuEngine::new(gpu, model, &data, &config)?;
    let gm = measure(&run_opts, "wall", |_| epoch(&mut ge, &mut g_losses, 1))?;
    c.dispatches = ge.dispatches_per_step().unwrap_or(0.0);
    c.bytes = ge.bytes_per_step();
    c.note = format!(
        "GPU: {} dispatches, {} counted bytes per step, {} host waits per {steps}-step epoch",
        c.dispatches,
        c.bytes,
        ge.host_syncs_last_epoch().unwrap_or(0)
    );
    drop(ge);
    let mut c_losses = Vec::new();
    let mut ce = CpuEngine::new(model, &data, &config)?;
    let cm = measure(&run_opts, "wall", |_| epoch(&mut ce, &mut c_losses, 1))?;
    // Both ran the same epochs from the same start: compare the first
    // (`measure` always runs at least once).
    let (g, cl) = (
        g_losses.first().copied().unwrap_or(f64::NAN),
        c_losses.first().copied().unwrap_or(f64::NAN),
    );
    let ok = (g - cl).abs() <= 1e-3 * cl.abs() && g.is_finite();
    c.agreed = Some(ok);
    c.check = format!("first epoch's mean loss: GPU {g:.6}, CPU {cl:.6} (within 1e-3 relative)");
    c.gpu = Some(gm);
    c.cpu = Some(cm);
    Ok(c)
}

/// The training-step cases; each also runs unfused as `<name>.unfused`.
const TRAIN_CASES: [&str; 3] = ["mlp", "linear.785", "linear.3073"];

/// Fused against unfused training steps of the same model in one run:
/// `(name, GPU time ratio, dispatch ratio, byte ratio)`, each unfused ÷
/// fused (above 1: the fused step is faster, fewer, smaller); every fused
/// variant (`mlp`, `mlp.rows`, …) against its model's `.unfused`.
pub fn fusion_ratios(rows: &[Comparison]) -> Vec<(String, Option<f64>, f64, f64)> {
    let mut out = Vec::new();
    for f in rows.iter().filter(|c| c.family == "train_step") {
        // The case the row is a variant of: its name less the variant's suffix.
        let base = TRAIN_VARIANTS
            .iter()
            .filter(|v| v.2) // fused variants only: the unfused is what they are set against
            .find_map(|v| f.name.strip_suffix(v.0).filter(|b| TRAIN_CASES.contains(b)));
        let Some(base) = base else { continue };
        let want = format!("{base}.unfused");
        let Some(u) = rows
            .iter()
            .find(|c| c.family == "train_step" && c.name == want)
        else {
            continue;
        };
        let time = match (&f.gpu, &u.gpu) {
            (Some(a), Some(b)) => Some(b.seconds / a.seconds),
            _ => None,
        };
        out.push((
            f.name.clone(),
            time,
            u.dispatches / f.dispatches.max(1.0),
            u.bytes as f64 / f.bytes.max(1) as f64,
        ));
    }
    out
}

/// The names of every case, in the order [`run`] reports them.
pub fn case_names() -> Vec<(&'static str, String)> {
    let mut v: Vec<(&'static str, String)> = matmul_cases()
        .into_iter()
        .map(|c| ("matmul", c.name))
        .collect();
    for (f, n) in [
        ("softmax_xent", "mlp"),
        ("softmax_xent", "linear"),
        ("optimizer", "mlp.adam"),
        ("optimizer", "linear.sgd"),
        ("gather", "mlp"),
        ("gather", "linear"),
    ] {
        v.push((f, n.to_string()));
    }
    for n in TRAIN_CASES {
        for (suffix, ..) in train_variants(n) {
            v.push(("train_step", format!("{n}{suffix}")));
        }
    }
    v
}

/// Runs every case [`Options::filter`] lets through, calling `on_row` as each
/// finishes (for a live table), and returns them all.
pub fn run(
    gpu: &Gpu,
    opts: &Options,
    mut on_row: impl FnMut(&Comparison),
) -> Result<Vec<Comparison>> {
    opts.validate()?;
    let timer = GpuTimer::new(gpu)?;
    let mut rows = Vec::new();
    let mut emit = |c: Comparison| {
        on_row(&c);
        rows.push(c);
    };
    for case in matmul_cases() {
        if opts.wants("matmul", &case.name) {
            emit(bench_matmul(gpu, &timer, opts, &case)?);
        }
    }
    let mlp = Mlp::mnist(Activation::Sigmoid);
    let linear = LinearSoftmax::new(3072, 10)?;
    for (name, n) in [("mlp", 128), ("linear", 256)] {
        if opts.wants("softmax_xent", name) {
            emit(bench_softmax(gpu, &timer, opts, name, n)?);
        }
    }
    for (name, config, n) in [
        ("mlp.adam", OptimizerConfig::adam(), parameter_count(&mlp)),
        (
            "linear.sgd",
            OptimizerConfig::sgd(0.1),
            parameter_count(&linear),
        ),
    ] {
        if opts.wants("optimizer", name) {
            emit(bench_optimizer(gpu, &timer, opts, name, config, n)?);
        }
    }
    // Gathers from datasets of the real sizes (Fashion-MNIST's 60,000 and
    // CIFAR-10's 50,000 examples; the latter needs two GPU buffers), or
    // small ones in quick mode.
    let (mnist_n, cifar_n) = if opts.quick {
        (2048, 1024)
    } else {
        (60_000, 50_000)
    };
    if opts.wants("gather", "mlp") {
        let data = synthetic_images(mnist_n, [1, 28, 28], 31)?;
        emit(bench_gather(gpu, &timer, opts, "mlp", &data, 128, false)?);
    }
    if opts.wants("gather", "linear") {
        let data = synthetic_images(cifar_n, [3, 32, 32], 32)?;
        emit(bench_gather(gpu, &timer, opts, "linear", &data, 256, true)?);
    }
    let linear_785 = LinearSoftmax::new(784, 10)?;
    for name in TRAIN_CASES {
        let (model, optimizer, batch, shape): (&dyn Model, _, _, _) = match name {
            "mlp" => (&mlp, OptimizerConfig::adam(), 128, [1, 28, 28]),
            "linear.785" => (&linear_785, OptimizerConfig::sgd(0.1), 256, [1, 28, 28]),
            _ => (&linear, OptimizerConfig::sgd(0.1), 256, [3, 32, 32]),
        };
        // Every step side by side, so one run gives their ratios.
        for variant in train_variants(name) {
            if opts.wants("train_step", &format!("{name}{}", variant.0)) {
                emit(bench_train(
                    gpu, opts, name, model, optimizer, batch, shape, variant,
                )?);
            }
        }
    }
    Ok(rows)
}

// ------------------------------------------------------------ every version

/// Every version of one kernel family timed on one case: what a tuner would
/// measure before choosing, and what [`MatmulKernel::choose`] picks today.
#[derive(Clone, Debug, Serialize)]
pub struct Versions {
    pub family: &'static str,
    pub name: String,
    pub detail: String,
    pub flops: u64,
    /// (version, median seconds per product); `None` where a version failed
    /// to build or disagreed with the CPU twin (the reason is in `notes`).
    pub times: Vec<(&'static str, Option<f64>)>,
    /// The fastest version that agreed with the CPU twin.
    pub fastest: Option<&'static str>,
    /// The version the fixed rule (`Auto`) runs on this adapter.
    pub auto: &'static str,
    pub notes: Vec<String>,
}

/// How a version's note begins when it ran and disagreed with the CPU twin
/// (a failure); any other note is a version this device cannot build or run
/// (skipped, with its reason).
const DISAGREES: &str = "disagrees with the CPU twin";

impl Versions {
    /// Whether a version disagreed with the CPU twin: the row's failure. A
    /// version that could not be built or run on this device (past a
    /// capped device's limits, say) is skipped with its reason in
    /// [`Versions::notes`], not a failure.
    pub fn disagreed(&self) -> bool {
        self.notes.iter().any(|n| n.contains(DISAGREES))
    }

    /// One version's time, or why it has none; keeps the fastest.
    fn add(&mut self, version: &'static str, time: Result<f64>) {
        match time {
            Ok(s) => {
                let best = self.fastest.and_then(|f| {
                    self.times
                        .iter()
                        .find(|(n, _)| *n == f)
                        .and_then(|(_, t)| *t)
                });
                if best.is_none_or(|b| s < b) {
                    self.fastest = Some(version);
                }
                self.times.push((version, Some(s)));
            }
            Err(e) => {
                self.notes.push(format!("{version}: {e}"));
                self.times.push((version, None));
            }
        }
    }
}

/// Times every matmul version on every case [`Options::filter`] lets through
/// (GPU timestamps where the adapter has them), after checking each version's
/// output against the CPU twin. 4096³ runs only with [`Options::big`] on a
/// software adapter.
pub fn matmul_versions(
    gpu: &Gpu,
    opts: &Options,
    mut on_row: impl FnMut(&Versions),
) -> Result<Vec<Versions>> {
    opts.validate()?;
    let timer = GpuTimer::new(gpu)?;
    let mut rows = Vec::new();
    let mut cases = matmul_cases();
    if opts.big {
        cases.extend(scale_cases());
    }
    for case in cases {
        if !opts.wants("matmul", &case.name) {
            continue;
        }
        let shape = case.shape()?;
        if matmul_skip(gpu, opts, &case, &shape).is_some() {
            continue;
        }
        let named = opts.filter.as_ref().is_some_and(|f| f.contains("scale."));
        if case.name.starts_with("scale.") && gpu.is_software() && !named {
            continue;
        }
        let setup = MatmulSetup::new(gpu, &case)?;
        let mut want = ArrayD::<f32>::zeros(shape.output_shape());
        setup.cpu_into(&case, &mut want)?;
        let mut row = Versions {
            family: "matmul",
            name: case.name.clone(),
            detail: describe(&case, &shape),
            flops: shape.flops(),
            times: Vec::new(),
            fastest: None,
            auto: MatmulKernel::choose(gpu, &shape).name(),
            notes: Vec::new(),
        };
        for kernel in MatmulKernel::ALL {
            let time = (|| -> Result<f64> {
                let mm = setup.launcher(gpu, &case, kernel)?;
                setup.out.fill(gpu, f32::NAN)?;
                mm.run(gpu, 1)?;
                cpu::compare(&setup.out.to_array(gpu)?, &want, setup.tol)
                    .map_err(|m| Error::shape("bench", format!("{DISAGREES}: {m}")))?;
                let m = measure_gpu(opts, gpu, &timer, |pass| mm.record(pass))?;
                Ok(m.seconds)
            })();
            row.add(kernel.name(), time);
        }
        on_row(&row);
        rows.push(row);
    }
    Ok(rows)
}

/// Every softmax-CE version on the models' shapes (loss and dlogits), each
/// checked against the CPU twin before it is timed: the other family the
/// tuner chooses in.
pub fn softmax_versions(
    gpu: &Gpu,
    opts: &Options,
    mut on_row: impl FnMut(&Versions),
) -> Result<Vec<Versions>> {
    opts.validate()?;
    let timer = GpuTimer::new(gpu)?;
    let mut rows = Vec::new();
    let classes = 10;
    for (name, n) in [("mlp", 128), ("linear", 256)] {
        if !opts.wants("softmax_xent", name) {
            continue;
        }
        let logits = array(&[n, classes], 7)?.mapv(|v| 4.0 * v);
        let labels: Vec<u32> = (0..n as u32).map(|i| i * 7 % classes as u32).collect();
        let mut loss = Array1::<f32>::zeros(n);
        let mut correct = vec![0u32; n];
        let mut d = Array2::<f32>::zeros((n, classes));
        cpu::softmax_xent_into(
            &logits,
            &labels,
            loss.view_mut(),
            &mut correct,
            Some(d.view_mut()),
        )?;
        let gl = GpuTensor::from_array(gpu, &logits)?;
        let glabels = GpuLabels::new(gpu, &labels, classes)?;
        let gloss = GpuTensor::<f32>::zeros(gpu, &[n])?;
        let gcorrect = GpuTensor::<u32>::zeros(gpu, &[n])?;
        let gd = GpuTensor::<f32>::zeros(gpu, &[n, classes])?;
        let shape = crate::options::SoftmaxXentShape { n, c: classes };
        let mut row = Versions {
            family: "softmax_xent",
            name: name.to_string(),
            detail: format!("{n}x{classes} loss+dlogits"),
            flops: 0,
            times: Vec::new(),
            fastest: None,
            auto: SoftmaxXentKernel::choose(gpu, &shape).name(),
            notes: Vec::new(),
        };
        let tol = Tolerance::new(1e-6, 1e-5);
        for kernel in SoftmaxXentKernel::available(gpu) {
            let time = (|| -> Result<f64> {
                let sx =
                    SoftmaxXent::new(gpu, &gl, &glabels, &gloss, &gcorrect, Some(&gd), kernel)?;
                gd.fill(gpu, f32::NAN)?;
                gloss.fill(gpu, f32::NAN)?;
                sx.run(gpu, 1)?;
                let (got_d, got_loss) = (gd.to_array(gpu)?, gloss.to_array(gpu)?);
                cpu::compare(&got_d, &d, tol)
                    .and_then(|()| cpu::compare(&got_loss, &loss, tol))
                    .map_err(|m| Error::shape("bench", format!("{DISAGREES}: {m}")))?;
                let m = measure_gpu(opts, gpu, &timer, |pass| sx.record(pass))?;
                Ok(m.seconds)
            })();
            row.add(kernel.name(), time);
        }
        on_row(&row);
        rows.push(row);
    }
    Ok(rows)
}

/// The column-sum version cases: (name, rows, columns, fused activation
/// backward): the MLP's output and hidden bias gradients, the linear
/// model's, and a wide one (784 columns).
const COLUMN_SUM_CASES: [(&str, usize, usize, Option<Activation>); 4] = [
    ("mlp_out", 128, 10, None),
    ("mlp_hidden", 128, 128, Some(Activation::Sigmoid)),
    ("linear", 256, 10, None),
    ("wide", 128, 784, None),
];

/// Every column-sum version (the subgroup one where the device has
/// subgroups) on the models' bias-gradient shapes, plain and fused with the
/// sigmoid backward, each checked against the CPU twin before it is timed.
pub fn column_sum_versions(
    gpu: &Gpu,
    opts: &Options,
    mut on_row: impl FnMut(&Versions),
) -> Result<Vec<Versions>> {
    use crate::kernels::{ColumnSum, ColumnSumKernel};
    opts.validate()?;
    let timer = GpuTimer::new(gpu)?;
    let mut rows = Vec::new();
    for (name, n, c, activation) in COLUMN_SUM_CASES {
        if !opts.wants("column_sum", name) {
            continue;
        }
        let x = array(&[n, c], 9)?;
        let h = array(&[n, c], 10)?.mapv(|v| 0.5 + 0.4 * v);
        let want = match activation {
            None => cpu::column_sum(&x)?,
            Some(a) => cpu::activation_bias_backward(&x, &h, a)?.1,
        };
        let gx = GpuTensor::from_array(gpu, &x)?;
        let gh = GpuTensor::from_array(gpu, &h)?;
        let gdz = GpuTensor::<f32>::zeros(gpu, &[n, c])?;
        let sums = GpuTensor::<f32>::zeros(gpu, &[c])?;
        let mut row = Versions {
            family: "column_sum",
            name: name.to_string(),
            detail: match activation {
                None => format!("{n}x{c}"),
                Some(a) => format!("{n}x{c} {a:?} backward"),
            },
            flops: 0,
            times: Vec::new(),
            fastest: None,
            auto: ColumnSumKernel::choose(gpu).name(),
            notes: Vec::new(),
        };
        let tol = Tolerance::new(1e-6 * n as f32, 1e-5);
        for kernel in ColumnSumKernel::available(gpu) {
            let time = (|| -> Result<f64> {
                let sum = match activation {
                    None => ColumnSum::new(gpu, &gx, &sums, kernel)?,
                    Some(a) => ColumnSum::with_activation(gpu, &gx, &gh, &gdz, &sums, a, kernel)?,
                };
                sums.fill(gpu, f32::NAN)?;
                sum.run(gpu, 1)?;
                cpu::compare(&sums.to_array(gpu)?, &want, tol)
                    .map_err(|m| Error::shape("bench", format!("{DISAGREES}: {m}")))?;
                let m = measure_gpu(opts, gpu, &timer, |pass| sum.record(pass))?;
                Ok(m.seconds)
            })();
            row.add(kernel.name(), time);
        }
        on_row(&row);
        rows.push(row);
    }
    Ok(rows)
}
