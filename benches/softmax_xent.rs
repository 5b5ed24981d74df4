//! GB/s of the loss and reduction kernels, every GPU version beside the CPU
//! twin: fused softmax cross-entropy (forward+backward and forward-only),
//! column sums, the activation backward fused into the bias gradient (beside
//! the two separate kernels it replaces), and the loss/correct totals.
//!
//! `cargo bench --bench softmax_xent` runs criterion (names `gpu/<version>`
//! and `cpu/twin` per case; criterion's "B/s" counts the bytes the fused
//! operation must move: every input read once, every output written once)
//! and then prints one table of GB/s from the median over criterion's
//! samples. The separate-kernels row moves more bytes than it is credited
//! with, so its lower GB/s is the cost of not fusing.
//!
//! GPU timing: the dispatch is recorded `iters` times into compute passes
//! (256 per submit) and timed from the first submit until the device is idle,
//! so per-dispatch overhead is included, as in a training step.

use criterion::{BenchmarkId, Criterion, Throughput};
use ndarray::{Array1, ArrayD};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use wgpu_train::kernels::{ActivationBackward, ColumnSum, LossCorrectSum, SoftmaxXent};
use wgpu_train::{
    Activation, ColumnSumKernel, Gpu, GpuLabels, GpuTensor, SoftmaxXentKernel, SoftmaxXentShape,
    cpu,
};

/// Seconds per operation, per (case, implementation), from every timed sample.
static SAMPLES: Mutex<BTreeMap<(String, String), Vec<f64>>> = Mutex::new(BTreeMap::new());

fn record(case: &str, who: &str, total: Duration, iters: u64) {
    let mut s = SAMPLES.lock().unwrap();
    s.entry((case.to_string(), who.to_string()))
        .or_default()
        .push(total.as_secs_f64() / iters as f64);
}

fn input(shape: &[usize], seed: u32, scale: f32) -> ArrayD<f32> {
    // A cheap deterministic pattern in [-scale, scale); values do not affect speed.
    let n: usize = shape.iter().product();
    let v = (0..n)
        .map(|i| {
            let u = ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) as f32
                / (1u32 << 23) as f32
                - 1.0;
            u * scale
        })
        .collect();
    ArrayD::from_shape_vec(shape, v).unwrap()
}

fn labels(n: usize, classes: usize) -> Vec<u32> {
    (0..n).map(|i| ((i * 7919) % classes) as u32).collect()
}

/// Records `record` `iters` times, 256 per submit, and waits for the device.
fn time_gpu(gpu: &Gpu, iters: u64, record: &dyn Fn(&mut wgpu::ComputePass<'_>)) -> Duration {
    let start = Instant::now();
    let mut left = iters as usize;
    while left > 0 {
        let now = left.min(256);
        let mut encoder = gpu.encoder("bench");
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("bench"),
                timestamp_writes: None,
            });
            for _ in 0..now {
                record(&mut pass);
            }
        }
        gpu.submit(encoder).unwrap();
        left -= now;
    }
    gpu.wait().unwrap();
    start.elapsed()
}

type GpuRecorder<'a> = Box<dyn Fn(&mut wgpu::ComputePass<'_>) + 'a>;

/// One benchmark group: GPU implementations and the CPU twin of one case.
fn group(
    c: &mut Criterion,
    gpu: &Gpu,
    case: &str,
    bytes: u64,
    gpus: Vec<(String, GpuRecorder<'_>)>,
    cpu_twin: &dyn Fn(),
) {
    let mut g = c.benchmark_group(case);
    g.throughput(Throughput::Bytes(bytes));
    for (who, rec) in &gpus {
        let who = format!("gpu/{who}");
        g.bench_function(BenchmarkId::new(&who, ""), |b| {
            b.iter_custom(|iters| {
                let t = time_gpu(gpu, iters, rec.as_ref());
                record(case, &who, t, iters);
                t
            })
        });
    }
    g.bench_function(BenchmarkId::new("cpu/twin", ""), |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                cpu_twin();
            }
            let t = start.elapsed();
            record(case, "cpu/twin", t, iters);
            t
        })
    });
    g.finish();
}

fn bench_xent(c: &mut Criterion, gpu: &Gpu, cases: &mut Vec<(String, u64)>) {
    for (n, classes, with_grad) in [
        (128, 10, true),
        (256, 10, true),
        (128, 1000, true),
        (256, 1000, true),
        (10000, 10, false),
    ] {
        let kind = if with_grad {
            "softmax_xent"
        } else {
            "softmax_xent_eval"
        };
        let case = format!("{kind}_{n}x{classes}");
        let shape = SoftmaxXentShape { n, c: classes };
        let bytes = shape.bytes(with_grad);
        let logits = input(&[n, classes], 1, 5.0);
        let y = labels(n, classes);
        let gl = GpuTensor::from_array(gpu, &logits).unwrap();
        let gy = GpuLabels::new(gpu, &y, classes).unwrap();
        let loss = GpuTensor::<f32>::zeros(gpu, &[n]).unwrap();
        let correct = GpuTensor::<u32>::zeros(gpu, &[n]).unwrap();
        let dlogits = GpuTensor::<f32>::zeros(gpu, &[n, classes]).unwrap();
        let d = with_grad.then_some(&dlogits);
        let gpus = SoftmaxXentKernel::ALL
            .iter()
            .map(|&k| {
                let kernel = SoftmaxXent::new(gpu, &gl, &gy, &loss, &correct, d, k).unwrap();
                let rec: GpuRecorder = Box::new(move |pass| kernel.record(pass));
                (k.name().to_string(), rec)
            })
            .collect();
        let twin = || {
            let out = if with_grad {
                cpu::softmax_xent(&logits, &y)
            } else {
                cpu::softmax_xent_eval(&logits, &y)
            };
            std::hint::black_box(out.unwrap());
        };
        group(c, gpu, &case, bytes, gpus, &twin);
        cases.push((case, bytes));
    }
}

fn bench_reductions(c: &mut Criterion, gpu: &Gpu, cases: &mut Vec<(String, u64)>) {
    for (n, cols) in [(128, 128), (256, 1000)] {
        let case = format!("column_sum_{n}x{cols}");
        let x = input(&[n, cols], 2, 1.0);
        let gx = GpuTensor::from_array(gpu, &x).unwrap();
        let sums = GpuTensor::<f32>::zeros(gpu, &[cols]).unwrap();
        let bytes = 4 * (n * cols + cols) as u64;
        let gpus = ColumnSumKernel::ALL
            .iter()
            .map(|&kernel| {
                let k = ColumnSum::new(gpu, &gx, &sums, kernel).unwrap();
                let rec: GpuRecorder = Box::new(move |pass| k.record(pass));
                (kernel.name().to_string(), rec)
            })
            .collect();
        let twin = || {
            std::hint::black_box(cpu::column_sum(&x).unwrap());
        };
        group(c, gpu, &case, bytes, gpus, &twin);
        cases.push((case, bytes));
    }

    for (n, cols) in [(128, 128), (256, 1000)] {
        let act = Activation::Sigmoid;
        let case = format!("sigmoid_bias_backward_{n}x{cols}");
        let dh = input(&[n, cols], 3, 1.0);
        let h = input(&[n, cols], 4, 0.5).mapv(|v| v + 0.5);
        let (gdh, gh) = (
            GpuTensor::from_array(gpu, &dh).unwrap(),
            GpuTensor::from_array(gpu, &h).unwrap(),
        );
        let dz = GpuTensor::<f32>::zeros(gpu, &[n, cols]).unwrap();
        let db = GpuTensor::<f32>::zeros(gpu, &[cols]).unwrap();
        // dH and h in, dZ and db out, once each.
        let bytes = 4 * (3 * n * cols + cols) as u64;
        let mut gpus: Vec<(String, GpuRecorder)> = Vec::new();
        for kernel in ColumnSumKernel::ALL {
            let fused = ColumnSum::with_activation(gpu, &gdh, &gh, &dz, &db, act, kernel).unwrap();
            let backward = ActivationBackward::new(gpu, &gdh, &gh, &dz, act).unwrap();
            let sum = ColumnSum::new(gpu, &dz, &db, kernel).unwrap();
            gpus.push((
                format!("fused_{}", kernel.name()),
                Box::new(move |pass| fused.record(pass)),
            ));
            gpus.push((
                format!("separate_{}", kernel.name()),
                Box::new(move |pass| {
                    backward.record(pass);
                    sum.record(pass);
                }),
            ));
        }
        let twin = || {
            std::hint::black_box(cpu::activation_bias_backward(&dh, &h, act).unwrap());
        };
        group(c, gpu, &case, bytes, gpus, &twin);
        cases.push((case, bytes));
    }

    for n in [128, 10000] {
        let case = format!("loss_correct_sum_{n}");
        let loss: Array1<f32> = input(&[n], 5, 1.0).into_dimensionality().unwrap();
        let flags: Vec<u32> = (0..n as u32).map(|i| i % 2).collect();
        let gloss = GpuTensor::from_array(gpu, &loss).unwrap();
        let gflags = GpuTensor::from_slice(gpu, &[n], &flags).unwrap();
        let total = GpuTensor::<f32>::zeros(gpu, &[1]).unwrap();
        let count = GpuTensor::<u32>::zeros(gpu, &[1]).unwrap();
        let k = LossCorrectSum::new(gpu, &gloss, &gflags, &total, &count, false).unwrap();
        let bytes = k.bytes();
        let rec: GpuRecorder = Box::new(move |pass| k.record(pass));
        let loss = loss.to_vec();
        let twin = || {
            std::hint::black_box(cpu::loss_correct_sum(&loss, &flags).unwrap());
        };
        group(c, gpu, &case, bytes, vec![("tree".into(), rec)], &twin);
        cases.push((case, bytes));
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn print_table(gpu: &Gpu, cases: &[(String, u64)]) {
    let samples = SAMPLES.lock().unwrap();
    println!(
        "\nGB/s (bytes the fused operation moves / median time); GPU: {}",
        gpu.summary()
    );
    println!(
        "{:<32} {:>8} {:>10}  gpu versions, fastest first",
        "case", "KiB", "cpu/twin"
    );
    for (case, bytes) in cases {
        let mut rates: Vec<(String, f64)> = samples
            .iter()
            .filter(|((c, _), v)| c == case && !v.is_empty())
            .map(|((_, who), v)| (who.clone(), *bytes as f64 / median(&mut v.clone()) / 1e9))
            .collect();
        if rates.is_empty() {
            continue; // filtered out on the command line
        }
        let cpu = rates
            .iter()
            .position(|(w, _)| w == "cpu/twin")
            .map(|i| rates.remove(i).1);
        rates.sort_by(|a, b| b.1.total_cmp(&a.1));
        let gpus: Vec<String> = rates
            .iter()
            .map(|(w, v)| format!("{} {v:.3}", w.trim_start_matches("gpu/")))
            .collect();
        println!(
            "{:<32} {:>8.1} {:>10}  {}",
            case,
            *bytes as f64 / 1024.0,
            cpu.map_or("-".into(), |v| format!("{v:.3}")),
            gpus.join(", ")
        );
    }
}

fn main() {
    let gpu = match Gpu::new() {
        Ok(g) => g,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    eprintln!("adapter: {}", gpu.summary());
    let mut c = Criterion::default()
        .measurement_time(Duration::from_secs(1))
        .warm_up_time(Duration::from_millis(300))
        .configure_from_args();
    let mut cases = Vec::new();
    bench_xent(&mut c, &gpu, &mut cases);
    bench_reductions(&mut c, &gpu, &mut cases);
    c.final_summary();
    print_table(&gpu, &cases);
}
