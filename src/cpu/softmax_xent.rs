//! CPU twin of `shaders/softmax_xent.wgsl`: per-row softmax cross-entropy,
//! its gradient and the argmax-equals-label flag, in the same order of
//! operations as the shader's one-thread-per-row version.

use super::Real;
use crate::error::{Error, Result};
use crate::options::{SoftmaxXentShape, check_labels};
use ndarray::{
    Array1, Array2, ArrayBase, ArrayView1, ArrayViewMut1, ArrayViewMut2, Data, Dimension, Ix2,
};

/// What [`softmax_xent`] and [`softmax_xent_eval`] return.
#[derive(Clone, Debug, PartialEq)]
pub struct SoftmaxXentOutput<F> {
    /// Per-row loss `log Σ_j exp(x_j) − x_label`, computed as
    /// `ln(Σ_j exp(x_j − m)) − (x_label − m)` with `m` the row maximum.
    pub loss: Array1<F>,
    /// 1 where the row's argmax (lowest index among ties) is its label.
    pub correct: Array1<u32>,
    /// `(softmax − onehot) / N`, the gradient of the mean loss; `None` from
    /// the forward-only [`softmax_xent_eval`].
    pub dlogits: Option<Array2<F>>,
}

/// Loss, correctness and `dlogits = (softmax − onehot) / N` for logits N×C
/// and one label per row. Labels ≥ C are an [`Error::Label`].
pub fn softmax_xent<F, S, D>(
    logits: &ArrayBase<S, D>,
    labels: &[u32],
) -> Result<SoftmaxXentOutput<F>>
where
    F: Real,
    S: Data<Elem = F>,
    D: Dimension,
{
    xent(logits, labels, true)
}

/// [`softmax_xent`] without the gradient, for evaluation.
pub fn softmax_xent_eval<F, S, D>(
    logits: &ArrayBase<S, D>,
    labels: &[u32],
) -> Result<SoftmaxXentOutput<F>>
where
    F: Real,
    S: Data<Elem = F>,
    D: Dimension,
{
    xent(logits, labels, false)
}

fn xent<F, S, D>(
    logits: &ArrayBase<S, D>,
    labels: &[u32],
    with_grad: bool,
) -> Result<SoftmaxXentOutput<F>>
where
    F: Real,
    S: Data<Elem = F>,
    D: Dimension,
{
    let shape = SoftmaxXentShape::resolve(logits.shape(), &[labels.len()])?;
    let mut loss = Array1::zeros(shape.n);
    let mut correct = vec![0; shape.n];
    let mut dlogits = with_grad.then(|| Array2::zeros((shape.n, shape.c)));
    softmax_xent_into(
        logits,
        labels,
        loss.view_mut(),
        &mut correct,
        dlogits.as_mut().map(|d| d.view_mut()),
    )?;
    Ok(SoftmaxXentOutput {
        loss,
        correct: Array1::from(correct),
        dlogits,
    })
}

/// [`softmax_xent`] (with `dlogits`) or [`softmax_xent_eval`] (without)
/// into outputs the caller owns: `loss` and `correct` hold N values,
/// `dlogits` is N×C. Every output value is overwritten.
pub fn softmax_xent_into<F, S, D>(
    logits: &ArrayBase<S, D>,
    labels: &[u32],
    mut loss: ArrayViewMut1<F>,
    correct: &mut [u32],
    mut dlogits: Option<ArrayViewMut2<F>>,
) -> Result<()>
where
    F: Real,
    S: Data<Elem = F>,
    D: Dimension,
{
    let shape = SoftmaxXentShape::resolve(logits.shape(), &[labels.len()])?;
    check_labels(labels, shape.c)?;
    let d_ok = dlogits
        .as_ref()
        .is_none_or(|d| d.shape() == [shape.n, shape.c]);
    if loss.len() != shape.n || correct.len() != shape.n || !d_ok {
        return Err(Error::shape(
            "softmax_xent",
            format!(
                "outputs for {}×{} logits: loss [{}], correct [{}], dlogits {:?}",
                shape.n,
                shape.c,
                loss.len(),
                correct.len(),
                dlogits.as_ref().map(|d| d.shape().to_vec())
            ),
        ));
    }
    let logits = logits
        .view()
        .into_dimensionality::<Ix2>()
        .map_err(|e| Error::shape("softmax_xent", e))?;
    let n = F::of(shape.n as f64);
    for (i, row) in logits.rows().into_iter().enumerate() {
        let label = labels[i] as usize;
        let (m, argmax) = row_max(row);
        let sum = row.iter().fold(F::zero(), |s, &x| s + (x - m).exp());
        loss[i] = sum.ln() - (row[label] - m);
        correct[i] = u32::from(argmax == label);
        if let Some(d) = dlogits.as_mut() {
            for (j, (out, &x)) in d.row_mut(i).iter_mut().zip(row.iter()).enumerate() {
                let onehot = if j == label { F::one() } else { F::zero() };
                *out = ((x - m).exp() / sum - onehot) / n;
            }
        }
    }
    Ok(())
}

/// The twin of the fused v3 (`SoftmaxXent::with_totals`): [`softmax_xent_into`],
/// then the batch's loss and correct count, as [`super::loss_correct_sum`]
/// adds them, added to `total` and `count` (an epoch's running totals).
pub fn softmax_xent_totals_into<F, S, D>(
    logits: &ArrayBase<S, D>,
    labels: &[u32],
    loss: ArrayViewMut1<F>,
    correct: &mut [u32],
    dlogits: Option<ArrayViewMut2<F>>,
    total: &mut F,
    count: &mut u32,
) -> Result<()>
where
    F: Real,
    S: Data<Elem = F>,
    D: Dimension,
{
    let mut loss = loss;
    softmax_xent_into(logits, labels, loss.view_mut(), correct, dlogits)?;
    let values: Vec<F> = loss.iter().copied().collect();
    let (t, c) = super::loss_correct_sum(&values, correct)?;
    *total += t;
    *count = count.wrapping_add(c);
    Ok(())
}

/// The row maximum seeded from element 0 (so a row of −∞ or of huge values
/// needs no special start value) and its lowest index. Out of line: an
/// inlined float max-reduction once crashed rustc's LLVM backend (DESIGN.md).
#[inline(never)]
fn row_max<F: Real>(row: ArrayView1<F>) -> (F, usize) {
    let mut best = row[0];
    let mut arg = 0;
    for (j, &x) in row.iter().enumerate().skip(1) {
        // Strictly greater: ties keep the lowest index, as on the GPU.
        if x > best {
            best = x;
            arg = j;
        }
    }
    (best, arg)
}
