//! Many configurations of one model in one GPU run: the course notebook's
//! learning-rate sweep and optimizer comparison (`train::sweep`).
//!
//! ```text
//! cargo run --release --example sweep -- --preset optimizers --plot sweep.png
//! cargo run --release --example sweep -- --preset lr
//! cargo run --release --example sweep -- --grid "sgd:0.1,0.01;adam:0.001,0.0003" --seeds 2 --json
//! cargo run --release --example sweep -- --preset optimizers --device cpu   # K runs one after another
//! ```
//!
//! The notebook trains the MLP 784-128-128-10 (sigmoid) with batch 128 on
//! 54,000 training and 6,000 validation images: `--preset lr` is SGD at
//! learning rates 100, 1, 0.1 and 0.001 for 5 epochs, `--preset optimizers`
//! SGD, SGD with momentum 0.9, RMSprop and Adam at 1e-3 for 10 epochs. All
//! models see the same minibatches in the same order.

use crate::metrics::EpochMetrics;
use crate::model::{LinearSoftmax, Mlp, Model};
use crate::optim::OptimizerConfig;
use crate::train::sweep::{self, SweepEvent, SweepResult, SweepRun};
use crate::train::{TrainConfig, TrainData};
use crate::{Activation, Error, Gpu, Result};
use clap::{Parser, ValueEnum};
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Preset {
    /// SGD at lr 100, 1, 0.1, 0.001; 5 epochs.
    Lr,
    /// SGD, momentum 0.9, RMSprop, Adam at lr 1e-3; 10 epochs.
    Optimizers,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Device {
    /// The K models in the same dispatches.
    Gpu,
    /// The K models one after another with the CPU engine.
    Cpu,
    /// Both, then the speed ratio.
    Both,
    /// The K models one after another on the GPU (the one-model engine with
    /// the same reference kernels): what batching saves.
    GpuSequential,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ModelArg {
    /// The MLP 784-128-128-10, sigmoid.
    Mlp,
    /// The linear softmax classifier (bias folded in).
    Linear,
}

/// Train many configurations of one model together.
#[derive(Parser, Debug)]
#[command(version, about, allow_negative_numbers = true)]
struct Args {
    /// A configuration set from the course notebook (default: optimizers,
    /// unless --grid is given).
    #[arg(long, value_enum)]
    preset: Option<Preset>,
    /// Your own configurations: `rule:lr,lr;rule:lr`, rules as
    /// `--optimizer` of train_mlp (sgd, momentum, nesterov, adagrad,
    /// rmsprop, adam, adamw).
    #[arg(long, conflicts_with = "preset")]
    grid: Option<String>,
    /// Repeat every configuration over N initial weights (seeds seed,
    /// seed + 1, …).
    #[arg(long, default_value_t = 1)]
    seeds: usize,
    /// Epochs (default: the preset's, 10 for a grid).
    #[arg(long)]
    epochs: Option<usize>,
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// Training examples held out for validation (the notebook's 6,000).
    #[arg(long, default_value_t = 6000)]
    validation: usize,
    /// Use only the first N training and the first N test examples (quick
    /// runs, benchmarks).
    #[arg(long)]
    limit: Option<usize>,
    /// The minibatch order's seed, and the first model seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, value_enum, default_value = "mlp")]
    model: ModelArg,
    #[arg(long, value_enum, default_value = "gpu")]
    device: Device,
    /// A directory with the four IDX files (default: Fashion-MNIST, as train_mlp).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Fetch mnist, fashion-mnist or cifar-10 first (as train_mlp).
    #[arg(long, value_name = "NAME", conflicts_with = "data")]
    download: Option<String>,
    /// One JSON object per model on stdout, instead of the tables.
    #[arg(long)]
    json: bool,
    /// No per-epoch progress lines.
    #[arg(long)]
    quiet: bool,
    /// Draw validation accuracy and loss (log scale) per epoch (.svg or .png).
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
}

/// The runs of a preset or grid, each repeated over `seeds` seeds.
fn runs(args: &Args) -> Result<(Vec<SweepRun>, usize, usize)> {
    let bad = |msg: String| Error::InvalidArgument {
        name: "--grid",
        msg,
    };
    let (configs, epochs): (Vec<OptimizerConfig>, usize) = match (&args.grid, args.preset) {
        (Some(grid), _) => {
            let mut configs = Vec::new();
            for part in grid.split(';').map(str::trim).filter(|p| !p.is_empty()) {
                let (rule, lrs) = part
                    .split_once(':')
                    .ok_or_else(|| bad(format!("`{part}`: expected rule:lr,lr,…")))?;
                for lr in lrs.split(',').map(str::trim) {
                    let lr: f32 = lr
                        .parse()
                        .map_err(|_| bad(format!("`{lr}` in `{part}` is not a number")))?;
                    configs.push(OptimizerConfig::preset(rule.trim(), lr)?);
                }
            }
            if configs.is_empty() {
                return Err(bad("names no configuration".into()));
            }
            (configs, 10)
        }
        (None, Some(Preset::Lr)) => (
            [100.0, 1.0, 0.1, 0.001]
                .iter()
                .map(|&lr| OptimizerConfig::sgd(lr))
                .collect(),
            5,
        ),
        (None, _) => (
            ["sgd", "momentum", "rmsprop", "adam"]
                .iter()
                .map(|r| OptimizerConfig::preset(r, 1e-3))
                .collect::<Result<_>>()?,
            10,
        ),
    };
    let out = sweep::runs_over_seeds(&configs, args.seeds, args.seed)?;
    Ok((out, configs.len(), args.epochs.unwrap_or(epochs)))
}

fn run(args: Args) -> Result<()> {
    let (runs, configs, epochs) = runs(&args)?;
    if let Some(path) = &args.plot {
        crate::lab::plot::check_destination(path)?;
    }
    let splits = match &args.download {
        Some(name) => crate::lab::download::download_and_load(name)?,
        None => crate::data::load(args.data.as_deref())?,
    };
    let (train, test) = match args.limit {
        Some(n) => (splits.train.first(n), splits.test.first(n)),
        None => (splits.train.clone(), splits.test.clone()),
    };
    let (pixels, classes) = (train.dim(), train.classes);
    let model: Box<dyn Model> = match args.model {
        ModelArg::Mlp => Box::new(Mlp::new(&[pixels, 128, 128, classes], Activation::Sigmoid)?),
        ModelArg::Linear => Box::new(LinearSoftmax::new(pixels, classes)?),
    };
    let config = TrainConfig {
        epochs,
        batch: args.batch,
        seed: args.seed,
        validation: args.validation,
        fused: false,
        ..TrainConfig::default()
    };
    config.validate()?;
    let data = TrainData::new(train, test, args.validation, args.seed)?;
    if !args.json {
        println!(
            "data:   {} ({} train, {} validation, {} test)",
            splits.name,
            data.train_idx.len(),
            data.val_idx.len(),
            data.test.len()
        );
        println!(
            "model:  {} ({} parameters) × {} configurations{}",
            model.name(),
            crate::model::parameter_count(model.as_ref()),
            configs,
            if args.seeds > 1 {
                format!(" × {} seeds = {} models", args.seeds, runs.len())
            } else {
                String::new()
            }
        );
        println!(
            "batch {}  epochs {}  order seed {}",
            args.batch, epochs, args.seed
        );
    }
    let quiet = args.quiet || args.json;
    let labels: Vec<String> = runs.iter().map(|r| r.label.clone()).collect();
    let mut on_event = |e: SweepEvent<'_>| {
        let SweepEvent::Epoch {
            model,
            epoch,
            metrics,
        } = e;
        if quiet {
            return;
        }
        let text: Vec<String> = metrics
            .iter()
            .enumerate()
            .filter_map(|(i, m)| m.as_ref().map(|m| (i, m)))
            .map(|(i, m)| {
                let who = model.map_or(&labels[i], |k| &labels[k]);
                format!("{who}: {}", cell(m))
            })
            .collect();
        eprintln!("  epoch {epoch}/{epochs}  {}", text.join("  "));
    };
    let mut results = Vec::new();
    // With --device both a GPU failure is reported and the CPU still runs;
    // the process then exits non-zero.
    let mut failed = false;
    if matches!(args.device, Device::Gpu | Device::Both) {
        let gpu_run = (|| -> Result<SweepResult> {
            let gpu = Gpu::new()?;
            if !args.json {
                println!("\n[gpu] {}", gpu.summary());
            }
            sweep::sweep_gpu(&gpu, model.as_ref(), &data, &config, &runs, &mut on_event)
        })();
        match gpu_run {
            Ok(r) => {
                report(&args, &r);
                results.push(r);
            }
            Err(e) if args.device == Device::Both => {
                eprintln!("error: [gpu] {e}");
                failed = true;
            }
            Err(e) => return Err(e),
        }
    }
    if matches!(args.device, Device::Cpu | Device::Both) {
        if !args.json {
            println!("\n[cpu] K runs one after another with the CPU engine");
        }
        let r = sweep::sweep_cpu(model.as_ref(), &data, &config, &runs, &mut on_event)?;
        report(&args, &r);
        results.push(r);
    }
    if args.device == Device::GpuSequential {
        let gpu = Gpu::new()?;
        if !args.json {
            println!(
                "\n[gpu-sequential] {}: K runs one after another",
                gpu.summary()
            );
        }
        let start = std::time::Instant::now();
        let mut models = Vec::new();
        for run in &runs {
            models.push(sweep::train_alone_gpu(
                &gpu,
                model.as_ref(),
                &data,
                &config,
                run,
            )?);
        }
        let r = SweepResult {
            runs: runs.clone(),
            train_seconds: SweepResult::sequential_train_seconds(&models),
            models,
            device: "gpu-sequential",
            adapter: gpu.summary().to_string(),
            seconds: start.elapsed().as_secs_f64(),
            samples_per_epoch: data.train_idx.len(),
            dispatches_per_step: None,
        };
        report(&args, &r);
        results.push(r);
    }
    if let [g, c] = results.as_slice()
        && !args.json
    {
        println!(
            "\nGPU/CPU: {:.2}x  (GPU {:.0} models·samples/s, CPU {:.0})",
            g.model_samples_per_sec() / c.model_samples_per_sec(),
            g.model_samples_per_sec(),
            c.model_samples_per_sec()
        );
    }
    if let (Some(path), Some(r)) = (&args.plot, results.first()) {
        let curves: Vec<_> = r
            .runs
            .iter()
            .zip(&r.models)
            .enumerate()
            .map(|(i, (run, m))| crate::lab::plot::SweepCurve {
                label: run.label.clone(),
                color: i / args.seeds,
                dashed: i % args.seeds != 0,
                epochs: &m.history,
            })
            .collect();
        let title = format!(
            "{} on {}: {} configurations, same minibatches ({})",
            model.name(),
            splits.name,
            configs,
            r.device
        );
        crate::lab::plot::plot_sweep(path, &title, &curves)?;
        if !args.json {
            println!("plot: {}", path.display());
        }
    }
    // Some models of a sweep may diverge (the notebook's lr 100 does), but a
    // sweep in which every model did produced nothing to compare.
    for r in &results {
        if r.models.iter().all(|m| m.diverged.is_some()) {
            eprintln!(
                "error: [{}] every model of the sweep diverged; try smaller learning rates",
                r.device
            );
            failed = true;
        }
    }
    if failed {
        std::process::exit(1);
    }
    Ok(())
}

/// "acc / loss" of the validation set (training set without one).
fn cell(m: &EpochMetrics) -> String {
    match (m.val_accuracy, m.val_loss) {
        (Some(a), Some(l)) => format!("{a:.4} / {l:.4}"),
        _ => format!("{:.4} / {:.4}", m.train_accuracy, m.train_loss),
    }
}

fn report(args: &Args, r: &SweepResult) {
    if args.json {
        for (run, m) in r.runs.iter().zip(&r.models) {
            let epochs: Vec<_> = m
                .history
                .iter()
                .map(|e| {
                    serde_json::json!({
                        "epoch": e.epoch,
                        "train_loss": finite(e.train_loss),
                        "train_accuracy": e.train_accuracy,
                        "val_loss": e.val_loss.map(finite),
                        "val_accuracy": e.val_accuracy,
                    })
                })
                .collect();
            let line = serde_json::json!({
                "device": r.device,
                "label": run.label,
                "optimizer": run.optimizer.name(),
                "lr": run.optimizer.lr,
                "seed": run.seed,
                "epochs": epochs,
                "test_loss": m.test.map(|t| t.0),
                "test_accuracy": m.test.map(|t| t.1),
                "diverged": m.diverged.map(|d| serde_json::json!({
                    "epoch": d.epoch, "what": d.what, "value": d.value.to_string()
                })),
                "models_samples_per_sec": r.model_samples_per_sec(),
            });
            println!("{line}");
        }
        return;
    }
    let width = r
        .runs
        .iter()
        .map(|x| x.label.len())
        .max()
        .unwrap_or(8)
        .max(17);
    // Per epoch, one column per model: validation accuracy / loss.
    println!(
        "\nvalidation accuracy / loss per epoch (training values without a validation split):"
    );
    print!("{:>5}", "epoch");
    for run in &r.runs {
        print!("  {:>width$}", run.label);
    }
    println!();
    let epochs = r.models.iter().map(|m| m.history.len()).max().unwrap_or(0);
    for e in 0..epochs {
        print!("{:>5}", e + 1);
        for m in &r.models {
            let text = match m.history.get(e) {
                Some(h) if m.diverged.is_some_and(|d| d.epoch == h.epoch) => "diverged".to_string(),
                Some(h) => cell(h),
                None => "-".to_string(),
            };
            print!("  {text:>width$}");
        }
        println!();
    }
    println!(
        "\n{:<width$}  {:>8}  {:>8}  {:>8}  {:>8}  diverged",
        "model", "val acc", "val loss", "test acc", "test loss"
    );
    for (run, m) in r.runs.iter().zip(&r.models) {
        let last = m.history.last();
        let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
        println!(
            "{:<width$}  {:>8}  {:>8}  {:>8}  {:>8}  {}",
            run.label,
            f(last.and_then(|h| h.val_accuracy)),
            f(last.and_then(|h| h.val_loss)),
            f(m.test.map(|t| t.1)),
            f(m.test.map(|t| t.0)),
            m.diverged.map_or("no".to_string(), |d| format!(
                "epoch {} ({} {})",
                d.epoch, d.what, d.value
            )),
        );
    }
    println!(
        "[{}] {} models in {:.1} s ({:.1} s training): {:.0} models·samples/s{}",
        r.device,
        r.models.len(),
        r.seconds,
        r.train_seconds,
        r.model_samples_per_sec(),
        r.dispatches_per_step.map_or(String::new(), |d| format!(
            ", {d} dispatches per step for all"
        ))
    );
}

/// JSON has no NaN or infinity: those become null.
fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
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
