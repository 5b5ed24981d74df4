//! The course notebooks' experiments, one command each: gradient descent on
//! functions and the AND neuron, first- and second-order methods on small
//! problems, linear regression, losses, finite differences, step sizes and
//! automatic differentiation ([`crate::lab::course`]).
//!
//! ```text
//! wgpu-train course --list          # or: cargo run --release --example course -- --list
//! wgpu-train course and-neuron
//! wgpu-train course finite-differences --json
//! wgpu-train course descent-2d --plot docs/course
//! wgpu-train course descent-1d --gpu      # the starts as one GPU dispatch
//! wgpu-train course all --plot /tmp/course
//! ```

use std::path::PathBuf;

use crate::lab::course::{self, EXPERIMENTS, Options};
use crate::{Gpu, Result};

/// Run one experiment of the course notebooks (or `all`), printing the
/// notebook's own figures beside ours.
#[derive(clap::Parser, Debug)]
#[command(version, allow_negative_numbers = true)]
struct Args {
    /// The experiment to run (see --list), or `all`.
    #[arg(required_unless_present = "list")]
    name: Option<String>,
    /// Print the experiments' names, one a line, and exit.
    #[arg(long)]
    list: bool,
    /// Print the key numbers as one JSON object a line instead of text.
    #[arg(long)]
    json: bool,
    /// Write the experiment's pictures into this existing directory.
    #[arg(long, value_name = "DIR")]
    plot: Option<PathBuf>,
    /// Pictures as SVG instead of PNG.
    #[arg(long)]
    svg: bool,
    /// Also run the many-starts descents (descent-1d, descent-2d) on the
    /// GPU, one dispatch each, and compare them with their CPU twin.
    #[arg(long)]
    gpu: bool,
    /// The seed of the draws the notebooks left unseeded (as
    /// `np.random.seed(SEED)`: the same numbers in Python).
    #[arg(long, default_value_t = 0)]
    seed: u32,
}

fn run(args: Args) -> Result<()> {
    if args.list {
        for e in EXPERIMENTS {
            println!("{}", e.name);
        }
        return Ok(());
    }
    let name = args.name.as_deref().unwrap_or_default();
    // Unknown names and unusable directories fail before any work.
    let chosen: Vec<_> = if name == "all" {
        EXPERIMENTS.iter().collect()
    } else {
        vec![course::find(name)?]
    };
    if let Some(dir) = &args.plot {
        course::check_plot_dir(dir)?;
    }
    let gpu = if args.gpu { Some(Gpu::new()?) } else { None };
    let options = Options {
        seed: args.seed,
        plot_dir: args.plot.clone(),
        svg: args.svg,
        gpu: gpu.as_ref(),
    };
    for (i, e) in chosen.iter().enumerate() {
        let report = e.run(&options)?;
        if args.json {
            println!("{}", report.json);
            continue;
        }
        if i > 0 {
            println!();
        }
        println!("== {} (notebook {})", e.name, e.notebook);
        for line in &report.lines {
            println!("{line}");
        }
        for p in &report.pictures {
            println!("picture: {}", p.display());
        }
    }
    Ok(())
}

/// The flags, for the example and for the `wgpu-train` subcommand alike.
pub fn command() -> clap::Command {
    <Args as clap::CommandFactory>::command()
}

/// Runs with flags parsed by [`command`] (a parse error exits as clap does).
pub fn main_with(matches: &clap::ArgMatches) -> std::process::ExitCode {
    let args: Args =
        <Args as clap::FromArgMatches>::from_arg_matches(matches).unwrap_or_else(|e| e.exit());
    match run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The example's entry: parses the process's arguments, then runs.
pub fn main() -> std::process::ExitCode {
    main_with(&command().get_matches())
}
