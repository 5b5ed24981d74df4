//! CPU twin of `shaders/layer_backward.wgsl`: the two fused products of a
//! layer's backward, each through its own twin.

use super::{matmul_activation_grad_into, matmul_ones_column_into};
use crate::error::Result;
use crate::options::{Activation, MatmulOptions};
use ndarray::{ArrayView2, ArrayViewMut1, ArrayViewMut2};

/// `dw = dzᵀ·h`, `db = Σ_rows dz` and `dz_below = (dz·w) ⊙ act'(h)`, into
/// outputs the caller owns (all overwritten): what
/// [`crate::kernels::LayerBackward`] computes in one dispatch.
pub fn layer_backward_into(
    dz: ArrayView2<f32>,
    h: ArrayView2<f32>,
    w: ArrayView2<f32>,
    activation: Activation,
    dw: ArrayViewMut2<f32>,
    db: ArrayViewMut1<f32>,
    dz_below: ArrayViewMut2<f32>,
) -> Result<()> {
    matmul_ones_column_into(&dz, &h, MatmulOptions::tn(), dw, db)?;
    matmul_activation_grad_into(&dz, &w, &h, activation, MatmulOptions::nn(), dz_below)
}
