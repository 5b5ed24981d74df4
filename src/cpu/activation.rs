//! CPU twin of `shaders/activation.wgsl`, and of the activation-fused column
//! sum in `shaders/reduce.wgsl`.

use super::{Real, column_sum_into};
use crate::error::{Error, Result};
use crate::ops::{Activation, check_same_shape, matrix_shape};
use ndarray::{
    Array1, Array2, ArrayBase, ArrayD, ArrayViewMut1, ArrayViewMut2, Data, Dimension, Ix2, Zip,
};

/// The activation of `x`, as [`Activation::apply`] but in any [`Real`].
pub fn activate<F: Real>(activation: Activation, x: F) -> F {
    match activation {
        Activation::Identity => x,
        Activation::Sigmoid => {
            // Both branches keep exp's argument ≤ 0, so ±1e3 gives 0 or 1.
            if x >= F::zero() {
                F::one() / (F::one() + (-x).exp())
            } else {
                let e = x.exp();
                e / (F::one() + e)
            }
        }
        Activation::Relu => {
            if x > F::zero() {
                x
            } else {
                F::zero()
            }
        }
    }
}

/// `dz` for one element, from the upstream gradient `dh` and the stored
/// activation `h = act(z)`: the derivative is written in terms of the output
/// so the forward pass need not keep `z`. ReLU's derivative at 0 is taken
/// as 0 (as PyTorch does); `h > 0` is the same test as `z > 0`.
pub fn activation_grad<F: Real>(activation: Activation, dh: F, h: F) -> F {
    match activation {
        Activation::Identity => dh,
        Activation::Sigmoid => dh * (h * (F::one() - h)),
        Activation::Relu => {
            if h > F::zero() {
                dh
            } else {
                F::zero()
            }
        }
    }
}

/// `dZ = dH ⊙ act'(z)` from the stored activations `h = act(z)`: sigmoid
/// `dH ⊙ h(1 − h)`, ReLU `dH ⊙ [h > 0]`. `dh` and `h` must have one shape.
pub fn activation_backward<F, S1, S2, D1, D2>(
    dh: &ArrayBase<S1, D1>,
    h: &ArrayBase<S2, D2>,
    activation: Activation,
) -> Result<ArrayD<F>>
where
    F: Real,
    S1: Data<Elem = F>,
    S2: Data<Elem = F>,
    D1: Dimension,
    D2: Dimension,
{
    check_same_shape("activation_backward", "dH", dh.shape(), "h", h.shape())?;
    let dh = dh.view().into_dyn();
    let h = h.view().into_dyn();
    Ok(Zip::from(&dh)
        .and(&h)
        .map_collect(|&g, &y| activation_grad(activation, g, y)))
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
