//! CPU twin of `shaders/reduce.wgsl`. The sums run in plain index order; the
//! GPU's fixed tree order differs, so results agree to rounding, not bits.

use super::{Real, activation_grad};
use crate::error::{Error, Result};
use crate::options::{Activation, check_same_shape, matrix_shape};
use ndarray::{Array1, Array2, ArrayBase, ArrayViewMut1, ArrayViewMut2, Data, Dimension, Ix2, Zip};

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

/// The backward of `h = act(z)`, `z = x·Wᵀ + b`, up to the bias: returns
/// `dZ` (N×C, as [`activation_backward`]) and the bias gradient
/// `db = Σ_rows dZ` (C, as [`column_sum`]). The GPU does both in one pass.
pub fn activation_bias_backward<F, S1, S2, D1, D2>(
    dh: &ArrayBase<S1, D1>,
    h: &ArrayBase<S2, D2>,
    activation: Activation,
) -> Result<(Array2<F>, Array1<F>)>
where
    F: Real,
    S1: Data<Elem = F>,
    S2: Data<Elem = F>,
    D1: Dimension,
    D2: Dimension,
{
    let (n, c) = matrix_shape("activation_bias_backward", "dH", dh.shape())?;
    let mut dz = Array2::zeros((n, c));
    let mut db = Array1::zeros(c);
    activation_bias_backward_into(dh, h, activation, dz.view_mut(), db.view_mut())?;
    Ok((dz, db))
}

/// [`activation_bias_backward`] into outputs the caller owns: `dz` N×C and
/// `db` C, both overwritten.
pub fn activation_bias_backward_into<F, S1, S2, D1, D2>(
    dh: &ArrayBase<S1, D1>,
    h: &ArrayBase<S2, D2>,
    activation: Activation,
    mut dz: ArrayViewMut2<F>,
    db: ArrayViewMut1<F>,
) -> Result<()>
where
    F: Real,
    S1: Data<Elem = F>,
    S2: Data<Elem = F>,
    D1: Dimension,
    D2: Dimension,
{
    const OP: &str = "activation_bias_backward";
    matrix_shape(OP, "dH", dh.shape())?;
    check_same_shape(OP, "dH", dh.shape(), "h", h.shape())?;
    check_same_shape(OP, "dH", dh.shape(), "dZ", dz.shape())?;
    let dh = dh
        .view()
        .into_dimensionality::<Ix2>()
        .map_err(|e| Error::shape(OP, e))?;
    let h = h
        .view()
        .into_dimensionality::<Ix2>()
        .map_err(|e| Error::shape(OP, e))?;
    Zip::from(&mut dz)
        .and(&dh)
        .and(&h)
        .for_each(|o, &g, &y| *o = activation_grad(activation, g, y));
    column_sum_into(&dz, db)
}
