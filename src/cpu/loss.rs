//! CPU twins of `shaders/loss.wgsl`: mean squared error, the multiclass SVM
//! (hinge) loss and the logistic loss (binary cross-entropy on a sigmoid),
//! per row, with the gradient of the batch mean. Each row is computed in the
//! shader's order of operations, so in `f32` the hinge loss is the GPU's bits
//! and the other two differ only by the GPU's `exp`/`ln`; in `f64` they are
//! what the finite-difference check ([`super::gradcheck`]) proves right.
//! The formulas are in the shader's header and on each function.

use super::Real;
use crate::error::{Error, Result};
use crate::options::{LossShape, check_labels};
use ndarray::{Array1, Array2, ArrayBase, ArrayViewMut1, ArrayViewMut2, Data, Dimension, Ix2};

/// What [`mse`], [`hinge`] and [`logistic`] return.
#[derive(Clone, Debug, PartialEq)]
pub struct LossOutput<F> {
    /// `[N]` per-row losses; their mean is the batch's loss.
    pub loss: Array1<F>,
    /// `[N]` flags, 1 where the row is predicted right (hinge: argmax =
    /// label; logistic: every output on the target's side of ½); `None`
    /// from [`mse`], which has no notion of right.
    pub correct: Option<Array1<u32>>,
    /// `[N, K]`, the gradient of the mean loss with respect to the input;
    /// `None` unless asked for.
    pub grad: Option<Array2<F>>,
}

fn two_d<'a, F, S, D>(
    op: &'static str,
    a: &'a ArrayBase<S, D>,
) -> Result<ndarray::ArrayView2<'a, F>>
where
    S: Data<Elem = F>,
    D: Dimension,
{
    a.view()
        .into_dimensionality::<Ix2>()
        .map_err(|e| Error::shape(op, e))
}

fn check_outputs<F>(
    op: &'static str,
    shape: LossShape,
    loss: &ArrayViewMut1<F>,
    correct: Option<&[u32]>,
    grad: Option<&ArrayViewMut2<F>>,
) -> Result<()> {
    let ok = loss.len() == shape.n
        && correct.is_none_or(|c| c.len() == shape.n)
        && grad.is_none_or(|g| g.shape() == [shape.n, shape.k]);
    if ok {
        return Ok(());
    }
    Err(Error::shape(
        op,
        format!(
            "outputs for a {}×{} input: loss [{}], correct {:?}, grad {:?}",
            shape.n,
            shape.k,
            loss.len(),
            correct.map(<[u32]>::len),
            grad.map(|g| g.shape().to_vec())
        ),
    ))
}

/// Mean squared error of `pred` (N×K) against `targets` (N×K), as
/// `torch.nn.MSELoss()`: per row `Σ_k (p − t)² / K`, and with `with_grad`
/// the gradient of the batch mean, `2·(p − t) / (N·K)`.
pub fn mse<F, S, T, D, E>(
    pred: &ArrayBase<S, D>,
    targets: &ArrayBase<T, E>,
    with_grad: bool,
) -> Result<LossOutput<F>>
where
    F: Real,
    S: Data<Elem = F>,
    T: Data<Elem = F>,
    D: Dimension,
    E: Dimension,
{
    let shape = LossShape::with_targets("mse", pred.shape(), targets.shape())?;
    let mut loss = Array1::zeros(shape.n);
    let mut grad = with_grad.then(|| Array2::zeros((shape.n, shape.k)));
    mse_into(
        pred,
        targets,
        loss.view_mut(),
        grad.as_mut().map(|g| g.view_mut()),
    )?;
    Ok(LossOutput {
        loss,
        correct: None,
        grad,
    })
}

/// [`mse`] into outputs the caller owns (`loss` `[N]`, `grad` N×K); every
/// value is overwritten.
pub fn mse_into<F, S, T, D, E>(
    pred: &ArrayBase<S, D>,
    targets: &ArrayBase<T, E>,
    mut loss: ArrayViewMut1<F>,
    mut grad: Option<ArrayViewMut2<F>>,
) -> Result<()>
where
    F: Real,
    S: Data<Elem = F>,
    T: Data<Elem = F>,
    D: Dimension,
    E: Dimension,
{
    const OP: &str = "mse";
    let shape = LossShape::with_targets(OP, pred.shape(), targets.shape())?;
    check_outputs(OP, shape, &loss, None, grad.as_ref())?;
    let (p, t) = (two_d(OP, pred)?, two_d(OP, targets)?);
    let nk = F::of((shape.n * shape.k) as f64);
    let (two, k) = (F::of(2.0), F::of(shape.k as f64));
    for i in 0..shape.n {
        let mut s = F::zero();
        for j in 0..shape.k {
            let d = p[[i, j]] - t[[i, j]];
            s += d * d;
            if let Some(g) = grad.as_mut() {
                g[[i, j]] = (two * d) / nk;
            }
        }
        loss[i] = s / k;
    }
    Ok(())
}

/// The multiclass SVM loss of CS231n on `scores` (N×C) with one label per
/// row, margin 1: per row `Σ_{j≠y} max(0, s_j − s_y + 1)`; with `with_grad`
/// the gradient of the batch mean, `[m_j > 0] / N` for `j ≠ y` and minus
/// their count over N at `y` (at a margin of exactly 0 the subgradient
/// taken is 0). `correct` is 1 where the row's argmax (lowest index among
/// ties) is its label. Labels ≥ C are an [`Error::Label`].
pub fn hinge<F, S, D>(
    scores: &ArrayBase<S, D>,
    labels: &[u32],
    with_grad: bool,
) -> Result<LossOutput<F>>
where
    F: Real,
    S: Data<Elem = F>,
    D: Dimension,
{
    let shape = LossShape::with_labels("hinge", scores.shape(), &[labels.len()])?;
    let mut loss = Array1::zeros(shape.n);
    let mut correct = vec![0; shape.n];
    let mut grad = with_grad.then(|| Array2::zeros((shape.n, shape.k)));
    hinge_into(
        scores,
        labels,
        loss.view_mut(),
        &mut correct,
        grad.as_mut().map(|g| g.view_mut()),
    )?;
    Ok(LossOutput {
        loss,
        correct: Some(Array1::from(correct)),
        grad,
    })
}

/// [`hinge`] into outputs the caller owns (`loss` and `correct` `[N]`,
/// `grad` N×C); every value is overwritten.
pub fn hinge_into<F, S, D>(
    scores: &ArrayBase<S, D>,
    labels: &[u32],
    mut loss: ArrayViewMut1<F>,
    correct: &mut [u32],
    mut grad: Option<ArrayViewMut2<F>>,
) -> Result<()>
where
    F: Real,
    S: Data<Elem = F>,
    D: Dimension,
{
    const OP: &str = "hinge";
    let shape = LossShape::with_labels(OP, scores.shape(), &[labels.len()])?;
    check_labels(labels, shape.k)?;
    check_outputs(OP, shape, &loss, Some(correct), grad.as_ref())?;
    let s = two_d(OP, scores)?;
    let (n, one) = (F::of(shape.n as f64), F::one());
    for i in 0..shape.n {
        let y = labels[i] as usize;
        let sy = s[[i, y]];
        let mut total = F::zero();
        let mut active = 0u32;
        let (mut best, mut argmax) = (s[[i, 0]], 0);
        for j in 0..shape.k {
            let sj = s[[i, j]];
            // Strictly greater: ties keep the lowest index, as on the GPU.
            if sj > best {
                best = sj;
                argmax = j;
            }
            if j == y {
                continue;
            }
            let m = (sj - sy) + one;
            let on = m > F::zero();
            if on {
                total += m;
                active += 1;
            }
            if let Some(g) = grad.as_mut() {
                let indicator = if on { one } else { F::zero() };
                g[[i, j]] = indicator / n;
            }
        }
        if let Some(g) = grad.as_mut() {
            g[[i, y]] = -F::of(f64::from(active)) / n;
        }
        loss[i] = total;
        correct[i] = u32::from(argmax == y);
    }
    Ok(())
}

/// The logistic loss (binary cross-entropy on a sigmoid) of `logits` (N×K)
/// against `targets` (N×K) in [0, 1], as `torch.nn.BCEWithLogitsLoss()`:
/// per element `max(z, 0) − z·t + ln(1 + e^{−|z|})` (finite for any z), per
/// row their mean over K; with `with_grad` the gradient of the batch mean,
/// `(σ(z) − t) / (N·K)`. `correct` is 1 where every output is on its
/// target's side (`z > 0` exactly where `t > ½`). For labels y ∈ {−1, 1},
/// `t = (y + 1)/2` gives the course's `ln(1 + e^{−y·z})`. A target outside
/// [0, 1] (or NaN) is an error here; the GPU kernel takes its targets as
/// given.
pub fn logistic<F, S, T, D, E>(
    logits: &ArrayBase<S, D>,
    targets: &ArrayBase<T, E>,
    with_grad: bool,
) -> Result<LossOutput<F>>
where
    F: Real,
    S: Data<Elem = F>,
    T: Data<Elem = F>,
    D: Dimension,
    E: Dimension,
{
    let shape = LossShape::with_targets("logistic", logits.shape(), targets.shape())?;
    let mut loss = Array1::zeros(shape.n);
    let mut correct = vec![0; shape.n];
    let mut grad = with_grad.then(|| Array2::zeros((shape.n, shape.k)));
    logistic_into(
        logits,
        targets,
        loss.view_mut(),
        &mut correct,
        grad.as_mut().map(|g| g.view_mut()),
    )?;
    Ok(LossOutput {
        loss,
        correct: Some(Array1::from(correct)),
        grad,
    })
}

/// [`logistic`] into outputs the caller owns (`loss` and `correct` `[N]`,
/// `grad` N×K); every value is overwritten.
pub fn logistic_into<F, S, T, D, E>(
    logits: &ArrayBase<S, D>,
    targets: &ArrayBase<T, E>,
    mut loss: ArrayViewMut1<F>,
    correct: &mut [u32],
    mut grad: Option<ArrayViewMut2<F>>,
) -> Result<()>
where
    F: Real,
    S: Data<Elem = F>,
    T: Data<Elem = F>,
    D: Dimension,
    E: Dimension,
{
    const OP: &str = "logistic";
    let shape = LossShape::with_targets(OP, logits.shape(), targets.shape())?;
    check_outputs(OP, shape, &loss, Some(correct), grad.as_ref())?;
    let (z, t) = (two_d(OP, logits)?, two_d(OP, targets)?);
    let half = F::of(0.5);
    if let Some(((i, j), &v)) = t
        .indexed_iter()
        .find(|(_, v)| !(**v >= F::zero() && **v <= F::one()))
    {
        return Err(Error::InvalidArgument {
            name: "logistic targets",
            msg: format!(
                "every target must lie in [0, 1] (a probability of class 1), got {v} at row {i}, column {j}"
            ),
        });
    }
    let nk = F::of((shape.n * shape.k) as f64);
    let (one, k) = (F::one(), F::of(shape.k as f64));
    for i in 0..shape.n {
        let mut s = F::zero();
        let mut right = 1;
        for j in 0..shape.k {
            let (zv, tv) = (z[[i, j]], t[[i, j]]);
            // exp of a non-positive number only: never overflows.
            let e = (-zv.abs()).exp();
            s += (zv.max(F::zero()) - zv * tv) + (one + e).ln();
            if (zv > F::zero()) != (tv > half) {
                right = 0;
            }
            if let Some(g) = grad.as_mut() {
                let sig = if zv >= F::zero() {
                    one / (one + e)
                } else {
                    e / (one + e)
                };
                g[[i, j]] = (sig - tv) / nk;
            }
        }
        loss[i] = s / k;
        correct[i] = right;
    }
    Ok(())
}
