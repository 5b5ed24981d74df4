//! CPU twin of `shaders/matmul.wgsl`.

use crate::error::{Error, Result};
use crate::shapes::{Activation, MatmulOptions, MatmulShape};
use ndarray::parallel::prelude::*;
use ndarray::{
    ArrayBase, ArrayD, ArrayView1, ArrayView2, ArrayView3, ArrayViewD, ArrayViewMut1,
    ArrayViewMut2, ArrayViewMutD, Axis, Data, Dimension, Ix3, s,
};

/// `act(op(a)·op(b) + bias)`, batched exactly as [`crate::kernels::matmul`]:
/// each operand is 2-D (broadcast over the batch) or 3-D `[batch, rows, cols]`.
pub fn matmul<S1, S2, D1, D2>(
    a: &ArrayBase<S1, D1>,
    b: &ArrayBase<S2, D2>,
    bias: Option<ArrayView1<f32>>,
    opts: MatmulOptions,
) -> Result<ArrayD<f32>>
where
    S1: Data<Elem = f32>,
    S2: Data<Elem = f32>,
    D1: Dimension,
    D2: Dimension,
{
    let bias_shape = bias.as_ref().map(|v| v.shape().to_vec());
    let shape = MatmulShape::resolve(a.shape(), b.shape(), bias_shape.as_deref(), &opts)?;
    let mut c = ArrayD::<f32>::zeros(shape.output_shape());
    matmul_into(a, b, bias, opts, c.view_mut())?;
    Ok(c)
}

/// [`matmul`] into an output the caller owns (the training loop reuses its
/// scratch, or writes a weight gradient straight into the flat gradient
/// buffer). `out` must have the product's output shape in standard layout;
/// it is overwritten, never read.
pub fn matmul_into<S1, S2, D1, D2>(
    a: &ArrayBase<S1, D1>,
    b: &ArrayBase<S2, D2>,
    bias: Option<ArrayView1<f32>>,
    opts: MatmulOptions,
    out: ArrayViewMutD<'_, f32>,
) -> Result<()>
where
    S1: Data<Elem = f32>,
    S2: Data<Elem = f32>,
    D1: Dimension,
    D2: Dimension,
{
    let bias_shape = bias.as_ref().map(|v| v.shape().to_vec());
    let shape = MatmulShape::resolve(a.shape(), b.shape(), bias_shape.as_deref(), &opts)?;
    if out.shape() != shape.output_shape().as_slice() {
        return Err(Error::shape(
            "matmul",
            format!(
                "the output has shape {:?}, the product {:?}",
                out.shape(),
                shape.output_shape()
            ),
        ));
    }
    let a3 = as3(a.view().into_dyn())?;
    let b3 = as3(b.view().into_dyn())?;
    let mut c = out
        .into_shape_with_order((shape.batch, shape.m, shape.n))
        .map_err(|e| Error::shape("matmul", e))?;
    for i in 0..shape.batch {
        let ai = a3.slice(s![if shape.a_batch_stride == 0 { 0 } else { i }, .., ..]);
        let bi = b3.slice(s![if shape.b_batch_stride == 0 { 0 } else { i }, .., ..]);
        let opa = if opts.trans_a { ai.t() } else { ai };
        let opb = if opts.trans_b { bi.t() } else { bi };
        let mut ci = c.slice_mut(s![i, .., ..]);
        product(opa, opb, &mut ci);
        epilogue(&mut ci, bias.as_ref(), opts.activation);
    }
    Ok(())
}

/// Adds the bias to every row and applies the activation, in place; rows
/// are shared across the cores when the output is large (a sigmoid is an
/// `exp` per element: a quarter of the MLP's CPU step if done serially).
fn epilogue(c: &mut ArrayViewMut2<f32>, bias: Option<&ArrayView1<f32>>, act: Activation) {
    if bias.is_none() && act == Activation::Identity {
        return;
    }
    let row = |mut row: ArrayViewMut1<f32>| match bias {
        Some(bv) => row.zip_mut_with(bv, |x, &bj| *x = act.apply(*x + bj)),
        None => row.mapv_inplace(|x| act.apply(x)),
    };
    if c.len() >= super::PARALLEL_MIN {
        c.axis_iter_mut(Axis(0)).into_par_iter().for_each(row);
    } else {
        c.axis_iter_mut(Axis(0)).for_each(row);
    }
}

/// A 2-D matrix as a batch of one; a 3-D one as it is.
fn as3(x: ArrayViewD<'_, f32>) -> Result<ArrayView3<'_, f32>> {
    let x = if x.ndim() == 2 {
        x.insert_axis(ndarray::Axis(0))
    } else {
        x
    };
    x.into_dimensionality::<Ix3>()
        .map_err(|e| Error::shape("matmul", e))
}

/// `c = a·b`, kept out of line: matrixmultiply's threaded GEMM, the same
/// call `a.dot(&b)` makes, writing into `c` instead of a new array.
#[inline(never)]
fn product(a: ArrayView2<f32>, b: ArrayView2<f32>, c: &mut ArrayViewMut2<f32>) {
    ndarray::linalg::general_mat_mul(1.0, &a, &b, 0.0, c);
}
