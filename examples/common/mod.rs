//! The command line shared by `train_mlp` and `train_linear`: flags, data
//! loading, the GPU and CPU runs, progress, JSON lines, plots, checkpoints.

use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use wgpu_train::metrics::{History, RunSummary, format_epoch_line};
use wgpu_train::model::Model;
use wgpu_train::optim::{Adam, OptimizerConfig, RmsProp};
use wgpu_train::train::{self, CpuEngine, Engine, Event, GpuEngine, TrainConfig, TrainData};
use wgpu_train::{Error, Gpu, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Device {
    Gpu,
    Cpu,
    Both,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Optimizer {
    Sgd,
    Momentum,
    Nesterov,
    Adagrad,
    Rmsprop,
    Adam,
    Adamw,
    /// L-BFGS on the full batch (train_linear only).
    Lbfgs,
    /// Newton-CG on the full batch (train_linear only).
    NewtonCg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ActivationArg {
    Sigmoid,
    Relu,
}

/// Flags common to both training examples.
#[derive(Parser, Debug)]
pub struct Common {
    /// Where to train: the GPU run, the CPU run, or both (then their speed ratio).
    #[arg(long, value_enum, default_value = "both")]
    pub device: Device,
    /// Update rule. Hyperparameters follow the PyTorch peer: momentum 0.9;
    /// Adam, AdamW and RMSprop (α 0.9) with eps 1e-7.
    #[arg(long, value_enum)]
    pub optimizer: Option<Optimizer>,
    /// Learning rate.
    #[arg(long)]
    pub lr: Option<f32>,
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// A directory with the four IDX files (MNIST, Fashion-MNIST) or the
    /// CIFAR-10 binary batches. Default: $FASHION_MNIST_DIR, then
    /// /usr/share/datasets/fashion-mnist, then ./data/…
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Fetch a dataset first (mnist, fashion-mnist or cifar-10) into
    /// ./data/NAME from its canonical location, checking SHA-256 sums, and
    /// train on it. Files already there and intact are not fetched again.
    #[arg(long, value_name = "NAME", conflicts_with = "data")]
    pub download: Option<String>,
    /// Training examples held out for validation after every epoch.
    #[arg(long, default_value_t = 0)]
    pub validation: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// One JSON object per run on stdout.
    #[arg(long)]
    pub json: bool,
    /// No progress bar and no per-epoch lines.
    #[arg(long)]
    pub quiet: bool,
    /// Save parameters and optimizer state (safetensors) when training ends.
    /// With `--device both` the GPU run's state goes to FILE and the CPU
    /// run's to FILE with `.cpu` before the extension.
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
    /// Resume from a checkpoint written by `--save`: training continues
    /// from the epoch it had reached up to `--epochs`.
    #[arg(long, value_name = "FILE")]
    pub load: Option<PathBuf>,
    /// Draw loss and accuracy per epoch (.svg).
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
}

impl Common {
    /// The optimizer configuration, with the given defaults for this model.
    pub fn optimizer(&self, default: Optimizer, default_lr: f32) -> Result<OptimizerConfig> {
        let lr = self.lr.unwrap_or(default_lr);
        let eps = 1e-7;
        let cfg = match self.optimizer.unwrap_or(default) {
            Optimizer::Lbfgs | Optimizer::NewtonCg => {
                return Err(Error::InvalidArgument {
                    name: "--optimizer",
                    msg: "lbfgs and newton-cg train the linear model only (train_linear)".into(),
                });
            }
            Optimizer::Sgd => OptimizerConfig::sgd(lr),
            Optimizer::Momentum => OptimizerConfig::momentum(lr, 0.9),
            Optimizer::Nesterov => OptimizerConfig::nesterov(lr, 0.9),
            Optimizer::Adagrad => OptimizerConfig {
                lr,
                ..OptimizerConfig::adagrad()
            },
            Optimizer::Rmsprop => OptimizerConfig::new(
                lr,
                RmsProp {
                    alpha: 0.9,
                    eps,
                    ..RmsProp::default()
                },
            ),
            Optimizer::Adam => OptimizerConfig::new(
                lr,
                Adam {
                    eps,
                    ..Adam::default()
                },
            ),
            Optimizer::Adamw => OptimizerConfig::new(
                lr,
                Adam {
                    eps,
                    ..Adam::adamw()
                },
            ),
        };
        cfg.validate()?;
        Ok(cfg)
    }

    fn with_suffix(path: &Path, device: &str) -> PathBuf {
        let stem = path
            .file_stem()
            .map_or_else(|| "checkpoint".into(), |s| s.to_string_lossy().into_owned());
        let ext = path
            .extension()
            .map_or_else(String::new, |e| format!(".{}", e.to_string_lossy()));
        path.with_file_name(format!("{stem}.{device}{ext}"))
    }
}

/// Loads the data the flags name.
/// Returns the splits and a one-line description of them.
pub fn load_data(common: &Common) -> Result<(wgpu_train::data::Splits, String)> {
    let downloaded = match &common.download {
        Some(name) => {
            let remote = wgpu_train::data::Remote::from_name(name).ok_or_else(|| {
                Error::InvalidArgument {
                    name: "--download",
                    msg: format!("unknown dataset '{name}'; use mnist, fashion-mnist or cifar-10"),
                }
            })?;
            eprintln!(
                "fetching {} into {} …",
                remote.name(),
                remote.default_dir().display()
            );
            Some(wgpu_train::data::download::download(
                remote,
                &remote.default_dir(),
                None,
            )?)
        }
        None => None,
    };
    let splits = wgpu_train::data::load(downloaded.as_deref().or(common.data.as_deref()))?;
    let what = format!(
        "{} from {} ({} train, {} test, images {:?})",
        splits.name,
        splits.dir.display(),
        splits.train.len(),
        splits.test.len(),
        splits.train.image_shape
    );
    Ok((splits, what))
}

/// Trains `model` on the devices the flags ask for; prints progress, the
/// summary (or JSON lines), draws the plot, saves checkpoints. `data_name`
/// describes the data in full; `short_name` ("Fashion-MNIST") titles the plot.
pub fn run(
    common: &Common,
    model: &dyn Model,
    data: &TrainData,
    config: &TrainConfig,
    data_name: &str,
    short_name: &str,
) -> Result<()> {
    config.validate()?;
    let devices: &[&str] = match common.device {
        Device::Gpu => &["gpu"],
        Device::Cpu => &["cpu"],
        Device::Both => &["gpu", "cpu"],
    };
    let gpu = if devices.contains(&"gpu") {
        Some(Gpu::new()?)
    } else {
        None
    };
    if !common.json {
        println!("data:      {data_name}");
        println!(
            "model:     {} ({} parameters)",
            model.name(),
            wgpu_train::model::parameter_count(model)
        );
        println!(
            "optimizer: {} lr {}  batch {}  epochs {}  seed {}",
            config.optimizer.name(),
            config.optimizer.lr,
            config.batch,
            config.epochs,
            config.seed
        );
    }
    let mut summaries: Vec<RunSummary> = Vec::new();
    let mut histories: Vec<(String, History)> = Vec::new();
    for &device in devices {
        let mut engine: Box<dyn Engine + '_> = match (device, &gpu) {
            ("gpu", Some(g)) => Box::new(GpuEngine::new(g, model, data, config)?),
            _ => Box::new(CpuEngine::new(model, data, config)?),
        };
        let mut first_epoch = 0;
        if let Some(path) = &common.load {
            first_epoch = train::load_checkpoint(path, model, config, engine.as_mut())?;
            if !common.json {
                println!(
                    "[{device}] resumed from {} after epoch {first_epoch}",
                    path.display()
                );
            }
        }
        if !common.json {
            println!("\n[{device}] {}", engine.adapter());
        }
        let bar = if common.quiet {
            ProgressBar::hidden()
        } else {
            let b = ProgressBar::new(0);
            b.set_style(
                ProgressStyle::with_template(
                    "[{prefix}] epoch {msg} {bar:30} {pos}/{len} steps {elapsed}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            b.set_prefix(device);
            b
        };
        let epochs = config.epochs;
        let quiet = common.quiet;
        let result = train::fit(
            engine.as_mut(),
            data,
            config,
            first_epoch,
            &mut |event| match event {
                Event::Step { epoch, done, total } => {
                    bar.set_length(total as u64);
                    bar.set_position(done as u64);
                    bar.set_message(format!("{}/{epochs}", epoch + 1));
                }
                Event::Epoch(m) => {
                    if !quiet {
                        bar.suspend(|| eprintln!("[{device}] {}", format_epoch_line(m, epochs)));
                    }
                }
            },
        )?;
        bar.finish_and_clear();
        let summary = RunSummary {
            device: device.to_string(),
            adapter: engine.adapter(),
            model: model.name(),
            optimizer: config.optimizer.name(),
            // Through its shortest decimal form, so 1e-3 prints as 0.001, not 0.0010000000474974513.
            lr: config
                .optimizer
                .lr
                .to_string()
                .parse()
                .unwrap_or(config.optimizer.lr as f64),
            batch: config.batch,
            epochs: config.epochs,
            test_accuracy: result.test_accuracy,
            test_loss: result.test_loss,
            final_train_loss: result.history.final_train_loss(),
            samples_per_sec: result.history.median_samples_per_sec(),
            epoch_seconds: result.history.epoch_seconds(),
            dispatches_per_step: engine.dispatches_per_step(),
            host_syncs_per_epoch: engine.host_syncs_last_epoch().map(|s| s as f64),
            seed: config.seed,
        };
        if common.json {
            println!("{}", summary.to_json_line());
        } else {
            println!(
                "[{device}] test accuracy {:.4}  test loss {:.4}  final train loss {:.4}  {:.0} samples/s (median epoch {:.2} s){}",
                summary.test_accuracy,
                summary.test_loss,
                summary.final_train_loss,
                summary.samples_per_sec,
                wgpu_train::metrics::median(&summary.epoch_seconds),
                match (summary.dispatches_per_step, summary.host_syncs_per_epoch) {
                    (Some(d), Some(s)) => format!("  {d} dispatches/step, {s} host syncs/epoch"),
                    _ => String::new(),
                }
            );
        }
        if let Some(path) = &common.save {
            let path = if devices.len() > 1 && device == "cpu" {
                Common::with_suffix(path, "cpu")
            } else {
                path.clone()
            };
            train::save_checkpoint(&path, model, config, engine.as_mut(), config.epochs)?;
            if !common.json {
                println!("[{device}] saved {}", path.display());
            }
        }
        histories.push((device.to_string(), result.history));
        summaries.push(summary);
    }
    if let [g, c] = summaries.as_slice()
        && !common.json
    {
        println!(
            "\nGPU/CPU speed: {:.2}x  (GPU {:.0} samples/s on {}, CPU {:.0} samples/s)",
            g.samples_per_sec / c.samples_per_sec.max(1e-9),
            g.samples_per_sec,
            g.adapter,
            c.samples_per_sec
        );
    }
    if let Some(path) = &common.plot {
        let runs: Vec<(&str, &History)> = histories.iter().map(|(d, h)| (d.as_str(), h)).collect();
        wgpu_train::plot::plot_history(path, &format!("{} on {short_name}", model.name()), &runs)?;
        if !common.json {
            println!("plot: {}", path.display());
        }
    }
    Ok(())
}

/// Prints the error (no panic, no backtrace) and exits non-zero.
pub fn exit_on_error(r: Result<()>) {
    if let Err(e) = r {
        eprintln!("error: {e}");
        if matches!(e, Error::NoAdapter(_)) {
            eprintln!("(use --device cpu to train on the CPU only)");
        }
        std::process::exit(1);
    }
}
