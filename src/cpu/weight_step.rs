//! CPU twin of `shaders/weight_step.wgsl`: every layer's `[dW | db] =
//! dzᵀ·[h | 1]` through the ones-column product's twin (each sum over the
//! rows in order), and the batch's totals as [`super::loss_correct_sum`]
//! adds them.

use super::{loss_correct_sum, matmul_ones_column_into};
use crate::error::Result;
use crate::options::MatmulOptions;
use ndarray::{ArrayView2, ArrayViewMut1, ArrayViewMut2};

/// One layer's operands and outputs for [`weight_step_into`].
pub struct WeightGradRows<'a, 'b> {
    pub dz: ArrayView2<'a, f32>,
    pub h: ArrayView2<'a, f32>,
    pub dw: ArrayViewMut2<'b, f32>,
    pub db: ArrayViewMut1<'b, f32>,
}

/// Every layer's weight and bias gradients (overwritten), and the batch's
/// loss sum and correct count added to `total` and `count`: what
/// [`crate::kernels::WeightStep`] computes in one dispatch.
pub fn weight_step_into(
    layers: Vec<WeightGradRows<'_, '_>>,
    loss: &[f32],
    correct: &[u32],
    total: &mut f32,
    count: &mut u32,
) -> Result<()> {
    for l in layers {
        matmul_ones_column_into(&l.dz, &l.h, MatmulOptions::tn(), l.dw, l.db)?;
    }
    let (t, c) = loss_correct_sum(loss, correct)?;
    *total += t;
    *count = count.wrapping_add(c);
    Ok(())
}
