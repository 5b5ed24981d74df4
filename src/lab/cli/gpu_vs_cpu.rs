//! What the GPU buys: every kernel family and a whole training step of each
//! model, timed on the GPU and on the CPU twin, their results checked
//! against each other. See `crate::lab::bench` for how each figure is timed.
//!
//! ```text
//! cargo run --release --example gpu_vs_cpu                      # the table
//! cargo run --release --example gpu_vs_cpu -- --quick           # seconds
//! cargo run --release --example gpu_vs_cpu -- --json            # one JSON row per case
//! cargo run --release --example gpu_vs_cpu -- --peak-gflops 51200 --peak-gbps 3350
//! cargo run --release --example gpu_vs_cpu -- --big --filter square   # 4096³ on lavapipe too
//! cargo run --release --example gpu_vs_cpu -- --versions        # every matmul version per shape
//! cargo run --release --example gpu_vs_cpu -- --versions --big --peak-gflops 67000   # + 4096³ and the scale.* shapes, % of peak
//! cargo run --release --example gpu_vs_cpu -- --latency         # the dispatch floor, each step launch against it
//! cargo run --release --example gpu_vs_cpu -- --compare-checks  # the step's launches, wgpu's runtime checks on vs off
//! ```
//!
//! Exit status 2 when any GPU result disagreed with the CPU's, with a line
//! naming each case (and version) that did. With `--versions`, a version
//! this device cannot build or run (a capped device, no subgroups) is
//! skipped with its reason, not a failure.

use crate::lab::bench::{self, Comparison, Measurement, Options, Peaks};
use crate::{Gpu, Result};
use clap::Parser;

/// Time every kernel family and a training step on the GPU and the CPU.
#[derive(Parser, Debug)]
#[command(version, about, allow_negative_numbers = true)]
struct Args {
    /// A run of a few seconds: model shapes only, 3 timed runs.
    #[arg(long)]
    quick: bool,
    /// Also run the 4096³ product on a software adapter (once per side).
    /// With --versions, also the shapes users bring (4095³, 4097³,
    /// tall-skinny, short-wide, 64 × 512³; on a software adapter only those
    /// --filter names, e.g. --filter scale.batched).
    #[arg(long)]
    big: bool,
    /// Timed runs per side (default 15, or 3 with --quick).
    #[arg(long)]
    runs: Option<usize>,
    /// Untimed runs per side first (default 2, or 1 with --quick).
    #[arg(long)]
    warmup: Option<usize>,
    /// Training steps per timed epoch (default 16, or 2 with --quick).
    #[arg(long)]
    train_steps: Option<usize>,
    /// Only cases whose "family/name" contains this (e.g. matmul, mlp, train_step/mlp).
    #[arg(long)]
    filter: Option<String>,
    /// One JSON object per case on stdout instead of the table.
    #[arg(long)]
    json: bool,
    /// The GPU's fp32 peak in GFLOP/s: print GPU GFLOP/s as a fraction of it.
    #[arg(long, allow_hyphen_values = true)]
    peak_gflops: Option<f64>,
    /// The GPU's memory bandwidth in GB/s: print GPU GB/s as a fraction of it.
    #[arg(long, allow_hyphen_values = true)]
    peak_gbps: Option<f64>,
    /// The same for the CPU side.
    #[arg(long, allow_hyphen_values = true)]
    cpu_peak_gflops: Option<f64>,
    #[arg(long, allow_hyphen_values = true)]
    cpu_peak_gbps: Option<f64>,
    /// Instead of GPU vs CPU (alias --tune): time every matmul, softmax-CE
    /// and column-sum version (the subgroup ones where the device has
    /// subgroups) on each shape (each checked against the CPU twin first), with
    /// the fastest and the version the fixed rule picks on this adapter.
    #[arg(long, alias = "tune")]
    versions: bool,
    /// Instead of GPU vs CPU: the latency floor (what a dispatch, a barrier
    /// and a submit cost here, from chains of trivial dispatches), then each
    /// launch of the MLP's and the linear model's training step against it.
    #[arg(long)]
    latency: bool,
    /// Dispatches in the latency floor's long chain (default 256, or 32
    /// with --quick).
    #[arg(long)]
    chain: Option<usize>,
    /// Instead of GPU vs CPU: each launch of the MLP's training step (fused
    /// and unfused) with wgpu's runtime checks in every kernel
    /// (WGPU_TRAIN_CHECKED=1) and with the trusted kernels unchecked, side
    /// by side in one run, two devices alternating; fixed kernel choices.
    #[arg(long)]
    compare_checks: bool,
}

/// The `--compare-checks` table: the same step launches on a checked and a
/// trusted device, alternating rounds so that a loaded machine's drift
/// falls on both.
fn compare_checks(opts: &Options) -> Result<bool> {
    use crate::lab::latency::step_vs_floor;
    use crate::model::Model;
    let with = |checked| {
        Gpu::with_options(crate::GpuOptions {
            runtime_checks: Some(checked),
            autotune: Some(crate::tune::TuneMode::Off),
            ..crate::GpuOptions::default()
        })
    };
    let devices = [with(true)?, with(false)?];
    println!("GPU: {}", devices[0].summary());
    for d in &devices {
        println!("  {}", d.checks_summary());
    }
    let plan = opts.plan();
    let mlp = crate::model::Mlp::mnist(crate::Activation::Sigmoid);
    let rounds = 2;
    for fused in [true, false] {
        // times[device][round][launch], the whole step last.
        let mut times = vec![vec![]; 2];
        let mut names = Vec::new();
        for _ in 0..rounds {
            for (d, gpu) in devices.iter().enumerate() {
                let r = step_vs_floor(
                    gpu,
                    &plan,
                    &mlp,
                    crate::OptimizerConfig::adam(),
                    128,
                    [1, 28, 28],
                    fused.then_some(crate::train::FusedStep::Layers),
                    1.0,
                )?;
                names = r.parts.iter().map(|p| p.name.clone()).collect();
                names.push("whole step".into());
                let mut t: Vec<f64> = r.parts.iter().map(|p| p.time.seconds).collect();
                t.push(r.step.seconds);
                times[d].push(t);
            }
        }
        println!(
            "\n{} step at batch 128, {}: median µs of {} runs, each round's figure; checked ÷ trusted of the rounds' means",
            mlp.name(),
            if fused { "fused" } else { "unfused" },
            opts.runs
        );
        println!(
            "  {:<66} {:>24} {:>24} {:>9}",
            "launch", "checked µs", "trusted µs", "ratio"
        );
        for (i, name) in names.iter().enumerate() {
            let cell = |d: usize| {
                times[d]
                    .iter()
                    .map(|t| format!("{:.1}", t[i] * 1e6))
                    .collect::<Vec<_>>()
                    .join(" / ")
            };
            let mean = |d: usize| times[d].iter().map(|t| t[i]).sum::<f64>() / rounds as f64;
            println!(
                "  {:<66} {:>24} {:>24} {:>9.3}",
                name,
                cell(0),
                cell(1),
                mean(0) / mean(1)
            );
        }
    }
    Ok(true)
}

/// The `--latency` table (or JSON rows): the floor, then each training
/// step launch by launch against it.
fn latency(gpu: &Gpu, opts: &Options, chain: usize, json: bool) -> Result<bool> {
    use crate::lab::latency::{self, Floor, StepVsFloor};
    let plan = opts.plan();
    let floor: Floor = latency::floor(gpu, &plan, chain)?;
    let us = |s: f64| s * 1e6;
    if json {
        println!("{}", serde_json::to_value(&floor).unwrap_or_default());
    } else {
        println!("GPU: {}", floor.adapter);
        println!(
            "latency floor: chains of 1 and N = {chain} one-workgroup dispatches in one pass; \
             median of {} runs after {} warm-up\n",
            floor.runs, opts.warmup
        );
        println!(
            "{:<12} {:<48} {:>9} {:>11} {:>11} {:>16}",
            "case", "what", "timer", "1 (µs)", "N (µs)", "per dispatch µs"
        );
        for r in &floor.rows {
            println!(
                "{:<12} {:<48} {:>9} {:>11.2} {:>11.2} {:>16.3}",
                r.case,
                r.what,
                r.timer,
                us(r.one_s),
                us(r.n_s),
                us(r.per_dispatch_s)
            );
        }
        let f = |v: Option<f64>| v.map_or("-".to_string(), |s| format!("{:.3} µs", us(s)));
        println!(
            "\nan empty submit (submit + wait, wall clock): {:.2} µs",
            us(floor.empty_submit_s)
        );
        println!(
            "a barrier (chained − independent): {}; a submit beyond its dispatch (submits − one submit): {}",
            f(floor.per_barrier()),
            f(floor.per_submit())
        );
    }
    let Some(floor_s) = floor.dependent_dispatch().filter(|s| *s > 0.0) else {
        eprintln!("the chained dispatch measured no positive time: no step can be set against it");
        return Ok(false);
    };
    let mlp = crate::model::Mlp::mnist(crate::Activation::Sigmoid);
    let linear = crate::model::LinearSoftmax::new(3072, 10)?;
    use crate::train::FusedStep;
    // The row-block steps for the MLP only, the one model with a row block.
    let mlp_steps = [
        Some(FusedStep::Rows),
        Some(FusedStep::RowsUpdateApart),
        Some(FusedStep::Layers),
        None,
    ];
    let linear_steps = [Some(FusedStep::Layers), None];
    let cases: [(&dyn crate::model::Model, _, usize, [usize; 3], &[_]); 2] = [
        (
            &mlp,
            crate::OptimizerConfig::adam(),
            128,
            [1, 28, 28],
            &mlp_steps,
        ),
        (
            &linear,
            crate::OptimizerConfig::sgd(0.1),
            256,
            [3, 32, 32],
            &linear_steps,
        ),
    ];
    for (model, optimizer, batch, shape, steps) in cases {
        for &fused_step in steps {
            let r: StepVsFloor = latency::step_vs_floor(
                gpu, &plan, model, optimizer, batch, shape, fused_step, floor_s,
            )?;
            if json {
                println!("{}", serde_json::to_value(&r).unwrap_or_default());
                continue;
            }
            println!(
                "\n{} at batch {batch}, {} step: {} dispatches; floor = {:.3} µs a chained dispatch",
                r.model,
                r.program,
                r.dispatches,
                us(floor_s)
            );
            println!(
                "  {:<66} {:>10} {:>12} {:>9}",
                "launch", "dispatches", "µs", "× floor"
            );
            for p in &r.parts {
                println!(
                    "  {:<66} {:>10} {:>12.2} {:>9.1}",
                    p.name,
                    p.dispatches,
                    us(p.time.seconds),
                    p.vs_floor
                );
            }
            println!(
                "  whole step: {:.2} µs ({}) = {:.1} × ({} dispatches × floor); sum of the launches {:.2} µs",
                us(r.step.seconds),
                r.step.timer,
                r.step_vs_floor(),
                r.dispatches,
                us(r.parts_s())
            );
        }
    }
    Ok(true)
}

/// The `--versions` table (or JSON rows): one line per shape.
fn versions(gpu: &Gpu, opts: &Options, json: bool, peak: Option<f64>) -> Result<bool> {
    let adapter = gpu.summary().to_string();
    if !json {
        println!(
            "GPU: {adapter}\nsubgroups: {}",
            gpu.subgroup_sizes()
                .map_or("none (no subgroup versions)".into(), |(lo, hi)| {
                    format!("size {lo}..{hi}")
                })
        );
        println!(
            "ms per product (GFLOP/s{}); median of {} runs\n",
            if peak.is_some() { ", % of peak" } else { "" },
            opts.runs
        );
        print!("{:<22} {:<28}", "case", "shape");
        for k in crate::MatmulKernel::ALL {
            print!(" {:>26}", k.name());
        }
        println!(" {:>11} {:>11} {:>8}", "fastest", "auto picks", "auto/best");
    }
    let mut all_ok = true;
    let mut failures: Vec<String> = Vec::new();
    let mut verdict = |r: &bench::Versions| {
        if r.disagreed() {
            all_ok = false;
            failures.extend(
                r.notes
                    .iter()
                    .map(|n| format!("{}/{} {}: {n}", r.family, r.name, r.detail)),
            );
        }
    };
    bench::matmul_versions(gpu, opts, |r| {
        verdict(r);
        if json {
            let mut v = serde_json::to_value(r).unwrap_or_default();
            v["adapter"] = serde_json::Value::String(adapter.clone());
            println!("{v}");
            return;
        }
        print!("{:<22} {:<28}", r.name, r.detail);
        for (_, t) in &r.times {
            match t {
                Some(s) => {
                    let gf = r.flops as f64 / s / 1e9;
                    let pct = peak.map_or(String::new(), |p| format!(" {:.1}%", 100.0 * gf / p));
                    print!(" {:>26}", format!("{:.4} ({gf:.1}{pct})", s * 1e3));
                }
                None => print!(" {:>26}", "failed"),
            }
        }
        let time_of = |name: &str| {
            r.times
                .iter()
                .find(|(n, _)| *n == name)
                .and_then(|(_, t)| *t)
        };
        let ratio = match (time_of(r.auto), r.fastest.and_then(time_of)) {
            (Some(a), Some(b)) => format!("{:.2}x", a / b),
            _ => "-".into(),
        };
        println!(
            " {:>11} {:>11} {:>8}",
            r.fastest.unwrap_or("-"),
            r.auto,
            ratio
        );
        for n in &r.notes {
            println!("    {}", skipped_or_failed(r, n));
        }
    })?;
    // softmax-CE, then the column sums: each version's ms per call.
    let softmax_names: Vec<&str> = crate::SoftmaxXentKernel::available(gpu)
        .iter()
        .map(|k| k.name())
        .collect();
    let sum_names: Vec<&str> = crate::ColumnSumKernel::available(gpu)
        .iter()
        .map(|k| k.name())
        .collect();
    for (family, names) in [("softmax-CE", softmax_names), ("column sums", sum_names)] {
        let mut header = !json;
        let on_row = |r: &bench::Versions| {
            verdict(r);
            if json {
                let mut v = serde_json::to_value(r).unwrap_or_default();
                v["adapter"] = serde_json::Value::String(adapter.clone());
                println!("{v}");
                return;
            }
            if std::mem::take(&mut header) {
                print!("\n{family}, ms per call\n{:<22} {:<28}", "case", "shape");
                for name in &names {
                    print!(" {name:>14}");
                }
                println!(" {:>13} {:>13}", "fastest", "auto picks");
            }
            print!("{:<22} {:<28}", r.name, r.detail);
            for (_, t) in &r.times {
                match t {
                    Some(s) => print!(" {:>14.4}", s * 1e3),
                    None => print!(" {:>14}", "failed"),
                }
            }
            println!(" {:>13} {:>13}", r.fastest.unwrap_or("-"), r.auto);
            for n in &r.notes {
                println!("    {}", skipped_or_failed(r, n));
            }
        };
        if family == "softmax-CE" {
            bench::softmax_versions(gpu, opts, on_row)?;
        } else {
            bench::column_sum_versions(gpu, opts, on_row)?;
        }
    }
    for f in &failures {
        eprintln!("GPU and CPU disagree on {f}");
    }
    Ok(all_ok)
}

/// A version's note, as a skip (the device cannot build or run it) or a
/// failure (it disagreed with the CPU twin).
fn skipped_or_failed(r: &bench::Versions, note: &str) -> String {
    let failed = r.disagreed() && note.contains("disagrees");
    format!(
        "{} {note}",
        if failed {
            "FAILED"
        } else {
            "skipped on this device:"
        }
    )
}

fn positive(name: &'static str, v: Option<f64>) -> Result<Option<f64>> {
    match v {
        Some(x) if !(x.is_finite() && x > 0.0) => Err(crate::Error::InvalidArgument {
            name,
            msg: format!("must be a positive number, got {x}"),
        }),
        _ => Ok(v),
    }
}

/// "12.345 GF/s 3.4%": the side's rate and its fraction of the peak given.
fn cell(c: &Comparison, m: &Option<Measurement>, peaks: (Option<f64>, Option<f64>)) -> String {
    let Some(m) = m else {
        return format!("{:>10} {:>20}", "-", "");
    };
    let mut s = match c.rate(m) {
        Some((r, "GFLOP/s")) => format!("{r:.3} GF/s"),
        Some((r, _)) => format!("{r:.3} GB/s"),
        None => String::new(),
    };
    if let Some(f) = c.fraction_of_peak(m, peaks.0, peaks.1) {
        s = format!("{s} {:.1}%", f * 100.0);
    }
    format!("{:>10.4} {s:>20}", m.seconds * 1e3)
}

fn header() {
    println!(
        "{:<13} {:<12} {:<42} {:>10} {:>20} {:>10} {:>20} {:>8} {:>4}",
        "family",
        "case",
        "shape / work",
        "GPU ms",
        "GPU rate",
        "CPU ms",
        "CPU rate",
        "GPU/CPU",
        "ok"
    );
}

fn table_row(c: &Comparison, peaks: &Peaks) {
    let speedup = c
        .gpu_speedup()
        .map_or_else(|| "-".to_string(), |s| format!("{s:.3}x"));
    let ok = match c.agreed {
        Some(true) => "yes",
        Some(false) => "NO",
        None => "-",
    };
    let mut detail = c.detail.clone();
    if detail.chars().count() > 42 {
        detail = detail.chars().take(41).collect::<String>() + "…";
    }
    println!(
        "{:<13} {:<12} {:<42} {} {} {:>8} {:>4}",
        c.family,
        c.name,
        detail,
        cell(c, &c.gpu, (peaks.gpu_gflops, peaks.gpu_gbps)),
        cell(c, &c.cpu, (peaks.cpu_gflops, peaks.cpu_gbps)),
        speedup,
        ok
    );
}

fn run(args: Args) -> Result<bool> {
    let mut opts = if args.quick {
        Options::quick()
    } else {
        Options::full()
    };
    opts.big = args.big;
    opts.filter = args.filter.clone();
    if let Some(r) = args.runs {
        opts.runs = r;
    }
    if let Some(w) = args.warmup {
        opts.warmup = w;
    }
    if let Some(s) = args.train_steps {
        opts.train_steps = s;
    }
    let peaks = Peaks {
        gpu_gflops: positive("--peak-gflops", args.peak_gflops)?,
        gpu_gbps: positive("--peak-gbps", args.peak_gbps)?,
        cpu_gflops: positive("--cpu-peak-gflops", args.cpu_peak_gflops)?,
        cpu_gbps: positive("--cpu-peak-gbps", args.cpu_peak_gbps)?,
    };
    opts.validate()?;
    if args.compare_checks {
        return compare_checks(&opts);
    }
    let gpu = Gpu::new_tuned()?;
    if args.versions {
        return versions(&gpu, &opts, args.json, peaks.gpu_gflops);
    }
    if args.chain.is_some() && !args.latency {
        return Err(crate::Error::InvalidArgument {
            name: "--chain",
            msg: "only the --latency mode has chains".into(),
        });
    }
    if args.latency {
        let chain = args.chain.unwrap_or(if args.quick { 32 } else { 256 });
        return latency(&gpu, &opts, chain, args.json);
    }
    let adapter = gpu.summary().to_string();
    let timer = crate::gpu::GpuTimer::new(&gpu)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let matmul_threads = std::env::var("MATMUL_NUM_THREADS").unwrap_or_else(|_| "unset".into());
    if args.json {
        eprintln!("GPU: {adapter}; GPU timer: {}", timer.kind().name());
    } else {
        println!("GPU: {adapter}");
        println!(
            "GPU kernels timed by: {} ({}); training steps by the wall clock over an epoch",
            timer.kind().name(),
            match timer.kind() {
                crate::gpu::TimerKind::Timestamp => "device timestamps around one pass",
                crate::gpu::TimerKind::WallClock => "submit to idle, no TIMESTAMP_QUERY",
            }
        );
        println!(
            "CPU: ndarray + matrixmultiply (MATMUL_NUM_THREADS={matmul_threads}) + rayon ({} threads); {threads} hardware threads",
            rayon::current_num_threads()
        );
        println!(
            "median of {} runs after {} warm-up; ms per product / update / step; GPU/CPU = CPU time ÷ GPU time\n",
            opts.runs, opts.warmup
        );
        header();
    }
    let rows = bench::run(&gpu, &opts, |c| {
        if args.json {
            println!("{}", c.to_json(&adapter, &peaks));
        } else {
            table_row(c, &peaks);
        }
    })?;
    if !args.json {
        let notes: Vec<&Comparison> = rows.iter().filter(|c| !c.note.is_empty()).collect();
        if !notes.is_empty() {
            println!("\nnotes:");
            for c in notes {
                println!("  {}/{}: {}", c.family, c.name, c.note);
            }
        }
        for c in rows.iter().filter(|c| c.samples > 0) {
            if let (Some(g), Some(cm)) = (&c.gpu, &c.cpu) {
                println!(
                    "  train_step/{}: GPU {:.0} samples/s, CPU {:.0} samples/s",
                    c.name,
                    c.samples_per_s(g).unwrap_or(f64::NAN),
                    c.samples_per_s(cm).unwrap_or(f64::NAN)
                );
            }
        }
        let ratios = bench::fusion_ratios(&rows);
        if !ratios.is_empty() {
            println!(
                "\nfused vs unfused training step (unfused ÷ fused; above 1 the fused step wins):"
            );
            for (name, time, dispatches, bytes) in ratios {
                let time = time.map_or_else(|| "-".to_string(), |t| format!("{t:.3}x"));
                println!(
                    "  {name}: GPU time {time}, dispatches {dispatches:.2}x, counted bytes {bytes:.2}x"
                );
            }
        }
    }
    if let Some(r) = gpu.tune_record().report() {
        eprintln!("{r}");
    }
    let bad: Vec<&Comparison> = rows.iter().filter(|c| c.agreed == Some(false)).collect();
    for c in &bad {
        eprintln!(
            "GPU and CPU disagree on {}/{}: {}",
            c.family, c.name, c.check
        );
    }
    Ok(bad.is_empty())
}

/// The flags, for the example and for the `wgpu-train` subcommand alike.
pub fn command() -> clap::Command {
    <Args as clap::CommandFactory>::command()
}

/// Runs with flags parsed by [`command`] (a parse error exits as clap does).
pub fn main_with(matches: &clap::ArgMatches) -> std::process::ExitCode {
    let args =
        <Args as clap::FromArgMatches>::from_arg_matches(matches).unwrap_or_else(|e| e.exit());
    match run(args) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::exit(2),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}

/// The example's entry point: parses the process's arguments.
pub fn main() -> std::process::ExitCode {
    main_with(&command().get_matches())
}
