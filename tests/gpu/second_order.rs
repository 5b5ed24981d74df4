//! Second-order training of the linear classifier: the full-batch objective
//! on the GPU against its CPU twin and against the f64 reference formulas
//! (loss, gradient, Hessian-vector product, chunk by chunk), then L-BFGS
//! and Newton-CG on both devices — the same optimum, the same trajectory —
//! and their stops on bad input. Self-contained: its own GPU context and
//! synthetic data.

use crate::common::gpu;
use ndarray::Array2;
use rand::{RngExt, SeedableRng, rngs::StdRng};
use wgpu_train::cpu::{self, Tolerance};
use wgpu_train::second_order::{
    CpuObjective, Evaluation, FullBatchConfig, GpuObjective, Method, Objective, SecondOrderConfig,
    Slot, Stop, minimize,
};
use wgpu_train::{Dataset, Error};

/// `n` examples of `shape` pixels, labelled by a hidden linear rule with
/// 20% of the labels flipped at random (a problem with a real optimum that
/// is not separable).
fn dataset(n: usize, shape: [usize; 3], classes: usize, seed: u64) -> Dataset {
    let mut rng = StdRng::seed_from_u64(seed);
    let d: usize = shape.iter().product();
    let hidden: Vec<f32> = (0..classes * d)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let images: Vec<u8> = (0..n * d).map(|_| rng.random::<u8>()).collect();
    let labels = (0..n)
        .map(|i| {
            if rng.random_range(0.0..1.0) < 0.2 {
                return rng.random_range(0..classes as u8);
            }
            let x = &images[i * d..(i + 1) * d];
            (0..classes)
                .map(|c| {
                    let s: f32 = x
                        .iter()
                        .zip(&hidden[c * d..])
                        .map(|(&p, &h)| (p as f32 / 255.0 - 0.5) * h)
                        .sum();
                    (c, s)
                })
                .fold((0, f32::MIN), |a, b| if b.1 > a.1 { b } else { a })
                .0 as u8
        })
        .collect();
    Dataset::new(images, labels, shape, classes).unwrap()
}

/// The whole set as the f64 matrix X (pixels/255, then the bias column).
fn matrix(data: &Dataset) -> (Array2<f64>, Vec<u32>) {
    let d = data.dim();
    let x = Array2::from_shape_fn((data.len(), d + 1), |(i, j)| {
        if j == d {
            1.0
        } else {
            data.image(i)[j] as f64 / 255.0
        }
    });
    (x, data.labels.iter().map(|&l| l as u32).collect())
}

fn random(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| scale * rng.random_range(-1.0f32..1.0))
        .collect()
}

fn arr(v: &[f32]) -> ndarray::ArrayD<f32> {
    ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[v.len()]), v.to_vec()).unwrap()
}

fn arr64(v: &ndarray::Array2<f64>) -> ndarray::ArrayD<f32> {
    v.mapv(|x| x as f32)
        .into_dyn()
        .into_shape_with_order(ndarray::IxDyn(&[v.len()]))
        .unwrap()
}

/// Gradients and Hessian-vector products are sums over N rows of terms of
/// size ~1 in f32: a few 1e-7 of the largest element.
const VECTOR_TOL: Tolerance = Tolerance::new(2e-6, 2e-4);

/// Loss, gradient and Hv of the GPU objective against the CPU objective (f32,
/// the same chunks) and the f64 reference of `cpu::linalg` (one matrix),
/// with the output slots poisoned with NaN first; each device with its rows
/// resident and gathered every pass, which must give the same bits.
fn check_objective(n: usize, shape: [usize; 3], classes: usize, chunk_rows: usize, l2: f64) {
    let g = gpu();
    let data = dataset(n, shape, classes, n as u64);
    let config = FullBatchConfig {
        l2,
        chunk_rows,
        ..FullBatchConfig::default()
    };
    let streaming = FullBatchConfig {
        resident: false,
        ..config
    };
    let mut objs: Vec<Box<dyn Objective>> = vec![
        Box::new(GpuObjective::new(g, &data, None, 4, &config).unwrap()),
        Box::new(GpuObjective::new(g, &data, None, 4, &streaming).unwrap()),
        Box::new(CpuObjective::<f32>::new(&data, None, 4, &config).unwrap()),
        Box::new(CpuObjective::<f32>::new(&data, None, 4, &streaming).unwrap()),
    ];
    let dim = classes * (data.dim() + 1);
    let w = random(dim, 1, 0.05);
    let v = random(dim, 2, 1.0);
    let nan = vec![f32::NAN; dim];
    let what = format!("{n}×{} C={classes} chunks of {chunk_rows}", data.dim() + 1);
    let mut evals: Vec<Evaluation> = Vec::new();
    let mut grads = Vec::new();
    let mut hvs = Vec::new();
    for obj in objs.iter_mut() {
        obj.write(Slot(0), &w).unwrap();
        obj.write(Slot(1), &v).unwrap();
        obj.write(Slot(2), &nan).unwrap();
        obj.write(Slot(3), &nan).unwrap();
        evals.push(
            obj.loss_grad(Slot(0), Slot(2), &[(Slot(2), Slot(2)), (Slot(2), Slot(1))])
                .unwrap(),
        );
        let d = obj
            .hvp(Slot(0), Slot(1), Slot(3), &[(Slot(1), Slot(3))])
            .unwrap();
        grads.push(obj.read(Slot(2)).unwrap());
        hvs.push((obj.read(Slot(3)).unwrap(), d));
    }
    let (x, labels) = matrix(&data);
    let w64 = Array2::from_shape_vec(
        (classes, data.dim() + 1),
        w.iter().map(|&v| v as f64).collect(),
    )
    .unwrap();
    let v64 = Array2::from_shape_vec(
        (classes, data.dim() + 1),
        v.iter().map(|&v| v as f64).collect(),
    )
    .unwrap();
    let (loss64, grad64) = cpu::linalg::loss_grad(x.view(), &labels, w64.view(), l2).unwrap();
    let hv64 = cpu::linalg::hvp(x.view(), w64.view(), v64.view(), l2).unwrap();

    let names = ["gpu", "gpu streaming", "cpu", "cpu streaming"];
    for (i, device) in names.iter().enumerate() {
        let e = &evals[i];
        assert!(
            (e.loss - loss64).abs() <= 1e-6 * loss64.abs(),
            "{what} {device} loss {} vs f64 {loss64}",
            e.loss
        );
        cpu::assert_close(
            &format!("{what} {device} gradient vs f64"),
            &arr(&grads[i]),
            &arr64(&grad64),
            VECTOR_TOL,
        );
        cpu::assert_close(
            &format!("{what} {device} Hv vs f64"),
            &arr(&hvs[i].0),
            &arr64(&hv64),
            VECTOR_TOL,
        );
        let gg: f64 = grad64.iter().map(|v| v * v).sum();
        assert!(
            (e.dots[0] - gg).abs() <= 1e-4 * gg,
            "{what} {device} ‖g‖² {} vs {gg}",
            e.dots[0]
        );
    }
    for pair in [(0, 1), (2, 3)] {
        let (a, b) = pair;
        assert_eq!(
            evals[a], evals[b],
            "{what}: {} and {} evaluations differ",
            names[a], names[b]
        );
        assert_eq!(
            grads[a], grads[b],
            "{what}: {} and {} gradients differ",
            names[a], names[b]
        );
        assert_eq!(
            hvs[a], hvs[b],
            "{what}: {} and {} Hv differ",
            names[a], names[b]
        );
    }
    assert_eq!(
        evals[0].correct, evals[2].correct,
        "{what}: correct counts differ"
    );
    cpu::assert_close(
        &format!("{what} gpu vs cpu gradient"),
        &arr(&grads[0]),
        &arr(&grads[2]),
        VECTOR_TOL,
    );
    cpu::assert_close(
        &format!("{what} gpu vs cpu Hv"),
        &arr(&hvs[0].0),
        &arr(&hvs[2].0),
        VECTOR_TOL,
    );
    let (a, b) = (hvs[0].1[0], hvs[2].1[0]);
    assert!(
        (a - b).abs() <= 1e-4 * b.abs().max(1e-6),
        "{what} vᵀHv {a} vs {b}"
    );
}

#[test]
fn objective_one_example() {
    check_objective(1, [1, 1, 7], 3, 8192, 0.1);
}

#[test]
fn objective_fashion_mnist_shape_in_uneven_chunks() {
    // 300 rows in chunks of 128: two full chunks and a short one.
    check_objective(300, [1, 28, 28], 10, 128, 1e-3);
}

#[test]
fn objective_cifar_shape() {
    check_objective(37, [3, 32, 32], 10, 16, 1e-4);
}

#[test]
fn objective_one_class_row_chunks() {
    // Chunks of one row, no L2 term.
    check_objective(7, [1, 2, 5], 2, 1, 0.0);
}

/// The test-set evaluation of both devices agrees with a direct count.
#[test]
fn test_set_evaluation() {
    let g = gpu();
    let train = dataset(50, [1, 4, 4], 3, 1);
    let test = dataset(77, [1, 4, 4], 3, 2);
    let config = FullBatchConfig {
        chunk_rows: 30,
        ..FullBatchConfig::default()
    };
    let w = random(3 * 17, 3, 2.0);
    let (x, labels) = matrix(&test);
    let w64 = Array2::from_shape_vec((3, 17), w.iter().map(|&v| v as f64).collect()).unwrap();
    let logits = x.dot(&w64.t());
    let out = cpu::softmax_xent_eval(&logits, &labels).unwrap();
    let want_loss = out.loss.mean().unwrap();
    let want_acc = out.correct.iter().sum::<u32>() as f64 / 77.0;
    let mut gpu_obj = GpuObjective::new(g, &train, Some(&test), 1, &config).unwrap();
    let mut cpu_obj = CpuObjective::<f64>::new(&train, Some(&test), 1, &config).unwrap();
    for obj in [&mut gpu_obj as &mut dyn Objective, &mut cpu_obj] {
        obj.write(Slot(0), &w).unwrap();
        let (loss, acc) = obj.evaluate_test(Slot(0)).unwrap();
        assert!(
            (loss - want_loss).abs() <= 1e-6 * want_loss,
            "{} {loss} vs {want_loss}",
            obj.device()
        );
        assert_eq!(acc, want_acc, "{}", obj.device());
    }
}

// ------------------------------------------------------------- optimizers

/// The CI problem: 600 examples of 8×8 pixels, 5 classes, λ = 1e-2.
fn small_problem() -> (Dataset, FullBatchConfig) {
    let config = FullBatchConfig {
        l2: 1e-2,
        chunk_rows: 256,
        ..FullBatchConfig::default()
    };
    (dataset(600, [1, 8, 8], 5, 42), config)
}

const GTOL: f64 = 1e-5;

fn run(obj: &mut dyn Objective, method: Method, gtol: f64) -> wgpu_train::second_order::Outcome {
    let config = SecondOrderConfig {
        gtol,
        max_iterations: 200,
        ..SecondOrderConfig::new(method)
    };
    let w0 = vec![0.0; obj.dim()];
    minimize(obj, &w0, &config, &mut |_| {}).unwrap()
}

/// The optimum to 1e-10 in ‖g‖, from Newton-CG in f64.
fn reference(data: &Dataset, config: &FullBatchConfig) -> f64 {
    let mut obj = CpuObjective::<f64>::new(data, None, 8, config).unwrap();
    let out = run(&mut obj, Method::NewtonCg, 1e-10);
    assert_eq!(
        out.stop,
        Stop::Converged,
        "the f64 reference did not converge"
    );
    out.last().loss
}

#[test]
fn lbfgs_and_newton_cg_reach_the_same_optimum_on_gpu_and_cpu() {
    let (data, config) = small_problem();
    let best = reference(&data, &config);
    let g = gpu();
    let mut runs = Vec::new();
    for method in [Method::Lbfgs, Method::NewtonCg] {
        let slots = SecondOrderConfig::new(method).slots();
        let mut gpu_obj = GpuObjective::new(g, &data, None, slots, &config).unwrap();
        let mut cpu_obj = CpuObjective::<f32>::new(&data, None, slots, &config).unwrap();
        for obj in [&mut gpu_obj as &mut dyn Objective, &mut cpu_obj] {
            let out = run(obj, method, GTOL);
            let last = out.last();
            eprintln!(
                "{method} on {}: {} iterations, {} passes, {} readbacks, loss {:.9} (optimum {best:.9}), ‖g‖ {:.2e}, {}",
                obj.device(),
                last.iteration,
                last.passes,
                obj.readbacks(),
                last.loss,
                last.grad_norm,
                out.stop
            );
            assert_eq!(out.stop, Stop::Converged, "{method} on {}", obj.device());
            assert!(last.grad_norm <= GTOL);
            let rel = (last.loss - best).abs() / best;
            assert!(
                rel <= 1e-6,
                "{method} on {}: loss {} vs optimum {best} ({rel:e})",
                obj.device(),
                last.loss
            );
            // Every iteration lowers the loss (up to f32 rounding of the total).
            for w in out.iterations.windows(2) {
                assert!(w[1].loss <= w[0].loss + 1e-6 * w[0].loss, "{method}: {w:?}");
            }
            runs.push((method, obj.device(), out, obj.readbacks()));
        }
    }
    // GPU and CPU: losses within 1e-5 relative iteration by iteration. Once
    // ‖g‖ nears the f32 noise of the gradient (~1e-4 here) the two may take
    // a few more or fewer steps to reach gtol: compare the common prefix and
    // allow a quarter more iterations.
    for pair in runs.chunks(2) {
        let [(method, _, gpu_out, _), (_, _, cpu_out, _)] = pair else {
            unreachable!()
        };
        let mut worst = 0f64;
        for (a, b) in gpu_out.iterations.iter().zip(&cpu_out.iterations) {
            let rel = (a.loss - b.loss).abs() / b.loss;
            assert!(
                rel <= 1e-5,
                "{method} iteration {}: gpu {} cpu {} ({rel:e})",
                a.iteration,
                a.loss,
                b.loss
            );
            worst = worst.max(rel);
        }
        let (g, c) = (gpu_out.iterations.len(), cpu_out.iterations.len());
        eprintln!("{method}: gpu {g} and cpu {c} records, losses within {worst:.1e} relative");
        assert!(
            g.abs_diff(c) <= 3.max(g / 4),
            "{method}: {g} vs {c} iterations"
        );
    }
    // Both methods agree with each other.
    let losses: Vec<f64> = runs.iter().map(|r| r.2.last().loss).collect();
    for l in &losses {
        assert!((l - losses[0]).abs() <= 1e-6 * losses[0], "{losses:?}");
    }
}

/// Readbacks per iteration: L-BFGS one per evaluation plus one for the
/// Gram rows; Newton-CG one per CG step plus one per evaluation (plus the
/// rare direct residual norm).
#[test]
fn readbacks_per_iteration() {
    let (data, config) = small_problem();
    let g = gpu();
    for method in [Method::Lbfgs, Method::NewtonCg] {
        let slots = SecondOrderConfig::new(method).slots();
        let mut obj = GpuObjective::new(g, &data, None, slots, &config).unwrap();
        let out = run(&mut obj, method, GTOL);
        let first = &out.iterations[0];
        assert_eq!((first.readbacks, first.passes), (1, 1));
        let mut extra = 0;
        for it in &out.iterations[1..] {
            let base = match method {
                Method::Lbfgs => it.evaluations + 1,
                Method::NewtonCg => it.evaluations + it.cg_steps,
            };
            assert!(it.readbacks >= base, "{method} {it:?}");
            if method == Method::Lbfgs {
                assert_eq!(it.readbacks, base, "{it:?}");
            }
            extra += it.readbacks - base;
            eprintln!(
                "{method} iteration {}: {} evaluations, {} CG steps, {} readbacks, step {:.3}",
                it.iteration, it.evaluations, it.cg_steps, it.readbacks, it.step
            );
        }
        let total: usize = out.iterations.iter().map(|i| i.readbacks).sum();
        assert_eq!(
            total,
            obj.readbacks(),
            "{method}: records vs the objective's count"
        );
        assert!(
            extra <= out.iterations.len(),
            "{method}: {extra} direct residual norms"
        );
    }
}

// ------------------------------------------------------------- bad input

#[test]
fn iteration_limit_is_a_reported_stop() {
    let (data, config) = small_problem();
    for method in [Method::Lbfgs, Method::NewtonCg] {
        let cfg = SecondOrderConfig {
            max_iterations: 2,
            ..SecondOrderConfig::new(method)
        };
        let mut obj = CpuObjective::<f32>::new(&data, None, cfg.slots(), &config).unwrap();
        let w0 = vec![0.0; obj.dim()];
        let out = minimize(&mut obj, &w0, &cfg, &mut |_| {}).unwrap();
        assert_eq!(out.stop, Stop::MaxIterations, "{method}");
        assert_eq!(out.iterations.len(), 3, "{method}: the start and two steps");
    }
}

#[test]
fn failing_line_search_is_a_reported_stop() {
    // One evaluation per search and a curvature condition no first trial
    // meets: L-BFGS cannot bracket a step.
    let (data, config) = small_problem();
    let g = gpu();
    let cfg = SecondOrderConfig {
        max_evaluations: 1,
        c1: 1e-6,
        c2: 1e-5,
        ..SecondOrderConfig::new(Method::Lbfgs)
    };
    let mut obj = GpuObjective::new(g, &data, None, cfg.slots(), &config).unwrap();
    let w0 = vec![0.0; obj.dim()];
    let out = minimize(&mut obj, &w0, &cfg, &mut |_| {}).unwrap();
    assert!(
        matches!(out.stop, Stop::LineSearchFailed(_)),
        "{:?}",
        out.stop
    );
    assert_eq!(out.iterations.len(), 1);
    // The weights are the last good ones: the start.
    assert!(out.weights.iter().all(|&v| v == 0.0));
}

#[test]
fn overflowing_weights_are_a_reported_stop() {
    // ‖W‖² overflows f32: the loss is infinite at the start.
    let (data, config) = small_problem();
    let g = gpu();
    for method in [Method::Lbfgs, Method::NewtonCg] {
        let cfg = SecondOrderConfig::new(method);
        let mut obj = GpuObjective::new(g, &data, None, cfg.slots(), &config).unwrap();
        let w0 = vec![1e30; obj.dim()];
        let out = minimize(&mut obj, &w0, &cfg, &mut |_| {}).unwrap();
        assert!(
            matches!(out.stop, Stop::NonFinite(_)),
            "{method}: {:?}",
            out.stop
        );
    }
}

/// A CPU objective whose gradients turn to NaN after `healthy` evaluations.
struct Poisoned<'d> {
    inner: CpuObjective<'d, f32>,
    healthy: usize,
}

impl Objective for Poisoned<'_> {
    fn device(&self) -> &'static str {
        "poisoned"
    }
    fn adapter(&self) -> String {
        self.inner.adapter()
    }
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn slots(&self) -> usize {
        self.inner.slots()
    }
    fn examples(&self) -> usize {
        self.inner.examples()
    }
    fn l2(&self) -> f64 {
        self.inner.l2()
    }
    fn write(&mut self, slot: Slot, values: &[f32]) -> wgpu_train::Result<()> {
        self.inner.write(slot, values)
    }
    fn read(&mut self, slot: Slot) -> wgpu_train::Result<Vec<f32>> {
        self.inner.read(slot)
    }
    fn loss_grad(
        &mut self,
        w: Slot,
        g: Slot,
        pairs: &[(Slot, Slot)],
    ) -> wgpu_train::Result<Evaluation> {
        let mut e = self.inner.loss_grad(w, g, pairs)?;
        if self.healthy == 0 {
            self.inner.write(g, &vec![f32::NAN; self.inner.dim()])?;
            e.dots = self.inner.dots(pairs)?;
        } else {
            self.healthy -= 1;
        }
        Ok(e)
    }
    fn hvp(
        &mut self,
        w: Slot,
        v: Slot,
        out: Slot,
        pairs: &[(Slot, Slot)],
    ) -> wgpu_train::Result<Vec<f64>> {
        self.inner.hvp(w, v, out, pairs)
    }
    fn combine(&mut self, out: Slot, terms: &[(f64, Slot)]) -> wgpu_train::Result<()> {
        self.inner.combine(out, terms)
    }
    fn dots(&mut self, pairs: &[(Slot, Slot)]) -> wgpu_train::Result<Vec<f64>> {
        self.inner.dots(pairs)
    }
    fn evaluate_test(&mut self, w: Slot) -> wgpu_train::Result<(f64, f64)> {
        self.inner.evaluate_test(w)
    }
    fn readbacks(&self) -> usize {
        self.inner.readbacks()
    }
}

#[test]
fn nan_gradients_are_a_reported_stop() {
    let (data, config) = small_problem();
    for method in [Method::Lbfgs, Method::NewtonCg] {
        for healthy in [0, 3] {
            let cfg = SecondOrderConfig::new(method);
            let inner = CpuObjective::<f32>::new(&data, None, cfg.slots(), &config).unwrap();
            let mut obj = Poisoned { inner, healthy };
            let w0 = vec![0.0; obj.dim()];
            let out = minimize(&mut obj, &w0, &cfg, &mut |_| {}).unwrap();
            assert!(
                matches!(out.stop, Stop::NonFinite(_)),
                "{method} after {healthy}: {:?}",
                out.stop
            );
            assert!(
                out.weights.iter().all(|v| v.is_finite()),
                "{method}: the last good weights come back"
            );
        }
    }
}

#[test]
fn bad_arguments_are_errors() {
    let (data, config) = small_problem();
    let cfg = SecondOrderConfig::new(Method::Lbfgs);
    let mut obj = CpuObjective::<f32>::new(&data, None, cfg.slots(), &config).unwrap();
    let dim = obj.dim();
    let err = |r: wgpu_train::Result<wgpu_train::second_order::Outcome>| r.map(|_| ()).unwrap_err();
    assert!(matches!(
        err(minimize(&mut obj, &vec![0.0; dim - 1], &cfg, &mut |_| {})),
        Error::Shape { .. }
    ));
    let mut w = vec![0.0; dim];
    w[3] = f32::NAN;
    assert!(matches!(
        err(minimize(&mut obj, &w, &cfg, &mut |_| {})),
        Error::InvalidArgument { .. }
    ));
    for bad in [
        SecondOrderConfig {
            max_iterations: 0,
            ..cfg
        },
        SecondOrderConfig {
            gtol: f64::NAN,
            ..cfg
        },
        SecondOrderConfig { history: 0, ..cfg },
        SecondOrderConfig { c1: 0.95, ..cfg },
        SecondOrderConfig {
            max_evaluations: 0,
            ..cfg
        },
    ] {
        assert!(
            matches!(
                err(minimize(&mut obj, &vec![0.0; dim], &bad, &mut |_| {})),
                Error::InvalidArgument { .. }
            ),
            "{bad:?}"
        );
    }
    // Too few slots for L-BFGS with m = 10.
    let mut small = CpuObjective::<f32>::new(&data, None, 8, &config).unwrap();
    assert!(matches!(
        err(minimize(&mut small, &vec![0.0; dim], &cfg, &mut |_| {})),
        Error::InvalidArgument { .. }
    ));
    let g = gpu();
    let mut gobj = GpuObjective::new(g, &data, None, 2, &config).unwrap();
    assert!(matches!(
        gobj.write(Slot(2), &vec![0.0; dim]),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        gobj.write(Slot(1), &vec![0.0; dim + 1]),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        gobj.evaluate_test(Slot(0)),
        Err(Error::InvalidArgument { .. })
    ));
    let bad_l2 = FullBatchConfig { l2: -1.0, ..config };
    assert!(matches!(
        GpuObjective::new(g, &data, None, 2, &bad_l2),
        Err(Error::InvalidArgument { .. })
    ));
    let other = dataset(10, [1, 3, 3], 5, 1);
    assert!(matches!(
        CpuObjective::<f32>::new(&data, Some(&other), 2, &config),
        Err(Error::Shape { .. })
    ));
}

#[test]
fn a_target_loss_stops_the_run_where_it_is_reached() {
    let (data, config) = small_problem();
    for method in [Method::Lbfgs, Method::NewtonCg] {
        let full = SecondOrderConfig::new(method);
        let mut obj = CpuObjective::<f32>::new(&data, None, full.slots(), &config).unwrap();
        let w0 = vec![0.0; obj.dim()];
        let whole = minimize(&mut obj, &w0, &full, &mut |_| {}).unwrap();
        // A loss halfway down: the run stops at the first iterate below it.
        let target = 0.5 * (whole.iterations[0].loss + whole.last().loss);
        let cfg = SecondOrderConfig {
            target_loss: Some(target),
            ..full
        };
        let out = minimize(&mut obj, &w0, &cfg, &mut |_| {}).unwrap();
        assert_eq!(out.stop, Stop::TargetReached, "{method}");
        let first = whole
            .iterations
            .iter()
            .position(|i| i.loss <= target)
            .unwrap();
        assert_eq!(out.iterations.len(), first + 1, "{method}");
        assert!(out.last().loss <= target);
    }
}

// ------------------------------------------------------------- the example

/// `examples/second_order.rs` on 600 Fashion-MNIST examples: the demos print
/// their answers, every method runs on both devices, the reference converges
/// and both Newton-CG runs reach the target. Needs the data (as
/// `tests/fashion_mnist.rs` does); `cargo test` builds the example.
#[test]
fn the_example_runs_on_a_slice_of_fashion_mnist() {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let path = dir.join("examples").join("second_order");
    assert!(path.exists(), "{} was not built", path.display());
    let out = std::process::Command::new(path)
        .args([
            "--examples",
            "600",
            "--epochs",
            "2",
            "--iterations",
            "60",
            "--l2",
            "1e-2",
            "--json",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("w₁ = 3,"), "{stdout}");
    assert!(stdout.contains("(1.000000, 1.000000)"), "{stdout}");
    let runs: Vec<serde_json::Value> = stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(runs.len(), 8, "{stdout}");
    for r in &runs {
        assert!(r["final_loss"].as_f64().unwrap().is_finite(), "{r}");
        if r["method"] == "Newton-CG" || r["method"] == "L-BFGS" {
            assert!(r["passes_to_target"].as_f64().is_some(), "{r}");
        }
    }
}
