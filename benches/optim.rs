//! Optimizer update throughput: GB/s moved and parameters per second.
//!
//! - `optim/{gpu,cpu}/<rule>/<n>`: one fused update of n = 100 k and 10 M
//!   parameters (SGD, SGD with momentum, Adam; Adam also on a grid of one
//!   element per thread instead of the default ~4). Bytes are the minimum one
//!   update must move, `OptimizerConfig::bytes_per_param` (12 + 8 per state
//!   buffer: 12 B for SGD, 28 B for Adam). The GPU side records many steps
//!   per submit (each step is the `advance` dispatch plus the update) and
//!   waits once, so submit overhead is amortised as in training; the CPU
//!   side is the single-threaded twin.
//! - `optim_mlp/gpu/{fused,per_tensor}`: Adam over the MLP 784-128-128-10's
//!   six tensors (118,282 parameters): one optimizer over the flat buffer
//!   (2 dispatches a step) against one per tensor view (12 dispatches).
//!
//! `cargo bench --bench optim` (add a filter such as `100k` to run fewer).
//! Measurement times are short: the machine this grew on has 2 cores.

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use rand::{RngExt, SeedableRng, rngs::StdRng};
use std::time::{Duration, Instant};
use wgpu_train::cpu::CpuOptimizer;
use wgpu_train::optim::OptimizerConfig;
use wgpu_train::{Gpu, GpuOptimizer, GpuTensor};

/// Steps recorded into one encoder before a submit.
const STEPS_PER_SUBMIT: u64 = 32;

fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

fn configs() -> [OptimizerConfig; 3] {
    [
        OptimizerConfig::sgd(1e-3),
        OptimizerConfig::momentum(1e-3, 0.9),
        OptimizerConfig::adam(),
    ]
}

fn size_name(n: usize) -> String {
    if n >= 1_000_000 {
        format!("{}M", n / 1_000_000)
    } else {
        format!("{}k", n / 1000)
    }
}

/// Runs `iters` steps of every optimizer in `opts`, `STEPS_PER_SUBMIT` per
/// encoder, and waits for the GPU.
fn gpu_steps(gpu: &Gpu, opts: &[GpuOptimizer], iters: u64) -> Duration {
    let start = Instant::now();
    let mut left = iters;
    while left > 0 {
        let chunk = left.min(STEPS_PER_SUBMIT);
        let mut enc = gpu.encoder("bench");
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            for _ in 0..chunk {
                for o in opts {
                    o.record(&mut pass);
                }
            }
        }
        gpu.submit(enc).expect("submit");
        left -= chunk;
    }
    gpu.wait().expect("wait");
    start.elapsed()
}

fn bench_update(c: &mut Criterion, gpu: &Gpu) {
    let mut group = c.benchmark_group("optim");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(10);
    for n in [100_000usize, 10_000_000] {
        if n >= 1_000_000 {
            group.sampling_mode(SamplingMode::Flat);
        }
        let p0 = random(n, 1);
        let g0 = random(n, 2);
        for cfg in configs() {
            group.throughput(Throughput::ElementsAndBytes {
                elements: n as u64,
                bytes: n as u64 * cfg.bytes_per_param(),
            });
            let id = format!("{}/{}", cfg.name(), size_name(n));

            let params = GpuTensor::from_slice(gpu, &[n], &p0).expect("params");
            let grads = GpuTensor::from_slice(gpu, &[n], &g0).expect("grads");
            let opt = GpuOptimizer::new(gpu, cfg, &params, &grads).expect("optimizer");
            let opts = [opt];
            group.bench_function(BenchmarkId::new("gpu", &id), |b| {
                b.iter_custom(|iters| gpu_steps(gpu, &opts, iters))
            });
            // The same kernel on a grid of one element per thread (v1).
            if cfg.name() == "adam" {
                let opts = [
                    GpuOptimizer::with_elems_per_thread(gpu, cfg, &params, &grads, 1)
                        .expect("optimizer"),
                ];
                let id = format!("{}_1_per_thread/{}", cfg.name(), size_name(n));
                group.bench_function(BenchmarkId::new("gpu", &id), |b| {
                    b.iter_custom(|iters| gpu_steps(gpu, &opts, iters))
                });
            }
            drop(opts);

            let mut p = p0.clone();
            let mut opt = CpuOptimizer::new(cfg, n).expect("cpu optimizer");
            group.bench_function(BenchmarkId::new("cpu", &id), |b| {
                b.iter(|| opt.step(&mut p, &g0).expect("step"))
            });
        }
    }
    group.finish();
}

fn bench_fused_vs_per_tensor(c: &mut Criterion, gpu: &Gpu) {
    let sizes = [128 * 784, 128, 128 * 128, 128, 10 * 128, 10];
    let n: usize = sizes.iter().sum();
    let cfg = OptimizerConfig::adam();
    let params = GpuTensor::from_slice(gpu, &[n], &random(n, 3)).expect("params");
    let grads = GpuTensor::from_slice(gpu, &[n], &random(n, 4)).expect("grads");

    let fused = [GpuOptimizer::new(gpu, cfg, &params, &grads).expect("fused")];
    let mut per_tensor = Vec::new();
    let mut off = 0;
    for &len in &sizes {
        let p = params.view(off, &[len]).expect("view");
        let g = grads.view(off, &[len]).expect("view");
        per_tensor.push(GpuOptimizer::new(gpu, cfg, &p, &g).expect("per tensor"));
        off += len;
    }

    let mut group = c.benchmark_group("optim_mlp");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(10)
        .throughput(Throughput::ElementsAndBytes {
            elements: n as u64,
            bytes: n as u64 * cfg.bytes_per_param(),
        });
    group.bench_function("gpu/fused_adam_2_dispatches", |b| {
        b.iter_custom(|iters| gpu_steps(gpu, &fused, iters))
    });
    group.bench_function("gpu/per_tensor_adam_12_dispatches", |b| {
        b.iter_custom(|iters| gpu_steps(gpu, &per_tensor, iters))
    });
    let mut p = random(n, 3);
    let g = random(n, 4);
    let mut opt = CpuOptimizer::new(cfg, n).expect("cpu optimizer");
    group.bench_function("cpu/fused_adam", |b| {
        b.iter(|| opt.step(&mut p, &g).expect("step"))
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    let gpu = Gpu::new().expect("a GPU adapter (see the README)");
    eprintln!("optimizer benches on: {}", gpu.summary());
    bench_update(c, &gpu);
    bench_fused_vs_per_tensor(c, &gpu);
}

criterion_group!(optim, benches);
criterion_main!(optim);
