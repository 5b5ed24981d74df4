//! The CIFAR-10 linear softmax classifier of the course notebooks (W is
//! C×(D+1), the bias folded in as the last column), on real CIFAR-10 with
//! `--data DIR`, on Fashion-MNIST (10×785) by default, or on `--synthetic`
//! CIFAR-shaped data (3,072 random pixels per example) for throughput.
//!
//! ```text
//! cargo run --release --example train_linear                    # Fashion-MNIST, SGD lr 0.1
//! cargo run --release --example train_linear -- --data ~/cifar-10-batches-bin --lr 1e-3
//! cargo run --release --example train_linear -- --synthetic --epochs 2 --device gpu
//! ```

mod common;

use clap::Parser;
use common::{Common, Optimizer};
use wgpu_train::data::synthetic;
use wgpu_train::model::LinearSoftmax;
use wgpu_train::train::{TrainConfig, TrainData};

/// Train the linear softmax classifier on the GPU and the CPU.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    common: Common,
    /// CIFAR-shaped random data (50,000 train, 10,000 test, 3×32×32, labels
    /// uniform in 0..10): throughput only, accuracy stays at chance.
    #[arg(long, conflicts_with = "data")]
    synthetic: bool,
}

fn run(args: Args) -> wgpu_train::Result<()> {
    let c = &args.common;
    let optimizer = c.optimizer(Optimizer::Sgd, 0.1)?;
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
    let model = LinearSoftmax::new(train.dim(), train.classes)?;
    let config = TrainConfig {
        epochs: c.epochs,
        batch: c.batch,
        seed: c.seed,
        optimizer,
        validation: c.validation,
        fused: c.fused != common::OnOff::Off,
        ..TrainConfig::default()
    };
    config.validate()?;
    let data = TrainData::new(train, test, c.validation, c.seed)?;
    common::run(c, &model, &data, &config, &name, &short)
}

fn main() {
    common::exit_on_error(run(Args::parse()));
}
