//! The minibatch gather: u8 images picked by a shuffled order, normalised to
//! f32 — `gather/{gpu,cpu}/<model>`.
//!
//! - `mlp`: 128 rows of 784 pixels from 60,000 Fashion-MNIST-shaped images.
//! - `linear`: 256 rows of 3,072 pixels plus the bias column from 50,000
//!   CIFAR-10-shaped images (153 MB: two GPU buffers, two dispatches).
//!
//! Criterion's B/s counts the bytes a gather must move: pixels read as u8,
//! x written as f32, and per row the index read and the label read and
//! written as u32. The GPU side records 64 gathers per submit and waits
//! once; the CPU side is `cpu::gather_into` into a buffer it reuses, as the
//! training loop does. `cargo bench --bench data`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::time::{Duration, Instant};
use wgpu_train::kernels::gather::{Gather, GatherOptions, GpuDataset};
use wgpu_train::lab::bench::synthetic_images;
use wgpu_train::{Gpu, GpuTensor, cpu};

const PER_SUBMIT: u64 = 64;

fn bench_gather(c: &mut Criterion, gpu: &Gpu) {
    let mut group = c.benchmark_group("gather");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(10);
    for (name, n, shape, batch, append_one) in [
        ("mlp_128x784", 60_000, [1, 28, 28], 128usize, false),
        ("linear_256x3073", 50_000, [3, 32, 32], 256, true),
    ] {
        let data = synthetic_images(n, shape, 1).expect("data");
        let dim = data.dim();
        let width = dim + usize::from(append_one);
        group.throughput(Throughput::Bytes((batch * (dim + 4 * width + 12)) as u64));
        let opts = GatherOptions {
            mean: 0.5,
            std: 0.25,
            append_one,
        };
        let order: Vec<u32> = (0..n as u32)
            .map(|i| i.wrapping_mul(2_654_435_761) % n as u32)
            .collect();
        let steps = n / batch;

        let gdata = GpuDataset::upload(gpu, &data).expect("upload");
        let gorder = gdata.order_buffer(gpu, n).expect("order");
        gdata.write_order(gpu, &gorder, &order).expect("order");
        let gx = GpuTensor::<f32>::zeros(gpu, &[batch, width]).expect("x");
        let gy = GpuTensor::<u32>::zeros(gpu, &[batch]).expect("y");
        let gather = Gather::new(gpu, &gdata, &gorder, &gx, &gy, batch, opts).expect("gather");
        group.bench_function(BenchmarkId::new("gpu", name), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                let mut done = 0;
                while done < iters {
                    let chunk = (iters - done).min(PER_SUBMIT);
                    let mut enc = gpu.encoder("bench");
                    {
                        let mut pass = enc.begin_compute_pass(&Default::default());
                        for i in done..done + chunk {
                            gather
                                .record(&mut pass, i as usize % steps)
                                .expect("record");
                        }
                    }
                    gpu.submit(enc).expect("submit");
                    done += chunk;
                }
                gpu.wait().expect("wait");
                start.elapsed()
            })
        });

        let mut x = vec![0f32; batch * width];
        let mut y = Vec::with_capacity(batch);
        let mut step = 0;
        group.bench_function(BenchmarkId::new("cpu", name), |b| {
            b.iter(|| {
                let start = (step % steps) * batch;
                step += 1;
                cpu::gather_into(&data, &order, start, batch, opts, &mut x, &mut y).expect("gather")
            })
        });
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    let gpu = Gpu::new().expect("a GPU adapter (see the README)");
    eprintln!("gather benches on: {}", gpu.summary());
    bench_gather(c, &gpu);
}

criterion_group!(data, benches);
criterion_main!(data);
