//! GFLOP/s of every GPU matmul version and of the CPU twin, side by side.
//!
//! `cargo bench --bench matmul` runs criterion (names `gpu/<version>` and
//! `cpu/ndarray` per shape; criterion's "elem/s" is FLOP/s, 2·M·N·K per
//! product) and then prints one table: the median seconds per product over
//! criterion's samples, as GFLOP/s, and the best GPU version over the CPU.
//!
//! GPU timing: the product is recorded `iters` times into compute passes
//! (256 per submit) and timed from the first submit until the device is idle,
//! so per-dispatch overhead is included, as in a training step.

use criterion::{BenchmarkId, Criterion, Throughput};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use wgpu_train::kernels::Matmul;
use wgpu_train::lab::bench::{MatmulCase, matmul_cases};
use wgpu_train::{Gpu, GpuTensor, MatmulKernel, MatmulOptions, cpu};

/// The model products (derived from the models' training programs) and
/// 512³/1024³; 4096³ is left to `gpu_vs_cpu --big`.
fn cases() -> Vec<MatmulCase> {
    let mut cases: Vec<MatmulCase> = matmul_cases()
        .into_iter()
        .filter(|c| c.name != "square.4096")
        .collect();
    cases.push(MatmulCase {
        name: "square.512".into(),
        a: vec![512, 512],
        b: vec![512, 512],
        opts: MatmulOptions::nn(),
        bias: false,
    });
    cases
}

/// Seconds per product, per (case, implementation), from every timed sample.
static SAMPLES: Mutex<BTreeMap<(usize, String), Vec<f64>>> = Mutex::new(BTreeMap::new());

fn record(case: usize, who: &str, total: Duration, iters: u64) {
    let mut s = SAMPLES.lock().unwrap();
    s.entry((case, who.to_string()))
        .or_default()
        .push(total.as_secs_f64() / iters as f64);
}

fn input(shape: &[usize], seed: u32) -> ndarray::ArrayD<f32> {
    // A cheap deterministic pattern in [-1, 1); values do not affect speed.
    let n: usize = shape.iter().product();
    let v = (0..n)
        .map(|i| {
            ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) as f32
                / (1u32 << 23) as f32
                - 1.0
        })
        .collect();
    ndarray::ArrayD::from_shape_vec(shape, v).unwrap()
}

fn bench(c: &mut Criterion, gpu: &Gpu) {
    for (ci, case) in cases().iter().enumerate() {
        let shape = case.shape().unwrap();
        let (sa, sb) = (&case.a[..], &case.b[..]);
        let (a, b, bias) = (input(sa, 1), input(sb, 2), input(&[shape.n], 3));
        let mut group = c.benchmark_group(case.name.as_str());
        group.throughput(Throughput::Elements(shape.flops()));
        if shape.flops() > 200_000_000 {
            group
                .sample_size(10)
                .warm_up_time(Duration::from_millis(500));
        }

        let (ga, gb, gbias) = (
            GpuTensor::from_array(gpu, &a).unwrap(),
            GpuTensor::from_array(gpu, &b).unwrap(),
            GpuTensor::from_array(gpu, &bias).unwrap(),
        );
        let out = GpuTensor::<f32>::zeros(gpu, &shape.output_shape()).unwrap();
        for kernel in MatmulKernel::ALL {
            let mm = Matmul::new(
                gpu,
                &ga,
                &gb,
                case.bias.then_some(&gbias),
                &out,
                case.opts,
                kernel,
            )
            .unwrap();
            let who = format!("gpu/{}", kernel.name());
            group.bench_function(BenchmarkId::new(&who, ""), |bch| {
                bch.iter_custom(|iters| {
                    let start = Instant::now();
                    let mut left = iters as usize;
                    while left > 0 {
                        let now = left.min(256);
                        mm.run(gpu, now).unwrap();
                        left -= now;
                    }
                    gpu.wait().unwrap();
                    let t = start.elapsed();
                    record(ci, &who, t, iters);
                    t
                })
            });
        }
        let bias_view = bias.view().into_dimensionality::<ndarray::Ix1>().unwrap();
        group.bench_function(BenchmarkId::new("cpu/ndarray", ""), |bch| {
            bch.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    let y = cpu::matmul(&a, &b, case.bias.then_some(bias_view), case.opts).unwrap();
                    std::hint::black_box(y);
                }
                let t = start.elapsed();
                record(ci, "cpu/ndarray", t, iters);
                t
            })
        });
        group.finish();
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn print_table(gpu: &Gpu) {
    let samples = SAMPLES.lock().unwrap();
    let cases = cases();
    let mut who: Vec<String> = MatmulKernel::ALL
        .iter()
        .map(|k| format!("gpu/{}", k.name()))
        .collect();
    who.push("cpu/ndarray".into());
    println!(
        "\nmatmul GFLOP/s (median over criterion samples); GPU: {}",
        gpu.summary()
    );
    println!(
        "CPU: ndarray/matrixmultiply, {} threads available",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    print!("{:<28} {:>12}", "shape", "MFLOP");
    for w in &who {
        print!(" {w:>14}");
    }
    println!(" {:>10}", "best GPU/CPU");
    for (ci, case) in cases.iter().enumerate() {
        if !who.iter().any(|w| samples.contains_key(&(ci, w.clone()))) {
            continue; // filtered out on the command line
        }
        let flops = case.shape().map_or(0, |s| s.flops()) as f64;
        print!("{:<28} {:>12.1}", case.name, flops / 1e6);
        let mut rates = Vec::new();
        for w in &who {
            match samples.get(&(ci, w.clone())) {
                Some(v) if !v.is_empty() => {
                    let rate = flops / median(&mut v.clone()) / 1e9;
                    rates.push(rate);
                    print!(" {rate:>14.2}");
                }
                _ => {
                    rates.push(f64::NAN);
                    print!(" {:>14}", "-");
                }
            }
        }
        let cpu = rates[rates.len() - 1];
        let best_gpu = rates[..rates.len() - 1]
            .iter()
            .cloned()
            .fold(f64::NAN, f64::max);
        println!(" {:>10.2}x", best_gpu / cpu);
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
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .configure_from_args();
    bench(&mut c, &gpu);
    c.final_summary();
    print_table(&gpu);
}
