//! The course notebooks' experiments, one command each: gradient descent on
//! functions and the AND neuron, first- and second-order methods on small
//! problems, linear regression, losses, finite differences, step sizes and
//! automatic differentiation (`wgpu_train::lab::course`).
//!
//! ```text
//! cargo run --release --example course -- --list
//! cargo run --release --example course -- and-neuron
//! cargo run --release --example course -- finite-differences --json
//! cargo run --release --example course -- descent-2d --plot docs/course
//! cargo run --release --example course -- descent-1d --gpu      # the starts as one GPU dispatch
//! cargo run --release --example course -- all --plot /tmp/course
//! ```

use std::path::PathBuf;

use clap::Parser;
use wgpu_train::lab::course::{self, EXPERIMENTS, Options};
use wgpu_train::{Gpu, Result};

/// Run one experiment of the course notebooks (or `all`), printing the
/// notebook's own figures beside ours.
#[derive(Parser, Debug)]
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

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
