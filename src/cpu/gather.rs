//! CPU twin of `shaders/gather.wgsl`.

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::kernels::gather::GatherOptions;
use ndarray::Array2;
use rayon::prelude::*;

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
    let width = data.dim() + usize::from(opts.append_one);
    let mut x = vec![0.0; rows * width];
    let mut y = Vec::with_capacity(rows);
    gather_into(data, order, start, rows, opts, &mut x, &mut y)?;
    let x = Array2::from_shape_vec((rows, width), x).map_err(|e| Error::shape("gather", e))?;
    Ok((x, y))
}

/// [`gather`] into buffers the caller keeps from step to step (the training
/// loop): `x` must hold exactly `rows × width` values; `y` is cleared and
/// refilled. No allocation once `y` has grown to a batch.
pub fn gather_into(
    data: &Dataset,
    order: &[u32],
    start: usize,
    rows: usize,
    opts: GatherOptions,
    x: &mut [f32],
    y: &mut Vec<u32>,
) -> Result<()> {
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
    if x.len() != rows * width {
        return Err(Error::shape(
            "gather",
            format!(
                "x holds {} values, {rows} rows of {width} need {}",
                x.len(),
                rows * width
            ),
        ));
    }
    // Every index is checked first, so the (possibly parallel) fill below
    // cannot fail half way.
    if let Some(&e) = picked.iter().find(|&&e| e as usize >= data.len()) {
        return Err(Error::InvalidArgument {
            name: "order",
            msg: format!("names example {e}, but the dataset holds {}", data.len()),
        });
    }
    let fill = |(out, &e): (&mut [f32], &u32)| {
        // Plain slices, so the conversion compiles to SIMD.
        for (o, &px) in out[..dim].iter_mut().zip(data.image(e as usize)) {
            *o = px as f32 * scale + shift;
        }
        if opts.append_one {
            out[dim] = 1.0;
        }
    };
    // `width` > 0: a Dataset has at least one pixel per example. Rows are
    // shared across the cores for a full batch (the reads miss the cache:
    // the examples are picked at random from tens of megabytes).
    if x.len() >= super::PARALLEL_MIN {
        x.par_chunks_exact_mut(width).zip(picked).for_each(fill);
    } else {
        x.chunks_exact_mut(width).zip(picked).for_each(fill);
    }
    y.clear();
    y.extend(picked.iter().map(|&e| data.labels[e as usize] as u32));
    Ok(())
}
