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
//! non-multiples of the tiles, batch 1, K = 784 and 3073. Every version
//! the device can run is checked: the subgroup versions of softmax-CE and
//! the column sums only where it has subgroups (never in a browser).

use crate::cpu::{self, Tolerance};
use crate::error::{Error, Result};
use crate::kernels::linalg::XentHvpRows;
use crate::kernels::{
    self, ActivationBackward, ColumnSum, Gather, GatherMatmul, GatherOptions, GpuDataset,
    GpuOptimizer, LayerBackward, Matmul, SoftmaxXent,
};
use crate::{
    Activation, ColumnSumKernel, Dataset, Gpu, GpuLabels, GpuTensor, MatmulKernel, MatmulOptions,
    OptimizerConfig, SoftmaxXentKernel,
};
use ndarray::{Array1, Array2, ArrayD, Ix1, Ix2, IxDyn, s};
use rand::{RngExt, SeedableRng, rngs::StdRng, seq::SliceRandom};
use web_time::Instant;

/// The kernel families: one per shader file that training uses, and
/// linalg's softmax-CE Hessian-vector rows (the second-order path's own
/// kernel) apart from its dot and combine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Matmul,
    SoftmaxXent,
    Activation,
    Reduce,
    Linalg,
    Optim,
    Gather,
    GatherMatmul,
    LayerBackward,
    XentHvp,
    Loss,
}

impl Family {
    pub const ALL: [Family; 11] = [
        Family::Matmul,
        Family::SoftmaxXent,
        Family::Activation,
        Family::Reduce,
        Family::Linalg,
        Family::Optim,
        Family::Gather,
        Family::GatherMatmul,
        Family::LayerBackward,
        Family::XentHvp,
        Family::Loss,
    ];

    /// The shader file's name (`shaders/X.wgsl`); `xent_hvp` is the
    /// `xent_hvp_rows` entry point of `linalg.wgsl`.
    pub fn name(self) -> &'static str {
        match self {
            Family::Matmul => "matmul",
            Family::SoftmaxXent => "softmax_xent",
            Family::Activation => "activation",
            Family::Reduce => "reduce",
            Family::Linalg => "linalg",
            Family::Optim => "optim",
            Family::Gather => "gather",
            Family::GatherMatmul => "gather_matmul",
            Family::LayerBackward => "layer_backward",
            Family::XentHvp => "xent_hvp",
            Family::Loss => "loss",
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

    /// A property that is not a comparison (e.g. "nothing written past the
    /// batch"): false is a failure.
    fn require(&mut self, what: &str, ok: bool) {
        if !ok && self.failure.is_none() {
            self.failure = Some(what.to_string());
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

fn view2(a: &ArrayD<f32>) -> Result<ndarray::ArrayView2<'_, f32>> {
    a.view()
        .into_dimensionality::<Ix2>()
        .map_err(|e| Error::shape("verify", e))
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
        Family::Gather => gather(gpu, &mut rng).await,
        Family::GatherMatmul => gather_matmul(gpu, &mut rng).await,
        Family::LayerBackward => layer_backward(gpu, &mut rng).await,
        Family::XentHvp => xent_hvp(gpu, &mut rng).await,
        Family::Loss => loss(gpu, &mut rng).await,
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
            let mm = match Matmul::new(gpu, &ga, &gb, gbias.as_ref(), &out, opts, kernel) {
                // A version this device cannot hold (v7's 32 KiB tiles
                // under WebGPU's default 16 KiB) never runs here, not even
                // through the tuner: there is nothing of it to verify.
                Err(Error::TooLarge { .. }) => continue,
                r => r?,
            };
            mm.run(gpu, 1)?;
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
        for kernel in SoftmaxXentKernel::available(gpu) {
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
        for kernel in ColumnSumKernel::available(gpu) {
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

/// Random pixel bytes (every value 0..=255 drawn, not zeros) and labels.
fn dataset(n: usize, shape: [usize; 3], rng: &mut StdRng) -> Result<Dataset> {
    let dim: usize = shape.iter().product();
    let images = (0..n * dim).map(|_| rng.random::<u8>()).collect();
    let labels = (0..n).map(|_| rng.random_range(0..10u8)).collect();
    Dataset::new(images, labels, shape, 10)
}

fn permutation(n: usize, rng: &mut StdRng) -> Vec<u32> {
    let mut v: Vec<u32> = (0..n as u32).collect();
    v.shuffle(rng);
    v
}

/// The two input transforms of training: raw bytes / 255 (the MLP) and
/// mean/std with a bias column (the linear model's bias trick).
fn gather_options(bias_column: bool) -> GatherOptions {
    if bias_column {
        GatherOptions {
            mean: 0.2860,
            std: 0.3530,
            append_one: true,
        }
    } else {
        GatherOptions::default()
    }
}

fn gather_variant(opts: GatherOptions) -> &'static str {
    if opts.append_one {
        "mean/std+bias column"
    } else {
        "bytes/255"
    }
}

async fn gather(gpu: &Gpu, rng: &mut StdRng) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    // (examples, image shape, examples in the order, batch, bias column):
    // a short last batch, 7 pixels (a padded last word), batch 1 over a
    // subset order, CIFAR's 3073 inputs.
    for (examples, shape, take, batch, bias) in [
        (300, [1, 28, 28], 300, 128, false),
        (50, [1, 1, 7], 50, 8, true),
        (40, [3, 2, 2], 13, 1, false),
        (20, [3, 32, 32], 20, 7, true),
    ] {
        let data = dataset(examples, shape, rng)?;
        let mut order = permutation(examples, rng);
        order.truncate(take);
        let opts = gather_options(bias);
        let gdata = GpuDataset::upload(gpu, &data)?;
        let gorder = gdata.order_buffer(gpu, order.len())?;
        gdata.write_order(gpu, &gorder, &order)?;
        let width = data.dim() + usize::from(opts.append_one);
        let x = GpuTensor::<f32>::zeros(gpu, &[batch, width])?;
        let y = GpuTensor::<u32>::zeros(gpu, &[batch])?;
        let g = Gather::new(gpu, &gdata, &gorder, &x, &y, batch, opts)?;
        let mut c = Compare::new();
        let (mut gpu_ms, mut cpu_ms) = (0.0, 0.0);
        for step in 0..g.steps() {
            let n = g.rows(step);
            let start = Instant::now();
            let (want_x, want_y) = cpu::gather(&data, &order, step * batch, n, opts)?;
            cpu_ms += ms(start);
            x.fill(gpu, f32::NAN)?;
            y.fill(gpu, u32::MAX)?;
            let start = Instant::now();
            g.run(gpu, step)?;
            let got_x = x.to_array_async(gpu).await?;
            let got_y = y.read_async(gpu).await?;
            gpu_ms += ms(start);
            c.add(
                &format!("step {step} x"),
                &got_x.slice(s![..n, ..]).to_owned().into_dyn(),
                &want_x.into_dyn(),
                Tolerance::new(1e-6, 1e-6),
            );
            c.add_exact(&format!("step {step} y"), &got_y[..n], &want_y);
            c.require(
                &format!("step {step}: rows past the batch of {n} were written"),
                got_x.slice(s![n.., ..]).iter().all(|v| v.is_nan())
                    && got_y[n..].iter().all(|&l| l == u32::MAX),
            );
        }
        rows.push(c.row(
            Family::Gather,
            format!("gather {} ×{} steps", gather_variant(opts), g.steps()),
            format!("{take} of {examples}×{} batch {batch}", data.dim()),
            gpu_ms,
            cpu_ms,
        ));
    }
    Ok(rows)
}

async fn gather_matmul(gpu: &Gpu, rng: &mut StdRng) -> Result<Vec<Row>> {
    use Activation as A;
    let mut rows = Vec::new();
    // (examples, image shape, batch, outputs, bias column, bias, activation):
    // the MLP's first layer with a short last batch, the linear model on
    // Fashion-MNIST and CIFAR, 7 pixels with batch 1, odd widths, N = 1.
    for (examples, shape, batch, n, bias_column, bias, act) in [
        (300, [1, 28, 28], 128, 128, false, true, A::Sigmoid),
        (70, [1, 28, 28], 32, 10, true, false, A::Identity),
        (20, [3, 32, 32], 7, 10, true, false, A::Identity),
        (5, [1, 1, 7], 1, 7, false, true, A::Relu),
        (40, [1, 3, 5], 13, 33, true, true, A::Relu),
        (9, [1, 4, 4], 4, 1, false, true, A::Sigmoid),
    ] {
        let data = dataset(examples, shape, rng)?;
        let order = permutation(examples, rng);
        let opts = gather_options(bias_column);
        let k = data.dim() + usize::from(opts.append_one);
        let w = random(&[n, k], rng, 1.0)
            .into_dimensionality::<Ix2>()
            .map_err(|e| Error::shape("verify", e))?;
        let b = random(&[n], rng, 1.0)
            .into_dimensionality::<Ix1>()
            .map_err(|e| Error::shape("verify", e))?;
        let gdata = GpuDataset::upload(gpu, &data)?;
        let gorder = gdata.order_buffer(gpu, order.len())?;
        gdata.write_order(gpu, &gorder, &order)?;
        let x = GpuTensor::<f32>::zeros(gpu, &[batch, k])?;
        let y = GpuTensor::<u32>::zeros(gpu, &[batch])?;
        let g = Gather::new(gpu, &gdata, &gorder, &x, &y, batch, opts)?;
        let gw = GpuTensor::from_array(gpu, &w)?;
        let gb = GpuTensor::from_array(gpu, &b)?;
        let mut c = Compare::new();
        let (mut gpu_ms, mut cpu_ms) = (0.0, 0.0);
        for step in 0..g.steps() {
            let m = g.rows(step);
            let start = Instant::now();
            let (want_c, want_x, want_y) = cpu::gather_matmul(
                &data,
                &order,
                step * batch,
                m,
                opts,
                w.view(),
                bias.then(|| b.view()),
                act,
            )?;
            cpu_ms += ms(start);
            let out = GpuTensor::<f32>::zeros(gpu, &[m, n])?;
            let fused = GatherMatmul::new(gpu, &g, m, &gw, bias.then_some(&gb), &out, act)?;
            out.fill(gpu, f32::NAN)?;
            x.fill(gpu, f32::NAN)?;
            y.fill(gpu, u32::MAX)?;
            let start = Instant::now();
            fused.run(gpu, &g, step)?;
            let got_c = out.to_array_async(gpu).await?;
            let got_x = x.to_array_async(gpu).await?;
            let got_y = y.read_async(gpu).await?;
            gpu_ms += ms(start);
            // The product's tolerance grows with K, as in matmul's rows.
            let tol = Tolerance::new(1e-5 + 1e-6 * k as f32, 1e-4);
            c.add(&format!("step {step} c"), &got_c, &want_c.into_dyn(), tol);
            c.add(
                &format!("step {step} x"),
                &got_x.slice(s![..m, ..]).to_owned().into_dyn(),
                &want_x.into_dyn(),
                Tolerance::new(1e-6, 1e-6),
            );
            c.add_exact(&format!("step {step} y"), &got_y[..m], &want_y);
            c.require(
                &format!("step {step}: rows past the batch of {m} were written"),
                got_x.slice(s![m.., ..]).iter().all(|v| v.is_nan())
                    && got_y[m..].iter().all(|&l| l == u32::MAX),
            );
        }
        rows.push(c.row(
            Family::GatherMatmul,
            format!(
                "{}{}{} ×{} steps",
                gather_variant(opts),
                if bias { " +bias" } else { "" },
                match act {
                    A::Identity => "",
                    A::Sigmoid => " +sigmoid",
                    A::Relu => " +relu",
                },
                g.steps()
            ),
            format!("{examples}×{k} → {n} batch {batch}"),
            gpu_ms,
            cpu_ms,
        ));
    }
    Ok(rows)
}

async fn layer_backward(gpu: &Gpu, rng: &mut StdRng) -> Result<Vec<Row>> {
    use Activation as A;
    let mut rows = Vec::new();
    // (rows, outs, ins, activation): 1, 7, the MLP's layers 3 and 2, layer 1
    // on a short batch, batch 1 with 3073 inputs, odd sizes.
    for (n, outs, ins, act) in [
        (1, 1, 1, A::Sigmoid),
        (7, 7, 7, A::Relu),
        (128, 10, 128, A::Sigmoid),
        (128, 128, 128, A::Relu),
        (44, 128, 784, A::Sigmoid),
        (1, 10, 3073, A::Identity),
        (65, 33, 17, A::Relu),
        (9, 129, 3, A::Sigmoid),
    ] {
        let dz = random(&[n, outs], rng, 1.0);
        let w = random(&[outs, ins], rng, 1.0);
        let mut h = random(&[n, ins], rng, 3.0).mapv(|z| act.apply(z));
        // Some exact zeros: ReLU's h = 0 edge.
        for (i, v) in h.iter_mut().enumerate() {
            if i % 11 == 3 {
                *v = 0.0;
            }
        }
        let mut want_dw = Array2::<f32>::zeros((outs, ins));
        let mut want_db = Array1::<f32>::zeros(outs);
        let mut want_dzb = Array2::<f32>::zeros((n, ins));
        let start = Instant::now();
        cpu::layer_backward_into(
            view2(&dz)?,
            view2(&h)?,
            view2(&w)?,
            act,
            want_dw.view_mut(),
            want_db.view_mut(),
            want_dzb.view_mut(),
        )?;
        let cpu_ms = ms(start);
        let (gdz, gh, gw) = (
            GpuTensor::from_array(gpu, &dz)?,
            GpuTensor::from_array(gpu, &h)?,
            GpuTensor::from_array(gpu, &w)?,
        );
        // dW and db as views of one gradient buffer with gaps around them,
        // as the training step lays them out; all of it poisoned.
        let grads = GpuTensor::<f32>::zeros(gpu, &[2 + outs * ins + 1 + outs + 3])?;
        grads.fill(gpu, f32::NAN)?;
        let dw = grads.view(2, &[outs, ins])?;
        let db = grads.view(3 + outs * ins, &[outs])?;
        let below = GpuTensor::<f32>::zeros(gpu, &[n * ins + 2])?;
        below.fill(gpu, f32::NAN)?;
        let dzb = below.view(1, &[n, ins])?;
        let start = Instant::now();
        LayerBackward::new(gpu, &gdz, &gh, &gw, &dw, &db, &dzb, act)?.run(gpu, 1)?;
        let raw = grads.read_async(gpu).await?;
        let raw_below = below.read_async(gpu).await?;
        let gpu_ms = ms(start);
        let got_dw = arr(raw[2..2 + outs * ins].to_vec(), &[outs, ins])?;
        let got_db = arr(raw[3 + outs * ins..3 + outs * ins + outs].to_vec(), &[outs])?;
        let got_dzb = arr(raw_below[1..1 + n * ins].to_vec(), &[n, ins])?;
        let mut c = Compare::new();
        let product = |k: usize| Tolerance::new(1e-5 + 1e-6 * k as f32, 1e-4);
        c.add("dW", &got_dw, &want_dw.into_dyn(), product(n));
        c.add("db", &got_db, &want_db.into_dyn(), product(n));
        c.add("dZ below", &got_dzb, &want_dzb.into_dyn(), product(outs));
        c.require(
            "wrote outside dW, db and dZ below",
            raw[..2]
                .iter()
                .chain(&raw[2 + outs * ins..3 + outs * ins])
                .chain(&raw[3 + outs * ins + outs..])
                .chain([&raw_below[0], &raw_below[1 + n * ins]])
                .all(|v| v.is_nan()),
        );
        rows.push(c.row(
            Family::LayerBackward,
            format!("dW, db, dZ·W ⊙ {act:?}'"),
            format!("{n}×{outs}×{ins}"),
            gpu_ms,
            cpu_ms,
        ));
    }
    Ok(rows)
}

async fn xent_hvp(gpu: &Gpu, rng: &mut StdRng) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    // (rows, classes, logit scale): 1 class, batch 1, odd sizes, the linear
    // model's 10 classes, 100 classes, and logits near ±1e3 (the row max
    // keeps the exponentials finite).
    for (n, classes, scale) in [
        (1, 1, 3.0),
        (1, 10, 3.0),
        (7, 10, 3.0),
        (65, 3, 3.0),
        (300, 10, 3.0),
        (129, 100, 3.0),
        (33, 10, 1e3),
    ] {
        let logits = random(&[n, classes], rng, scale)
            .into_dimensionality::<Ix2>()
            .map_err(|e| Error::shape("verify", e))?;
        let u = random(&[n, classes], rng, 1.0)
            .into_dimensionality::<Ix2>()
            .map_err(|e| Error::shape("verify", e))?;
        // 1/N of a larger batch: the chunks of one batch add up to its mean.
        let inv_n = 1.0 / (3 * n) as f32;
        let start = Instant::now();
        let want = cpu::linalg::xent_hvp_rows(logits.view(), u.view(), inv_n)?.into_dyn();
        let cpu_ms = ms(start);
        let tol = Tolerance::new(1e-7, 1e-4);
        let r = GpuTensor::<f32>::zeros(gpu, &[n, classes])?;
        // Separate logits and u, and the two halves of one [rows, 2C]
        // product (how the second-order path calls it).
        let gl = GpuTensor::from_array(gpu, &logits)?;
        let gu = GpuTensor::from_array(gpu, &u)?;
        let mut zu = Array2::<f32>::zeros((n, 2 * classes));
        zu.slice_mut(s![.., ..classes]).assign(&logits);
        zu.slice_mut(s![.., classes..]).assign(&u);
        let gzu = GpuTensor::from_array(gpu, &zu)?;
        for stacked in [false, true] {
            r.fill(gpu, f32::NAN)?;
            let start = Instant::now();
            let kernel = if stacked {
                XentHvpRows::stacked(gpu, &gzu, &r, inv_n)?
            } else {
                XentHvpRows::new(gpu, &gl, &gu, &r, inv_n)?
            };
            kernel.run(gpu)?;
            let got = r.to_array_async(gpu).await?;
            let gpu_ms = ms(start);
            let mut c = Compare::new();
            c.add("r", &got, &want, tol);
            rows.push(c.row(
                Family::XentHvp,
                format!(
                    "xent_hvp_rows{}",
                    if stacked { " stacked [Z U]" } else { "" }
                ),
                format!("{n}×{classes} scale {scale}"),
                gpu_ms,
                cpu_ms,
            ));
        }
    }
    Ok(rows)
}

/// The losses of `loss.wgsl` (mse, the multiclass SVM hinge, logistic),
/// each with its gradient, against `cpu::loss`.
async fn loss(gpu: &Gpu, rng: &mut StdRng) -> Result<Vec<Row>> {
    use crate::kernels::loss::{Hinge, Logistic, LossKind, Mse};
    let mut rows = Vec::new();
    for (n, k) in [(1, 1), (7, 10), (65, 13), (3, 3073)] {
        let x = random(&[n, k], rng, 3.0);
        let real_targets = random(&[n, k], rng, 3.0);
        // Targets in [0, 1] for the logistic loss.
        let unit_targets = random(&[n, k], rng, 1.0).mapv(|v| 0.5 * (v + 1.0));
        let classes = labels(n, k, rng);
        let gx = GpuTensor::from_array(gpu, &x)?;
        let loss = GpuTensor::<f32>::zeros(gpu, &[n])?;
        let correct = GpuTensor::<u32>::zeros(gpu, &[n])?;
        let grad = GpuTensor::<f32>::zeros(gpu, &[n, k])?;
        for kind in LossKind::ALL {
            let start = Instant::now();
            let expected = match kind {
                LossKind::Mse => cpu::loss::mse(&x, &real_targets, true)?,
                LossKind::Hinge => cpu::loss::hinge(&x, &classes, true)?,
                LossKind::Logistic => cpu::loss::logistic(&x, &unit_targets, true)?,
            };
            let cpu_ms = ms(start);
            let expected_grad = expected
                .grad
                .clone()
                .ok_or_else(|| Error::shape("verify", "the twin gave no gradient"))?
                .into_dyn();
            let targets = GpuTensor::from_array(
                gpu,
                if kind == LossKind::Logistic {
                    &unit_targets
                } else {
                    &real_targets
                },
            )?;
            let glabels = GpuLabels::new(gpu, &classes, k)?;
            loss.fill(gpu, f32::NAN)?;
            correct.fill(gpu, u32::MAX)?;
            grad.fill(gpu, f32::NAN)?;
            let start = Instant::now();
            match kind {
                LossKind::Mse => Mse::new(gpu, &gx, &targets, &loss, Some(&grad))?.run(gpu, 1)?,
                LossKind::Hinge => {
                    Hinge::new(gpu, &gx, &glabels, &loss, &correct, Some(&grad))?.run(gpu, 1)?
                }
                LossKind::Logistic => {
                    Logistic::new(gpu, &gx, &targets, &loss, &correct, Some(&grad))?.run(gpu, 1)?
                }
            }
            let l = loss.to_array_async(gpu).await?;
            let flags = correct.read_async(gpu).await?;
            let d = grad.to_array_async(gpu).await?;
            let gpu_ms = ms(start);
            let mut cmp = Compare::new();
            cmp.add(
                "loss",
                &l,
                &expected.loss.clone().into_dyn(),
                Tolerance::new(1e-5, 1e-5),
            );
            if let Some(c) = &expected.correct {
                cmp.add_exact("correct", &flags, c.as_slice().unwrap_or(&[]));
            }
            cmp.add(
                "grad",
                &d,
                &expected_grad,
                Tolerance::new(1e-6 / (n * k) as f32, 1e-4),
            );
            rows.push(cmp.row(
                Family::Loss,
                format!("{} loss+grad", kind.name()),
                format!("{n}×{k}"),
                gpu_ms,
                cpu_ms,
            ));
        }
    }
    Ok(rows)
}
