//! Every kernel family against its CPU twin, as a table: what the browser
//! page's Verify button shows and what the browser tests (`web/tests`)
//! assert, on whatever adapter the [`Gpu`] has. Async all the way: in a
//! browser a readback is a promise, never a blocking wait.
//!
//! Each case draws fresh inputs from `seed` (uniform in [-1, 1), never
//! zeros), poisons the output with NaN before the dispatch (so "never
//! written" cannot pass for "written correctly"), and compares with
//! [`cpu::compare`] at the tolerance the native test of that family uses
//! (`tests/gpu/X.rs`). The shapes are the suite's awkward ones: 1, 7,
//! non-multiples of the tiles, batch 1, K = 784 and 3073.

use crate::cpu::{self, Tolerance};
use crate::error::{Error, Result};
use crate::kernels::{self, ActivationBackward, ColumnSum, GpuOptimizer, Matmul, SoftmaxXent};
use crate::{
    Activation, ColumnSumKernel, Gpu, GpuLabels, GpuTensor, MatmulKernel, MatmulOptions,
    OptimizerConfig, SoftmaxXentKernel,
};
use ndarray::{ArrayD, Ix1, IxDyn};
use rand::{RngExt, SeedableRng, rngs::StdRng};
use web_time::Instant;

/// The kernel families, one per shader file that the training step uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Matmul,
    SoftmaxXent,
    Activation,
    Reduce,
    Linalg,
    Optim,
}

impl Family {
    pub const ALL: [Family; 6] = [
        Family::Matmul,
        Family::SoftmaxXent,
        Family::Activation,
        Family::Reduce,
        Family::Linalg,
        Family::Optim,
    ];

    /// The shader file's name (`shaders/X.wgsl`).
    pub fn name(self) -> &'static str {
        match self {
            Family::Matmul => "matmul",
            Family::SoftmaxXent => "softmax_xent",
            Family::Activation => "activation",
            Family::Reduce => "reduce",
            Family::Linalg => "linalg",
            Family::Optim => "optim",
        }
    }
}

/// One line of the table.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Row {
    pub family: &'static str,
    /// The version and variant, e.g. "v3_tiled nt+bias+sigmoid".
    pub kernel: String,
    pub shape: String,
    /// Largest |gpu − cpu| over the outputs (infinite where NaN).
    pub worst_error: f32,
    /// Whether every element is within the tolerance.
    pub pass: bool,
    /// The first failure's report, empty when it passed.
    pub detail: String,
    /// Dispatch and readback, milliseconds.
    pub gpu_ms: f64,
    /// The CPU twin, milliseconds.
    pub cpu_ms: f64,
}

fn random(shape: &[usize], rng: &mut StdRng, scale: f32) -> ArrayD<f32> {
    let n = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|_| rng.random_range(-1.0f32..1.0) * scale)
        .collect();
    ArrayD::from_shape_vec(IxDyn(shape), v).expect("shape matches")
}

fn labels(n: usize, classes: usize, rng: &mut StdRng) -> Vec<u32> {
    (0..n)
        .map(|_| rng.random_range(0..classes as u32))
        .collect()
}

/// Compares, folding the worst error and the first failure into a row.
struct Compare {
    worst: f32,
    failure: Option<String>,
}

impl Compare {
    fn new() -> Self {
        Compare {
            worst: 0.0,
            failure: None,
        }
    }

    fn add(&mut self, what: &str, actual: &ArrayD<f32>, expected: &ArrayD<f32>, tol: Tolerance) {
        for (&a, &e) in actual.iter().zip(expected.iter()) {
            let d = (a - e).abs();
            self.worst = self.worst.max(if d.is_nan() { f32::INFINITY } else { d });
        }
        if let Err(m) = cpu::compare(actual, expected, tol)
            && self.failure.is_none()
        {
            self.failure = Some(format!("{what}: {m}"));
        }
    }

    fn add_exact(&mut self, what: &str, actual: &[u32], expected: &[u32]) {
        if actual != expected && self.failure.is_none() {
            let i = actual.iter().zip(expected).position(|(a, e)| a != e);
            self.failure = Some(format!("{what}: differ at {i:?}"));
        }
    }

    fn row(self, family: Family, kernel: String, shape: String, gpu_ms: f64, cpu_ms: f64) -> Row {
        Row {
            family: family.name(),
            kernel,
            shape,
            worst_error: self.worst,
            pass: self.failure.is_none(),
            detail: self.failure.unwrap_or_default(),
            gpu_ms,
            cpu_ms,
        }
    }
}

fn ms(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}

fn arr(v: Vec<f32>, shape: &[usize]) -> Result<ArrayD<f32>> {
    ArrayD::from_shape_vec(IxDyn(shape), v).map_err(|e| Error::shape("verify", e))
}

/// Runs every family; rows in order. An `Err` is a failure to run at all
/// (no device, a shader the browser rejects), not a wrong result.
pub async fn run_all(gpu: &Gpu, seed: u64) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for family in Family::ALL {
        rows.extend(run(gpu, family, seed).await?);
    }
    Ok(rows)
}

/// Runs one family's cases.
pub async fn run(gpu: &Gpu, family: Family, seed: u64) -> Result<Vec<Row>> {
    let mut rng = StdRng::seed_from_u64(seed ^ (family as u64).wrapping_mul(0x9e37_79b9));
    match family {
        Family::Matmul => matmul(gpu, &mut rng).await,
        Family::SoftmaxXent => softmax_xent(gpu, &mut rng).await,
        Family::Activation => activation(gpu, &mut rng).await,
        Family::Reduce => reduce(gpu, &mut rng).await,
        Family::Linalg => linalg(gpu, &mut rng).await,
        Family::Optim => optim(gpu, &mut rng).await,
    }
}

/// (M, N, K, options, bias): the suite's awkward cases and the MLP's layers.
fn matmul_cases() -> Vec<(usize, usize, usize, MatmulOptions, bool)> {
    use MatmulOptions as O;
    vec![
        (1, 1, 1, O::nt().with_activation(Activation::Sigmoid), true),
        (7, 7, 7, O::tn(), false),
        (65, 33, 17, O::nn(), false),
        (130, 3, 66, O::tt(), false),
        (
            128,
            128,
            784,
            O::nt().with_activation(Activation::Sigmoid),
            true,
        ),
        (1, 128, 784, O::nt().with_activation(Activation::Relu), true),
        (256, 10, 3073, O::nt(), false),
        (10, 3073, 256, O::tn(), false),
    ]
}

async fn matmul(gpu: &Gpu, rng: &mut StdRng) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for (m, n, k, opts, bias) in matmul_cases() {
        let a_shape = if opts.trans_a { [k, m] } else { [m, k] };
        let b_shape = if opts.trans_b { [n, k] } else { [k, n] };
        let a = random(&a_shape, rng, 1.0);
        let b = random(&b_shape, rng, 1.0);
        let bias = bias.then(|| random(&[n], rng, 1.0));
        let start = Instant::now();
        let bias1 = match &bias {
            Some(v) => Some(
                v.view()
                    .into_dimensionality::<Ix1>()
                    .map_err(|e| Error::shape("verify", e))?,
            ),
            None => None,
        };
        let expected = cpu::matmul(&a, &b, bias1, opts)?;
        let cpu_ms = ms(start);
        let ga = GpuTensor::from_array(gpu, &a)?;
        let gb = GpuTensor::from_array(gpu, &b)?;
        let gbias = bias
            .as_ref()
            .map(|v| GpuTensor::from_array(gpu, v))
            .transpose()?;
        let out = GpuTensor::<f32>::zeros(gpu, expected.shape())?;
        let variant = format!(
            "{}{}{}{}",
            if opts.trans_a { "t" } else { "n" },
            if opts.trans_b { "t" } else { "n" },
            if bias.is_some() { "+bias" } else { "" },
            match opts.activation {
                Activation::Identity => "",
                Activation::Sigmoid => "+sigmoid",
                Activation::Relu => "+relu",
            }
        );
        for kernel in MatmulKernel::ALL {
            out.fill(gpu, f32::NAN)?;
            let start = Instant::now();
            Matmul::new(gpu, &ga, &gb, gbias.as_ref(), &out, opts, kernel)?.run(gpu, 1)?;
            let actual = out.to_array_async(gpu).await?;
            let gpu_ms = ms(start);
            let mut c = Compare::new();
            // The native suite's tolerance: rounding grows with K.
            let tol = Tolerance::new(1e-5 + 1e-6 * k as f32, 1e-4);
            c.add("C", &actual, &expected, tol);
            rows.push(c.row(
                Family::Matmul,
                format!("{} {variant}", kernel.name()),
                format!("{m}×{n}×{k}"),
                gpu_ms,
                cpu_ms,
            ));
        }
    }
    Ok(rows)
}

async fn softmax_xent(gpu: &Gpu, rng: &mut StdRng) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for (n, c, scale) in [
        (1, 10, 1.0),
        (7, 13, 5.0),
        (128, 10, 1.0),
        (257, 1000, 30.0),
    ] {
        let logits = random(&[n, c], rng, scale);
        let labels = labels(n, c, rng);
        let start = Instant::now();
        let expected = cpu::softmax_xent(&logits, &labels)?;
        let cpu_ms = ms(start);
        let expected_loss = expected.loss.clone().into_dyn();
        let expected_d = expected
            .dlogits
            .clone()
            .ok_or_else(|| Error::shape("verify", "the twin gave no gradient"))?
            .into_dyn();
        let gl = GpuTensor::from_array(gpu, &logits)?;
        let glabels = GpuLabels::new(gpu, &labels, c)?;
        let loss = GpuTensor::<f32>::zeros(gpu, &[n])?;
        let correct = GpuTensor::<u32>::zeros(gpu, &[n])?;
        let dlogits = GpuTensor::<f32>::zeros(gpu, &[n, c])?;
        for kernel in SoftmaxXentKernel::ALL {
            loss.fill(gpu, f32::NAN)?;
            correct.fill(gpu, u32::MAX)?;
            dlogits.fill(gpu, f32::NAN)?;
            let start = Instant::now();
            SoftmaxXent::new(gpu, &gl, &glabels, &loss, &correct, Some(&dlogits), kernel)?
                .run(gpu, 1)?;
            let l = loss.to_array_async(gpu).await?;
            let k = correct.read_async(gpu).await?;
            let d = dlogits.to_array_async(gpu).await?;
            let gpu_ms = ms(start);
            let mut cmp = Compare::new();
            cmp.add("loss", &l, &expected_loss, Tolerance::new(1e-5, 1e-5));
            cmp.add_exact("correct", &k, expected.correct.as_slice().unwrap_or(&[]));
            cmp.add(
                "dlogits",
                &d,
                &expected_d,
                Tolerance::new(1e-6 / n as f32, 1e-4),
            );
            rows.push(cmp.row(
                Family::SoftmaxXent,
                format!("{kernel:?} loss+grad"),
                format!("{n}×{c}"),
                gpu_ms,
                cpu_ms,
            ));
        }
    }
    Ok(rows)
}

async fn activation(gpu: &Gpu, rng: &mut StdRng) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for shape in [vec![1, 1], vec![7, 13], vec![129, 1000]] {
        for act in [Activation::Identity, Activation::Sigmoid, Activation::Relu] {
            let dh = random(&shape, rng, 1.0);
            let mut z = random(&shape, rng, 3.0);
            // Some exact zeros: ReLU's h = 0 edge.
            for (i, v) in z.iter_mut().enumerate() {
                if i % 11 == 3 {
                    *v = 0.0;
                }
            }
            let h = z.mapv(|v| act.apply(v));
            let start = Instant::now();
            let expected = cpu::activation_backward(&dh, &h, act)?;
            let cpu_ms = ms(start);
            let gdh = GpuTensor::from_array(gpu, &dh)?;
            let gh = GpuTensor::from_array(gpu, &h)?;
            let dz = GpuTensor::<f32>::zeros(gpu, &shape)?;
            dz.fill(gpu, f32::NAN)?;
            let start = Instant::now();
            ActivationBackward::new(gpu, &gdh, &gh, &dz, act)?.run(gpu, 1)?;
            let actual = dz.to_array_async(gpu).await?;
            let gpu_ms = ms(start);
            let mut c = Compare::new();
            c.add("dZ", &actual, &expected, Tolerance::new(1e-7, 1e-6));
            rows.push(c.row(
                Family::Activation,
                format!("{act:?} backward"),
                format!("{shape:?}"),
                gpu_ms,
                cpu_ms,
            ));
        }
    }
    Ok(rows)
}

async fn reduce(gpu: &Gpu, rng: &mut StdRng) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for (r, c) in [(1, 1), (7, 13), (129, 10), (3073, 7)] {
        let x = random(&[r, c], rng, 1.0);
        let start = Instant::now();
        let expected = cpu::column_sum(&x)?.into_dyn();
        let cpu_ms = ms(start);
        let gx = GpuTensor::from_array(gpu, &x)?;
        let sums = GpuTensor::<f32>::zeros(gpu, &[c])?;
        for kernel in ColumnSumKernel::ALL {
            sums.fill(gpu, f32::NAN)?;
            let start = Instant::now();
            ColumnSum::new(gpu, &gx, &sums, kernel)?.run(gpu, 1)?;
            let actual = sums.to_array_async(gpu).await?;
            let gpu_ms = ms(start);
            let mut cmp = Compare::new();
            cmp.add(
                "sums",
                &actual,
                &expected,
                Tolerance::new(1e-6 * r as f32, 1e-5),
            );
            rows.push(cmp.row(
                Family::Reduce,
                format!("column_sum {}", kernel.name()),
                format!("{r}×{c}"),
                gpu_ms,
                cpu_ms,
            ));
        }
    }
    Ok(rows)
}

async fn linalg(gpu: &Gpu, rng: &mut StdRng) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for n in [1, 7, 3073, 118_282] {
        let a = random(&[n], rng, 1.0);
        let b = random(&[n], rng, 1.0);
        let (sa, sb) = (a.as_slice().unwrap_or(&[]), b.as_slice().unwrap_or(&[]));
        let start = Instant::now();
        let expected_dot = cpu::linalg::dot(sa, sb)?;
        let expected_comb = cpu::linalg::combine(&[(0.5, sa), (-2.0, sb)])?;
        let cpu_ms = ms(start);
        let ga = GpuTensor::from_array(gpu, &a)?;
        let gb = GpuTensor::from_array(gpu, &b)?;
        // combine's terms are the output and at most one other buffer:
        // out ← 0.5·out − 2·b with out holding a.
        let out = GpuTensor::from_array(gpu, &a)?;
        let start = Instant::now();
        let dot = kernels::linalg::dot(gpu, &ga, &gb)?;
        kernels::linalg::combine(gpu, &out, &[(0.5, &out), (-2.0, &gb)])?;
        let got_dot = dot.read_async(gpu).await?;
        let got_comb = out.read_async(gpu).await?;
        let gpu_ms = ms(start);
        let mut c = Compare::new();
        let dot_tol = Tolerance::new(1e-6 * (1.0 + (n as f32 / 256.0).sqrt()), 1e-6);
        c.add(
            "dot",
            &arr(got_dot, &[1])?,
            &arr(vec![expected_dot], &[1])?,
            dot_tol,
        );
        c.add(
            "combine",
            &arr(got_comb, &[n])?,
            &arr(expected_comb, &[n])?,
            Tolerance::new(1e-6, 1e-6),
        );
        rows.push(c.row(
            Family::Linalg,
            "dot + combine".into(),
            format!("{n}"),
            gpu_ms,
            cpu_ms,
        ));
    }
    Ok(rows)
}

async fn optim(gpu: &Gpu, rng: &mut StdRng) -> Result<Vec<Row>> {
    const STEPS: usize = 3;
    let mut rows = Vec::new();
    for config in [
        OptimizerConfig::adam(),
        OptimizerConfig::nesterov(0.05, 0.9),
    ] {
        for n in [1, 7, 3073] {
            let p0 = random(&[n], rng, 1.0).into_raw_vec_and_offset().0;
            let grads: Vec<Vec<f32>> = (0..STEPS)
                .map(|_| random(&[n], rng, 1.0).into_raw_vec_and_offset().0)
                .collect();
            let start = Instant::now();
            let mut expected = p0.clone();
            let mut twin = cpu::optim::CpuOptimizer::new(config, n)?;
            for g in &grads {
                twin.step(&mut expected, g)?;
            }
            let cpu_ms = ms(start);
            let params = GpuTensor::from_slice(gpu, &[n], &p0)?;
            let g = GpuTensor::<f32>::zeros(gpu, &[n])?;
            let start = Instant::now();
            let opt = GpuOptimizer::new(gpu, config, &params, &g)?;
            for grad in &grads {
                g.write(gpu, grad)?;
                opt.run(gpu, 1)?;
            }
            let got = params.read_async(gpu).await?;
            let gpu_ms = ms(start);
            let mut c = Compare::new();
            c.add(
                "params",
                &arr(got, &[n])?,
                &arr(expected, &[n])?,
                Tolerance::new(2e-6, 2e-5),
            );
            rows.push(c.row(
                Family::Optim,
                format!("{} ×{STEPS} steps", config.name()),
                format!("{n}"),
                gpu_ms,
                cpu_ms,
            ));
        }
    }
    Ok(rows)
}
