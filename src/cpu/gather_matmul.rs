//! CPU twin of `shaders/gather_matmul.wgsl`: the gather, then the first
//! layer's forward product, composed from their own twins.

use super::{gather, matmul};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::kernels::gather::GatherOptions;
use crate::options::{Activation, MatmulOptions};
use ndarray::{Array2, ArrayView1, ArrayView2, Ix2};

/// What [`crate::kernels::GatherMatmul`] computes for one step: the rows
/// `order[start .. start + rows]` gathered as [`gather`] does (`x`, `y`),
/// and `c = act(x·wᵀ + bias)`. Returns `(c, x, y)`.
#[allow(clippy::too_many_arguments)]
pub fn gather_matmul(
    data: &Dataset,
    order: &[u32],
    start: usize,
    rows: usize,
    opts: GatherOptions,
    w: ArrayView2<f32>,
    bias: Option<ArrayView1<f32>>,
    activation: Activation,
) -> Result<(Array2<f32>, Array2<f32>, Vec<u32>)> {
    let (x, y) = gather(data, order, start, rows, opts)?;
    let c = matmul(
        &x,
        &w,
        bias,
        MatmulOptions::nt().with_activation(activation),
    )?
    .into_dimensionality::<Ix2>()
    .map_err(|e| Error::shape("gather_matmul", e))?;
    Ok((c, x, y))
}
