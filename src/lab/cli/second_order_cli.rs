//! `train_linear --optimizer lbfgs|newton-cg`: full-batch second-order
//! training of the linear classifier on the GPU and/or the CPU, with the
//! same output as the first-order runs (iteration lines in place of epoch
//! lines, `--json`, `--plot` over iterations).

use super::super::common::{Device as DeviceArg, Optimizer};
use super::Args;
use crate::lab::RunSummary;
use crate::lab::second_order::{Device, LinearRun, fit_linear};
use crate::metrics::{EpochMetrics, History};
use crate::second_order::{FullBatchConfig, Iteration, Method, SecondOrderConfig};
use crate::{Dataset, Error, Gpu, Result};

/// One iteration as a line: loss, accuracy, gradient norm, step, and what
/// the iteration cost.
pub fn iteration_line(it: &Iteration, max: usize) -> String {
    let width = max.to_string().len();
    format!(
        "iter {:>width$}/{max}  loss {:.6}  acc {:.4}  |g| {:.2e}  step {:.3}  evals {}  cg {}  readbacks {}  passes {}  {:.2} s",
        it.iteration,
        it.loss,
        it.train_accuracy,
        it.grad_norm,
        it.step,
        it.evaluations,
        it.cg_steps,
        it.readbacks,
        it.passes,
        it.seconds
    )
}

/// The iterations as a per-"epoch" history, for `plot_history`.
pub fn history(iterations: &[Iteration], examples: usize) -> History {
    let mut h = History::new();
    let mut prev: Option<&Iteration> = None;
    for it in iterations {
        let (dt, dp) = match prev {
            Some(p) => (it.seconds - p.seconds, it.passes - p.passes),
            None => (it.seconds, it.passes),
        };
        h.push(EpochMetrics {
            epoch: it.iteration,
            train_loss: it.loss,
            train_accuracy: it.train_accuracy,
            val_loss: None,
            val_accuracy: None,
            seconds: dt,
            samples_per_sec: (dp * examples) as f64 / dt.max(1e-12),
        });
        prev = Some(it);
    }
    h
}

pub fn run(args: &Args, train: Dataset, test: Dataset, name: &str, short: &str) -> Result<()> {
    let c = &args.common;
    if c.save.is_some() || c.load.is_some() || c.validation > 0 {
        return Err(Error::InvalidArgument {
            name: "--optimizer",
            msg: "lbfgs and newton-cg train on the whole training set and do not take --save, --load or --validation".into(),
        });
    }
    // Flags of the first-order runs would be silently ignored here.
    let ignored: Vec<String> = ["epochs", "batch", "lr", "fused", "kernels"]
        .iter()
        .filter(|id| args.given.iter().any(|g| g == *id))
        .map(|id| format!("--{id}"))
        .collect();
    if !ignored.is_empty() {
        return Err(Error::InvalidArgument {
            name: "--optimizer",
            msg: format!(
                "lbfgs and newton-cg run full-batch iterations (--iterations, --gtol, --history, --l2); {} do{} not apply",
                ignored.join(", "),
                if ignored.len() == 1 { "es" } else { "" }
            ),
        });
    }
    let method = match c.optimizer {
        Some(Optimizer::Lbfgs) => Method::Lbfgs,
        _ => Method::NewtonCg,
    };
    let config = SecondOrderConfig {
        max_iterations: args.iterations,
        gtol: args.gtol,
        history: args.history,
        ..SecondOrderConfig::new(method)
    };
    config.validate()?;
    let data = FullBatchConfig {
        l2: args.l2.unwrap_or(1e-4),
        ..FullBatchConfig::default()
    };
    data.validate()?;
    let model = format!("linear-{}x{}", train.classes, train.dim() + 1);
    if !c.json {
        println!("data:      {name}");
        println!(
            "model:     {model} ({} parameters)",
            train.classes * (train.dim() + 1)
        );
        println!(
            "optimizer: {method}{}  l2 {}  full batch of {}  iterations ≤ {}  gtol {:e}  seed {}",
            if method == Method::Lbfgs {
                format!(" (m {})", config.history)
            } else {
                String::new()
            },
            data.l2,
            train.len(),
            config.max_iterations,
            config.gtol,
            c.seed
        );
    }
    let devices: &[&str] = match c.device {
        DeviceArg::Gpu => &["gpu"],
        DeviceArg::Cpu => &["cpu"],
        DeviceArg::Both => &["gpu", "cpu"],
    };
    // Before any training: a plot that could not be written at the end.
    c.check_outputs(devices)?;
    // With --device both a GPU failure (no adapter, a failed run) is
    // reported and the CPU still runs; the exit is then non-zero, as it is
    // for a run that stopped on a failure (Stop::is_success).
    let mut failed = false;
    let gpu = match devices.contains(&"gpu").then(Gpu::new) {
        None => None,
        Some(Ok(g)) => Some(g),
        Some(Err(e)) if devices.len() > 1 => {
            eprintln!("error: [gpu] {e}");
            failed = true;
            None
        }
        Some(Err(e)) => return Err(e),
    };
    let mut runs: Vec<LinearRun> = Vec::new();
    for &device in devices {
        if device == "gpu" && gpu.is_none() {
            continue;
        }
        let dev = match (device, &gpu) {
            ("gpu", Some(g)) => {
                if !c.json {
                    println!("\n[gpu] {}", g.summary());
                }
                Device::Gpu(g)
            }
            _ => {
                if !c.json {
                    println!(
                        "\n[cpu] CPU, ndarray + matrixmultiply, {} threads",
                        rayon::current_num_threads()
                    );
                }
                Device::Cpu
            }
        };
        let quiet = c.quiet || c.json;
        let max = config.max_iterations;
        let run = match fit_linear(dev, &train, &test, &data, &config, c.seed, &mut |it| {
            if !quiet {
                eprintln!("[{device}] {}", iteration_line(it, max));
            }
        }) {
            Ok(r) => r,
            Err(e) if devices.len() > 1 && device == "gpu" => {
                eprintln!("error: [gpu] {e}");
                failed = true;
                continue;
            }
            Err(e) => return Err(e),
        };
        if !run.outcome.stop.is_success() {
            eprintln!("error: [{device}] {method} {}", run.outcome.stop);
            failed = true;
        }
        let last = run.outcome.last();
        let steps = last.iteration.max(1) as f64;
        let step_readbacks: usize = run.outcome.iterations[1..]
            .iter()
            .map(|i| i.readbacks)
            .sum();
        if c.json {
            let summary = RunSummary {
                device: device.to_string(),
                adapter: run.adapter.clone(),
                model: model.clone(),
                optimizer: method.name().to_string(),
                lr: 0.0,
                batch: train.len(),
                epochs: last.iteration,
                test_accuracy: run.test_accuracy,
                test_loss: run.test_loss,
                final_train_loss: last.loss,
                samples_per_sec: (last.passes * train.len()) as f64 / last.seconds.max(1e-12),
                epoch_seconds: history(&run.outcome.iterations, train.len()).epoch_seconds(),
                dispatches_per_step: None,
                host_syncs_per_epoch: Some(step_readbacks as f64 / steps),
                seed: c.seed,
                fused: false,
                kernels: Default::default(),
            };
            // The run's JSON says how it stopped, as its text line does.
            let mut line: serde_json::Value =
                serde_json::from_str(&summary.to_json_line()).unwrap_or_default();
            line["stop"] = serde_json::Value::String(run.outcome.stop.to_string());
            println!("{line}");
        } else {
            println!(
                "[{device}] {} after {} iterations ({} passes over the data, {:.1} readbacks per iteration): test accuracy {:.4}  test loss {:.4}  final train loss {:.6}  |g| {:.2e}  {:.2} s",
                run.outcome.stop,
                last.iteration,
                last.passes,
                step_readbacks as f64 / steps,
                run.test_accuracy,
                run.test_loss,
                last.loss,
                last.grad_norm,
                last.seconds
            );
        }
        runs.push(run);
    }
    if let [g, cpu] = runs.as_slice()
        && !c.json
    {
        let (tg, tc) = (g.outcome.last().seconds, cpu.outcome.last().seconds);
        println!(
            "\nGPU/CPU speed: {:.2}x  (GPU {tg:.2} s, CPU {tc:.2} s)",
            tc / tg.max(1e-12)
        );
    }
    if let Some(path) = c.plot.as_ref().filter(|_| !runs.is_empty()) {
        let histories: Vec<(String, History)> = runs
            .iter()
            .map(|r| {
                (
                    r.device.to_string(),
                    history(&r.outcome.iterations, train.len()),
                )
            })
            .collect();
        let refs: Vec<(&str, &History)> = histories.iter().map(|(d, h)| (d.as_str(), h)).collect();
        crate::lab::plot::plot_history(
            path,
            &format!("{model} {method} on {short} (x: iterations)"),
            &refs,
        )?;
        if !c.json {
            println!("plot: {}", path.display());
        }
    }
    if failed {
        std::process::exit(1);
    }
    Ok(())
}
