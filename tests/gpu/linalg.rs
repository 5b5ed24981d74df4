//! `shaders/linalg.wgsl` against its CPU twin `cpu::linalg` (dot, norm,
//! combine, axpy, scale, xent_hvp_rows) on fresh random inputs, awkward
//! sizes and NaN-poisoned outputs; and the full-batch formulas of
//! `cpu::linalg` (loss, gradient, Hessian-vector product of the
//! L2-regularised softmax classifier) against centred finite differences in
//! f64. Self-contained: its own GPU context and random inputs.

use crate::common::gpu;
use ndarray::{Array2, ArrayD, IxDyn, s};
use rand::{RngExt, SeedableRng, rngs::StdRng};
use wgpu_train::cpu::{self, Tolerance};
use wgpu_train::kernels::linalg::{self, Combine, Dots, MAX_TERMS, XentHvpRows};
use wgpu_train::{Error, GpuTensor};

/// Uniform values in [-1, 1) from a fixed seed per call site.
fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

fn random2(rows: usize, cols: usize, seed: u64, scale: f32) -> Array2<f32> {
    Array2::from_shape_vec((rows, cols), random(rows * cols, seed))
        .unwrap()
        .mapv(|v| v * scale)
}

fn arr(v: &[f32]) -> ArrayD<f32> {
    ArrayD::from_shape_vec(IxDyn(&[v.len()]), v.to_vec()).unwrap()
}

/// The GPU adds in the CPU twin's order, but may fuse a multiply and an add
/// (one rounding instead of two): differences stay at a few ulps of the
/// partial sums (|partial| ≲ √(n/256)), far below one missed term (~0.3).
fn dot_tolerance(n: usize) -> Tolerance {
    Tolerance::new(1e-6 * (1.0 + (n as f32 / 256.0).sqrt()), 1e-6)
}

/// Awkward lengths: 1, one short of and one past the 256 lanes, 7, a
/// Fashion-MNIST row (784) and a linear model's weights (10×785, 10×3073).
const SIZES: [usize; 9] = [1, 7, 255, 256, 257, 784, 785, 7850, 30730];

#[test]
fn dot_matches_cpu_at_awkward_sizes() {
    let g = gpu();
    for n in SIZES {
        let (a, b) = (random(n, n as u64), random(n, n as u64 + 1));
        let ga = GpuTensor::from_slice(g, &[n], &a).unwrap();
        let gb = GpuTensor::from_slice(g, &[n], &b).unwrap();
        let got = linalg::dot(g, &ga, &gb).unwrap().read(g).unwrap();
        let want = cpu::linalg::dot(&a, &b).unwrap();
        cpu::assert_close(
            &format!("dot n={n}"),
            &arr(&got),
            &arr(&[want]),
            dot_tolerance(n),
        );
        let got = linalg::norm(g, &ga).unwrap().read(g).unwrap();
        let want = cpu::linalg::norm(&a).unwrap();
        cpu::assert_close(
            &format!("norm n={n}"),
            &arr(&got),
            &arr(&[want]),
            dot_tolerance(n),
        );
    }
}

/// The CPU twin's order is a good one: against an f64 sum it is off by a
/// few ulps even at 30,730 terms.
#[test]
fn cpu_dot_is_accurate() {
    for n in SIZES {
        let (a, b) = (random(n, 7 * n as u64), random(n, 7 * n as u64 + 1));
        let exact: f64 = a.iter().zip(&b).map(|(&x, &y)| x as f64 * y as f64).sum();
        let got = cpu::linalg::dot(&a, &b).unwrap() as f64;
        let scale: f64 = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| (x as f64 * y as f64).abs())
            .sum();
        assert!(
            (got - exact).abs() <= 1e-6 * scale.max(1.0),
            "n={n}: {got} vs {exact}"
        );
    }
}

/// Many pairs of windows of one bank, written at an offset into a
/// NaN-poisoned output: every pair is right and nothing else is written.
#[test]
fn batched_dots_of_bank_windows() {
    let g = gpu();
    let (n, slots) = (785, 9);
    let bank_host = random(slots * n + 3, 11);
    let bank = GpuTensor::from_slice(g, &[bank_host.len()], &bank_host).unwrap();
    let slot = |i: usize| bank.view(3 + i * n, &[n]).unwrap();
    let host = |i: usize| &bank_host[3 + i * n..3 + (i + 1) * n];
    let out_all = GpuTensor::<f32>::zeros(g, &[40]).unwrap();
    let out = out_all.view(5, &[30]).unwrap();
    let mut dots = Dots::new(g, &bank, &bank, &out, n, false).unwrap();
    let pairs: Vec<(usize, usize)> = (0..slots)
        .flat_map(|i| [(i, i), (i, (i + 4) % slots)])
        .collect();
    let views: Vec<_> = pairs.iter().map(|&(i, j)| (slot(i), slot(j))).collect();
    let refs: Vec<_> = views.iter().map(|(a, b)| (a, b)).collect();
    out_all.fill(g, f32::NAN).unwrap();
    dots.set(g, &refs).unwrap();
    dots.run(g).unwrap();
    let got = out_all.read(g).unwrap();
    let want: Vec<f32> = pairs
        .iter()
        .map(|&(i, j)| cpu::linalg::dot(host(i), host(j)).unwrap())
        .collect();
    cpu::assert_close(
        "batched dots",
        &arr(&got[5..5 + pairs.len()]),
        &arr(&want),
        dot_tolerance(n),
    );
    assert!(
        got[..5]
            .iter()
            .chain(&got[5 + pairs.len()..])
            .all(|v| v.is_nan()),
        "wrote outside its pairs"
    );
}

#[test]
fn dots_repeated_runs_give_identical_bits() {
    let g = gpu();
    let n = 30730;
    let a = GpuTensor::from_slice(g, &[n], &random(n, 5)).unwrap();
    let b = GpuTensor::from_slice(g, &[n], &random(n, 6)).unwrap();
    let first = linalg::dot(g, &a, &b).unwrap().read(g).unwrap()[0];
    for _ in 0..3 {
        let again = linalg::dot(g, &a, &b).unwrap().read(g).unwrap()[0];
        assert_eq!(first.to_bits(), again.to_bits());
    }
}

#[test]
fn axpy_and_scale_match_cpu() {
    let g = gpu();
    for n in SIZES {
        let (x, y) = (random(n, 100 + n as u64), random(n, 200 + n as u64));
        let alpha = -0.37f32;
        let gx = GpuTensor::from_slice(g, &[n], &x).unwrap();
        let gy = GpuTensor::from_slice(g, &[n], &y).unwrap();
        linalg::axpy(g, alpha, &gx, &gy).unwrap();
        let mut want = y.clone();
        cpu::linalg::axpy(alpha, &x, &mut want).unwrap();
        cpu::assert_close(
            &format!("axpy n={n}"),
            &gy.to_array(g).unwrap(),
            &arr(&want),
            Tolerance::new(1e-6, 1e-6),
        );
        linalg::scale(g, 3.5, &gx).unwrap();
        let mut want = x.clone();
        cpu::linalg::scale(3.5, &mut want).unwrap();
        cpu::assert_close(
            &format!("scale n={n}"),
            &gx.to_array(g).unwrap(),
            &arr(&want),
            Tolerance::new(0.0, 0.0),
        );
    }
}

/// The widest combination one dispatch allows, terms from both bound
/// buffers and the output itself among them, into a NaN-poisoned window
/// of a bank: the rest of the bank is untouched.
#[test]
fn combine_of_many_terms_into_a_bank_window() {
    let g = gpu();
    let n = 3073;
    let slots = MAX_TERMS + 2;
    let bank_host = random(slots * n, 21);
    let src_host = random(2 * n, 22);
    let bank = GpuTensor::from_slice(g, &[slots * n], &bank_host).unwrap();
    let src = GpuTensor::from_slice(g, &[2 * n], &src_host).unwrap();
    let out_slot = 1;
    let k = Combine::new(g, &bank, Some(&src), n).unwrap();
    let coefs = random(MAX_TERMS, 23);
    // Terms: the output itself, two windows of src, the rest other bank slots.
    let mut views = vec![
        bank.view(out_slot * n, &[n]).unwrap(),
        src.view(0, &[n]).unwrap(),
        src.view(n, &[n]).unwrap(),
    ];
    let mut hosts: Vec<&[f32]> = vec![&bank_host[n..2 * n], &src_host[..n], &src_host[n..]];
    for s in (0..slots).filter(|&s| s != out_slot).take(MAX_TERMS - 3) {
        views.push(bank.view(s * n, &[n]).unwrap());
        hosts.push(&bank_host[s * n..(s + 1) * n]);
    }
    let terms: Vec<(f32, &GpuTensor<f32>)> = coefs.iter().copied().zip(views.iter()).collect();
    let out = bank.view(out_slot * n, &[n]).unwrap();
    k.set(g, &out, &terms).unwrap();
    k.run(g).unwrap();
    let host_terms: Vec<(f32, &[f32])> = coefs.iter().copied().zip(hosts.iter().copied()).collect();
    let want = cpu::linalg::combine(&host_terms).unwrap();
    let got = bank.read(g).unwrap();
    cpu::assert_close(
        "combine of 32 terms",
        &arr(&got[n..2 * n]),
        &arr(&want),
        Tolerance::new(2e-6, 1e-6),
    );
    assert_eq!(&got[..n], &bank_host[..n], "slot 0 changed");
    assert_eq!(
        &got[2 * n..],
        &bank_host[2 * n..],
        "slots past the output changed"
    );

    // Poisoned output, not among the terms: every element is written.
    let out = bank.view(0, &[n]).unwrap();
    out.fill(g, f32::NAN).unwrap();
    let a = bank.view(2 * n, &[n]).unwrap();
    k.set(g, &out, &[(0.5, &a), (-2.0, &src.view(0, &[n]).unwrap())])
        .unwrap();
    k.run(g).unwrap();
    let want =
        cpu::linalg::combine(&[(0.5, &bank_host[2 * n..3 * n]), (-2.0, &src_host[..n])]).unwrap();
    cpu::assert_close(
        "combine into a poisoned slot",
        &out.to_array(g).unwrap(),
        &arr(&want),
        Tolerance::new(1e-6, 1e-6),
    );
}

#[test]
fn combine_rejects_bad_terms() {
    let g = gpu();
    let n = 10;
    let bank = GpuTensor::<f32>::zeros(g, &[3 * n]).unwrap();
    let other = GpuTensor::<f32>::zeros(g, &[n]).unwrap();
    let k = Combine::new(g, &bank, None, n).unwrap();
    let out = bank.view(0, &[n]).unwrap();
    let shifted = bank.view(3, &[n]).unwrap();
    let short = bank.view(n, &[n - 1]).unwrap();
    for (what, r) in [
        ("no terms", k.set(g, &out, &[])),
        ("overlapping term", k.set(g, &out, &[(1.0, &shifted)])),
        ("short term", k.set(g, &out, &[(1.0, &short)])),
        ("unbound buffer", k.set(g, &out, &[(1.0, &other)])),
    ] {
        assert!(matches!(r, Err(Error::Shape { .. })), "{what}: {r:?}");
    }
    let many: Vec<(f32, &GpuTensor<f32>)> = (0..MAX_TERMS + 1).map(|_| (1.0, &out)).collect();
    assert!(matches!(k.set(g, &out, &many), Err(Error::Shape { .. })));
    // src in the output's buffer: reading and writing one buffer is refused.
    assert!(matches!(
        Combine::new(g, &bank, Some(&bank), n),
        Err(Error::Shape { .. })
    ));
    let a = GpuTensor::<f32>::zeros(g, &[4]).unwrap();
    let b = GpuTensor::<f32>::zeros(g, &[5]).unwrap();
    assert!(matches!(linalg::dot(g, &a, &b), Err(Error::Shape { .. })));
    assert!(matches!(
        cpu::linalg::dot(&[1.0f32], &[1.0, 2.0]),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        cpu::linalg::dot::<f32>(&[], &[]),
        Err(Error::Shape { .. })
    ));
}

fn check_xent_hvp_rows(rows: usize, c: usize, scale: f32) {
    let g = gpu();
    let seed = (rows * 31 + c) as u64;
    let logits = random2(rows, c, seed, scale);
    let u = random2(rows, c, seed + 1, 1.0);
    let inv_n = 1.0 / (3 * rows) as f32;
    let want = cpu::linalg::xent_hvp_rows(logits.view(), u.view(), inv_n).unwrap();
    let tol = Tolerance::new(1e-7, 1e-4);

    let gl = GpuTensor::from_array(g, &logits).unwrap();
    let gu = GpuTensor::from_array(g, &u).unwrap();
    let r = GpuTensor::<f32>::zeros(g, &[rows, c]).unwrap();
    r.fill(g, f32::NAN).unwrap();
    XentHvpRows::new(g, &gl, &gu, &r, inv_n)
        .unwrap()
        .run(g)
        .unwrap();
    cpu::assert_close(
        &format!("xent_hvp_rows {rows}×{c} scale {scale}"),
        &r.to_array(g).unwrap(),
        &want,
        tol,
    );

    // Stacked: logits and u as the halves of one [rows, 2C] tensor.
    let mut zu = Array2::zeros((rows, 2 * c));
    zu.slice_mut(s![.., ..c]).assign(&logits);
    zu.slice_mut(s![.., c..]).assign(&u);
    let gzu = GpuTensor::from_array(g, &zu).unwrap();
    r.fill(g, f32::NAN).unwrap();
    XentHvpRows::stacked(g, &gzu, &r, inv_n)
        .unwrap()
        .run(g)
        .unwrap();
    cpu::assert_close(
        &format!("stacked xent_hvp_rows {rows}×{c}"),
        &r.to_array(g).unwrap(),
        &want,
        tol,
    );
    let strided =
        cpu::linalg::xent_hvp_rows(zu.slice(s![.., ..c]), zu.slice(s![.., c..]), inv_n).unwrap();
    assert_eq!(strided, want, "the CPU twin reads strided halves the same");
}

#[test]
fn xent_hvp_rows_matches_cpu() {
    for (rows, c) in [(1, 1), (1, 10), (7, 10), (65, 3), (300, 10), (129, 100)] {
        check_xent_hvp_rows(rows, c, 3.0);
    }
    // Logits near ±1e3: the row max keeps the exponentials finite.
    check_xent_hvp_rows(33, 10, 1e3);
}

/// One row, two classes, by hand: p = softmax(0, ln 3) = (1/4, 3/4),
/// u = (1, 0): p·u = 1/4, r = (1/4·3/4, 3/4·(−1/4)) = (3/16, −3/16).
#[test]
fn xent_hvp_rows_by_hand() {
    let logits = ndarray::arr2(&[[0.0f64, 3f64.ln()]]);
    let u = ndarray::arr2(&[[1.0f64, 0.0]]);
    let r = cpu::linalg::xent_hvp_rows(logits.view(), u.view(), 1.0).unwrap();
    assert!(
        (r[[0, 0]] - 3.0 / 16.0).abs() < 1e-15 && (r[[0, 1]] + 3.0 / 16.0).abs() < 1e-15,
        "{r}"
    );
}

// ------------------------------------------------------------- full batch (f64)

struct Problem {
    x: Array2<f64>,
    labels: Vec<u32>,
    w: Array2<f64>,
    v: Array2<f64>,
    l2: f64,
}

fn problem(n: usize, d: usize, c: usize, seed: u64) -> Problem {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut x = random2(n, d, seed, 1.0).mapv(f64::from);
    x.column_mut(d - 1).fill(1.0); // the bias column
    Problem {
        x,
        labels: (0..n).map(|_| rng.random_range(0..c as u32)).collect(),
        w: random2(c, d, seed + 1, 0.7).mapv(f64::from),
        v: random2(c, d, seed + 2, 1.0).mapv(f64::from),
        l2: 0.03,
    }
}

/// Centred differences at h and h/2 combined by Richardson extrapolation,
/// `(4·D(h/2) − D(h))/3`, which cancels the h² error term (as
/// `cpu::gradcheck` does), of a function of a step along `dir`.
fn richardson<T, F>(h: f64, f: F) -> T
where
    F: Fn(f64) -> T,
    T: std::ops::Sub<Output = T> + std::ops::Mul<f64, Output = T>,
{
    let d = |h: f64| (f(h) - f(-h)) * (1.0 / (2.0 * h));
    (d(h / 2.0) * 4.0 - d(h)) * (1.0 / 3.0)
}

fn max_rel_error(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    let scale = b.iter().fold(0f64, |m, v| m.max(v.abs()));
    let diff = (a - b).iter().fold(0f64, |m, v| m.max(v.abs()));
    diff / scale
}

/// Hv against the centred difference of the gradient along v, in f64:
/// (∇L(W + hV) − ∇L(W − hV)) / 2h.
#[test]
fn hvp_matches_finite_differences_of_the_gradient() {
    for (n, d, c, seed) in [(37, 13, 5, 1), (1, 4, 3, 2), (200, 30, 10, 3)] {
        let p = problem(n, d, c, seed);
        let hv = cpu::linalg::hvp(p.x.view(), p.w.view(), p.v.view(), p.l2).unwrap();
        let fd = richardson(1e-3, |h| {
            cpu::linalg::loss_grad(p.x.view(), &p.labels, (&p.w + &(&p.v * h)).view(), p.l2)
                .unwrap()
                .1
        });
        let err = max_rel_error(&hv, &fd);
        eprintln!("hvp vs finite differences, {n}×{d}, C={c}: max relative error {err:.2e}");
        assert!(err <= 1e-6, "hvp {n}×{d} C={c}: relative error {err:e}");
    }
}

/// The gradient (with the L2 term) against the centred difference of the
/// loss along random directions: ∇L·V = dL(W + hV)/dh.
#[test]
fn loss_grad_matches_finite_differences_of_the_loss() {
    for (n, d, c, seed) in [(37, 13, 5, 4), (200, 30, 10, 5)] {
        let p = problem(n, d, c, seed);
        let (_, grad) = cpu::linalg::loss_grad(p.x.view(), &p.labels, p.w.view(), p.l2).unwrap();
        let analytic = (&grad * &p.v).sum();
        let numeric = richardson(1e-3, |h| {
            Scalar(
                cpu::linalg::loss_grad(p.x.view(), &p.labels, (&p.w + &(&p.v * h)).view(), p.l2)
                    .unwrap()
                    .0,
            )
        })
        .0;
        let err = (analytic - numeric).abs() / analytic.abs().max(1e-12);
        eprintln!("gradient vs finite differences, {n}×{d}, C={c}: relative error {err:.2e}");
        assert!(err <= 1e-8, "{analytic} vs {numeric}");
    }
}

/// An f64 that `richardson` can subtract and scale.
#[derive(Clone, Copy)]
struct Scalar(f64);
impl std::ops::Sub for Scalar {
    type Output = Scalar;
    fn sub(self, o: Scalar) -> Scalar {
        Scalar(self.0 - o.0)
    }
}
impl std::ops::Mul<f64> for Scalar {
    type Output = Scalar;
    fn mul(self, k: f64) -> Scalar {
        Scalar(self.0 * k)
    }
}

/// The L2 term is (λ/2)‖W‖² and its Hessian λ·I: with every input zero the
/// data term is log C whatever W is, and Hv is λ·V exactly.
#[test]
fn l2_term_alone() {
    let mut p = problem(5, 4, 3, 6);
    p.x.fill(0.0);
    let (loss, grad) = cpu::linalg::loss_grad(p.x.view(), &p.labels, p.w.view(), p.l2).unwrap();
    let ww = p.w.iter().map(|v| v * v).sum::<f64>();
    assert!((loss - (3f64.ln() + p.l2 / 2.0 * ww)).abs() < 1e-12);
    assert!(max_rel_error(&grad, &(&p.w * p.l2)) < 1e-12);
    let hv = cpu::linalg::hvp(p.x.view(), p.w.view(), p.v.view(), p.l2).unwrap();
    assert!(max_rel_error(&hv, &(&p.v * p.l2)) < 1e-12);
}

#[test]
fn full_batch_shape_errors() {
    let p = problem(5, 4, 3, 7);
    assert!(matches!(
        cpu::linalg::loss_grad(p.x.view(), &p.labels[..4], p.w.view(), 0.0),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        cpu::linalg::hvp(p.x.view(), p.w.view(), p.v.slice(s![..2, ..]), 0.0),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        cpu::linalg::loss_grad(p.x.view(), &[0, 1, 2, 3, 3], p.w.view(), 0.0),
        Err(Error::Label { .. })
    ));
}
