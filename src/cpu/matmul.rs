//! CPU twin of `shaders/matmul.wgsl`.

use crate::error::{Error, Result};
use crate::options::{Activation, MatmulOptions, MatmulShape};
use ndarray::parallel::prelude::*;
use ndarray::{
    Array1, Array2, ArrayBase, ArrayD, ArrayView1, ArrayView2, ArrayView3, ArrayViewD,
    ArrayViewMut1, ArrayViewMut2, ArrayViewMutD, Axis, Data, Dimension, Ix2, Ix3, s,
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

/// The twin of the ones-column epilogue
/// ([`crate::kernels::MatmulEpilogue::OnesColumn`]): `C = op(a)·op(b)` and
/// `sums[m] = Σ_k op(a)[m, k]`, added in k order (with A = dZ stored
/// rows × out and `tn`, the bias gradient, summed over the rows in order as
/// [`super::column_sum`] does). Unbatched.
pub fn matmul_ones_column<S1, S2>(
    a: &ArrayBase<S1, Ix2>,
    b: &ArrayBase<S2, Ix2>,
    opts: MatmulOptions,
) -> Result<(Array2<f32>, Array1<f32>)>
where
    S1: Data<Elem = f32>,
    S2: Data<Elem = f32>,
{
    let shape = fused_shape(a.shape(), b.shape(), &opts)?;
    let mut c = Array2::zeros((shape.m, shape.n));
    let mut sums = Array1::zeros(shape.m);
    matmul_ones_column_into(a, b, opts, c.view_mut(), sums.view_mut())?;
    Ok((c, sums))
}

/// [`matmul_ones_column`] into outputs the caller owns (both overwritten).
pub fn matmul_ones_column_into<S1, S2>(
    a: &ArrayBase<S1, Ix2>,
    b: &ArrayBase<S2, Ix2>,
    opts: MatmulOptions,
    mut c: ArrayViewMut2<'_, f32>,
    mut sums: ArrayViewMut1<'_, f32>,
) -> Result<()>
where
    S1: Data<Elem = f32>,
    S2: Data<Elem = f32>,
{
    let shape = fused_shape(a.shape(), b.shape(), &opts)?;
    if c.shape() != [shape.m, shape.n] || sums.len() != shape.m {
        return Err(Error::shape(
            "matmul",
            format!(
                "outputs must be [{}, {}] and [{}], got {:?} and [{}]",
                shape.m,
                shape.n,
                shape.m,
                c.shape(),
                sums.len()
            ),
        ));
    }
    let opa = if opts.trans_a { a.t() } else { a.view() };
    let opb = if opts.trans_b { b.t() } else { b.view() };
    product(opa, opb, &mut c);
    // Σ_k in k order: k runs over the columns of op(A), the rows of A (TN).
    sums.fill(0.0);
    for col in opa.columns() {
        sums += &col;
    }
    Ok(())
}

/// The twin of the activation-gradient epilogue
/// ([`crate::kernels::MatmulEpilogue::ActivationGrad`]):
/// `C = (op(a)·op(b)) ⊙ act'(h)`, `h = act(Z)` with C's shape. Unbatched.
pub fn matmul_activation_grad<S1, S2, S3>(
    a: &ArrayBase<S1, Ix2>,
    b: &ArrayBase<S2, Ix2>,
    h: &ArrayBase<S3, Ix2>,
    activation: Activation,
    opts: MatmulOptions,
) -> Result<Array2<f32>>
where
    S1: Data<Elem = f32>,
    S2: Data<Elem = f32>,
    S3: Data<Elem = f32>,
{
    let shape = fused_shape(a.shape(), b.shape(), &opts)?;
    let mut c = Array2::zeros((shape.m, shape.n));
    matmul_activation_grad_into(a, b, h, activation, opts, c.view_mut())?;
    Ok(c)
}

/// [`matmul_activation_grad`] into an output the caller owns (overwritten).
pub fn matmul_activation_grad_into<S1, S2, S3>(
    a: &ArrayBase<S1, Ix2>,
    b: &ArrayBase<S2, Ix2>,
    h: &ArrayBase<S3, Ix2>,
    activation: Activation,
    opts: MatmulOptions,
    mut c: ArrayViewMut2<'_, f32>,
) -> Result<()>
where
    S1: Data<Elem = f32>,
    S2: Data<Elem = f32>,
    S3: Data<Elem = f32>,
{
    let shape = fused_shape(a.shape(), b.shape(), &opts)?;
    if c.shape() != [shape.m, shape.n] || h.shape() != [shape.m, shape.n] {
        return Err(Error::shape(
            "matmul",
            format!(
                "C and h must be [{}, {}], got {:?} and {:?}",
                shape.m,
                shape.n,
                c.shape(),
                h.shape()
            ),
        ));
    }
    let opa = if opts.trans_a { a.t() } else { a.view() };
    let opb = if opts.trans_b { b.t() } else { b.view() };
    product(opa, opb, &mut c);
    let grad = |(o, &y): (&mut f32, &f32)| *o = super::activation_grad(activation, *o, y);
    if c.len() >= super::PARALLEL_MIN {
        ndarray::Zip::from(&mut c)
            .and(h)
            .par_for_each(|o, &y| grad((o, &y)));
    } else {
        c.iter_mut().zip(h.iter()).for_each(grad);
    }
    Ok(())
}

/// The shape of an unbatched fused product (no bias, no forward activation).
fn fused_shape(a: &[usize], b: &[usize], opts: &MatmulOptions) -> Result<MatmulShape> {
    if opts.activation != Activation::Identity {
        return Err(Error::shape(
            "matmul",
            "a fused backward epilogue applies no forward activation; leave opts.activation at identity",
        ));
    }
    MatmulShape::resolve(a, b, None, opts)
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
