//! CPU twin of `shaders/reduce.wgsl`. The sums run in plain index order; the
//! GPU's fixed tree order differs, so results agree to rounding, not bits.

use super::Real;
use crate::error::{Error, Result};
use crate::ops::matrix_shape;
use ndarray::{Array1, ArrayBase, ArrayViewMut1, Data, Dimension, Ix2};

/// Sum over the rows of an N×C matrix: the bias gradient `db = Σ_rows dZ`.
pub fn column_sum<F, S, D>(x: &ArrayBase<S, D>) -> Result<Array1<F>>
where
    F: Real,
    S: Data<Elem = F>,
    D: Dimension,
{
    let (_, c) = matrix_shape("column_sum", "x", x.shape())?;
    let mut sums = Array1::zeros(c);
    column_sum_into(x, sums.view_mut())?;
    Ok(sums)
}

/// [`column_sum`] into `sums` (C values, overwritten).
pub fn column_sum_into<F, S, D>(x: &ArrayBase<S, D>, mut sums: ArrayViewMut1<F>) -> Result<()>
where
    F: Real,
    S: Data<Elem = F>,
    D: Dimension,
{
    let (_, c) = matrix_shape("column_sum", "x", x.shape())?;
    if sums.len() != c {
        return Err(Error::shape(
            "column_sum",
            format!("sums holds {}, x has {c} columns", sums.len()),
        ));
    }
    let x = x
        .view()
        .into_dimensionality::<Ix2>()
        .map_err(|e| Error::shape("column_sum", e))?;
    sums.fill(F::zero());
    for row in x.rows() {
        sums += &row;
    }
    Ok(())
}

/// The batch's total loss and correct count from per-row values (as written
/// by [`super::softmax_xent`]). Counts wrap at 2³², as u32 adds do on the GPU.
pub fn loss_correct_sum<F: Real>(loss: &[F], correct: &[u32]) -> Result<(F, u32)> {
    if loss.len() != correct.len() || loss.is_empty() {
        return Err(Error::shape(
            "loss_correct_sum",
            format!(
                "loss and correct must have the same non-zero length, got {} and {}",
                loss.len(),
                correct.len()
            ),
        ));
    }
    let total = loss.iter().fold(F::zero(), |s, &l| s + l);
    let count = correct.iter().fold(0u32, |s, &c| s.wrapping_add(c));
    Ok((total, count))
}
