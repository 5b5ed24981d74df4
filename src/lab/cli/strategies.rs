//! The course notebook's four optimisation strategies on the CIFAR-shaped
//! linear softmax classifier (W is 10×3073, bias folded in), each run on the
//! GPU and on the CPU twins, with both times:
//!
//! 1. random search, 2. random local search, 3. numerical vs analytic
//!    gradient and the loss after one step of each size, 4. minibatch
//!    gradient descent.
//!
//! ```text
//! cargo run --release --example strategies -- --quick          # seconds
//! cargo run --release --example strategies -- --examples 5000  # the README's run
//! cargo run --release --example strategies                     # the notebook: 50,000 examples
//! cargo run --release --example strategies -- --data DIR       # CIFAR-10 binary batches
//! ```
//!
//! The logic lives in `crate::lab::strategies`; this file parses flags and
//! prints what it returns.

use crate::lab::strategies::{
    CIFAR_CLASSES, CIFAR_DIM, Compared, Descent, GradientCheck, LocalSearch, NumericalGradient,
    Options, Problem, RandomSearch, ScoreLayout, Strategies,
};
use crate::{Gpu, Result};
use clap::{Parser, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Layout {
    Auto,
    Batched,
    Wide,
}

/// The course notebook's optimisation strategies on the GPU and the CPU.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None, allow_negative_numbers = true)]
struct Args {
    /// Small configuration: 1,000 training and 500 test examples, 3 epochs.
    #[arg(long)]
    quick: bool,
    /// A dataset directory (CIFAR-10 binary batches, or MNIST-style IDX
    /// files); without it, synthetic Gaussian data as in the notebook.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Training examples [default: 50,000 synthetic or the whole dataset;
    /// 1,000 with --quick].
    #[arg(long, value_name = "N")]
    examples: Option<usize>,
    /// Test examples [default: 10,000 synthetic or the whole test set; 500
    /// with --quick].
    #[arg(long, value_name = "N")]
    test_examples: Option<usize>,
    /// Values per synthetic example, before the bias column's 1.
    #[arg(long, default_value_t = CIFAR_DIM)]
    dim: usize,
    /// Which strategies to run, e.g. 1,3.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3,4")]
    strategies: Vec<u8>,
    /// Strategy 1: random candidates.
    #[arg(long, default_value_t = 100)]
    candidates: usize,
    /// Strategy 1 on the GPU: candidates per pass.
    #[arg(long, default_value_t = 100)]
    per_pass: usize,
    /// Strategy 1 on the GPU: how the scores of a pass are laid out.
    #[arg(long, value_enum, default_value_t = Layout::Auto)]
    layout: Layout,
    /// Strategy 2: iterations.
    #[arg(long, default_value_t = 100)]
    iterations: usize,
    /// Strategy 2: the perturbation's scale.
    #[arg(long, default_value_t = 1e-4, allow_hyphen_values = true)]
    step: f32,
    /// Strategy 3: minibatch rows.
    #[arg(long, default_value_t = 256)]
    grad_batch: usize,
    /// Strategy 3: coordinates checked.
    #[arg(long, default_value_t = 10)]
    grad_checks: usize,
    /// Strategy 4: batch sizes, one run each.
    #[arg(long, value_delimiter = ',', default_value = "256,1000")]
    batches: Vec<usize>,
    /// Strategy 4: epochs [default: 5; 3 with --quick].
    #[arg(long)]
    epochs: Option<usize>,
    /// Strategy 4: SGD learning rate.
    #[arg(long, default_value_t = 1e-3, allow_hyphen_values = true)]
    lr: f32,
    /// Rows per chunk of examples (one GPU tensor each).
    #[arg(long, default_value_t = 8000)]
    chunk_rows: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// 50000 → "50,000".
fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn pct(x: f32) -> String {
    format!("{:.1}%", 100.0 * x)
}

/// "GPU 1.230 s | CPU 0.450 s (GPU speed-up 0.37×)": the speed-up is CPU
/// time over GPU time.
fn times(gpu: f64, cpu: f64) -> String {
    format!(
        "GPU {gpu:.3} s | CPU {cpu:.3} s (GPU speed-up {:.2}×)",
        cpu / gpu.max(1e-9)
    )
}

fn gflops(flop: f64, s: f64) -> String {
    format!("{:.2} GFLOP/s", flop / s.max(1e-9) / 1e9)
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn print_random_search(s: &Strategies, r: &Compared<RandomSearch>) {
    let p = s.problem();
    let n = p.y_train.len();
    let k = r.gpu.losses.len();
    let flop = 2.0 * (k * p.weights() * n) as f64;
    println!(
        "GPU: {} candidates per pass, {} layout, {} dispatches per scoring, {} chunk(s)",
        s.candidates_per_pass(),
        s.options().layout.resolve().name(),
        r.gpu.dispatches.unwrap_or(0),
        s.train_chunks()
    );
    println!("attempt   GPU loss    CPU loss    best so far (GPU)");
    let mut best = f32::INFINITY;
    for (i, (g, c)) in r.gpu.losses.iter().zip(&r.cpu.losses).enumerate() {
        best = best.min(*g);
        println!("{i:>7}   {g:.7}   {c:.7}   {best:.7}");
    }
    println!(
        "best: attempt {} loss {:.7} (GPU), attempt {} loss {:.7} (CPU); ln {} = {:.7}",
        r.gpu.best,
        r.gpu.losses[r.gpu.best],
        r.cpu.best,
        r.cpu.losses[r.cpu.best],
        p.classes,
        (p.classes as f64).ln()
    );
    println!(
        "best W on the test set: accuracy {} (GPU), {} (CPU); max |GPU − CPU| loss {:.1e}",
        pct(r.gpu.best_test.accuracy),
        pct(r.cpu.best_test.accuracy),
        max_diff(&r.gpu.losses, &r.cpu.losses)
    );
    println!(
        "time: {}; {:.1} GFLOP: {} GPU, {} CPU",
        times(r.gpu.seconds, r.cpu.seconds),
        flop / 1e9,
        gflops(flop, r.gpu.seconds),
        gflops(flop, r.cpu.seconds)
    );
}

fn print_local_search(r: &Compared<LocalSearch>) {
    println!("iter   GPU try     GPU best    CPU try     CPU best");
    for i in 0..r.gpu.tried.len() {
        println!(
            "{i:>4}   {:.7}   {:.7}   {:.7}   {:.7}",
            r.gpu.tried[i], r.gpu.best[i], r.cpu.tried[i], r.cpu.best[i]
        );
    }
    let last = |l: &LocalSearch| l.best.last().copied().unwrap_or(f32::NAN);
    println!(
        "kept {} of {} tries (GPU), {} (CPU); final loss {:.7} (GPU), {:.7} (CPU)",
        r.gpu.accepted,
        r.gpu.tried.len(),
        r.cpu.accepted,
        last(&r.gpu),
        last(&r.cpu)
    );
    println!(
        "final W on the test set: accuracy {} (GPU), {} (CPU)",
        pct(r.gpu.test.accuracy),
        pct(r.cpu.test.accuracy)
    );
    println!("time: {}", times(r.gpu.seconds, r.cpu.seconds));
}

fn print_gradient_check(n: &NumericalGradient, r: &Compared<GradientCheck>, h: f64) {
    println!(
        "minibatch loss at W: {:.7} (GPU), {:.7} (CPU)",
        r.gpu.loss, r.cpu.loss
    );
    println!(
        "centred differences in f64 (h = {h:.0e}) at {} coordinates: {:.3} s; the f64 twin's analytic gradient agrees to {:.1e}",
        n.numeric.len(),
        n.seconds,
        n.f64_max_rel_error
    );
    println!("W[row, col]       numerical     GPU analytic  rel error   CPU analytic  rel error");
    for (g, c) in r.gpu.checks.iter().zip(&r.cpu.checks) {
        println!(
            "W[{:>1}, {:>4}]   {:>+13.6e}  {:>+13.6e}  {:.1e}     {:>+13.6e}  {:.1e}",
            g.row, g.col, g.numeric, g.analytic, g.rel_error, c.analytic, c.rel_error
        );
    }
    println!(
        "max relative error: GPU {:.1e}, CPU {:.1e}; analytic gradient time: {}",
        r.gpu.max_rel_error,
        r.cpu.max_rel_error,
        times(r.gpu.gradient_seconds, r.cpu.gradient_seconds)
    );
    println!("loss on the minibatch after one step W − s·dW:");
    println!("  step s     GPU loss    CPU loss");
    for ((s, g), (_, c)) in r.gpu.sweep.iter().zip(&r.cpu.sweep) {
        println!("  {s:<8.0e}   {g:.7}   {c:.7}");
    }
    println!(
        "sweep time ({} candidates in one pass): {}",
        r.gpu.sweep.len(),
        times(r.gpu.sweep_seconds, r.cpu.sweep_seconds)
    );
}

fn print_descent(r: &Compared<Descent>, n: usize, weights: usize) {
    println!(
        "batch {}: {} steps per epoch, {} GPU dispatches a step, one readback per epoch",
        r.gpu.batch,
        r.gpu.steps_per_epoch,
        r.gpu.dispatches_per_step.unwrap_or(0)
    );
    println!("epoch   GPU loss   GPU acc   CPU loss   CPU acc   (running, over the epoch)");
    for (i, (g, c)) in r.gpu.epochs.iter().zip(&r.cpu.epochs).enumerate() {
        println!(
            "{:>5}   {:.5}    {:>6}    {:.5}    {:>6}",
            i + 1,
            g.loss,
            pct(g.accuracy),
            c.loss,
            pct(c.accuracy)
        );
    }
    println!(
        "test: loss {:.5}, accuracy {} (GPU); loss {:.5}, accuracy {} (CPU)",
        r.gpu.test.loss,
        pct(r.gpu.test.accuracy),
        r.cpu.test.loss,
        pct(r.cpu.test.accuracy)
    );
    // Forward and backward products: 2·(2·C·F) FLOP per example.
    let flop = 4.0 * (weights * n * r.gpu.epochs.len()) as f64;
    println!(
        "time: {}; {} GPU, {} CPU",
        times(r.gpu.seconds, r.cpu.seconds),
        gflops(flop, r.gpu.seconds),
        gflops(flop, r.cpu.seconds)
    );
}

fn run(args: Args) -> Result<()> {
    if let Some(bad) = args.strategies.iter().find(|s| !(1..=4).contains(*s)) {
        return Err(crate::Error::InvalidArgument {
            name: "--strategies",
            msg: format!("strategies are numbered 1 to 4, got {bad}"),
        });
    }
    let problem = match &args.data {
        Some(dir) => {
            let splits = crate::data::load_dir(dir)?;
            let cap = |n: Option<usize>, quick| n.or(if args.quick { Some(quick) } else { None });
            Problem::from_splits(
                &splits,
                cap(args.examples, 1000),
                cap(args.test_examples, 500),
            )?
        }
        None => {
            let (train, test) = if args.quick {
                (1000, 500)
            } else {
                (50_000, 10_000)
            };
            Problem::synthetic(
                args.examples.unwrap_or(train),
                args.test_examples.unwrap_or(test),
                args.dim,
                CIFAR_CLASSES,
                args.seed,
            )?
        }
    };
    let base = if args.quick {
        Options::quick()
    } else {
        Options::default()
    };
    let options = Options {
        candidates: args.candidates,
        candidates_per_pass: args.per_pass,
        layout: match args.layout {
            Layout::Auto => ScoreLayout::Auto,
            Layout::Batched => ScoreLayout::Batched,
            Layout::Wide => ScoreLayout::Wide,
        },
        iterations: args.iterations,
        local_step: args.step,
        grad_batch: args.grad_batch,
        grad_checks: args.grad_checks,
        batches: args.batches.clone(),
        epochs: args.epochs.unwrap_or(base.epochs),
        lr: args.lr,
        chunk_rows: args.chunk_rows,
        seed: args.seed,
        ..base
    };

    let gpu = Gpu::new_tuned()?;
    let (n, m, f) = (
        problem.y_train.len(),
        problem.y_test.len(),
        problem.features(),
    );
    println!(
        "{}: {} training and {} test examples of {} values (the last is the bias 1), {} classes",
        problem.name,
        thousands(n),
        thousands(m),
        thousands(f),
        problem.classes
    );
    println!("GPU: {}", gpu.summary());
    println!(
        "CPU: the ndarray twins (matrixmultiply, {} threads)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let mut s = Strategies::new(&gpu, problem, options)?;
    println!(
        "examples in {} chunk(s) of up to {} rows; upload {:.2} s",
        s.train_chunks(),
        thousands(s.chunk_rows()),
        s.upload_seconds()
    );
    let o = s.options().clone();
    let weights = s.problem().weights();
    let mut summary: Vec<(String, f64, f64)> = Vec::new();

    if args.strategies.contains(&1) {
        println!(
            "\n== Strategy 1: random search ({} candidates W = {:.0e}·randn, each scored on all {} training examples)",
            o.candidates,
            o.candidate_scale,
            thousands(n)
        );
        let r = s.random_search()?;
        print_random_search(&s, &r);
        summary.push(("1 random search".into(), r.gpu.seconds, r.cpu.seconds));
    }
    if args.strategies.contains(&2) {
        println!(
            "\n== Strategy 2: random local search (W0 = {:.0e}·randn; {} tries of W + {:.0e}·randn, kept when the training loss drops)",
            o.local_init_scale, o.iterations, o.local_step
        );
        let r = s.local_search()?;
        print_local_search(&r);
        summary.push(("2 local search".into(), r.gpu.seconds, r.cpu.seconds));
    }
    if args.strategies.contains(&3) {
        println!(
            "\n== Strategy 3: numerical vs analytic gradient (minibatch of {} examples, W = 1e-3·uniform[0, 1))",
            o.grad_batch.min(n)
        );
        let (num, r) = s.gradient_check()?;
        print_gradient_check(&num, &r, o.grad_h);
        summary.push((
            "3 analytic gradient".into(),
            r.gpu.gradient_seconds,
            r.cpu.gradient_seconds,
        ));
        summary.push((
            "3 step-size sweep".into(),
            r.gpu.sweep_seconds,
            r.cpu.sweep_seconds,
        ));
    }
    if args.strategies.contains(&4) {
        println!(
            "\n== Strategy 4: minibatch gradient descent (SGD, lr {:.0e}, {} epochs, W0 = {:.0e}·randn; chance accuracy is {})",
            o.lr,
            o.epochs,
            o.descent_init_scale,
            pct(1.0 / s.problem().classes as f32)
        );
        for &b in &o.batches {
            let r = s.descent(b)?;
            print_descent(&r, n, weights);
            summary.push((
                format!("4 descent, batch {b}"),
                r.gpu.seconds,
                r.cpu.seconds,
            ));
        }
    }
    println!("\n== Times (seconds)");
    println!(
        "{:<22} {:>9} {:>9} {:>14}",
        "strategy", "GPU", "CPU", "GPU speed-up"
    );
    for (what, g, c) in summary {
        println!("{what:<22} {g:>9.3} {c:>9.3} {:>13.2}×", c / g.max(1e-9));
    }
    Ok(())
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
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The example's entry point: parses the process's arguments.
pub fn main() -> std::process::ExitCode {
    main_with(&command().get_matches())
}
