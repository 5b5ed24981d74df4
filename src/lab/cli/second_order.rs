//! Second-order against first-order training of the linear softmax
//! classifier (W is C×(D+1)): SGD and Adam (minibatch 128, weight decay λ)
//! beside L-BFGS and Newton-CG (full batch, `crate::second_order`), all
//! minimising the same loss, the mean cross-entropy plus `(λ/2)·‖W‖²`, on
//! the GPU and on the CPU. It reports the training loss against passes over
//! the data and against wall time, the passes and seconds each needed to get
//! within `--target` (relative) of the optimum, and the test accuracy;
//! `--plot` draws the distance to the optimum against both.
//!
//! First, the course's small demonstrations on the CPU: Newton's method on
//! f(w) = (w − 3)² (one step), BFGS on Rosenbrock's function, and
//! Levenberg–Marquardt fitting y = a·t + b to noisy points.
//!
//! ```text
//! cargo run --release --example second_order                        # Fashion-MNIST, 10×785
//! cargo run --release --example second_order -- --data ~/cifar-10-batches-bin   # 10×3073
//! cargo run --release --example second_order -- --plot docs/second_order.svg
//! ```
//!
//! The optimum comes from Newton-CG (else L-BFGS) run first to
//! ‖∇L‖ ≤ gtol, which puts it within ‖∇L‖²/(2λ) of the true one; the other
//! second-order runs stop once within the target of it. (Strictly, the
//! optimum is the lowest loss any run reached.) A pass is one
//! sweep over the training set: an epoch of SGD or Adam, a loss-and-gradient
//! evaluation or a Hessian-vector product. Wall time counts training only:
//! the first-order runs' full-batch loss after each epoch is measured
//! outside it.

use crate::data::{self, Dataset};
use crate::lab::plot::{CurvePanel, Series, plot_curves};
use crate::lab::second_order::demos;
use crate::lab::second_order::{Device, fit_linear};
use crate::model::{LinearSoftmax, Model};
use crate::optim::{OptimizerConfig, Rule};
use crate::second_order::{
    CpuObjective, FullBatchConfig, GpuObjective, Method, Objective, SecondOrderConfig, Slot,
};
use crate::train::{CpuEngine, Engine, EvalSet, GpuEngine, TrainConfig, TrainData};
use crate::{Error, Gpu, Result};
use clap::{Parser, ValueEnum};
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum DeviceArg {
    Gpu,
    Cpu,
    Both,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum MethodArg {
    Sgd,
    Adam,
    Lbfgs,
    NewtonCg,
}

impl MethodArg {
    fn name(self) -> &'static str {
        match self {
            MethodArg::Sgd => "SGD",
            MethodArg::Adam => "Adam",
            MethodArg::Lbfgs => "L-BFGS",
            MethodArg::NewtonCg => "Newton-CG",
        }
    }

    fn color(self) -> usize {
        self as usize
    }
}

/// Compare SGD, Adam, L-BFGS and Newton-CG on the linear classifier.
#[derive(Parser, Debug)]
#[command(version, about, allow_negative_numbers = true)]
struct Args {
    #[arg(long, value_enum, default_value = "both")]
    device: DeviceArg,
    /// The methods to run, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "sgd,adam,lbfgs,newton-cg"
    )]
    methods: Vec<MethodArg>,
    /// Fashion-MNIST or MNIST IDX files, or CIFAR-10's binary batches.
    #[arg(long)]
    data: Option<std::path::PathBuf>,
    /// Train on the first N training examples only (0: all).
    #[arg(long, default_value_t = 0)]
    examples: usize,
    /// λ of the (λ/2)·‖W‖² term (and the first-order runs' weight decay).
    #[arg(long, default_value_t = 1e-4, allow_hyphen_values = true)]
    l2: f64,
    /// Epochs of SGD and Adam.
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    #[arg(long, default_value_t = 0.1, allow_hyphen_values = true)]
    sgd_lr: f32,
    #[arg(long, default_value_t = 1e-3, allow_hyphen_values = true)]
    adam_lr: f32,
    /// Iterations of L-BFGS and Newton-CG at most.
    #[arg(long, default_value_t = 100)]
    iterations: usize,
    /// L-BFGS and Newton-CG stop once ‖∇L‖ ≤ gtol.
    #[arg(long, default_value_t = 1e-5, allow_hyphen_values = true)]
    gtol: f64,
    /// The distance to the optimum, relative, that counts as reached.
    #[arg(long, default_value_t = 1e-3, allow_hyphen_values = true)]
    target: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Standardise pixels with the training set's mean and standard
    /// deviation instead of feeding pixel/255 (every method gets the same
    /// inputs either way). On Fashion-MNIST this makes the problem worse
    /// conditioned, not better: all 784 inputs are then of unit scale and
    /// strongly correlated, so the Hessian's largest eigenvalue grows ~10×.
    #[arg(long)]
    standardize: bool,
    /// Draw the distance to the optimum against passes and seconds (.svg, .png).
    #[arg(long)]
    plot: Option<std::path::PathBuf>,
    /// One JSON object per run on stdout (after the table).
    #[arg(long)]
    json: bool,
    /// Skip the small CPU demonstrations.
    #[arg(long)]
    no_demos: bool,
}

/// A run's loss after each epoch or iteration.
struct Run {
    method: MethodArg,
    device: &'static str,
    /// (passes, seconds, loss).
    points: Vec<(f64, f64, f64)>,
    test_loss: f64,
    test_accuracy: f64,
    /// Second-order only: iterations, readbacks per iteration, stop reason.
    iterations: Option<(usize, f64, String)>,
    /// Whether it ended as asked (`Stop::is_success`; first-order: always).
    ok: bool,
}

/// Checks the numbers before anything runs: the optimum the comparison
/// measures against exists only for λ > 0 (without the L2 term the loss of
/// separable data has no minimum, and the relative gaps divide by an
/// optimum that rounds to 0), and the target is a positive, finite
/// relative distance (`inf` would count the start as reached, a negative
/// one could never be).
fn check_args(args: &Args) -> Result<()> {
    let bad = |name, msg: String| Err(Error::InvalidArgument { name, msg });
    if !(args.l2.is_finite() && args.l2 > 0.0) {
        return bad(
            "--l2",
            format!(
                "must be a finite number > 0, got {}: the optimum the methods are compared against \
                 exists only with the L2 term",
                args.l2
            ),
        );
    }
    if !(args.target.is_finite() && args.target > 0.0) {
        return bad(
            "--target",
            format!(
                "must be a finite relative distance > 0, got {}",
                args.target
            ),
        );
    }
    if let Some(path) = &args.plot {
        crate::lab::plot::check_destination(path)?;
    }
    Ok(())
}

fn demonstrations() -> Result<()> {
    println!("== The course's small demonstrations (CPU, f64)");
    let w = demos::newton_1d(|w| 2.0 * (w - 3.0), |_| 2.0, 0.0, 2)?;
    println!(
        "Newton on f(w) = (w − 3)² from w = {}: w₁ = {}, w₂ = {} (the quadratic model is f itself: one step)",
        w[0], w[1], w[2]
    );
    let tr = demos::bfgs(
        demos::rosenbrock,
        demos::rosenbrock_grad,
        &[-1.2, 1.0],
        1e-8,
        200,
    );
    let p = &tr.points[tr.points.len() - 1];
    println!(
        "BFGS on Rosenbrock (1 − x)² + 100(y − x²)² from (−1.2, 1): ({:.6}, {:.6}) after {} iterations, f = {:.2e}, |∇f| = {:.1e}",
        p[0],
        p[1],
        tr.points.len() - 1,
        tr.values[tr.values.len() - 1],
        tr.grad_norm
    );
    // 20 points of y = 2t + 1 with Gaussian noise (σ = 0.1), seeded.
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let noise = Normal::new(0.0, 0.1).map_err(|e| Error::InvalidArgument {
        name: "noise",
        msg: e.to_string(),
    })?;
    let t: Vec<f64> = (0..20).map(|i| i as f64 / 19.0).collect();
    let y: Vec<f64> = t
        .iter()
        .map(|&ti| 2.0 * ti + 1.0 + noise.sample(&mut rng))
        .collect();
    let ((a, b), k) = demos::levenberg_marquardt_line(&t, &y, (0.0, 0.0), 100)?;
    println!(
        "Levenberg–Marquardt fitting y = a·t + b to 20 noisy points of y = 2t + 1: a = {a:.4}, b = {b:.4} after {k} iterations\n"
    );
    Ok(())
}

fn with_weight_decay(mut cfg: OptimizerConfig, wd: f32) -> OptimizerConfig {
    match &mut cfg.rule {
        Rule::Sgd(r) => r.weight_decay = wd,
        Rule::Adagrad(r) => r.weight_decay = wd,
        Rule::RmsProp(r) => r.weight_decay = wd,
        Rule::Adam(r) => r.weight_decay = wd,
    }
    cfg
}

/// SGD or Adam for `args.epochs` epochs, the full-batch loss measured (off
/// the clock) after each.
fn first_order(
    args: &Args,
    method: MethodArg,
    gpu: Option<&Gpu>,
    data: &TrainData,
    full: &FullBatchConfig,
) -> Result<Run> {
    let model = LinearSoftmax::new(data.train.dim(), data.train.classes)?;
    let optimizer = match method {
        MethodArg::Sgd => OptimizerConfig::sgd(args.sgd_lr),
        _ => OptimizerConfig {
            lr: args.adam_lr,
            ..OptimizerConfig::adam()
        },
    };
    let config = TrainConfig {
        epochs: args.epochs,
        batch: 128,
        seed: args.seed,
        optimizer: with_weight_decay(optimizer, args.l2 as f32),
        mean: full.mean,
        std: full.std,
        ..TrainConfig::default()
    };
    let (mut engine, mut obj): (Box<dyn Engine + '_>, Box<dyn Objective + '_>) = match gpu {
        Some(g) => (
            Box::new(GpuEngine::new(g, &model, data, &config)?),
            Box::new(GpuObjective::new(g, &data.train, None, 2, full)?),
        ),
        None => (
            Box::new(CpuEngine::new(&model, data, &config)?),
            Box::new(CpuObjective::<f32>::new(&data.train, None, 2, full)?),
        ),
    };
    let device = obj.device();
    let mut loss_at = |engine: &mut dyn Engine| -> Result<f64> {
        obj.write(Slot(0), &engine.state()?.params)?;
        Ok(obj.loss_grad(Slot(0), Slot(1), &[])?.loss)
    };
    let mut points = vec![(0.0, 0.0, loss_at(engine.as_mut())?)];
    let mut seconds = 0.0;
    for epoch in 0..args.epochs {
        let order = data.epoch_order(args.seed, epoch);
        let start = Instant::now();
        let (epoch_loss, _) = engine.train_epoch(&order, &mut |_, _| {})?;
        engine.end_epoch(epoch_loss as f32)?;
        seconds += start.elapsed().as_secs_f64();
        let loss = loss_at(engine.as_mut())?;
        eprintln!(
            "[{device}] {} epoch {}: loss {loss:.6}  {seconds:.1} s",
            method.name(),
            epoch + 1
        );
        points.push(((epoch + 1) as f64, seconds, loss));
    }
    let (test_loss, test_accuracy) = engine.evaluate(EvalSet::Test)?;
    Ok(Run {
        method,
        device,
        points,
        test_loss,
        test_accuracy,
        iterations: None,
        ok: true,
    })
}

fn second_order(
    args: &Args,
    method: MethodArg,
    gpu: Option<&Gpu>,
    data: &TrainData,
    full: &FullBatchConfig,
    target_loss: Option<f64>,
) -> Result<Run> {
    let m = if method == MethodArg::Lbfgs {
        Method::Lbfgs
    } else {
        Method::NewtonCg
    };
    let config = SecondOrderConfig {
        max_iterations: args.iterations,
        gtol: args.gtol,
        target_loss,
        ..SecondOrderConfig::new(m)
    };
    let device = gpu.map_or(Device::Cpu, Device::Gpu);
    let name = if gpu.is_some() { "gpu" } else { "cpu" };
    let run = fit_linear(
        device,
        &data.train,
        &data.test,
        full,
        &config,
        args.seed,
        &mut |it| {
            eprintln!(
                "[{name}] {} iteration {}: loss {:.6}  |g| {:.1e}  {} passes  {:.1} s",
                method.name(),
                it.iteration,
                it.loss,
                it.grad_norm,
                it.passes,
                it.seconds
            );
        },
    )?;
    let its = &run.outcome.iterations;
    let steps = its.len().saturating_sub(1).max(1) as f64;
    let readbacks: usize = its[1..].iter().map(|i| i.readbacks).sum();
    Ok(Run {
        method,
        device: run.device,
        points: its
            .iter()
            .map(|i| (i.passes as f64, i.seconds, i.loss))
            .collect(),
        test_loss: run.test_loss,
        test_accuracy: run.test_accuracy,
        iterations: Some((
            its.len() - 1,
            readbacks as f64 / steps,
            run.outcome.stop.to_string(),
        )),
        ok: run.outcome.stop.is_success(),
    })
}

/// The mean and standard deviation of all training pixels, in [0, 1] units.
fn pixel_stats(train: &Dataset) -> (f32, f32) {
    let n = train.images.len().max(1) as f64;
    let mean = train.images.iter().map(|&p| p as f64).sum::<f64>() / n / 255.0;
    let var = train
        .images
        .iter()
        .map(|&p| (p as f64 / 255.0 - mean).powi(2))
        .sum::<f64>()
        / n;
    (mean as f32, var.sqrt().max(1e-6) as f32)
}

/// The first point within `target` (relative) of `best`: (passes, seconds).
fn reached(run: &Run, best: f64, target: f64) -> Option<(f64, f64)> {
    run.points
        .iter()
        .find(|p| (p.2 - best) / best <= target)
        .map(|p| (p.0, p.1))
}

fn run(args: Args) -> Result<()> {
    check_args(&args)?;
    if !args.no_demos {
        demonstrations()?;
    }
    if args.methods.is_empty() {
        return Ok(());
    }
    let splits = data::load(args.data.as_deref())?;
    let train: Dataset = if args.examples > 0 {
        splits.train.first(args.examples)
    } else {
        splits.train
    };
    println!(
        "== {}: {} training examples, {} test, linear {}×{}, λ = {}",
        splits.name,
        train.len(),
        splits.test.len(),
        train.classes,
        train.dim() + 1,
        args.l2
    );
    let (mean, std) = if args.standardize {
        pixel_stats(&train)
    } else {
        (0.0, 1.0)
    };
    println!("inputs: (pixel/255 − {mean:.4}) / {std:.4}");
    let data = TrainData::new(train, splits.test, 0, args.seed)?;
    let full = FullBatchConfig {
        l2: args.l2,
        mean,
        std,
        ..FullBatchConfig::default()
    };
    full.validate()?;
    let devices: &[bool] = match args.device {
        DeviceArg::Gpu => &[true],
        DeviceArg::Cpu => &[false],
        DeviceArg::Both => &[true, false],
    };
    let gpu = if devices.contains(&true) {
        Some(Gpu::new()?)
    } else {
        None
    };
    if let Some(g) = &gpu {
        println!("GPU: {}", g.summary());
    }
    println!(
        "CPU: ndarray + matrixmultiply, {} threads",
        rayon::current_num_threads()
    );
    // The optimum first: Newton-CG (else L-BFGS) run to ‖∇L‖ ≤ gtol, on the
    // CPU when it is in the run. The other second-order runs then stop at
    // the target, so that none spends minutes polishing digits.
    let mut runs = Vec::new();
    let reference = [MethodArg::NewtonCg, MethodArg::Lbfgs]
        .into_iter()
        .find(|m| args.methods.contains(m));
    let ref_gpu = !devices.contains(&false);
    let mut target_loss = None;
    if let Some(m) = reference {
        let g = if ref_gpu { gpu.as_ref() } else { None };
        let r = second_order(&args, m, g, &data, &full, None)?;
        let last = r.points[r.points.len() - 1].2;
        println!(
            "optimum: {last:.8} from {} on the {} ({})",
            m.name(),
            r.device,
            r.iterations.as_ref().map_or(String::new(), |i| i.2.clone())
        );
        target_loss = Some(last * (1.0 + args.target));
        runs.push(r);
    }
    for &on_gpu in devices {
        let g = if on_gpu { gpu.as_ref() } else { None };
        for &method in &args.methods {
            if Some(method) == reference && on_gpu == ref_gpu {
                continue;
            }
            runs.push(match method {
                MethodArg::Sgd | MethodArg::Adam => first_order(&args, method, g, &data, &full)?,
                _ => second_order(&args, method, g, &data, &full, target_loss)?,
            });
        }
    }
    runs.sort_by_key(|r| (r.device != "gpu", r.method as usize));
    let best = runs
        .iter()
        .flat_map(|r| r.points.iter().map(|p| p.2))
        .filter(|l| l.is_finite())
        .fold(f64::INFINITY, f64::min);
    println!(
        "\noptimum (lowest loss reached): {best:.8}; target: within {:e} of it\n",
        args.target
    );
    println!(
        "{:<10} {:<6} {:>12} {:>12} {:>12} {:>10} {:>9} {:>9}  stop",
        "method", "device", "passes→tgt", "seconds→tgt", "final loss", "gap", "test acc", "rb/iter",
    );
    for r in &runs {
        let last = r.points[r.points.len() - 1];
        let (p, s) = match reached(r, best, args.target) {
            Some((p, s)) => (format!("{p:.0}"), format!("{s:.2}")),
            None => ("not reached".into(), "—".into()),
        };
        let (rb, stop) = match &r.iterations {
            Some((n, rb, stop)) => (format!("{rb:.2}"), format!("{stop} ({n} iterations)")),
            None => ("—".into(), format!("{} epochs", args.epochs)),
        };
        println!(
            "{:<10} {:<6} {:>12} {:>12} {:>12.8} {:>10.2e} {:>9.4} {:>9}  {}",
            r.method.name(),
            r.device,
            p,
            s,
            last.2,
            (last.2 - best) / best,
            r.test_accuracy,
            rb,
            stop
        );
    }
    if args.json {
        for r in &runs {
            let last = r.points[r.points.len() - 1];
            let hit = reached(r, best, args.target);
            let line = serde_json::json!({
                "method": r.method.name(),
                "device": r.device,
                "data": splits.name,
                "examples": data.train.len(),
                "l2": args.l2,
                "optimum": best,
                "target": args.target,
                "passes_to_target": hit.map(|h| h.0),
                "seconds_to_target": hit.map(|h| h.1),
                "final_loss": last.2,
                "passes": last.0,
                "seconds": last.1,
                "test_loss": r.test_loss,
                "test_accuracy": r.test_accuracy,
                "iterations": r.iterations.as_ref().map(|i| i.0),
                "readbacks_per_iteration": r.iterations.as_ref().map(|i| i.1),
                "stop": r.iterations.as_ref().map_or_else(
                    || format!("{} epochs", args.epochs),
                    |i| i.2.clone()
                ),
            });
            println!("{line}");
        }
    }
    if let Some(path) = &args.plot {
        let series = |x: fn(&(f64, f64, f64)) -> f64| -> Vec<Series> {
            let mut s: Vec<Series> = runs
                .iter()
                .map(|r| Series {
                    label: format!("{} {}", r.method.name(), r.device),
                    color: r.method.color(),
                    dashed: r.device == "cpu",
                    points: r
                        .points
                        .iter()
                        .map(|p| (x(p), (p.2 - best) / best))
                        .collect(),
                })
                .collect();
            let xmax = runs
                .iter()
                .flat_map(|r| r.points.iter().map(x))
                .fold(0.0, f64::max);
            s.push(Series {
                label: format!("target {:e}", args.target),
                color: 7,
                dashed: true,
                points: vec![(0.0, args.target), (xmax, args.target)],
            });
            s
        };
        let panels = [
            CurvePanel {
                caption: "Distance to the optimum per pass over the data".into(),
                x_desc: "passes over the training set".into(),
                y_desc: "(loss − optimum) / optimum".into(),
                series: series(|p| p.0),
            },
            CurvePanel {
                caption: "… and per second".into(),
                x_desc: "seconds of training".into(),
                y_desc: "(loss − optimum) / optimum".into(),
                series: series(|p| p.1),
            },
        ];
        let model = LinearSoftmax::new(data.train.dim(), data.train.classes)?;
        plot_curves(
            path,
            &format!(
                "{} on {}, λ = {} (solid: GPU, dashed: CPU)",
                model.name(),
                splits.name,
                args.l2
            ),
            &panels,
        )?;
        println!("plot: {}", path.display());
    }
    let failed: Vec<&Run> = runs.iter().filter(|r| !r.ok).collect();
    for r in &failed {
        eprintln!(
            "error: [{}] {} {}",
            r.device,
            r.method.name(),
            r.iterations.as_ref().map_or("", |i| i.2.as_str())
        );
    }
    if !failed.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}

/// The flags, for the example and for the `wgpu-train` subcommand alike.
pub fn command() -> clap::Command {
    <Args as clap::CommandFactory>::command()
}

/// Runs with flags parsed by [`command`] (a parse error exits as clap does).
pub fn main_with(matches: &clap::ArgMatches) -> std::process::ExitCode {
    let args =
        <Args as clap::FromArgMatches>::from_arg_matches(matches).unwrap_or_else(|e| e.exit());
    if let Err(e) = run(args) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
    std::process::ExitCode::SUCCESS
}

/// The example's entry point: parses the process's arguments.
pub fn main() -> std::process::ExitCode {
    main_with(&command().get_matches())
}
