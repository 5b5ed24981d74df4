//! `wgpu-train report`: the report card of this GPU
//! ([`crate::lab::report`]) as `report.md`, `report.json` and
//! `report.html` in `--out`. Exit status 2 when a verify row failed (the
//! report is still written: it shows which).

use crate::Gpu;
use crate::lab::report::{self, Options};
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

/// Write a report card of this GPU: adapter, limits and features, every
/// kernel checked against its CPU twin, the tuner's choices, GFLOP/s and
/// GB/s per kernel family, the latency floor, and the main job's
/// throughput on the GPU and the CPU (Markdown, JSON and an HTML page).
#[derive(Parser, Debug)]
#[command(version, about, allow_negative_numbers = true)]
struct Args {
    /// Minutes on a software adapter (lavapipe) instead of many: the
    /// benchmarks' quick mode, a 4,096-sample training run, short latency
    /// chains. Every verify row still runs.
    #[arg(long)]
    quick: bool,
    /// The directory for report.md, report.json and report.html (created
    /// when missing; a file there that is not an earlier report is never
    /// replaced).
    #[arg(long, value_name = "DIR", default_value = "wgpu-train-report")]
    out: PathBuf,
    /// The device's fp32 peak in GFLOP/s, to set the rates against
    /// (without it: the best rate measured in the report).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    peak_gflops: Option<f64>,
    /// The device's memory bandwidth in GB/s.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    peak_gbps: Option<f64>,
    /// Seed of the verify inputs and the training data.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn run(args: &Args) -> crate::Result<bool> {
    let opts = Options {
        quick: args.quick,
        peak_gflops: args.peak_gflops,
        peak_gbps: args.peak_gbps,
        seed: args.seed,
    };
    // Every check on the flags and the output directory before the work.
    opts.validate()?;
    let paths = report::prepare_dir(&args.out)?;
    let gpu = Gpu::new_tuned()?;
    eprintln!("report: {}", gpu.summary());
    let start = std::time::Instant::now();
    let r = report::make(&gpu, &opts, &mut |stage| {
        eprintln!("[{:6.1} s] {stage}", start.elapsed().as_secs_f64());
    })?;
    report::write(&r, &paths)?;
    let failed = r.verify.iter().filter(|v| !v.pass).count();
    println!(
        "verify: {} rows, {}",
        r.verify.len(),
        if failed == 0 {
            "all pass".to_string()
        } else {
            format!("{failed} FAILED")
        }
    );
    println!(
        "main job: GPU {:.0} samples/s, CPU {:.0} samples/s (GPU/CPU {:.2}×)",
        r.training.gpu.samples_per_s, r.training.cpu.samples_per_s, r.training.gpu_over_cpu
    );
    for p in &paths {
        println!("wrote {}", p.display());
    }
    Ok(r.all_verify_rows_pass)
}

/// The flags, for the `wgpu-train report` subcommand.
pub fn command() -> clap::Command {
    <Args as clap::CommandFactory>::command()
}

/// Runs with flags parsed by [`command`]: exit 0 with every verify row
/// passing, 2 when one failed, 1 when the report could not be made.
pub fn main_with(matches: &clap::ArgMatches) -> ExitCode {
    let args =
        <Args as clap::FromArgMatches>::from_arg_matches(matches).unwrap_or_else(|e| e.exit());
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(2),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
