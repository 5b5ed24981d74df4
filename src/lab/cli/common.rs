//! The command line shared by `train_mlp` and `train_linear`: flags, data
//! loading, the GPU and CPU runs, progress, JSON lines, plots, checkpoints.

use crate::lab::summary::{RunSummary, format_epoch_line};
use crate::metrics::History;
use crate::model::Model;
use crate::optim::OptimizerConfig;
use crate::train::{self, CpuEngine, Engine, Event, GpuEngine, Resume, TrainConfig, TrainData};
use crate::{Error, Gpu, Result};
use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};

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
pub enum OnOff {
    /// The step timed fastest on this device the first time (reference,
    /// layers or the row block: `train::choose_step`), recorded with the
    /// kernels' choices; with tuning off, `GpuEngine::fused_by_default`.
    Auto,
    /// The row-block step (issue 23): the first layer, one row block
    /// (forward, loss, every delta), then the weight gradients, which apply
    /// the optimizer's update themselves where the device allows: three
    /// dispatches.
    On,
    /// `on` with the optimizer's update a dispatch of its own, kept to
    /// measure what fusing it gains.
    OnUpdateApart,
    /// The per-layer fused step of issue 13 (a fused kernel per layer),
    /// kept to compare with `on`.
    Layers,
    Off,
}

impl OnOff {
    /// The library's [`crate::train::FusedStep`] for this value.
    pub fn fused_step(self) -> crate::train::FusedStep {
        match self {
            OnOff::On => crate::train::FusedStep::Rows,
            OnOff::OnUpdateApart => crate::train::FusedStep::RowsUpdateApart,
            _ => crate::train::FusedStep::Layers,
        }
    }
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
    /// Update rule (`OptimizerConfig::preset`). Hyperparameters follow the
    /// PyTorch peer: momentum 0.9; Adam, AdamW and RMSprop (α 0.9) with eps 1e-7.
    #[arg(long, value_enum)]
    pub optimizer: Option<Optimizer>,
    /// Learning rate.
    // Number flags take values with a leading hyphen, so that `-1e-3` is a
    // value (refused by its check, with its name) and not an unknown flag:
    // clap's negative-number rule does not cover negative exponents.
    #[arg(long, allow_hyphen_values = true)]
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
    /// Save parameters and optimizer state (safetensors) when training ends
    /// (not when it diverged). With `--device both` the GPU run's state goes
    /// to FILE and the CPU run's to FILE with `.cpu` before the extension.
    /// Checked before training starts. Each save replaces FILE atomically,
    /// so two runs saving to one FILE at once never mix: the last to finish
    /// wins, and the other's state is not kept.
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
    /// Resume from a checkpoint written by `--save`: training continues
    /// from the epoch it had reached up to `--epochs`. Read once, before
    /// training, so both devices resume from the same state.
    #[arg(long, value_name = "FILE")]
    pub load: Option<PathBuf>,
    /// Draw loss and accuracy per epoch (.svg or .png). Checked before
    /// training starts.
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
    /// The fused training step (fewer dispatches, the same arithmetic):
    /// `on` the row-block step, `layers` the per-layer fused step it
    /// replaced, `off` the unfused reference kernels, to compare them; `auto`
    /// takes what is faster on this kind of adapter (fused on software
    /// adapters, unfused on hardware GPUs: measured on an NVIDIA H200).
    #[arg(long, value_enum, default_value = "auto")]
    pub fused: OnOff,
    /// Run the kernel versions an earlier run recorded (its `--json` output
    /// or its `--save` checkpoint) instead of tuning: with
    /// WGPU_TRAIN_AUTOTUNE=off that repeats a tuned run bit for bit. A
    /// `--load` checkpoint's recorded kernels are replayed without it.
    #[arg(long, value_name = "FILE")]
    pub kernels: Option<PathBuf>,
}

impl Common {
    /// The optimizer configuration ([`OptimizerConfig::preset`]), with the
    /// given defaults for this model.
    pub fn optimizer(&self, default: Optimizer, default_lr: f32) -> Result<OptimizerConfig> {
        let rule = self.optimizer.unwrap_or(default);
        if matches!(rule, Optimizer::Lbfgs | Optimizer::NewtonCg) {
            return Err(Error::InvalidArgument {
                name: "--optimizer",
                msg: "lbfgs and newton-cg train the linear model only (train_linear)".into(),
            });
        }
        let name = rule
            .to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default();
        OptimizerConfig::preset(&name, self.lr.unwrap_or(default_lr))
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

    /// Where `device`'s checkpoint goes, if anywhere.
    fn save_path(&self, device: &str, devices: usize) -> Option<PathBuf> {
        self.save.as_ref().map(|path| {
            if devices > 1 && device == "cpu" {
                Common::with_suffix(path, "cpu")
            } else {
                path.clone()
            }
        })
    }

    /// Refuses, before any training, an output that could not be written
    /// afterwards: a missing or unwritable directory, a device or directory
    /// in the file's place, a plot extension other than .svg or .png.
    pub fn check_outputs(&self, devices: &[&str]) -> Result<()> {
        for &device in devices {
            if let Some(path) = self.save_path(device, devices.len()) {
                crate::checkpoint::check_destination(&path)?;
            }
        }
        if let Some(path) = &self.plot {
            crate::lab::plot::check_destination(path)?;
        }
        Ok(())
    }
}

/// Loads the data the flags name (fetching it first with `--download`).
/// Returns the splits and a one-line description of them.
pub fn load_data(common: &Common) -> Result<(crate::data::Splits, String)> {
    let splits = match &common.download {
        Some(name) => crate::lab::download::download_and_load(name)?,
        None => crate::data::load(common.data.as_deref())?,
    };
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
///
/// Everything that can be checked before training is: the configuration,
/// the output paths, the checkpoint to resume from. A device whose run
/// fails (it diverged, its adapter failed) is reported and the next device
/// still runs; the process then exits non-zero.
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
    common.check_outputs(devices)?;
    let resume = match &common.load {
        Some(path) => Some(Resume::read(path, model, config)?),
        None => None,
    };
    let first_epoch = match &resume {
        Some(r) => r.first_epoch(config.epochs)?,
        None => 0,
    };
    let replay = match &common.kernels {
        Some(path) => Some(crate::train::read_recorded(path)?),
        None => None,
    };
    // With --device both, a GPU that cannot be opened is that device's
    // failure: reported, the CPU still runs, and the exit is non-zero.
    let mut failed = false;
    let gpu = match devices.contains(&"gpu").then(Gpu::new_tuned) {
        None => None,
        Some(Ok(g)) => Some(g),
        Some(Err(e)) if devices.len() > 1 => {
            eprintln!("error: [gpu] {e}");
            failed = true;
            None
        }
        Some(Err(e)) => return Err(e),
    };
    // Replayed choices are fixed before any kernel is built, so before the
    // engine: the checkpoint's, then --kernels over them.
    if let Some(g) = &gpu {
        if let Some(r) = &resume {
            g.tune_record().pin(&r.kernels);
        }
        if let Some(choices) = &replay {
            g.tune_record().pin(choices);
        }
    }
    // Both devices run the same programs, so the choice is made once.
    let mut config = config.clone();
    if common.fused == OnOff::Auto {
        // Measured on this device the first time (tuning on, the
        // examples' default) and recorded with the kernels' choices.
        config = match &gpu {
            Some(g) => crate::train::choose_step(g, model, &config, data.train_idx.len()),
            None => crate::train::with_step(&config, "layers"),
        };
    }
    let config = &config;
    if !common.json {
        println!("data:      {data_name}");
        println!(
            "model:     {} ({} parameters)",
            model.name(),
            crate::model::parameter_count(model)
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
    let mut runs: Vec<(&str, History)> = Vec::new();
    let mut summaries: Vec<RunSummary> = Vec::new();
    for &device in devices {
        if device == "gpu" && gpu.is_none() {
            continue;
        }
        if let (Some(g), "gpu") = (&gpu, device)
            && g.is_software()
        {
            software_adapter_notice(g, devices.len() > 1);
        }
        let mut history = History::new();
        match run_device(
            common,
            device,
            gpu.as_ref(),
            model,
            data,
            config,
            (resume.as_ref(), first_epoch),
            devices.len(),
            &mut history,
        ) {
            Ok(summary) => summaries.push(summary),
            Err(e) => {
                failed = true;
                match e {
                    Error::Diverged { .. } => eprintln!("error: {e}"),
                    e => eprintln!("error: [{device}] {e}"),
                }
                if let Some(path) = common.save_path(device, devices.len()) {
                    eprintln!("[{device}] nothing saved to {}", path.display());
                }
            }
        }
        if !history.epochs.is_empty() {
            runs.push((device, history));
        }
    }
    if let [g, c] = summaries.as_slice()
        && !common.json
        && measured(g.samples_per_sec)
        && measured(c.samples_per_sec)
    {
        println!(
            "\nGPU/CPU speed: {:.2}x  (GPU {:.0} samples/s on {}, CPU {:.0} samples/s)",
            g.samples_per_sec / c.samples_per_sec,
            g.samples_per_sec,
            g.adapter,
            c.samples_per_sec
        );
    }
    if let Some(path) = &common.plot
        && !runs.is_empty()
    {
        let runs: Vec<(&str, &History)> = runs.iter().map(|(d, h)| (*d, h)).collect();
        crate::lab::plot::plot_history(path, &format!("{} on {short_name}", model.name()), &runs)?;
        if !common.json {
            println!("plot: {}", path.display());
        }
    }
    if failed {
        std::process::exit(1);
    }
    Ok(())
}

/// A throughput that was measured: finite and positive.
fn measured(x: f64) -> bool {
    x.is_finite() && x > 0.0
}

/// Says, before the GPU run on a software adapter, what it is and how to
/// choose something faster.
fn software_adapter_notice(gpu: &Gpu, cpu_follows: bool) {
    let s = gpu.summary();
    eprintln!(
        "[gpu] note: the adapter {} ({:?}) is a software renderer: it runs the shaders on this \
         machine's CPU cores, so the CPU path is faster here{}.\n\
         [gpu]       For a quicker run use --device cpu, or fewer --epochs; the progress bar \
         shows the time left.",
        s.name,
        s.device_type,
        if cpu_follows {
            " (the CPU run follows this one)"
        } else {
            ""
        }
    );
}

/// One device's run: engine, resume, training, summary, checkpoint. Epoch
/// metrics go into `history` as they come, so a run that fails part way
/// still has its epochs to plot.
#[allow(clippy::too_many_arguments)]
fn run_device(
    common: &Common,
    device: &'static str,
    gpu: Option<&Gpu>,
    model: &dyn Model,
    data: &TrainData,
    config: &TrainConfig,
    (resume, first_epoch): (Option<&Resume>, usize),
    devices: usize,
    history: &mut History,
) -> Result<RunSummary> {
    let mut engine: Box<dyn Engine + '_> = match (device, gpu) {
        ("gpu", Some(g)) => Box::new(GpuEngine::new(g, model, data, config)?),
        _ => Box::new(CpuEngine::new(model, data, config)?),
    };
    if let (Some(r), Some(path)) = (resume, &common.load) {
        r.restore(engine.as_mut())?;
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
                "[{prefix}] epoch {msg} {bar:30} {percent:>3}%  {elapsed_precise} elapsed, ETA {eta_precise}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b.set_prefix(device);
        b
    };
    let epochs = config.epochs;
    let quiet = common.quiet;
    // One bar over every epoch of the run, so its ETA is the whole run's.
    let remaining = (epochs - first_epoch) as u64;
    let result = train::fit(
        engine.as_mut(),
        data,
        config,
        first_epoch,
        &mut |event| match event {
            Event::Step { epoch, done, total } => {
                let total = total as u64;
                bar.set_length(total.saturating_mul(remaining));
                bar.set_position(
                    ((epoch - first_epoch) as u64)
                        .saturating_mul(total)
                        .saturating_add(done as u64),
                );
                bar.set_message(format!("{}/{epochs}", epoch + 1));
            }
            Event::Epoch(m) => {
                history.push(m.clone());
                if !quiet {
                    bar.suspend(|| eprintln!("[{device}] {}", format_epoch_line(m, epochs)));
                }
            }
        },
    );
    bar.finish_and_clear();
    let result = result?;
    let summary = RunSummary::from_fit(engine.as_ref(), model, config, &result);
    if let (Some(g), "gpu") = (gpu, device)
        && let Some(report) = g.tune_record().report()
        && !common.json
    {
        println!("[gpu] {report}");
    }
    // Per-class metrics of the test set, when they go anywhere.
    let classes = if common.json || common.plot.is_some() {
        Some(ClassReport::of(model, data, config, engine.as_mut())?)
    } else {
        None
    };
    if let (Some(path), Some(c)) = (&common.plot, &classes) {
        let file = c.plot(path, device, model)?;
        if !common.json {
            println!("[{device}] confusion matrix: {}", file.display());
        }
    }
    if common.json {
        println!(
            "{}",
            ClassReport::json_line(&summary.to_json_line(), classes.as_ref())
        );
    } else {
        println!(
            "[{device}] test accuracy {:.4}  test loss {:.4}  final train loss {:.4}  {:.0} samples/s (median epoch {:.2} s){}",
            summary.test_accuracy,
            summary.test_loss,
            summary.final_train_loss,
            summary.samples_per_sec,
            crate::metrics::median(&summary.epoch_seconds),
            match (summary.dispatches_per_step, summary.host_syncs_per_epoch) {
                (Some(d), Some(s)) => format!("  {d} dispatches/step, {s} host syncs/epoch"),
                _ => String::new(),
            }
        );
    }
    if let Some(path) = common.save_path(device, devices) {
        train::save_checkpoint(&path, model, config, engine.as_mut(), config.epochs)?;
        if !common.json {
            println!("[{device}] saved {}", path.display());
        }
    }
    Ok(summary)
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

/// The test set's confusion matrix and per-class precision, recall and F1,
/// from the trained parameters (`train::predict`: the CPU twins' evaluation
/// program, whichever device trained them).
struct ClassReport {
    confusion: Vec<Vec<u64>>,
    per_class: Vec<crate::metrics::ClassMetrics>,
}

impl ClassReport {
    fn of(
        model: &dyn Model,
        data: &TrainData,
        config: &TrainConfig,
        engine: &mut dyn Engine,
    ) -> Result<Self> {
        let params = engine.state()?.params;
        let (truth, predicted) =
            crate::train::predict(model, data, config, &params, train::EvalSet::Test)?;
        let confusion = crate::metrics::confusion_matrix(model.classes(), &truth, &predicted)?;
        let per_class = crate::metrics::per_class(&confusion);
        Ok(Self {
            confusion,
            per_class,
        })
    }

    /// The run's JSON line with `confusion` and `per_class` added.
    fn json_line(line: &str, report: Option<&Self>) -> String {
        match (serde_json::from_str::<serde_json::Value>(line), report) {
            (Ok(serde_json::Value::Object(mut map)), Some(r)) => {
                map.insert("confusion".into(), serde_json::json!(r.confusion));
                map.insert("per_class".into(), serde_json::json!(r.per_class));
                serde_json::Value::Object(map).to_string()
            }
            _ => line.to_string(),
        }
    }

    /// Draws the confusion matrix beside the curves: `curves.png` →
    /// `curves-confusion-gpu.png`.
    fn plot(&self, curves: &Path, device: &str, model: &dyn Model) -> Result<PathBuf> {
        let stem = curves
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("plot");
        let ext = curves.extension().and_then(|s| s.to_str()).unwrap_or("svg");
        let file = curves.with_file_name(format!("{stem}-confusion-{device}.{ext}"));
        let labels: Vec<String> = (0..self.confusion.len()).map(|c| c.to_string()).collect();
        crate::lab::plot::plot_confusion(
            &file,
            &format!("{} [{device}]: test-set confusion matrix", model.name()),
            &self.confusion,
            &labels,
        )?;
        Ok(file)
    }
}
