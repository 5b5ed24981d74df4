//! The page's Benchmark part: the GPU's matmul against the CPU twin (wasm,
//! one thread) at the models' shapes and a square one, in GFLOP/s. The GPU
//! runs the version the library would (`MatmulKernel::Auto`), timed with
//! timestamp queries where the adapter has them (else the wall clock from
//! submit to done), through the crate's one timing helper; each case's GPU
//! result is also checked against the CPU's.

use ndarray::{ArrayD, Ix1, IxDyn};
use rand::{RngExt, SeedableRng, rngs::StdRng};
use wasm_bindgen::prelude::*;
use wgpu_train::cpu::{self, Tolerance};
use wgpu_train::gpu::GpuTimer;
use wgpu_train::kernels::Matmul;
use wgpu_train::timing::{self, Measurement, Plan};
use wgpu_train::{Activation, Error, Gpu, GpuTensor, MatmulKernel, MatmulOptions};

/// One case: what it is in the models, and the product.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    pub what: &'static str,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub opts: MatmulOptions,
    pub bias: bool,
}

/// The cases; the last is the square `big`³.
pub fn cases(big: usize) -> Vec<Case> {
    use MatmulOptions as O;
    let case = |what, m, n, k, opts, bias| Case {
        what,
        m,
        n,
        k,
        opts,
        bias,
    };
    vec![
        case(
            "MLP layer 1 forward (batch 256)",
            256,
            128,
            784,
            O::nt().with_activation(Activation::Sigmoid),
            true,
        ),
        case(
            "MLP layer 3 forward (batch 256)",
            256,
            10,
            128,
            O::nt(),
            true,
        ),
        case(
            "MLP layer 1 weight gradient dZ₁ᵀ·X",
            128,
            784,
            256,
            O::tn(),
            false,
        ),
        case(
            "linear model forward, CIFAR (W 10×3073)",
            256,
            10,
            3073,
            O::nt(),
            false,
        ),
        case(
            "linear model gradient dZᵀ·X, CIFAR",
            10,
            3073,
            256,
            O::tn(),
            false,
        ),
        case("square", big, big, big, O::nn(), false),
    ]
}

/// One line of the table.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BenchRow {
    pub what: &'static str,
    /// "M×N×K nt+bias+sigmoid".
    pub shape: String,
    /// The version the GPU ran (what `Auto` resolved to).
    pub kernel: &'static str,
    pub gflop: f64,
    /// Median milliseconds per product, and the GFLOP/s they make.
    pub gpu_ms: f64,
    pub gpu_gflops: f64,
    pub gpu_runs: usize,
    pub gpu_reps: usize,
    /// "timestamp" or "wall".
    pub gpu_timer: &'static str,
    pub cpu_ms: f64,
    pub cpu_gflops: f64,
    pub cpu_runs: usize,
    pub cpu_reps: usize,
    /// Whether the GPU's product matches the CPU's (the suite's tolerance).
    pub agrees: bool,
}

fn random(shape: &[usize], rng: &mut StdRng) -> ArrayD<f32> {
    let n = shape.iter().product();
    let v = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    ArrayD::from_shape_vec(IxDyn(shape), v).expect("shape matches")
}

fn shape_error(msg: String) -> Error {
    Error::Shape { op: "bench", msg }
}

/// Runs case `index` of [`cases`]`(big)`.
pub async fn run(gpu: &Gpu, index: usize, big: usize) -> wgpu_train::Result<BenchRow> {
    let all = cases(big);
    let c = *all.get(index).ok_or_else(|| Error::InvalidArgument {
        name: "index",
        msg: format!("there are {} cases, not {}", all.len(), index + 1),
    })?;
    let mut rng = StdRng::seed_from_u64(index as u64);
    let (m, n, k, opts) = (c.m, c.n, c.k, c.opts);
    let a = random(&if opts.trans_a { [k, m] } else { [m, k] }, &mut rng);
    let b = random(&if opts.trans_b { [n, k] } else { [k, n] }, &mut rng);
    let bias = c.bias.then(|| random(&[n], &mut rng));
    let bias1 = match &bias {
        Some(v) => Some(
            v.view()
                .into_dimensionality::<Ix1>()
                .map_err(|e| shape_error(e.to_string()))?,
        ),
        None => None,
    };
    let flop = 2.0 * (m * n * k) as f64;

    // The CPU: a product of more than a GFLOP runs once (seconds in wasm).
    let mut expected = None;
    let mut cpu_product = async |reps: usize| {
        let t = web_time::Instant::now();
        for _ in 0..reps {
            expected = Some(cpu::matmul(&a, &b, bias1, opts)?);
        }
        Ok(t.elapsed().as_secs_f64())
    };
    let cpu_m = if flop > 1e9 {
        let s = cpu_product(1).await?;
        Measurement {
            seconds: s,
            min_seconds: s,
            max_seconds: s,
            runs: 1,
            reps: 1,
            timer: "wall",
        }
    } else {
        let plan = Plan {
            warmup: 1,
            runs: 3,
            target_run_s: 0.05,
            max_reps: 20,
        };
        timing::measure_async(&plan, "wall", cpu_product).await?
    };
    let expected = expected.ok_or_else(|| shape_error("the CPU never ran".into()))?;

    let ga = GpuTensor::from_array(gpu, &a)?;
    let gb = GpuTensor::from_array(gpu, &b)?;
    let gbias = bias
        .as_ref()
        .map(|v| GpuTensor::from_array(gpu, v))
        .transpose()?;
    let out = GpuTensor::<f32>::zeros(gpu, expected.shape())?;
    let mm = Matmul::new(
        gpu,
        &ga,
        &gb,
        gbias.as_ref(),
        &out,
        opts,
        MatmulKernel::Auto,
    )?;
    let timer = GpuTimer::new(gpu)?;
    // Past a GFLOP (seconds a product on a software adapter) the sizing
    // run is warm-up enough, and three runs give the median.
    let gpu_plan = Plan {
        warmup: if flop > 1e9 { 1 } else { 2 },
        runs: if flop > 1e9 { 3 } else { 5 },
        target_run_s: 0.05,
        max_reps: 50,
    };
    let gpu_m = timing::measure_async(&gpu_plan, timer.kind().name(), async |reps| {
        timer
            .time_async(gpu, |pass| {
                for _ in 0..reps {
                    mm.record(pass);
                }
            })
            .await
    })
    .await?;
    out.fill(gpu, f32::NAN)?;
    mm.run(gpu, 1)?;
    let got = out.to_array_async(gpu).await?;
    let agrees = cpu::compare(
        &got,
        &expected,
        Tolerance::new(1e-5 + 1e-6 * k as f32, 1e-4),
    )
    .is_ok();

    let variant = format!(
        "{}{}{}{}",
        if opts.trans_a { "t" } else { "n" },
        if opts.trans_b { "t" } else { "n" },
        if c.bias { "+bias" } else { "" },
        match opts.activation {
            Activation::Identity => "",
            Activation::Sigmoid => "+sigmoid",
            Activation::Relu => "+relu",
        }
    );
    Ok(BenchRow {
        what: c.what,
        shape: format!("{m}×{n}×{k} {variant}"),
        kernel: mm.kernel().name(),
        gflop: flop * 1e-9,
        gpu_ms: gpu_m.seconds * 1e3,
        gpu_gflops: flop * 1e-9 / gpu_m.seconds,
        gpu_runs: gpu_m.runs,
        gpu_reps: gpu_m.reps,
        gpu_timer: gpu_m.timer,
        cpu_ms: cpu_m.seconds * 1e3,
        cpu_gflops: flop * 1e-9 / cpu_m.seconds,
        cpu_runs: cpu_m.runs,
        cpu_reps: cpu_m.reps,
        agrees,
    })
}

/// How many cases there are (the page loops over them, a row at a time).
#[wasm_bindgen]
pub fn bench_cases() -> u32 {
    cases(1).len() as u32
}

/// Case `index` with the square case `big`³, as a JSON row.
#[wasm_bindgen]
pub async fn bench_matmul(index: u32, big: u32) -> Result<String, JsValue> {
    let g = crate::gpu().await.map_err(crate::js_err)?;
    if !(1..=4096).contains(&big) {
        return Err(JsValue::from_str(&format!(
            "the square size must be 1 to 4096, got {big}"
        )));
    }
    let row = run(g, index as usize, big as usize)
        .await
        .map_err(crate::js_err)?;
    serde_json::to_string(&row).map_err(crate::js_err)
}
