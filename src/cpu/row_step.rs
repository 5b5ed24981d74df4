//! CPU twin of `shaders/row_step.wgsl`: the row block of an MLP's training
//! step (the forward after the first layer, softmax cross-entropy, every
//! delta down to dz1), adding every sum in the shader's order: each output's
//! terms split into `splits(n, k)` interleaved parts (k ≡ c mod s, k
//! increasing), then the parts added by the same fixed tree.

use super::{activation_grad, softmax_xent_into};
use crate::error::{Error, Result};
use crate::kernels::row_step::splits;
use crate::options::Activation;
use ndarray::{Array2, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, Zip};
use rayon::prelude::*;

fn bad(msg: impl Into<String>) -> Error {
    Error::shape("row_step", msg.into())
}

/// `out[r][j] = Σ_k x[r][k]·m[k][j]` (x `rows × k`, m `k × n`, both in
/// standard layout) in the shader's order. Rows are independent, so they
/// are shared across the cores when the product is large.
fn product(x: &[f32], k: usize, m: &[f32], n: usize, out: &mut [f32]) {
    let s = splits(n, k);
    let row = |(xr, o): (&[f32], &mut [f32])| {
        // parts[c·n + j]: part c of output j, its terms in k order.
        let mut parts = vec![0f32; s * n];
        for (c, part) in parts.chunks_mut(n).enumerate() {
            for kk in (c..k).step_by(s) {
                let xv = xr[kk];
                for (p, &mv) in part.iter_mut().zip(&m[kk * n..(kk + 1) * n]) {
                    *p += xv * mv;
                }
            }
        }
        let mut half = s / 2;
        while half > 0 {
            let (lo, hi) = parts.split_at_mut(half * n);
            for (a, &b) in lo.iter_mut().zip(&hi[..half * n]) {
                *a += b;
            }
            half /= 2;
        }
        o.copy_from_slice(&parts[..n]);
    };
    if x.len() / k.max(1) * n * k >= super::PARALLEL_MIN * 8 {
        x.par_chunks(k).zip(out.par_chunks_mut(n)).for_each(row);
    } else {
        x.chunks(k).zip(out.chunks_mut(n)).for_each(row);
    }
}

/// The row block into outputs the caller owns (all overwritten): from `h`
/// (`[rows, w0]`, the first layer's output), for the `n` layers after it
/// with `weights[i]` (`[w_{i+1}, w_i]`) and `biases[i]`: the hidden outputs
/// `hidden[i]` (`[rows, w_{i+1}]`, i < n − 1), the per-row `loss` and
/// `correct` flags and every delta `dz[i]` (`[rows, w_i]`, dz1 first,
/// dlogits last): what [`crate::kernels::RowStep`] computes in one dispatch.
#[allow(clippy::too_many_arguments)]
pub fn row_step_into(
    h: ArrayView2<f32>,
    weights: &[ArrayView2<f32>],
    biases: &[ArrayView1<f32>],
    labels: &[u32],
    activation: Activation,
    mut hidden: Vec<ArrayViewMut2<f32>>,
    mut dz: Vec<ArrayViewMut2<f32>>,
    loss: ArrayViewMut1<f32>,
    correct: &mut [u32],
) -> Result<()> {
    let (rows, w0) = h.dim();
    let n = weights.len();
    if n == 0 || biases.len() != n || hidden.len() + 1 != n || dz.len() != n + 1 {
        return Err(bad(format!(
            "{n} weights, {} biases, {} hidden outputs, {} deltas",
            biases.len(),
            hidden.len(),
            dz.len()
        )));
    }
    if activation == Activation::Identity {
        return Err(bad("the hidden layers need sigmoid or ReLU"));
    }
    let mut widths = vec![w0];
    for (i, w) in weights.iter().enumerate() {
        if w.ncols() != widths[i] || biases[i].len() != w.nrows() {
            return Err(bad(format!(
                "layer {i}: weights {:?} and bias [{}] after a width of {}",
                w.shape(),
                biases[i].len(),
                widths[i]
            )));
        }
        widths.push(w.nrows());
    }
    for (i, t) in hidden.iter().enumerate() {
        if t.dim() != (rows, widths[i + 1]) {
            return Err(bad(format!("hidden[{i}] has shape {:?}", t.shape())));
        }
    }
    for (i, t) in dz.iter().enumerate() {
        if t.dim() != (rows, widths[i]) {
            return Err(bad(format!("dz[{i}] has shape {:?}", t.shape())));
        }
    }
    let owned = |a: ArrayView2<f32>| a.as_standard_layout().into_owned();
    // acts[i]: the input of layer i of the block (h first), logits last.
    let mut acts: Vec<Array2<f32>> = vec![owned(h)];
    for i in 0..n {
        let (ins, outs) = (widths[i], widths[i + 1]);
        // m[k][j] = W[j][k]
        let m = owned(weights[i].t());
        let mut z = Array2::<f32>::zeros((rows, outs));
        let x = acts[i].as_slice().unwrap_or(&[]);
        product(
            x,
            ins,
            m.as_slice().unwrap_or(&[]),
            outs,
            z.as_slice_mut().unwrap_or(&mut []),
        );
        let last = i + 1 == n;
        for mut r in z.rows_mut() {
            r.zip_mut_with(&biases[i], |v, &b| {
                let v2 = *v + b;
                *v = if last { v2 } else { activation.apply(v2) };
            });
        }
        if !last {
            hidden[i].assign(&z);
        }
        acts.push(z);
    }
    let (top, rest) = dz.split_last_mut().ok_or_else(|| bad("no deltas"))?;
    let logits = acts.last().ok_or_else(|| bad("no layers"))?;
    softmax_xent_into(logits, labels, loss, correct, Some(top.view_mut()))?;
    let mut upper = owned(top.view());
    for i in (0..n).rev() {
        let (ins, outs) = (widths[i], widths[i + 1]);
        // The product into the layer below: m[k][j] = W[k][j], summed over
        // this layer's outputs.
        let m = owned(weights[i]);
        let mut g = Array2::<f32>::zeros((rows, ins));
        product(
            upper.as_slice().unwrap_or(&[]),
            outs,
            m.as_slice().unwrap_or(&[]),
            ins,
            g.as_slice_mut().unwrap_or(&mut []),
        );
        Zip::from(&mut g)
            .and(&acts[i])
            .for_each(|v, &y| *v = activation_grad(activation, *v, y));
        rest[i].assign(&g);
        upper = g;
    }
    Ok(())
}
