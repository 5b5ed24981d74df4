//! CPU twin of `shaders/activation.wgsl` (and the activation derivative the
//! fused backward in `reduce` shares with it).

use super::Real;
use crate::error::Result;
use crate::options::{Activation, check_same_shape};
use ndarray::{ArrayBase, ArrayD, Data, Dimension, Zip};

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
