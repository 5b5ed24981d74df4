//! `wgpu-train verify`: every kernel family against its CPU twin on this
//! adapter, as the table the browser page's Verify button shows
//! ([`crate::lab::verify`]). Exit status 2 when any row fails.

use crate::Gpu;
use crate::lab::verify::{self, Family};
use clap::Parser;
use std::process::ExitCode;

/// Check every kernel against its CPU twin on this GPU (random inputs,
/// awkward shapes, NaN-poisoned outputs).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Seed of the random inputs.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Only the families whose name contains this (matmul, softmax_xent,
    /// activation, reduce, linalg, optim, gather, gather_matmul,
    /// layer_backward, xent_hvp).
    #[arg(long)]
    family: Option<String>,
    /// One JSON object per row on stdout instead of the table.
    #[arg(long)]
    json: bool,
}

fn run(args: &Args) -> crate::Result<bool> {
    let families: Vec<Family> = Family::ALL
        .into_iter()
        .filter(|f| {
            args.family
                .as_ref()
                .is_none_or(|s| f.name().contains(s.as_str()))
        })
        .collect();
    if families.is_empty() {
        return Err(crate::Error::InvalidArgument {
            name: "--family",
            msg: format!(
                "'{}' matches no family; the families are {}",
                args.family.as_deref().unwrap_or_default(),
                Family::ALL.map(Family::name).join(", ")
            ),
        });
    }
    let gpu = Gpu::new()?;
    if !args.json {
        println!("adapter: {}", gpu.summary());
        println!(
            "{:<15} {:<34} {:<26} {:>10}  {:<4} {:>9}",
            "family", "kernel", "shape", "worst err", "pass", "GPU ms"
        );
    }
    let mut all_pass = true;
    for family in families {
        for row in pollster::block_on(verify::run(&gpu, family, args.seed))? {
            all_pass &= row.pass;
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string(&row)
                        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
                );
            } else {
                println!(
                    "{:<15} {:<34} {:<26} {:>10.2e}  {:<4} {:>9.2}{}",
                    row.family,
                    row.kernel,
                    row.shape,
                    row.worst_error,
                    if row.pass { "ok" } else { "FAIL" },
                    row.gpu_ms,
                    if row.pass {
                        String::new()
                    } else {
                        format!("  {}", row.detail)
                    }
                );
            }
        }
    }
    if !args.json {
        // The first run of each kernel compiles its pipeline: `report`
        // times them warm.
        println!(
            "{}  (GPU ms include each pipeline's first-use compilation; `wgpu-train report` times them warm)",
            if all_pass {
                "every row passed"
            } else {
                "SOME ROWS FAILED"
            }
        );
    }
    Ok(all_pass)
}

/// The flags, for the `wgpu-train verify` subcommand.
pub fn command() -> clap::Command {
    <Args as clap::CommandFactory>::command()
}

/// Runs with flags parsed by [`command`]: exit 0 when every row passes, 2
/// when one fails, 1 when the table could not be run.
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
