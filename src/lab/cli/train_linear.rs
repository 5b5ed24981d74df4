//! The CIFAR-10 linear softmax classifier of the course notebooks (W is
//! C×(D+1), the bias folded in as the last column), on real CIFAR-10 with
//! `--data DIR`, on Fashion-MNIST (10×785) by default, or on `--synthetic`
//! CIFAR-shaped data (3,072 random pixels per example) for throughput.
//!
//! ```text
//! cargo run --release --example train_linear                    # Fashion-MNIST, SGD lr 0.1
//! cargo run --release --example train_linear -- --data ~/cifar-10-batches-bin --lr 1e-3
//! cargo run --release --example train_linear -- --synthetic --epochs 2 --device gpu
//! cargo run --release --example train_linear -- --loss svm --lr 0.01     # the multiclass SVM
//! cargo run --release --example train_linear -- --optimizer lbfgs --l2 1e-4
//! cargo run --release --example train_linear -- --optimizer newton-cg --l2 1e-3 --iterations 20
//! ```
//!
//! `--optimizer lbfgs|newton-cg` trains on the whole training set at once
//! (`crate::second_order`): the loss is the mean cross-entropy plus
//! `(λ/2)·‖W‖²` with λ from `--l2`, minimised until `‖∇L‖ ≤ --gtol` or for
//! `--iterations` steps; `--epochs`, `--batch`, `--lr`, `--fused` and
//! `--kernels` do not apply, and giving one is an error. With
//! the first-order optimizers `--l2` is their weight decay, which adds the
//! same λ·W to every gradient.
//!
//! `--loss svm` trains the same model with CS231n's multiclass SVM loss
//! (`Σ_{j≠y} max(0, s_j − s_y + 1)`, the `hinge_row` kernel of
//! `shaders/loss.wgsl`) instead of softmax cross-entropy, on either device.

#[path = "second_order_cli.rs"]
mod second_order_cli;

use super::common::{self, Common, Optimizer};
use crate::data::synthetic;
use crate::model::{LinearLoss, LinearSoftmax};
use crate::optim::{OptimizerConfig, Rule};
use crate::train::{TrainConfig, TrainData};
use clap::{CommandFactory, FromArgMatches, Parser};

/// Train the linear softmax classifier on the GPU and the CPU.
#[derive(Parser, Debug)]
#[command(version, about, allow_negative_numbers = true)]
struct Args {
    #[command(flatten)]
    common: Common,
    /// CIFAR-shaped random data (50,000 train, 10,000 test, 3×32×32, labels
    /// uniform in 0..10): throughput only, accuracy stays at chance.
    #[arg(long, conflicts_with = "data")]
    synthetic: bool,
    /// λ of the L2 term (λ/2)·‖W‖² (bias column included). Second-order
    /// optimizers minimise it with the loss (default 1e-4); first-order ones
    /// take it as weight decay (default 0).
    #[arg(long, allow_hyphen_values = true)]
    l2: Option<f64>,
    /// lbfgs, newton-cg: iterations at most.
    #[arg(long, default_value_t = 100)]
    iterations: usize,
    /// lbfgs, newton-cg: stop once ‖∇L‖ ≤ gtol.
    #[arg(long, default_value_t = 1e-5, allow_hyphen_values = true)]
    gtol: f64,
    /// lbfgs: curvature pairs kept.
    #[arg(long, default_value_t = 10)]
    history: usize,
    /// The loss: softmax (cross-entropy: the softmax classifier) or svm
    /// (CS231n's multiclass SVM, margin 1). lbfgs and newton-cg take softmax only.
    #[arg(long, value_enum, default_value_t = Loss::Softmax)]
    loss: Loss,
    /// The flags given on the command line (not defaulted), by id.
    #[arg(skip)]
    given: Vec<String>,
}

/// `--loss`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Loss {
    Softmax,
    Svm,
}

/// The first-order rule with weight decay `wd` (λ·W added to the gradient;
/// AdamW decays instead, as it always does).
fn with_weight_decay(mut cfg: OptimizerConfig, wd: f32) -> OptimizerConfig {
    match &mut cfg.rule {
        Rule::Sgd(r) => r.weight_decay = wd,
        Rule::Adagrad(r) => r.weight_decay = wd,
        Rule::RmsProp(r) => r.weight_decay = wd,
        Rule::Adam(r) => r.weight_decay = wd,
    }
    cfg
}

fn run(args: Args) -> crate::Result<()> {
    let c = &args.common;
    let second_order = matches!(c.optimizer, Some(Optimizer::Lbfgs | Optimizer::NewtonCg));
    let loss = match args.loss {
        Loss::Softmax => LinearLoss::Softmax,
        Loss::Svm => LinearLoss::Svm,
    };
    if second_order && loss != LinearLoss::Softmax {
        return Err(crate::Error::InvalidArgument {
            name: "--loss",
            msg: "lbfgs and newton-cg minimise the softmax loss only; train --loss svm with a first-order --optimizer".into(),
        });
    }
    let (train, test, name, short) = if args.synthetic {
        (
            synthetic::images(50_000, [3, 32, 32], 10, c.seed)?,
            synthetic::images(10_000, [3, 32, 32], 10, c.seed.wrapping_add(1))?,
            "synthetic CIFAR-shaped (50000 train, 10000 test)".to_string(),
            "synthetic data".to_string(),
        )
    } else {
        let (splits, name) = common::load_data(c)?;
        let short = splits.name.clone();
        (splits.train, splits.test, name, short)
    };
    if second_order {
        return second_order_cli::run(&args, train, test, &name, &short);
    }
    let mut optimizer = c.optimizer(Optimizer::Sgd, 0.1)?;
    if let Some(l2) = args.l2 {
        optimizer = with_weight_decay(optimizer, l2 as f32);
        optimizer.validate()?;
    }
    let model = LinearSoftmax::with_loss(train.dim(), train.classes, loss)?;
    let config = TrainConfig {
        epochs: c.epochs,
        batch: c.batch,
        seed: c.seed,
        optimizer,
        validation: c.validation,
        fused: c.fused != common::OnOff::Off,
        fused_step: c.fused.fused_step(),
        ..TrainConfig::default()
    };
    config.validate()?;
    let data = TrainData::new(train, test, c.validation, c.seed)?;
    common::run(c, &model, &data, &config, &name, &short)
}

/// The flags, for the example and for the `wgpu-train` subcommand alike.
pub fn command() -> clap::Command {
    Args::command()
}

/// Runs with flags parsed by [`command`] (a parse error exits as clap does).
pub fn main_with(matches: &clap::ArgMatches) -> std::process::ExitCode {
    let mut args = Args::from_arg_matches(matches).unwrap_or_else(|e| e.exit());
    args.given = matches
        .ids()
        .filter(|id| {
            matches.value_source(id.as_str()) == Some(clap::parser::ValueSource::CommandLine)
        })
        .map(|id| id.as_str().to_string())
        .collect();
    common::exit_on_error(run(args));
    std::process::ExitCode::SUCCESS
}

/// The example's entry point: parses the process's arguments.
pub fn main() -> std::process::ExitCode {
    main_with(&command().get_matches())
}
