//! Whole training steps, GPU and CPU: `train_step/{gpu,cpu}/<model>`.
//!
//! One criterion iteration is one epoch of 8 steps through the trainer's
//! engines (`GpuEngine`, `CpuEngine`) on synthetic data: gather, forward,
//! loss, backward, update, and on the GPU the order upload, the submits and
//! the loss readback that an epoch pays. Criterion's "elem/s" is training
//! samples per second. `gpu` is the fused step (the default, the per-layer
//! one), `gpu_rows` the row-block step of issue 23 (`FusedStep::Rows`),
//! `gpu_unfused` the reference kernels
//! (`TrainConfig::fused = false`), in the same run.
//!
//! - `mlp`: 784-128-128-10 sigmoid, Adam, batch 128.
//! - `linear_785`: 10×785 softmax classifier, SGD, batch 256.
//! - `linear_3073`: 10×3073 (CIFAR-10-shaped), SGD, batch 256.
//!
//! `cargo bench --bench train_step`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::time::Duration;
use wgpu_train::lab::bench::synthetic_images;
use wgpu_train::model::{LinearSoftmax, Mlp, Model};
use wgpu_train::optim::OptimizerConfig;
use wgpu_train::train::{CpuEngine, Engine, FusedStep, GpuEngine, TrainConfig, TrainData};
use wgpu_train::{Activation, Gpu};

const STEPS: usize = 8;

/// Name, model, optimizer, batch, image shape.
type Case<'m> = (
    &'static str,
    &'m dyn Model,
    OptimizerConfig,
    usize,
    [usize; 3],
);

fn bench_steps(c: &mut Criterion, gpu: &Gpu) {
    let mut group = c.benchmark_group("train_step");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10);
    let mlp = Mlp::mnist(Activation::Sigmoid);
    let linear_785 = LinearSoftmax::new(784, 10).expect("model");
    let linear_3073 = LinearSoftmax::new(3072, 10).expect("model");
    let cases: [Case<'_>; 3] = [
        ("mlp", &mlp, OptimizerConfig::adam(), 128, [1, 28, 28]),
        (
            "linear_785",
            &linear_785,
            OptimizerConfig::sgd(0.1),
            256,
            [1, 28, 28],
        ),
        (
            "linear_3073",
            &linear_3073,
            OptimizerConfig::sgd(0.1),
            256,
            [3, 32, 32],
        ),
    ];
    for (name, model, optimizer, batch, shape) in cases {
        group.throughput(Throughput::Elements((STEPS * batch) as u64));
        let train = synthetic_images(STEPS * batch, shape, 1).expect("data");
        let test = synthetic_images(batch, shape, 2).expect("data");
        let data = TrainData::new(train, test, 0, 0).expect("data");
        let config = TrainConfig {
            batch,
            optimizer,
            eval_batch: batch,
            mean: 0.5,
            std: 0.25,
            ..TrainConfig::default()
        };
        let order = data.epoch_order(0, 0);
        // The row-block step, the per-layer fused step it replaced, and
        // the unfused reference, side by side.
        for (id, fused, fused_step) in [
            ("gpu", true, FusedStep::Layers),
            ("gpu_rows", true, FusedStep::Rows),
            ("gpu_unfused", false, FusedStep::Rows),
        ] {
            let config = TrainConfig {
                fused,
                fused_step,
                ..config.clone()
            };
            let mut engine = GpuEngine::new(gpu, model, &data, &config).expect("gpu engine");
            eprintln!(
                "{id}/{name}: {} dispatches, {} counted bytes per step",
                engine.dispatches_per_step().unwrap_or(0.0),
                engine.bytes_per_step()
            );
            group.bench_function(BenchmarkId::new(id, name), |b| {
                b.iter(|| engine.train_epoch(&order, &mut |_, _| {}).expect("epoch"))
            });
        }
        let mut engine = CpuEngine::new(model, &data, &config).expect("cpu engine");
        group.bench_function(BenchmarkId::new("cpu", name), |b| {
            b.iter(|| engine.train_epoch(&order, &mut |_, _| {}).expect("epoch"))
        });
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    let gpu = Gpu::new().expect("a GPU adapter (see the README)");
    eprintln!("training-step benches on: {}", gpu.summary());
    bench_steps(c, &gpu);
}

criterion_group!(train_step, benches);
criterion_main!(train_step);
