//! Sweeps (`train::sweep`): K configurations trained together. Each model
//! of a GPU sweep equals its configuration trained alone, bit for bit; a
//! diverging model changes nothing for the others; too many models is a
//! clear error. The CPU path equals `fit` for the models it can.

use crate::common::{bits, gpu};
use wgpu_train::data::synthetic::learnable;
use wgpu_train::model::Mlp;
use wgpu_train::optim::OptimizerConfig;
use wgpu_train::train::sweep::{
    ModelOutcome, SweepRun, max_models, sweep_cpu, sweep_gpu, train_alone_gpu,
};
use wgpu_train::train::{self, CpuEngine, TrainConfig, TrainData};
use wgpu_train::{Activation, Dataset, Error};

fn data() -> TrainData {
    // 240 training examples in batches of 64: three full steps and a short one.
    TrainData::new(
        learnable(300, [1, 4, 5], 1).unwrap(),
        learnable(70, [1, 4, 5], 2).unwrap(),
        60,
        3,
    )
    .unwrap()
}

fn model() -> Mlp {
    Mlp::new(&[20, 16, 12, 10], Activation::Sigmoid).unwrap()
}

fn config() -> TrainConfig {
    TrainConfig {
        epochs: 2,
        batch: 64,
        eval_batch: 50,
        seed: 5,
        fused: false,
        ..TrainConfig::default()
    }
}

/// Three rules (one with momentum), three SGD learning rates, two seeds,
/// interleaved so that the engine must regroup them by rule.
fn mixed_runs() -> Vec<SweepRun> {
    let mut runs = Vec::new();
    for seed in [5, 11] {
        for opt in [
            OptimizerConfig::sgd(0.5),
            OptimizerConfig::adam(),
            OptimizerConfig::sgd(0.1),
            OptimizerConfig::momentum(0.05, 0.9),
            OptimizerConfig::sgd(0.02),
            OptimizerConfig::adam().with_schedule(wgpu_train::optim::Schedule::reduce_on_plateau()),
        ] {
            runs.push(SweepRun::new(opt, seed, true));
        }
    }
    runs
}

fn assert_same(what: &str, got: &ModelOutcome, want: &ModelOutcome) {
    assert_eq!(got.history.len(), want.history.len(), "{what}: epochs");
    for (a, b) in got.history.iter().zip(&want.history) {
        assert_eq!(
            a.train_loss.to_bits(),
            b.train_loss.to_bits(),
            "{what}: train loss, epoch {}",
            a.epoch
        );
        assert_eq!(a.train_accuracy, b.train_accuracy, "{what}: train accuracy");
        assert_eq!(
            a.val_loss.map(f64::to_bits),
            b.val_loss.map(f64::to_bits),
            "{what}: val loss"
        );
        assert_eq!(a.val_accuracy, b.val_accuracy, "{what}: val accuracy");
    }
    assert_eq!(got.diverged, want.diverged, "{what}: divergence");
    assert_eq!(
        got.test.map(|(l, a)| (l.to_bits(), a.to_bits())),
        want.test.map(|(l, a)| (l.to_bits(), a.to_bits())),
        "{what}: test loss and accuracy"
    );
    // Bits, −0 counted as +0 (see `common::bits`).
    assert!(
        bits(&got.params) == bits(&want.params),
        "{what}: final parameters differ"
    );
}

#[test]
fn every_gpu_sweep_model_equals_its_configuration_trained_alone() {
    let (g, data, model, config) = (gpu(), data(), model(), config());
    let runs = mixed_runs();
    let swept = sweep_gpu(g, &model, &data, &config, &runs, &mut |_| {}).unwrap();
    assert_eq!(swept.models.len(), runs.len());
    let per_step = swept.dispatches_per_step.unwrap();
    // For all 12 models: the gather, 3 products forward, softmax, 5
    // products and 3 column sums backward, the totals, and one update per
    // rule variant present (adam, sgd, sgd_momentum).
    assert_eq!(per_step, 17.0, "dispatches per step for 12 models");
    for (run, got) in runs.iter().zip(&swept.models) {
        assert!(
            got.test.is_some() && got.diverged.is_none(),
            "{}: trained",
            run.label
        );
        let alone = train_alone_gpu(g, &model, &data, &config, run).unwrap();
        assert_same(&run.label, got, &alone);
    }
    // The models learn (the comparison is not between two broken runs).
    let adam = &swept.models[1];
    assert!(adam.history[1].train_loss < adam.history[0].train_loss);
}

#[test]
fn every_cpu_sweep_model_equals_fit() {
    let (data, model, config) = (data(), model(), config());
    let runs = mixed_runs();
    let swept = sweep_cpu(&model, &data, &config, &runs, &mut |_| {}).unwrap();
    for (run, got) in runs.iter().zip(&swept.models) {
        if run.seed != config.seed {
            continue; // fit would also reorder its minibatches by the seed
        }
        let cfg = run.config(&config);
        let mut engine = CpuEngine::new(&model, &data, &cfg).unwrap();
        let fitted = train::fit(&mut engine, &data, &cfg, 0, &mut |_| {}).unwrap();
        for (a, b) in got.history.iter().zip(&fitted.history.epochs) {
            assert_eq!(
                a.train_loss.to_bits(),
                b.train_loss.to_bits(),
                "{}",
                run.label
            );
            assert_eq!(a.val_loss.map(f64::to_bits), b.val_loss.map(f64::to_bits));
        }
        assert_eq!(
            got.test,
            Some((fitted.test_loss, fitted.test_accuracy)),
            "{}",
            run.label
        );
    }
    // The seed changes the initial weights.
    assert_ne!(swept.models[0].params, swept.models[6].params);
}

fn divergence_runs(with_lr_100: bool) -> Vec<SweepRun> {
    let mut runs = vec![
        SweepRun::new(OptimizerConfig::sgd(0.1), 5, false),
        SweepRun::new(OptimizerConfig::adam(), 5, false),
    ];
    if with_lr_100 {
        runs.insert(1, SweepRun::new(OptimizerConfig::sgd(1e38), 5, false));
    }
    runs
}

#[test]
fn a_diverging_model_is_reported_and_disturbs_no_other() {
    let (g, data, model, config) = (gpu(), data(), model(), config());
    for device in ["gpu", "cpu"] {
        let run = |runs: &[SweepRun]| match device {
            "gpu" => sweep_gpu(g, &model, &data, &config, runs, &mut |_| {}).unwrap(),
            _ => sweep_cpu(&model, &data, &config, runs, &mut |_| {}).unwrap(),
        };
        let with = run(&divergence_runs(true));
        let without = run(&divergence_runs(false));
        let bad = &with.models[1];
        let d = bad.diverged.expect("lr 1e38 diverges");
        assert_eq!(d.epoch, 1, "{device}: diverged in the first epoch");
        assert!(!d.value.is_finite());
        assert_eq!(
            bad.history.len(),
            1,
            "{device}: nothing reported after it diverged"
        );
        assert!(bad.test.is_none());
        assert_same(
            &format!("{device} sgd 0.1"),
            &with.models[0],
            &without.models[0],
        );
        assert_same(
            &format!("{device} adam"),
            &with.models[2],
            &without.models[1],
        );
    }
}

#[test]
fn too_many_models_is_a_clear_error_before_allocating() {
    let g = gpu();
    let model = Mlp::mnist(Activation::Sigmoid);
    let data = TrainData::new(learnable_784(20), learnable_784(10), 0, 0).unwrap();
    let config = TrainConfig {
        batch: 8,
        eval_batch: 8,
        ..TrainConfig::default()
    };
    let (most, why) = max_models(g, &model, &config);
    assert!(most >= 1 && why.contains("parameters"), "{most}: {why}");
    let runs = vec![SweepRun::new(OptimizerConfig::adam(), 0, false); most + 1];
    match sweep_gpu(g, &model, &data, &config, &runs, &mut |_| {}) {
        Err(Error::TooLarge { what, .. }) => {
            assert!(what.contains(&format!("at most {most}")), "{what}")
        }
        other => panic!("expected TooLarge, got {:?}", other.map(|r| r.models.len())),
    }
    assert!(
        sweep_gpu(g, &model, &data, &config, &[], &mut |_| {}).is_err(),
        "an empty sweep"
    );
}

fn learnable_784(n: usize) -> Dataset {
    let images: Vec<u8> = (0..n * 784).map(|i| (i * 7 % 251) as u8).collect();
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    Dataset::new(images, labels, [1, 28, 28], 10).unwrap()
}

/// The linear model's program (bias folded into the input) sweeps too.
#[test]
fn linear_model_sweep_models_equal_their_runs_alone() {
    let (g, data, config) = (gpu(), data(), config());
    let model = wgpu_train::model::LinearSoftmax::new(20, 10).unwrap();
    let runs: Vec<SweepRun> = [OptimizerConfig::sgd(0.5), OptimizerConfig::adam()]
        .into_iter()
        .flat_map(|o| [SweepRun::new(o, 5, true), SweepRun::new(o, 6, true)])
        .collect();
    let swept = sweep_gpu(g, &model, &data, &config, &runs, &mut |_| {}).unwrap();
    for (run, got) in runs.iter().zip(&swept.models) {
        let alone = train_alone_gpu(g, &model, &data, &config, run).unwrap();
        assert_same(&run.label, got, &alone);
    }
}
