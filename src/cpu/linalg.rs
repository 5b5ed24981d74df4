//! CPU twin of `shaders/linalg.wgsl` (dot products and norms in the
//! shader's fixed order, linear combinations, the per-row middle of the
//! softmax cross-entropy's Hessian-vector product), and the full-batch
//! formulas they serve: [`loss_grad`] and [`hvp`] of the L2-regularised
//! linear softmax classifier, the reference that the finite-difference
//! tests prove right in `f64`.
//!
//! With W the C×D' weights (bias folded in), X the N×D' inputs, `P =
//! softmax(X·Wᵀ)` row by row and `Y` the one-hot labels:
//!
//! ```text
//! L(W)  = (1/N) Σ_n −log P[n, y_n]  +  (λ/2)·‖W‖²
//! ∇L    = (P − Y)ᵀ·X / N  +  λ·W
//! H·V   = Rᵀ·X / N  +  λ·V,    R[n] = (diag(p_n) − p_n p_nᵀ)·(X·Vᵀ)[n]
//! ```
//!
//! (p_n is row n of P; the Hessian does not depend on the labels.)
//!
//! The L2 term covers the bias column too, as in the course's
//! `reg·‖W‖²` (λ = 2·reg).

use super::{Real, softmax_xent};
use crate::error::{Error, Result};
use crate::kernels::linalg::DOT_LANES;
use ndarray::{Array2, ArrayView2, ArrayViewMut2, Zip};

fn same_len(op: &'static str, a: usize, b: usize) -> Result<()> {
    if a != b || a == 0 {
        return Err(Error::shape(
            op,
            format!("vectors must have the same non-zero length, got {a} and {b}"),
        ));
    }
    Ok(())
}

/// `a · b`, added in the order of the shader's `dots`: lane `t` of 256 sums
/// elements `t, t + 256, …` in order, then the lanes are added as a binary
/// tree. Besides matching the GPU, the tree keeps the rounding of long sums
/// near that of 128-term ones.
pub fn dot<F: Real>(a: &[F], b: &[F]) -> Result<F> {
    same_len("dot", a.len(), b.len())?;
    let mut lanes = [F::zero(); DOT_LANES];
    for (lane, acc) in lanes.iter_mut().enumerate() {
        let mut i = lane;
        while i < a.len() {
            *acc += a[i] * b[i];
            i += DOT_LANES;
        }
    }
    let mut half = DOT_LANES / 2;
    while half > 0 {
        for l in 0..half {
            lanes[l] += lanes[l + half];
        }
        half /= 2;
    }
    Ok(lanes[0])
}

/// `‖x‖₂`, as `√(x · x)` with [`dot`]'s order.
pub fn norm<F: Real>(x: &[F]) -> Result<F> {
    Ok(dot(x, x)?.sqrt())
}

/// `out = Σ_t c_t·v_t`, terms added in order (the shader's `combine`), into
/// `out`, which none of the terms may alias (Rust's borrows see to that; for
/// an update in place use [`combine`]).
pub fn combine_into<F: Real>(out: &mut [F], terms: &[(F, &[F])]) -> Result<()> {
    if terms.is_empty() {
        return Err(Error::shape("combine", "at least one term is needed"));
    }
    for (_, v) in terms {
        same_len("combine", out.len(), v.len())?;
    }
    for (i, o) in out.iter_mut().enumerate() {
        let mut acc = F::zero();
        for &(c, v) in terms {
            acc += c * v[i];
        }
        *o = acc;
    }
    Ok(())
}

/// `Σ_t c_t·v_t` as a new vector (the terms may include the vector the
/// caller will overwrite with it).
pub fn combine<F: Real>(terms: &[(F, &[F])]) -> Result<Vec<F>> {
    let n = terms.first().map_or(0, |(_, v)| v.len());
    let mut out = vec![F::zero(); n];
    combine_into(&mut out, terms)?;
    Ok(out)
}

/// `y ← alpha·x + y` (the shader's two-term combine `1·y + alpha·x`).
pub fn axpy<F: Real>(alpha: F, x: &[F], y: &mut [F]) -> Result<()> {
    same_len("axpy", x.len(), y.len())?;
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi = F::zero() + *yi + alpha * xi;
    }
    Ok(())
}

/// `x ← alpha·x`.
pub fn scale<F: Real>(alpha: F, x: &mut [F]) -> Result<()> {
    same_len("scale", x.len(), x.len())?;
    for xi in x.iter_mut() {
        *xi = alpha * *xi;
    }
    Ok(())
}

/// `r[n] = (diag(p) − p pᵀ)·u[n]·inv_n` with `p = softmax(logits[n])`, row
/// by row (logits and u are `[rows, C]`, any strides).
pub fn xent_hvp_rows<F: Real>(
    logits: ArrayView2<F>,
    u: ArrayView2<F>,
    inv_n: F,
) -> Result<Array2<F>> {
    let mut r = Array2::zeros(logits.raw_dim());
    xent_hvp_rows_into(logits, u, inv_n, r.view_mut())?;
    Ok(r)
}

/// [`xent_hvp_rows`] into `r` (`[rows, C]`, overwritten).
pub fn xent_hvp_rows_into<F: Real>(
    logits: ArrayView2<F>,
    u: ArrayView2<F>,
    inv_n: F,
    mut r: ArrayViewMut2<F>,
) -> Result<()> {
    const OP: &str = "xent_hvp_rows";
    crate::options::matrix_shape(OP, "logits", logits.shape())?;
    crate::options::check_same_shape(OP, "u", u.shape(), "logits", logits.shape())?;
    crate::options::check_same_shape(OP, "r", r.shape(), "logits", logits.shape())?;
    if !(inv_n.is_finite() && inv_n > F::zero()) {
        return Err(Error::InvalidArgument {
            name: "inv_n",
            msg: format!("must be finite and > 0, got {}", inv_n.to_f64()),
        });
    }
    Zip::from(logits.rows())
        .and(u.rows())
        .and(r.rows_mut())
        .for_each(|z, u, mut r| {
            // The shader's three passes: max from element 0, exp-sum, outputs.
            let m = z.iter().skip(1).fold(z[0], |m, &x| m.max(x));
            let s = z.iter().fold(F::zero(), |s, &x| s + (x - m).exp());
            let pu = z
                .iter()
                .zip(u.iter())
                .fold(F::zero(), |acc, (&x, &uj)| acc + (x - m).exp() / s * uj);
            for ((o, &x), &uj) in r.iter_mut().zip(z.iter()).zip(u.iter()) {
                *o = (x - m).exp() / s * (uj - pu) * inv_n;
            }
        });
    Ok(())
}

fn check_problem<F: Real>(
    op: &'static str,
    x: &ArrayView2<F>,
    labels: &[u32],
    w: &ArrayView2<F>,
) -> Result<()> {
    if x.nrows() == 0 || x.nrows() != labels.len() || x.ncols() != w.ncols() || w.nrows() == 0 {
        return Err(Error::shape(
            op,
            format!(
                "x {:?}, {} labels and W {:?} do not fit (x is N×D', W is C×D', one label per row)",
                x.shape(),
                labels.len(),
                w.shape()
            ),
        ));
    }
    Ok(())
}

/// Mean softmax cross-entropy of `x·Wᵀ` against `labels`, plus
/// `(l2/2)·‖W‖²`, and its gradient `(P − Y)ᵀ·X/N + l2·W`.
pub fn loss_grad<F: Real>(
    x: ArrayView2<F>,
    labels: &[u32],
    w: ArrayView2<F>,
    l2: F,
) -> Result<(F, Array2<F>)> {
    check_problem("loss_grad", &x, labels, &w)?;
    let logits = x.dot(&w.t());
    let out = softmax_xent(&logits, labels)?;
    let dlogits = out
        .dlogits
        .ok_or_else(|| Error::shape("loss_grad", "softmax_xent returned no gradient"))?;
    let n = F::of(x.nrows() as f64);
    let data = out.loss.iter().fold(F::zero(), |s, &l| s + l) / n;
    let ww = w.iter().fold(F::zero(), |s, &v| s + v * v);
    let mut grad = dlogits.t().dot(&x);
    grad.scaled_add(l2, &w);
    Ok((data + l2 * ww / F::of(2.0), grad))
}

/// The Hessian-vector product of [`loss_grad`]'s loss at `W` with `V`
/// (both C×D'): `Rᵀ·X + l2·V` with `R = xent_hvp_rows(X·Wᵀ, X·Vᵀ, 1/N)`.
/// No Hessian is formed.
pub fn hvp<F: Real>(
    x: ArrayView2<F>,
    w: ArrayView2<F>,
    v: ArrayView2<F>,
    l2: F,
) -> Result<Array2<F>> {
    let labels = vec![0; x.nrows()];
    check_problem("hvp", &x, &labels, &w)?;
    crate::options::check_same_shape("hvp", "V", v.shape(), "W", w.shape())?;
    let logits = x.dot(&w.t());
    let u = x.dot(&v.t());
    let r = xent_hvp_rows(logits.view(), u.view(), F::one() / F::of(x.nrows() as f64))?;
    let mut hv = r.t().dot(&x);
    hv.scaled_add(l2, &v);
    Ok(hv)
}
