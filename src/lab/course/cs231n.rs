//! Notebook 000's strategy 3 and its minibatch descent (CS231n), on the
//! notebook's own kind of data — random N(0, 1) "images" of 3073 values and
//! random labels of 10 classes, where there is nothing to learn (the loss
//! stays at ln 10 ≈ 2.3026 and accuracy at chance): the full-coordinate
//! forward-difference gradient of the softmax loss on a fixed batch of
//! 1,000 (all 30,730 coordinates of W, cell [10]) against the analytic
//! gradient, the step-size sweep of cell [11], and minibatch gradient
//! descent at lr 1e-7 for 1,000 iterations of batch 1,000 (cell [19]).
//!
//! On the CPU, in f64 for the check and f32 for the descent. The notebook's
//! 50,000 training columns of f64 are 1.2 GB; we draw 10,000 (and 2,000 for
//! the test set), which a batch of 1,000 samples from just the same.
//!
//! Each forward difference changes one weight W[i][j], which moves only
//! class i's scores, by h·x_j: so L(W + h·e_ij) is computed from the
//! batch's stored scores and exponentials in O(batch) instead of a new
//! 1000×3073×10 product: the same quantity, 30,730 times faster.

use ndarray::{Array2, Axis};
use serde_json::json;

use super::{NumpyRng, Options, Report};
use crate::error::Result;

const CLASSES: usize = 10;
const DIM: usize = 3073;

/// Mean softmax cross-entropy of `scores` (rows samples) for labels `y`, the
/// stable way; with each row's exponentials (of the score less the row's
/// max) and their sum, for reuse.
struct Scores {
    loss: f64,
    sum: Vec<f64>,
    exp: Array2<f64>,
}

fn softmax_loss(scores: &Array2<f64>, y: &[usize]) -> Scores {
    let n = scores.nrows();
    let mut sum = Vec::with_capacity(n);
    let mut exp = Array2::zeros(scores.raw_dim());
    let mut loss = 0.0;
    for (r, row) in scores.rows().into_iter().enumerate() {
        let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut s = 0.0;
        for (k, &v) in row.iter().enumerate() {
            let e = (v - m).exp();
            exp[[r, k]] = e;
            s += e;
        }
        loss += s.ln() + m - row[y[r]];
        sum.push(s);
    }
    Scores {
        loss: loss / n as f64,
        sum,
        exp,
    }
}

/// The analytic gradient (P − Y)ᵀX / N of the mean loss, `[classes, dim]`.
fn analytic_gradient(x: &Array2<f64>, y: &[usize], s: &Scores) -> Array2<f64> {
    let n = x.nrows();
    let mut d = s.exp.clone();
    for (r, mut row) in d.rows_mut().into_iter().enumerate() {
        let total = s.sum[r];
        row.mapv_inplace(|e| e / total);
        row[y[r]] -= 1.0;
    }
    d.t().dot(x) / n as f64
}

/// The forward difference (L(W + h·e_ij) − L(W)) / h at every coordinate.
fn forward_differences(x: &Array2<f64>, y: &[usize], s: &Scores, h: f64) -> Array2<f64> {
    let n = x.nrows();
    let mut out = Array2::zeros((CLASSES, DIM));
    for i in 0..CLASSES {
        for j in 0..DIM {
            let mut loss = 0.0;
            for r in 0..n {
                let dx = h * x[[r, j]];
                let e = s.exp[[r, i]];
                // Class i's exponential is scaled by e^(h·x); its score moves by h·x.
                let sum = s.sum[r] - e + e * dx.exp();
                let correct = if y[r] == i { dx } else { 0.0 };
                loss += sum.ln() - correct;
            }
            // L(W) per row is ln(sum) + max − s_y; the max and s_y cancel.
            let base: f64 = (0..n).map(|r| s.sum[r].ln()).sum();
            out[[i, j]] = (loss - base) / n as f64 / h;
        }
    }
    out
}

/// Draws the notebook's data: `n` rows of N(0, 1) values and uniform labels.
fn random_data(rng: &mut NumpyRng, n: usize) -> (Array2<f32>, Vec<usize>) {
    let x = Array2::from_shape_fn((n, DIM), |_| rng.randn() as f32);
    let y = (0..n)
        .map(|_| rng.interval(CLASSES as u32 - 1) as usize)
        .collect();
    (x, y)
}

pub(super) fn run(o: &Options<'_>) -> Result<Report> {
    let mut r = Report::new("cs231n-check");
    let mut rng = NumpyRng::new(o.seed);
    let (x_train, y_train) = random_data(&mut rng, 10_000);
    let (x_test, y_test) = random_data(&mut rng, 2_000);
    r.line(format!(
        "data: 10000 train and 2000 test rows of N(0, 1) in 3073 values, random labels of 10 classes (np.random.seed({})); the notebook: 50000 and 10000",
        o.seed
    ));

    // Cell [10]: W = rand(10, 3073)·0.001, a fixed batch of 1000.
    let w = Array2::from_shape_fn((CLASSES, DIM), |_| rng.next_f64() * 0.001);
    let mut order: Vec<usize> = (0..x_train.nrows()).collect();
    rng.shuffle(&mut order);
    let batch: Vec<usize> = order[..1000].to_vec();
    let xb = x_train.select(Axis(0), &batch).mapv(f64::from);
    let yb: Vec<usize> = batch.iter().map(|&i| y_train[i]).collect();
    let scores = softmax_loss(&xb.dot(&w.t()), &yb);
    let analytic = analytic_gradient(&xb, &yb, &scores);
    let h = 1e-5;
    let numeric = forward_differences(&xb, &yb, &scores, h);
    let rel = |a: f64, b: f64| (a - b).abs() / a.abs().max(b.abs()).max(1e-12);
    let errors: Vec<f64> = analytic
        .iter()
        .zip(numeric.iter())
        .map(|(&a, &b)| rel(a, b))
        .collect();
    let max_rel = errors.iter().copied().fold(0.0, f64::max);
    let mut sorted = errors.clone();
    sorted.sort_by(f64::total_cmp);
    let median_rel = sorted[sorted.len() / 2];
    let max_abs = analytic
        .iter()
        .zip(numeric.iter())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    r.line(format!(
        "forward differences (h = 1e-5) at all {} coordinates of W on a batch of 1000: loss {:.6}; against the analytic gradient max |diff| {max_abs:.1e}, relative error median {median_rel:.1e}, max {max_rel:.1e} (O(h): the second derivative times h/2)",
        errors.len(),
        scores.loss
    ));

    // Cell [11]: the loss on the whole training set (CIFAR10_loss_fun
    // scores X_train, not the batch) after W − s·df, s = 1e-10 … 1e-1.
    let full_loss = |w: &Array2<f64>| {
        let w32 = w.mapv(|v| v as f32);
        softmax_loss(&x_train.dot(&w32.t()).mapv(f64::from), &y_train).loss
    };
    let original = full_loss(&w);
    r.line(format!(
        "original loss (training set): {original:.6}   (notebook: 2.302689)"
    ));
    let mut sweep = Vec::new();
    for k in -10..=-1 {
        let step = 10f64.powi(k);
        let w_new = &w - &(&numeric * step);
        let loss = full_loss(&w_new);
        r.line(format!("for step size {step:.0e} new loss: {loss:.6}"));
        sweep.push(json!({ "step": step, "loss": loss }));
    }
    r.line("   (notebook: from 2.302689 at 1e-10 down to 2.298517 at 0.1)");

    // Cell [19]: W = 0.001·randn, lr 1e-7, 1000 iterations of batch 1000.
    let mut w32 = Array2::from_shape_fn((CLASSES, DIM), |_| (0.001 * rng.randn()) as f32);
    let (lr, iterations, bs) = (1e-7f32, 1000, 1000);
    let mut losses = Vec::new();
    let mut idx: Vec<usize> = (0..x_train.nrows()).collect();
    for it in 0..iterations {
        // np.random.choice(N, 1000, replace=False): a shuffled prefix.
        rng.shuffle(&mut idx);
        let xb = x_train.select(Axis(0), &idx[..bs]);
        let scores = xb.dot(&w32.t()).mapv(f64::from);
        let yb: Vec<usize> = idx[..bs].iter().map(|&i| y_train[i]).collect();
        let s = softmax_loss(&scores, &yb);
        let mut d = s.exp.clone();
        for (row_i, mut row) in d.rows_mut().into_iter().enumerate() {
            let total = s.sum[row_i];
            row.mapv_inplace(|e| e / total);
            row[yb[row_i]] -= 1.0;
        }
        let grad = d.mapv(|v| v as f32).t().dot(&xb) / bs as f32;
        w32.scaled_add(-lr, &grad);
        if it % 100 == 0 {
            losses.push(json!({ "iteration": it, "loss": s.loss }));
            r.line(format!("Iteración {it}: loss = {:.4}", s.loss));
        }
    }
    let test_scores = x_test.dot(&w32.t());
    let correct = test_scores
        .rows()
        .into_iter()
        .zip(&y_test)
        .filter(|(row, y)| {
            let best = (0..CLASSES)
                .max_by(|&a, &b| row[a].total_cmp(&row[b]).then(b.cmp(&a)))
                .unwrap_or(0);
            best == **y
        })
        .count();
    let accuracy = correct as f64 / y_test.len() as f64;
    r.line(format!(
        "Precisión en test: {accuracy:.4}   (notebook: 0.1009; chance is 0.1: random labels cannot be learnt)"
    ));
    r.set("seed", json!(o.seed));
    r.set("coordinates", json!(errors.len()));
    r.set("batch_loss", json!(scores.loss));
    r.set("fd_max_abs_diff", json!(max_abs));
    r.set("fd_median_rel_error", json!(median_rel));
    r.set("fd_max_rel_error", json!(max_rel));
    r.set("original_loss", json!(original));
    r.set("step_sweep", json!(sweep));
    r.set("descent_losses", json!(losses));
    r.set("test_accuracy", json!(accuracy));
    Ok(r)
}
