//! The main job: the MLP 784-128-128-10 of the classic Keras MNIST example,
//! trained on Fashion-MNIST on the GPU and then on the CPU, with the same
//! seed, data order and formulas, followed by their speed ratio.
//!
//! ```text
//! cargo run --release --example train_mlp                       # GPU, then CPU
//! cargo run --release --example train_mlp -- --device gpu --json
//! cargo run --release --example train_mlp -- --activation relu --optimizer sgd --lr 0.1
//! cargo run --release --example train_mlp -- --data ~/mnist --plot curves.svg
//! ```

use super::common::{self, ActivationArg, Common, Optimizer};
use crate::Activation;
use crate::model::Mlp;
use crate::train::{TrainConfig, TrainData};
use clap::Parser;

/// Train the MLP 784-128-128-10 on the GPU and the CPU.
#[derive(Parser, Debug)]
#[command(version, about, allow_negative_numbers = true)]
struct Args {
    #[command(flatten)]
    common: Common,
    /// Hidden-layer activation.
    #[arg(long, value_enum, default_value = "sigmoid")]
    activation: ActivationArg,
}

fn run(args: Args) -> crate::Result<()> {
    let c = &args.common;
    let optimizer = c.optimizer(Optimizer::Adam, 1e-3)?;
    let (splits, name) = common::load_data(c)?;
    let short = splits.name.clone();
    let activation = match args.activation {
        ActivationArg::Sigmoid => Activation::Sigmoid,
        ActivationArg::Relu => Activation::Relu,
    };
    let pixels = splits.train.dim();
    let classes = splits.train.classes;
    let model = Mlp::new(&[pixels, 128, 128, classes], activation)?;
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
    let data = TrainData::new(splits.train, splits.test, c.validation, c.seed)?;
    common::run(c, &model, &data, &config, &name, &short)
}

/// The flags, for the example and for the `wgpu-train` subcommand alike.
pub fn command() -> clap::Command {
    <Args as clap::CommandFactory>::command()
}

/// Runs with flags parsed by [`command`] (a parse error exits as clap does).
pub fn main_with(matches: &clap::ArgMatches) -> std::process::ExitCode {
    let args =
        <Args as clap::FromArgMatches>::from_arg_matches(matches).unwrap_or_else(|e| e.exit());
    common::exit_on_error(run(args));
    std::process::ExitCode::SUCCESS
}

/// The example's entry point: parses the process's arguments.
pub fn main() -> std::process::ExitCode {
    main_with(&command().get_matches())
}
