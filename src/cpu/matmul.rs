//! CPU twin of `shaders/matmul.wgsl`.

use crate::error::{Error, Result};
use crate::ops::{MatmulOptions, MatmulShape};
use ndarray::{
    Array2, ArrayBase, ArrayD, ArrayView1, ArrayView2, ArrayView3, ArrayViewD, Data, Dimension,
    Ix3, s,
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
    let a3 = as3(a.view().into_dyn())?;
    let b3 = as3(b.view().into_dyn())?;
    let mut c = ndarray::Array3::<f32>::zeros((shape.batch, shape.m, shape.n));
    for i in 0..shape.batch {
        let ai = a3.slice(s![if shape.a_batch_stride == 0 { 0 } else { i }, .., ..]);
        let bi = b3.slice(s![if shape.b_batch_stride == 0 { 0 } else { i }, .., ..]);
        let opa = if opts.trans_a { ai.t() } else { ai };
        let opb = if opts.trans_b { bi.t() } else { bi };
        let mut ci = c.slice_mut(s![i, .., ..]);
        ci.assign(&product(opa, opb));
        let act = opts.activation;
        match &bias {
            Some(bv) => {
                for mut row in ci.rows_mut() {
                    row.zip_mut_with(bv, |x, &bj| *x = act.apply(*x + bj));
                }
            }
            None => ci.mapv_inplace(|x| act.apply(x)),
        }
    }
    c.into_shape_with_order(shape.output_shape())
        .map_err(|e| Error::shape("matmul", e))
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

/// The product itself, kept out of line: matrixmultiply's threaded GEMM.
#[inline(never)]
fn product(a: ArrayView2<f32>, b: ArrayView2<f32>) -> Array2<f32> {
    a.dot(&b)
}
