//! GPU vs CPU on the matrix products that training the two models needs.
//!
//! For each shape it runs the GPU kernel (automatic version choice) and the
//! CPU twin, checks that they agree within the tests' tolerance, and prints
//! the median time per product, GFLOP/s, and the GPU/CPU speed ratio.
//!
//! `cargo run --release --example matmul_demo [-- --quick] [--repeats N]`

use std::time::Instant;
use wgpu_train::cpu::{self, Tolerance};
use wgpu_train::kernels::Matmul;
use wgpu_train::{Activation, Gpu, GpuTensor, MatmulKernel, MatmulOptions, MatmulShape};

struct Case {
    what: &'static str,
    m: usize,
    n: usize,
    k: usize,
    opts: MatmulOptions,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn random(shape: &[usize], seed: u64) -> ndarray::ArrayD<f32> {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let n = shape.iter().product();
    let v = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    ndarray::ArrayD::from_shape_vec(shape, v).expect("length matches shape")
}

fn run() -> wgpu_train::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let repeats = match args.iter().position(|a| a == "--repeats") {
        Some(i) => args
            .get(i + 1)
            .and_then(|s| s.parse::<usize>().ok())
            .filter(|&r| r > 0)
            .ok_or(wgpu_train::Error::InvalidArgument {
                name: "--repeats",
                msg: "expects a positive integer".into(),
            })?,
        None => {
            if quick {
                3
            } else {
                9
            }
        }
    };

    let gpu = Gpu::new()?;
    println!("GPU: {}", gpu.summary());
    println!(
        "CPU: ndarray + matrixmultiply, {} threads",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let sig = MatmulOptions::nt().with_activation(Activation::Sigmoid);
    let mut cases = vec![
        Case {
            what: "MLP layer 1 forward  X·W1ᵀ+b, σ",
            m: 128,
            n: 128,
            k: 784,
            opts: sig,
        },
        Case {
            what: "MLP layer 1 dW1 = dZᵀ·X",
            m: 128,
            n: 784,
            k: 128,
            opts: MatmulOptions::tn(),
        },
        Case {
            what: "MLP layer 2 forward",
            m: 128,
            n: 128,
            k: 128,
            opts: sig,
        },
        Case {
            what: "MLP layer 3 forward (logits)",
            m: 128,
            n: 10,
            k: 128,
            opts: MatmulOptions::nt(),
        },
        Case {
            what: "MLP layer 3 dX = dZ·W3",
            m: 128,
            n: 128,
            k: 10,
            opts: MatmulOptions::nn(),
        },
        Case {
            what: "linear 10×3073 forward",
            m: 256,
            n: 10,
            k: 3073,
            opts: MatmulOptions::nt(),
        },
        Case {
            what: "linear 10×3073 dW",
            m: 10,
            n: 3073,
            k: 256,
            opts: MatmulOptions::tn(),
        },
    ];
    if !quick {
        cases.push(Case {
            what: "square 512³",
            m: 512,
            n: 512,
            k: 512,
            opts: MatmulOptions::nn(),
        });
        cases.push(Case {
            what: "square 1024³",
            m: 1024,
            n: 1024,
            k: 1024,
            opts: MatmulOptions::nn(),
        });
    }

    println!(
        "\n{:<32} {:>16} {:>8} {:>11} {:>11} {:>9} {:>9} {:>8}",
        "product", "M×N×K", "kernel", "GPU µs", "CPU µs", "GPU GF/s", "CPU GF/s", "GPU/CPU"
    );
    for (i, c) in cases.iter().enumerate() {
        let sa = if c.opts.trans_a {
            [c.k, c.m]
        } else {
            [c.m, c.k]
        };
        let sb = if c.opts.trans_b {
            [c.n, c.k]
        } else {
            [c.k, c.n]
        };
        let a = random(&sa, 2 * i as u64);
        let b = random(&sb, 2 * i as u64 + 1);
        let shape = MatmulShape::resolve(&sa, &sb, None, &c.opts)?;

        let ga = GpuTensor::from_array(&gpu, &a)?;
        let gb = GpuTensor::from_array(&gpu, &b)?;
        let out = GpuTensor::<f32>::zeros(&gpu, &shape.output_shape())?;
        out.fill(&gpu, f32::NAN)?;
        let mm = Matmul::new(&gpu, &ga, &gb, None, &out, c.opts, MatmulKernel::Auto)?;
        // Each timed run records `inner` products into one submit and waits,
        // so the figure includes dispatch overhead but not a submit per product.
        let inner = if shape.flops() > 100_000_000 { 1 } else { 16 };
        mm.run(&gpu, 1)?;
        gpu.wait()?;
        let mut gpu_times = Vec::new();
        for _ in 0..repeats {
            let t = Instant::now();
            mm.run(&gpu, inner)?;
            gpu.wait()?;
            gpu_times.push(t.elapsed().as_secs_f64() / inner as f64);
        }
        let got = out.to_array(&gpu)?;

        let mut cpu_times = Vec::new();
        let mut want = cpu::matmul(&a, &b, None, c.opts)?;
        for _ in 0..repeats {
            let t = Instant::now();
            want = cpu::matmul(&a, &b, None, c.opts)?;
            cpu_times.push(t.elapsed().as_secs_f64());
        }
        if let Err(m) = cpu::compare(&got, &want, Tolerance::new(1e-5 + 1e-6 * c.k as f32, 1e-4)) {
            eprintln!("GPU and CPU disagree on {}: {m}", c.what);
            std::process::exit(2);
        }
        let (tg, tc) = (median(gpu_times), median(cpu_times));
        let gf = |t: f64| shape.flops() as f64 / t / 1e9;
        println!(
            "{:<32} {:>16} {:>8} {:>11.1} {:>11.1} {:>9.2} {:>9.2} {:>7.2}x",
            c.what,
            format!("{}×{}×{}", c.m, c.n, c.k),
            mm.kernel().name(),
            tg * 1e6,
            tc * 1e6,
            gf(tg),
            gf(tc),
            tc / tg
        );
    }
    println!(
        "\nEvery GPU result matched the CPU twin (|gpu−cpu| ≤ atol + 1e-4·|cpu|). Medians of {repeats} runs."
    );
    if gpu.is_software() {
        println!(
            "This adapter is a software Vulkan driver running on the same CPU cores, so the CPU twin is \
             expected to win here; run on a real GPU for the GPU figures."
        );
    }
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
