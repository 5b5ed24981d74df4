//! CPU twin of `shaders/data.wgsl`.

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::kernels::data::GatherOptions;
use ndarray::Array2;

/// The rows `order[start .. start + rows]` of `data` as f32 inputs
/// (`byte · scale + shift`, plus a trailing 1 with `append_one`) and their
/// labels — exactly what [`crate::kernels::Gather`] writes for one step.
pub fn gather(
    data: &Dataset,
    order: &[u32],
    start: usize,
    rows: usize,
    opts: GatherOptions,
) -> Result<(Array2<f32>, Vec<u32>)> {
    let (scale, shift) = opts.affine()?;
    let picked = start
        .checked_add(rows)
        .and_then(|end| order.get(start..end))
        .ok_or_else(|| {
            Error::shape(
                "gather",
                format!(
                    "rows {start}..{start}+{rows} exceed an order of {}",
                    order.len()
                ),
            )
        })?;
    let dim = data.dim();
    let width = dim + usize::from(opts.append_one);
    let mut x = Array2::<f32>::zeros((rows, width));
    let mut y = Vec::with_capacity(rows);
    for (mut out, &e) in x.rows_mut().into_iter().zip(picked) {
        let e = e as usize;
        if e >= data.len() {
            return Err(Error::InvalidArgument {
                name: "order",
                msg: format!("names example {e}, but the dataset holds {}", data.len()),
            });
        }
        for (o, &px) in out.iter_mut().zip(data.image(e)) {
            *o = px as f32 * scale + shift;
        }
        if opts.append_one {
            out[dim] = 1.0;
        }
        y.push(data.labels[e] as u32);
    }
    Ok((x, y))
}
