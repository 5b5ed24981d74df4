//! The report card of one GPU: what `wgpu-train report` writes as
//! `report.md`, `report.json` and a self-contained `report.html` (inline
//! SVG plots, no external assets).
//!
//! In order, on the adapter the [`Gpu`] holds: the adapter (name, driver,
//! backend, limits, features, subgroup sizes); every verify row
//! ([`crate::lab::verify`]: kernel, shape, worst error, pass); a short MLP
//! training run on the GPU and on the CPU (the main job's model, optimizer
//! and batch, on synthetic Fashion-MNIST-shaped data so that no download is
//! needed; the last epoch's throughput); the tuner's choices for it; every
//! kernel family's GFLOP/s and GB/s ([`crate::lab::bench`]) against the
//! peak when one is given, else against the best rate measured in the
//! report; and the latency floor ([`crate::lab::latency`]).
//!
//! Timings exclude pipeline compilation: the verify table runs twice and
//! reports the second run's times (the first compiles every pipeline; both
//! runs must pass); the benchmarks and the latency floor warm each pipeline
//! up before their clocks start; the training throughput is the last of two
//! epochs, the first of which builds and warms everything.

use crate::error::{Error, Result};
use crate::lab::bench::{self, Comparison};
use crate::lab::{latency, verify};
use crate::model::{Mlp, Model};
use crate::optim::OptimizerConfig;
use crate::train::{self, CpuEngine, FusedStep, GpuEngine, TrainConfig, TrainData};
use crate::{Activation, Gpu};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The string every file of a report carries near its start: what lets a
/// later report replace it, and nothing else.
pub const MARK: &str = "wgpu-train-report";
/// The `schema` field of `report.json`.
pub const SCHEMA: &str = "wgpu-train-report/1";
/// The three files a report writes into its directory.
pub const FILES: [&str; 3] = ["report.md", "report.json", "report.html"];
/// Largest existing report file read to recognise it as ours.
const MAX_EXISTING: u64 = 64 << 20;

/// What to run.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Minutes on a software adapter rather than many: the benchmarks'
    /// quick mode, a smaller training set, shorter latency chains.
    pub quick: bool,
    /// The device's fp32 peak in GFLOP/s, when known.
    pub peak_gflops: Option<f64>,
    /// The device's memory bandwidth in GB/s, when known.
    pub peak_gbps: Option<f64>,
    /// Seed of the verify table's inputs and of the training data.
    pub seed: u64,
}

impl Options {
    /// Refuses a peak that is not a positive number.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("--peak-gflops", self.peak_gflops),
            ("--peak-gbps", self.peak_gbps),
        ] {
            if let Some(v) = v
                && !(v.is_finite() && v > 0.0)
            {
                return Err(Error::InvalidArgument {
                    name,
                    msg: format!("must be a positive number, got {v}"),
                });
            }
        }
        Ok(())
    }
}

/// The adapter section.
#[derive(Clone, Debug, Serialize)]
pub struct AdapterReport {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub driver_info: String,
    pub vendor: u32,
    pub device: u32,
    /// A software adapter (lavapipe, SwiftShader, WARP): the "GPU" runs on
    /// the CPU cores.
    pub software: bool,
    /// Smallest and largest subgroup size, where the device has subgroups.
    pub subgroup_sizes: Option<[u32; 2]>,
    /// wgpu's runtime checks as built for this device.
    pub checks: String,
    /// The limits the device was created with, by wgpu's field name.
    pub limits: BTreeMap<String, u64>,
    /// The features the adapter offers, by wgpu's name.
    pub features: Vec<String>,
}

/// One verify row, timed warm.
#[derive(Clone, Debug, Serialize)]
pub struct VerifyRow {
    pub family: String,
    pub kernel: String,
    pub shape: String,
    pub worst_error: f32,
    /// Passed in both runs.
    pub pass: bool,
    /// The first failure, when one run failed.
    pub detail: String,
    /// GPU milliseconds of the second run (pipelines already built).
    pub gpu_ms: f64,
    /// GPU milliseconds of the first run, pipeline compilation included.
    pub gpu_ms_first_use: f64,
    pub cpu_ms: f64,
}

/// One benchmark row: a side's time and rates.
#[derive(Clone, Debug, Serialize)]
pub struct BenchRow {
    pub family: String,
    pub name: String,
    pub detail: String,
    pub flops: u64,
    pub bytes: u64,
    pub gpu_s: Option<f64>,
    pub cpu_s: Option<f64>,
    pub gpu_gflops: Option<f64>,
    pub cpu_gflops: Option<f64>,
    pub gpu_gbps: Option<f64>,
    pub cpu_gbps: Option<f64>,
    /// The GPU's headline rate over the reference peak ([`Report::peak`]).
    pub gpu_fraction_of_peak: Option<f64>,
    /// The GPU's and the CPU's results agreed.
    pub agreed: Option<bool>,
    /// "timestamp" (GPU timestamp queries) or "wall".
    pub gpu_timer: Option<String>,
}

/// The reference the benchmark rates are set against.
#[derive(Clone, Debug, Serialize)]
pub struct Peak {
    pub gflops: Option<f64>,
    pub gbps: Option<f64>,
    /// "given" (`--peak-gflops`, `--peak-gbps`) or "measured" (the best
    /// GPU rate of this report's benchmarks: a floor on the true peak).
    pub source: String,
}

/// The latency floor section.
#[derive(Clone, Debug, Serialize)]
pub struct LatencyReport {
    /// Dispatches in the long chain.
    pub chain: usize,
    /// A dispatch with no dependency on the one before.
    pub per_dispatch_s: Option<f64>,
    /// A dependent dispatch (a read-write hazard: a barrier before it).
    pub per_dependent_dispatch_s: Option<f64>,
    /// The barrier alone: dependent less independent.
    pub per_barrier_s: Option<f64>,
    /// A submit beyond its dispatch (wall clock).
    pub per_submit_s: Option<f64>,
    pub empty_submit_s: f64,
    pub rows: Vec<latency::FloorRow>,
}

/// One side of the training run.
#[derive(Clone, Debug, Serialize)]
pub struct Throughput {
    /// Training samples per second over the last epoch.
    pub samples_per_s: f64,
    pub epoch_s: f64,
    pub final_train_loss: f64,
}

/// The main job's throughput on both sides.
#[derive(Clone, Debug, Serialize)]
pub struct TrainingReport {
    pub model: String,
    pub data: String,
    pub optimizer: String,
    pub batch: usize,
    pub train_samples: usize,
    pub epochs: usize,
    /// The GPU step `--fused auto` takes here: "fused (per layer)",
    /// "unfused" or "row block (N dispatches)".
    pub step: String,
    pub gpu: Throughput,
    pub cpu: Throughput,
    /// GPU samples/s over CPU samples/s.
    pub gpu_over_cpu: f64,
    /// Both runs gave the same final training loss bit for bit.
    pub same_loss: bool,
}

/// The tuner's choices for the training run.
#[derive(Clone, Debug, Serialize)]
pub struct TunerReport {
    pub mode: String,
    /// Kernel version by tuning key.
    pub choices: BTreeMap<String, String>,
    /// "tuned N shapes in S s (cached in …)", when something was tuned.
    pub summary: Option<String>,
}

/// A whole report card.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// [`SCHEMA`].
    pub schema: String,
    pub crate_version: String,
    /// "release" or "debug" (a build with debug assertions: slower CPU
    /// figures, and slower host code around the GPU's).
    pub build: String,
    /// Seconds since the Unix epoch when the report was made.
    pub created_unix_s: u64,
    pub quick: bool,
    pub adapter: AdapterReport,
    pub verify: Vec<VerifyRow>,
    pub all_verify_rows_pass: bool,
    pub training: TrainingReport,
    pub tuner: TunerReport,
    pub peak: Peak,
    pub bench: Vec<BenchRow>,
    pub latency: LatencyReport,
    /// Wall seconds the report took to make.
    pub seconds: f64,
}

fn out_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::InvalidArgument {
        name: "--out",
        msg: format!("{}: {e}", path.display()),
    }
}

fn is_ours(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(512)];
    String::from_utf8_lossy(head).contains(MARK)
}

/// Checks, before any work, that the report's three files can be written
/// into `dir`: creates `dir` (and its parents) when missing, refuses one
/// that is not a directory, and refuses a report file that exists but is not
/// an earlier report (it is never replaced). Returns the three paths.
pub fn prepare_dir(dir: &Path) -> Result<[PathBuf; 3]> {
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => return Err(out_error(dir, "exists and is not a directory")),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(|e| out_error(dir, e))?;
        }
        Err(e) => return Err(out_error(dir, e)),
    }
    let paths = FILES.map(|f| dir.join(f));
    for p in &paths {
        crate::files::check_destination(p).map_err(|e| out_error(p, e))?;
        match crate::files::read_bounded(p, MAX_EXISTING) {
            Ok(old) if !is_ours(&old) => {
                return Err(out_error(
                    p,
                    "exists and is not a wgpu-train report; refusing to replace it",
                ));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(out_error(p, e)),
        }
    }
    Ok(paths)
}

/// Writes the report's three files (paths from [`prepare_dir`]), each
/// atomically and only over an earlier report.
pub fn write(report: &Report, paths: &[PathBuf; 3]) -> Result<()> {
    let json = serde_json::to_string_pretty(report).map_err(|e| out_error(&paths[1], e))?;
    for (path, text) in paths.iter().zip([markdown(report), json, html(report)]) {
        crate::files::write_owned(path, text.as_bytes(), MAX_EXISTING, is_ours)
            .map_err(|e| out_error(path, e))?;
    }
    Ok(())
}

fn adapter(gpu: &Gpu) -> AdapterReport {
    let info = gpu.adapter().get_info();
    let l = gpu.limits();
    let limits = [
        ("max_buffer_size", l.max_buffer_size),
        (
            "max_storage_buffer_binding_size",
            l.max_storage_buffer_binding_size,
        ),
        (
            "max_storage_buffers_per_shader_stage",
            l.max_storage_buffers_per_shader_stage as u64,
        ),
        (
            "max_uniform_buffer_binding_size",
            l.max_uniform_buffer_binding_size,
        ),
        (
            "max_compute_workgroup_storage_size",
            l.max_compute_workgroup_storage_size as u64,
        ),
        (
            "max_compute_invocations_per_workgroup",
            l.max_compute_invocations_per_workgroup as u64,
        ),
        (
            "max_compute_workgroup_size_x",
            l.max_compute_workgroup_size_x as u64,
        ),
        (
            "max_compute_workgroup_size_y",
            l.max_compute_workgroup_size_y as u64,
        ),
        (
            "max_compute_workgroup_size_z",
            l.max_compute_workgroup_size_z as u64,
        ),
        (
            "max_compute_workgroups_per_dimension",
            l.max_compute_workgroups_per_dimension as u64,
        ),
        ("max_bind_groups", l.max_bind_groups as u64),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let features = gpu
        .adapter()
        .features()
        .iter_names()
        .map(|(name, _)| name.to_string())
        .collect();
    AdapterReport {
        name: info.name,
        backend: format!("{:?}", info.backend),
        device_type: format!("{:?}", info.device_type),
        driver: info.driver,
        driver_info: info.driver_info,
        vendor: info.vendor,
        device: info.device,
        software: gpu.is_software(),
        subgroup_sizes: gpu.subgroup_sizes().map(|(a, b)| [a, b]),
        checks: gpu.checks_summary(),
        limits,
        features,
    }
}

/// The verify table twice: the first run compiles, the second is timed.
fn verify_rows(gpu: &Gpu, seed: u64, log: &mut dyn FnMut(&str)) -> Result<Vec<VerifyRow>> {
    log("verify: every kernel family against its CPU twin (first run: compiles the pipelines)");
    let first = pollster::block_on(verify::run_all(gpu, seed))?;
    log("verify: second run, timed with the pipelines built");
    let second = pollster::block_on(verify::run_all(gpu, seed))?;
    if first.len() != second.len() {
        return Err(Error::Device(format!(
            "the verify table gave {} rows, then {}",
            first.len(),
            second.len()
        )));
    }
    Ok(first
        .into_iter()
        .zip(second)
        .map(|(a, b)| VerifyRow {
            family: b.family.to_string(),
            kernel: b.kernel,
            shape: b.shape,
            worst_error: a.worst_error.max(b.worst_error),
            pass: a.pass && b.pass,
            detail: if a.detail.is_empty() {
                b.detail
            } else {
                a.detail
            },
            gpu_ms: b.gpu_ms,
            gpu_ms_first_use: a.gpu_ms,
            cpu_ms: b.cpu_ms,
        })
        .collect())
}

fn throughput(history: &crate::metrics::History) -> Throughput {
    let last = history.epochs.last();
    Throughput {
        samples_per_s: last.map_or(f64::NAN, |e| e.samples_per_sec),
        epoch_s: last.map_or(f64::NAN, |e| e.seconds),
        final_train_loss: history.final_train_loss(),
    }
}

/// Two epochs of the main job's MLP on each side; the second is reported.
fn training(gpu: &Gpu, opts: &Options, log: &mut dyn FnMut(&str)) -> Result<TrainingReport> {
    let train_n = if opts.quick { 4096 } else { 60_000 };
    let train_set = bench::synthetic_images(train_n, [1, 28, 28], opts.seed.wrapping_add(11))?;
    let test_set = bench::synthetic_images(1024, [1, 28, 28], opts.seed.wrapping_add(12))?;
    let data = TrainData::new(train_set, test_set, 0, opts.seed)?;
    let model = Mlp::mnist(Activation::Sigmoid);
    let mut config = TrainConfig {
        epochs: 2,
        batch: 128,
        seed: opts.seed,
        optimizer: OptimizerConfig::preset("adam", 1e-3)?,
        ..TrainConfig::default()
    };
    // What the examples' `--fused auto` takes on this adapter: the step
    // timed fastest here (tuning on), else the fixed rule.
    config = train::choose_step(gpu, &model, &config, data.train_idx.len());
    config.validate()?;
    log(&format!(
        "training: MLP 784-128-128-10, {train_n} samples, 2 epochs on the GPU (tuning its kernels first)"
    ));
    let mut engine = GpuEngine::new(gpu, &model, &data, &config)?;
    let g = train::fit(&mut engine, &data, &config, 0, &mut |_| {})?;
    log("training: the same on the CPU");
    let mut cpu_engine = CpuEngine::new(&model, &data, &config)?;
    let c = train::fit(&mut cpu_engine, &data, &config, 0, &mut |_| {})?;
    let (gpu_t, cpu_t) = (throughput(&g.history), throughput(&c.history));
    Ok(TrainingReport {
        model: model.name(),
        data: "synthetic Fashion-MNIST-shaped images (throughput only)".into(),
        optimizer: "adam lr 0.001".into(),
        batch: config.batch,
        train_samples: train_n,
        epochs: config.epochs,
        step: match (config.fused, config.fused_step) {
            (false, _) => "unfused".into(),
            (true, FusedStep::Layers) => "fused (per layer)".into(),
            (true, _) => format!(
                "row block ({} dispatches)",
                train::Engine::dispatches_per_step(&engine).unwrap_or(0.0)
            ),
        },
        gpu_over_cpu: gpu_t.samples_per_s / cpu_t.samples_per_s,
        same_loss: gpu_t.final_train_loss.to_bits() == cpu_t.final_train_loss.to_bits(),
        gpu: gpu_t,
        cpu: cpu_t,
    })
}

fn bench_row(c: &Comparison, peak: &Peak) -> BenchRow {
    let g = c.gpu.as_ref();
    let cp = c.cpu.as_ref();
    BenchRow {
        family: c.family.to_string(),
        name: c.name.clone(),
        detail: c.detail.clone(),
        flops: c.flops,
        bytes: c.bytes,
        gpu_s: g.map(|m| m.seconds),
        cpu_s: cp.map(|m| m.seconds),
        gpu_gflops: g.and_then(|m| c.gflops(m)),
        cpu_gflops: cp.and_then(|m| c.gflops(m)),
        gpu_gbps: g.and_then(|m| c.gbps(m)),
        cpu_gbps: cp.and_then(|m| c.gbps(m)),
        gpu_fraction_of_peak: g.and_then(|m| c.fraction_of_peak(m, peak.gflops, peak.gbps)),
        agreed: c.agreed,
        gpu_timer: g.map(|m| m.timer.to_string()),
    }
}

/// Makes the report on `gpu` (build it with tuning on, as the examples do,
/// for the tuner's section to say something), calling `log` before each
/// stage.
pub fn make(gpu: &Gpu, opts: &Options, log: &mut dyn FnMut(&str)) -> Result<Report> {
    opts.validate()?;
    let start = Instant::now();
    let adapter = adapter(gpu);
    let verify = verify_rows(gpu, opts.seed, log)?;
    let all_verify_rows_pass = !verify.is_empty() && verify.iter().all(|r| r.pass);
    let training = training(gpu, opts, log)?;
    let record = gpu.tune_record();
    let tuner = TunerReport {
        mode: format!("{:?}", record.mode()),
        choices: record.choices(),
        summary: record.report(),
    };
    let bopts = if opts.quick {
        bench::Options::quick()
    } else {
        bench::Options::full()
    };
    log("bench: every kernel family and training step, GPU and CPU");
    let comparisons = bench::run(gpu, &bopts, |c| {
        log(&format!("bench: {}/{}", c.family, c.name))
    })?;
    let best = |f: fn(&Comparison, &bench::Measurement) -> Option<f64>| {
        comparisons
            .iter()
            .filter_map(|c| c.gpu.as_ref().and_then(|m| f(c, m)))
            .fold(None, |acc: Option<f64>, r| {
                Some(acc.map_or(r, |a| a.max(r)))
            })
    };
    let peak = if opts.peak_gflops.is_some() || opts.peak_gbps.is_some() {
        Peak {
            gflops: opts.peak_gflops,
            gbps: opts.peak_gbps,
            source: "given".into(),
        }
    } else {
        Peak {
            gflops: best(|c, m| c.gflops(m)),
            gbps: best(|c, m| c.gbps(m)),
            source: "measured".into(),
        }
    };
    let bench = comparisons.iter().map(|c| bench_row(c, &peak)).collect();
    let chain = if opts.quick { 32 } else { 256 };
    log(&format!(
        "latency: chains of 1 and {chain} trivial dispatches"
    ));
    let floor = latency::floor(gpu, &bopts.plan(), chain)?;
    let latency = LatencyReport {
        chain,
        per_dispatch_s: floor.per_dispatch("independent"),
        per_dependent_dispatch_s: floor.dependent_dispatch(),
        per_barrier_s: floor.per_barrier(),
        per_submit_s: floor.per_submit(),
        empty_submit_s: floor.empty_submit_s,
        rows: floor.rows,
    };
    Ok(Report {
        schema: SCHEMA.into(),
        crate_version: env!("CARGO_PKG_VERSION").into(),
        build: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
        .into(),
        created_unix_s: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        quick: opts.quick,
        adapter,
        verify,
        all_verify_rows_pass,
        training,
        tuner,
        peak,
        bench,
        latency,
        seconds: start.elapsed().as_secs_f64(),
    })
}

// ------------------------------------------------------------ rendering

fn opt(v: Option<f64>, digits: usize) -> String {
    v.filter(|x| x.is_finite())
        .map_or_else(|| "–".to_string(), |x| format!("{x:.digits$}"))
}

fn us(v: Option<f64>) -> String {
    opt(v.map(|s| s * 1e6), 2)
}

fn pct(v: Option<f64>) -> String {
    v.filter(|x| x.is_finite())
        .map_or_else(|| "–".to_string(), |x| format!("{:.1}%", x * 100.0))
}

fn title(r: &Report) -> String {
    format!(
        "wgpu-train report card: {}{}",
        r.adapter.name,
        if r.adapter.software {
            " (software adapter: no GPU)"
        } else {
            ""
        }
    )
}

/// Rows of (cells) as a Markdown table.
fn md_table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = format!("| {} |\n|{}\n", head.join(" | "), "---|".repeat(head.len()));
    for r in rows {
        s += &format!("| {} |\n", r.join(" | ").replace('\n', " "));
    }
    s
}

fn peak_line(r: &Report) -> String {
    match r.peak.source.as_str() {
        "given" => format!(
            "against the given peak: {} GFLOP/s, {} GB/s",
            opt(r.peak.gflops, 0),
            opt(r.peak.gbps, 0)
        ),
        _ => format!(
            "no peak given (`--peak-gflops`, `--peak-gbps`): rates are set against the best measured here, {} GFLOP/s and {} GB/s, a floor on the device's true peak",
            opt(r.peak.gflops, 2),
            opt(r.peak.gbps, 2)
        ),
    }
}

/// The sections as (heading, table head, rows), shared by Markdown and HTML.
#[allow(clippy::type_complexity)]
fn sections(r: &Report) -> Vec<(String, Vec<&'static str>, Vec<Vec<String>>)> {
    let a = &r.adapter;
    let mut adapter_rows = vec![
        vec!["name".into(), a.name.clone()],
        vec!["backend".into(), a.backend.clone()],
        vec!["device type".into(), a.device_type.clone()],
        vec!["driver".into(), format!("{} {}", a.driver, a.driver_info)],
        vec![
            "vendor / device".into(),
            format!("{:#06x} / {:#06x}", a.vendor, a.device),
        ],
        vec!["software adapter".into(), a.software.to_string()],
        vec![
            "subgroup sizes".into(),
            a.subgroup_sizes
                .map_or_else(|| "none".into(), |[lo, hi]| format!("{lo}..={hi}")),
        ],
        vec!["runtime checks".into(), a.checks.clone()],
    ];
    for (k, v) in &a.limits {
        adapter_rows.push(vec![k.clone(), v.to_string()]);
    }
    adapter_rows.push(vec!["features".into(), a.features.join(", ")]);
    let verify_rows = r
        .verify
        .iter()
        .map(|v| {
            vec![
                v.family.clone(),
                v.kernel.clone(),
                v.shape.clone(),
                format!("{:.2e}", v.worst_error),
                if v.pass {
                    "pass".into()
                } else {
                    format!("FAIL {}", v.detail)
                },
                format!("{:.3}", v.gpu_ms),
                format!("{:.3}", v.gpu_ms_first_use),
                format!("{:.3}", v.cpu_ms),
            ]
        })
        .collect();
    let t = &r.training;
    let training_rows = vec![
        vec![
            "GPU".into(),
            format!("{:.0}", t.gpu.samples_per_s),
            format!("{:.3}", t.gpu.epoch_s),
            format!("{:.6}", t.gpu.final_train_loss),
        ],
        vec![
            "CPU".into(),
            format!("{:.0}", t.cpu.samples_per_s),
            format!("{:.3}", t.cpu.epoch_s),
            format!("{:.6}", t.cpu.final_train_loss),
        ],
    ];
    let tuner_rows = if r.tuner.choices.is_empty() {
        vec![vec![
            "(none)".into(),
            format!("the fixed rule (tuning {})", r.tuner.mode),
        ]]
    } else {
        r.tuner
            .choices
            .iter()
            .map(|(k, v)| vec![k.clone(), v.clone()])
            .collect()
    };
    let bench_rows = r
        .bench
        .iter()
        .map(|b| {
            vec![
                format!("{}/{}", b.family, b.name),
                b.detail.clone(),
                us(b.gpu_s),
                opt(b.gpu_gflops, 2),
                opt(b.gpu_gbps, 2),
                pct(b.gpu_fraction_of_peak),
                us(b.cpu_s),
                opt(b.cpu_gflops, 2),
                opt(b.cpu_gbps, 2),
                b.agreed
                    .map_or_else(|| "–".into(), |x| if x { "yes" } else { "NO" }.into()),
            ]
        })
        .collect();
    let l = &r.latency;
    let latency_rows = vec![
        vec!["a dispatch (independent)".into(), us(l.per_dispatch_s)],
        vec![
            "a dependent dispatch (barrier included)".into(),
            us(l.per_dependent_dispatch_s),
        ],
        vec!["a barrier".into(), us(l.per_barrier_s)],
        vec!["a submit beyond its dispatch".into(), us(l.per_submit_s)],
        vec![
            "an empty submit, to idle".into(),
            us(Some(l.empty_submit_s)),
        ],
    ];
    vec![
        ("Adapter".into(), vec!["what", "value"], adapter_rows),
        (
            format!(
                "Verify: every kernel against its CPU twin ({} rows, {})",
                r.verify.len(),
                if r.all_verify_rows_pass {
                    "all pass"
                } else {
                    "SOME FAIL"
                }
            ),
            vec![
                "family",
                "kernel",
                "shape",
                "worst error",
                "pass",
                "GPU ms (warm)",
                "GPU ms (first use)",
                "CPU ms",
            ],
            verify_rows,
        ),
        (
            format!(
                "The main job's throughput: {}, batch {}, {} ({} samples, epoch {} of {}); GPU/CPU {:.2}×",
                t.model, t.batch, t.optimizer, t.train_samples, t.epochs, t.epochs, t.gpu_over_cpu
            ),
            vec!["side", "samples/s", "epoch s", "final train loss"],
            training_rows,
        ),
        (
            format!(
                "The tuner's choices for it{}",
                r.tuner
                    .summary
                    .as_ref()
                    .map_or_else(String::new, |s| format!(" ({s})"))
            ),
            vec!["key", "version"],
            tuner_rows,
        ),
        (
            format!("Kernel families, GPU and CPU ({})", peak_line(r)),
            vec![
                "case",
                "shape",
                "GPU µs",
                "GPU GFLOP/s",
                "GPU GB/s",
                "of peak",
                "CPU µs",
                "CPU GFLOP/s",
                "CPU GB/s",
                "agreed",
            ],
            bench_rows,
        ),
        (
            format!(
                "Latency floor (chains of 1 and {} trivial dispatches in one pass)",
                l.chain
            ),
            vec!["what", "µs"],
            latency_rows,
        ),
    ]
}

fn intro(r: &Report) -> String {
    let mut s = format!(
        "wgpu-train {} ({} build) on {} ({} {}), {} mode, made in {:.0} s. ",
        r.crate_version,
        r.build,
        r.adapter.name,
        r.adapter.backend,
        r.adapter.device_type,
        if r.quick { "quick" } else { "full" },
        r.seconds
    );
    if r.adapter.software {
        s += "This is a software adapter: the \"GPU\" runs on the same CPU cores as the CPU side, so its figures say nothing about a hardware GPU. ";
    }
    s += "Timings exclude pipeline compilation (the verify table is timed on its second run; the benchmarks and the latency floor warm up first; the training figure is the last of two epochs).";
    s
}

/// The report as Markdown.
pub fn markdown(r: &Report) -> String {
    let mut s = format!("<!-- {MARK} -->\n# {}\n\n{}\n", title(r), intro(r));
    for (heading, head, rows) in sections(r) {
        s += &format!("\n## {heading}\n\n{}", md_table(&head, &rows));
    }
    s
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Horizontal bars, one group per label, one bar per series (`None`: not
/// measured, no bar), on a linear scale from 0; an inline SVG.
fn svg_bars(
    title: &str,
    unit: &str,
    series: &[&str],
    groups: &[(String, Vec<Option<f64>>)],
    reference: Option<(f64, &str)>,
) -> String {
    const COLOURS: [&str; 3] = ["#1f77b4", "#ff7f0e", "#2ca02c"];
    let (label_w, bar_w, bar_h, gap) = (260.0, 420.0, 12.0, 8.0);
    let max = groups
        .iter()
        .flat_map(|(_, v)| v.iter().flatten())
        .copied()
        .filter(|x| x.is_finite())
        .fold(0.0f64, f64::max)
        .max(reference.map_or(0.0, |(r, _)| r));
    let group_h = bar_h * series.len() as f64 + gap;
    let height = 50.0 + group_h * groups.len() as f64 + 10.0;
    let width = label_w + bar_w + 110.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"11\">\
         <text x=\"4\" y=\"16\" font-size=\"14\" font-weight=\"bold\">{}</text>",
        esc(title)
    );
    for (i, name) in series.iter().enumerate() {
        let x = label_w + i as f64 * 120.0;
        s += &format!(
            "<rect x=\"{x}\" y=\"26\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"35\">{}</text>",
            COLOURS[i % 3],
            x + 14.0,
            esc(name)
        );
    }
    for (g, (label, values)) in groups.iter().enumerate() {
        let y0 = 46.0 + g as f64 * group_h;
        s += &format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            label_w - 6.0,
            y0 + bar_h * series.len() as f64 / 2.0 + 4.0,
            esc(label)
        );
        for (i, v) in values.iter().enumerate() {
            let y = y0 + i as f64 * bar_h;
            match v.filter(|x| x.is_finite()) {
                Some(v) => {
                    let w = if max > 0.0 { v / max * bar_w } else { 0.0 };
                    s += &format!(
                        "<rect x=\"{label_w}\" y=\"{y}\" width=\"{w:.1}\" height=\"{}\" fill=\"{}\"/>\
                         <text x=\"{:.1}\" y=\"{}\">{} {}</text>",
                        bar_h - 2.0,
                        COLOURS[i % 3],
                        label_w + w + 4.0,
                        y + bar_h - 3.0,
                        if v >= 100.0 {
                            format!("{v:.0}")
                        } else {
                            format!("{v:.3}")
                        },
                        esc(unit)
                    );
                }
                None => {
                    s += &format!(
                        "<text x=\"{}\" y=\"{}\" fill=\"#888\">not measured</text>",
                        label_w + 4.0,
                        y + bar_h - 3.0
                    );
                }
            }
        }
    }
    // The peak, where one was given: a dashed line across the groups.
    if let Some((r, label)) = reference.filter(|(r, _)| r.is_finite() && max > 0.0) {
        let x = label_w + r / max * bar_w;
        s += &format!(
            "<line x1=\"{x:.1}\" y1=\"40\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#b00\" stroke-dasharray=\"4 3\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" fill=\"#b00\" text-anchor=\"end\">{}</text>",
            height - 8.0,
            x - 2.0,
            height - 1.0,
            esc(label)
        );
    }
    s + "</svg>"
}

fn plots(r: &Report) -> Vec<String> {
    let rate_groups: Vec<_> = r
        .bench
        .iter()
        .filter(|b| b.gpu_gflops.is_some() || b.cpu_gflops.is_some())
        .map(|b| {
            (
                format!("{}/{}", b.family, b.name),
                vec![b.gpu_gflops, b.cpu_gflops],
            )
        })
        .collect();
    let bw_groups: Vec<_> = r
        .bench
        .iter()
        .filter(|b| b.gpu_gflops.is_none() && (b.gpu_gbps.is_some() || b.cpu_gbps.is_some()))
        .map(|b| {
            (
                format!("{}/{}", b.family, b.name),
                vec![b.gpu_gbps, b.cpu_gbps],
            )
        })
        .collect();
    let l = &r.latency;
    let micro = |v: Option<f64>| v.map(|s| s * 1e6);
    let latency_groups = vec![
        ("a dispatch".to_string(), vec![micro(l.per_dispatch_s)]),
        (
            "a dependent dispatch".to_string(),
            vec![micro(l.per_dependent_dispatch_s)],
        ),
        ("a barrier".to_string(), vec![micro(l.per_barrier_s)]),
        ("a submit".to_string(), vec![micro(l.per_submit_s)]),
    ];
    let t = &r.training;
    // Only a given peak is drawn: a measured one is the longest bar already.
    let given = |p: Option<f64>| {
        p.filter(|_| r.peak.source == "given")
            .map(|p| (p, "GPU peak (given)"))
    };
    vec![
        svg_bars(
            "GFLOP/s per kernel and training step",
            "GFLOP/s",
            &["GPU", "CPU"],
            &rate_groups,
            given(r.peak.gflops),
        ),
        svg_bars(
            "GB/s of the memory-bound kernels",
            "GB/s",
            &["GPU", "CPU"],
            &bw_groups,
            given(r.peak.gbps),
        ),
        svg_bars("Latency floor", "µs", &["GPU"], &latency_groups, None),
        svg_bars(
            "The main job: MLP training throughput",
            "samples/s",
            &["GPU", "CPU"],
            &[(
                "MLP 784-128-128-10".to_string(),
                vec![Some(t.gpu.samples_per_s), Some(t.cpu.samples_per_s)],
            )],
            None,
        ),
    ]
}

/// The report as one self-contained HTML page: its tables and inline SVG
/// plots, no script and no external asset.
pub fn html(r: &Report) -> String {
    let mut s = format!(
        "<!DOCTYPE html>\n<!-- {MARK} -->\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"generator\" content=\"{MARK}\"><title>{t}</title><style>\
         body{{font-family:sans-serif;margin:1.5em;max-width:1100px}}\
         table{{border-collapse:collapse;font-size:12px;margin-bottom:1em}}\
         td,th{{border:1px solid #ccc;padding:2px 6px;text-align:left}}\
         .fail{{color:#b00;font-weight:bold}} .plots svg{{display:block;margin:1em 0}}\
         </style></head><body><h1>{t}</h1><p>{i}</p><div class=\"plots\">",
        t = esc(&title(r)),
        i = esc(&intro(r))
    );
    for p in plots(r) {
        s += &p;
    }
    s += "</div>";
    for (heading, head, rows) in sections(r) {
        s += &format!("<h2>{}</h2><table><tr>", esc(&heading));
        for h in head {
            s += &format!("<th>{}</th>", esc(h));
        }
        s += "</tr>";
        for row in rows {
            s += "<tr>";
            for cell in row {
                let class = if cell.starts_with("FAIL") || cell == "NO" {
                    " class=\"fail\""
                } else {
                    ""
                };
                s += &format!("<td{class}>{}</td>", esc(&cell));
            }
            s += "</tr>";
        }
        s += "</table>";
    }
    s + "</body></html>\n"
}
