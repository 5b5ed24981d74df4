//! Finite-difference gradient check in f64.
//!
//! The GPU kernels are tested against the CPU twins; this proves the twins
//! right. Each model's loss and analytic gradient are computed by the same
//! generic twins the GPU is compared with ([`softmax_xent`],
//! [`activation_bias_backward`], [`column_sum`], …), run in `f64`; then for a
//! sample of coordinates θ_i of every parameter tensor the analytic
//! derivative is compared with the centred difference
//!
//! ```text
//! numeric_i = (L(θ + h_i e_i) − L(θ − h_i e_i)) / (2 h_i),   h_i = step · max(1, |θ_i|)
//! ```
//!
//! (the denominator is the step actually represented in f64, so rounding
//! θ_i ± h_i does not bias the quotient). Alone, its error is O(h²)
//! truncation plus O(ε·|L|/h) rounding, and no single h keeps both far
//! below 1e-6 for gradients as small as the first layer's (~1e-5): rounding
//! alone was 1e-6 relative at h = 1e-5. So each coordinate takes two centred
//! differences, at h_i and h_i/2, and combines them by Richardson
//! extrapolation, `(4·D(h/2) − D(h)) / 3`, which cancels the h² term: with
//! `step` = 1e-3 the truncation is O(h⁴) and the rounding about 1e-12, and
//! the linear classifier and the MLPs of `tests/cpu/gradcheck.rs` check to 2e-8
//! relative or better. The figure of merit per coordinate is
//!
//! ```text
//! rel_error = |analytic − numeric| / max(|analytic|, |numeric|, floor)
//! ```
//!
//! ReLU makes the loss piecewise smooth: a difference taken across a kink
//! (a pre-activation changing sign between θ − h and θ + h) measures nothing.
//! The check compares which pre-activations are positive at θ and at θ ± h,
//! and where a kink lies within reach it shrinks `h_i` (÷10, up to 6 times)
//! until none does; a coordinate sitting on a kink is reported as skipped,
//! never silently passed.
//!
//! ```no_run
//! use ndarray::Array2;
//! use wgpu_train::cpu::gradcheck::{GradCheckOptions, check_linear_softmax};
//! # fn main() -> wgpu_train::Result<()> {
//! let w = Array2::<f64>::from_shape_fn((10, 3073), |(i, j)| 1e-3 * ((i * 7 + j) % 13) as f64);
//! let x = Array2::<f64>::from_shape_fn((4, 3072), |(i, j)| ((i + j) % 5) as f64 / 5.0);
//! let report = check_linear_softmax(&w, &x, &[3, 1, 4, 1], &GradCheckOptions::default())?;
//! println!("{report}");
//! assert!(report.max_rel_error() <= 1e-6);
//! # Ok(()) }
//! ```

use super::{Real, activate, activation_bias_backward, column_sum, loss_correct_sum, softmax_xent};
use crate::error::{Error, Result};
use crate::options::Activation;
use ndarray::{Array1, Array2, ArrayD, ArrayView2, Ix1, Ix2, s};
use rand::{SeedableRng, rngs::StdRng};
use std::fmt;

/// How the check samples coordinates and steps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GradCheckOptions {
    /// Coordinates checked per parameter tensor: every one of a tensor this
    /// small, else a seeded random sample of this many.
    pub samples_per_tensor: usize,
    /// Relative step: coordinate i moves by `h_i = step · max(1, |θ_i|)` and
    /// by `h_i / 2` (shrunk further near a ReLU kink).
    pub step: f64,
    /// Smallest denominator of the relative error, so that a gradient of
    /// exactly 0 computed as 1e-17 does not count as a 100% error.
    pub floor: f64,
    /// Seed of the coordinate sample.
    pub seed: u64,
}

impl Default for GradCheckOptions {
    fn default() -> Self {
        GradCheckOptions {
            samples_per_tensor: 32,
            step: 1e-3,
            floor: 1e-10,
            seed: 0x6ead,
        }
    }
}

/// One parameter tensor: its value and the analytic gradient of the loss.
#[derive(Clone, Debug)]
pub struct Parameter {
    pub name: String,
    pub value: ArrayD<f64>,
    pub grad: ArrayD<f64>,
}

/// The loss at one parameter point, and which kinks (ReLU pre-activations)
/// are on the positive side there: empty for a smooth loss.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    pub loss: f64,
    pub kinks: Vec<bool>,
}

/// One checked coordinate.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Coordinate {
    /// Flat (row-major) index into the tensor.
    pub index: usize,
    pub analytic: f64,
    pub numeric: f64,
    /// The step finally used.
    pub h: f64,
    pub rel_error: f64,
}

/// The check of one parameter tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorCheck {
    pub name: String,
    /// Elements in the tensor.
    pub len: usize,
    /// Coordinates compared.
    pub checked: usize,
    /// Coordinates whose step had to shrink to stay clear of a ReLU kink.
    pub kinks_avoided: usize,
    /// Coordinates left out because they sit on a kink at every step tried.
    pub skipped: usize,
    /// The coordinate with the largest relative error.
    pub worst: Coordinate,
}

/// The result of a gradient check, tensor by tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct GradCheckReport {
    pub tensors: Vec<TensorCheck>,
}

impl GradCheckReport {
    /// The largest relative error over every checked coordinate.
    pub fn max_rel_error(&self) -> f64 {
        self.tensors
            .iter()
            .map(|t| t.worst.rel_error)
            .fold(0.0, f64::max)
    }

    /// Coordinates compared, over all tensors.
    pub fn checked(&self) -> usize {
        self.tensors.iter().map(|t| t.checked).sum()
    }
}

impl fmt::Display for GradCheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for t in &self.tensors {
            let w = &t.worst;
            writeln!(
                f,
                "{:<16} {:>6} of {:>6} checked, max rel error {:.2e} at [{}] (analytic {:+.6e}, numeric {:+.6e}, h {:.0e}); kinks avoided {}, skipped {}",
                t.name,
                t.checked,
                t.len,
                w.rel_error,
                w.index,
                w.analytic,
                w.numeric,
                w.h,
                t.kinks_avoided,
                t.skipped
            )?;
        }
        write!(
            f,
            "max relative error {:.2e} over {} coordinates",
            self.max_rel_error(),
            self.checked()
        )
    }
}

/// `|a − n| / max(|a|, |n|, floor)`, and 0 when they are equal.
pub fn rel_error(analytic: f64, numeric: f64, floor: f64) -> f64 {
    if analytic == numeric {
        return 0.0;
    }
    (analytic - numeric).abs() / analytic.abs().max(numeric.abs()).max(floor)
}

/// How many times a step may shrink (÷10) to clear a kink.
const KINK_RETRIES: usize = 6;

/// Checks the analytic gradients in `params` against centred differences of
/// `eval`, which computes the loss (and kink pattern) at the given values of
/// all parameters, in the order of `params`.
pub fn check_gradients<E>(
    params: &[Parameter],
    mut eval: E,
    opts: &GradCheckOptions,
) -> Result<GradCheckReport>
where
    E: FnMut(&[ArrayD<f64>]) -> Result<Evaluation>,
{
    if !(opts.step > 0.0 && opts.step.is_finite()) || opts.samples_per_tensor == 0 {
        return Err(Error::InvalidArgument {
            name: "GradCheckOptions",
            msg: format!(
                "step must be positive and finite and samples_per_tensor at least 1, got {opts:?}"
            ),
        });
    }
    for p in params {
        if p.value.shape() != p.grad.shape() {
            return Err(Error::shape(
                "gradcheck",
                format!(
                    "{}: value has shape {:?} but its gradient {:?}",
                    p.name,
                    p.value.shape(),
                    p.grad.shape()
                ),
            ));
        }
    }
    let mut values: Vec<ArrayD<f64>> = params.iter().map(|p| p.value.clone()).collect();
    let base = eval(&values)?;
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let mut tensors = Vec::with_capacity(params.len());
    for (t, p) in params.iter().enumerate() {
        let len = p.value.len();
        let indices: Vec<usize> = if len <= opts.samples_per_tensor {
            (0..len).collect()
        } else {
            let mut v = rand::seq::index::sample(&mut rng, len, opts.samples_per_tensor).into_vec();
            v.sort_unstable();
            v
        };
        let mut check = TensorCheck {
            name: p.name.clone(),
            len,
            checked: 0,
            kinks_avoided: 0,
            skipped: 0,
            worst: Coordinate::default(),
        };
        for i in indices {
            let theta = flat(&p.value, i);
            let analytic = flat(&p.grad, i);
            let mut h = opts.step * theta.abs().max(1.0);
            let mut found = None;
            for attempt in 0..=KINK_RETRIES {
                let wide = centred(&mut eval, &mut values, (t, i), theta, h)?;
                let narrow = centred(&mut eval, &mut values, (t, i), theta, h / 2.0)?;
                if let (Some(wide), Some(narrow)) = (wide.quotient(&base), narrow.quotient(&base)) {
                    // Richardson: the h² terms of the two cancel.
                    found = Some(((4.0 * narrow - wide) / 3.0, attempt > 0));
                    break;
                }
                h /= 10.0;
            }
            let Some((numeric, shrunk)) = found else {
                check.skipped += 1;
                continue;
            };
            check.checked += 1;
            check.kinks_avoided += usize::from(shrunk);
            let c = Coordinate {
                index: i,
                analytic,
                numeric,
                h,
                rel_error: rel_error(analytic, numeric, opts.floor),
            };
            // NaN counts as the worst error there is.
            if check.checked == 1 || c.rel_error.is_nan() || c.rel_error > check.worst.rel_error {
                check.worst = c;
            }
        }
        tensors.push(check);
    }
    Ok(GradCheckReport { tensors })
}

/// The two evaluations of one centred difference.
struct Centred {
    plus: Evaluation,
    minus: Evaluation,
    /// The step actually taken, `(θ + h) − (θ − h)` as represented in f64.
    width: f64,
}

impl Centred {
    /// The difference quotient, or `None` when θ ± h lies across a kink.
    fn quotient(&self, base: &Evaluation) -> Option<f64> {
        (self.plus.kinks == base.kinks && self.minus.kinks == base.kinks)
            .then(|| (self.plus.loss - self.minus.loss) / self.width)
    }
}

/// Evaluates at θ + h and θ − h in coordinate `i` of tensor `t`, then puts
/// θ back.
fn centred<E>(
    eval: &mut E,
    values: &mut [ArrayD<f64>],
    (t, i): (usize, usize),
    theta: f64,
    h: f64,
) -> Result<Centred>
where
    E: FnMut(&[ArrayD<f64>]) -> Result<Evaluation>,
{
    let (up, down) = (theta + h, theta - h);
    set_flat(&mut values[t], i, up);
    let plus = eval(values);
    set_flat(&mut values[t], i, down);
    let minus = eval(values);
    set_flat(&mut values[t], i, theta);
    Ok(Centred {
        plus: plus?,
        minus: minus?,
        width: up - down,
    })
}

fn flat(a: &ArrayD<f64>, i: usize) -> f64 {
    a.iter().nth(i).copied().unwrap_or(f64::NAN)
}

fn set_flat(a: &mut ArrayD<f64>, i: usize, v: f64) {
    if let Some(x) = a.iter_mut().nth(i) {
        *x = v;
    }
}

// ------------------------------------------------------------------ models

/// Mean softmax cross-entropy over the batch, from the per-row twin.
fn mean_loss<F: Real>(logits: &Array2<F>, labels: &[u32]) -> Result<(F, Array2<F>)> {
    let out = softmax_xent(logits, labels)?;
    let (total, _) = loss_correct_sum(&out.loss.to_vec(), &out.correct.to_vec())?;
    let dlogits = out
        .dlogits
        .ok_or_else(|| Error::shape("gradcheck", "softmax_xent returned no gradient"))?;
    Ok((total / F::of(labels.len() as f64), dlogits))
}

/// `a·bᵀ`, out of line (see `cpu::matmul`).
#[inline(never)]
fn dot_t<F: Real>(a: ArrayView2<F>, b: ArrayView2<F>) -> Array2<F> {
    a.dot(&b.t())
}

/// `aᵀ·b`, out of line.
#[inline(never)]
fn t_dot<F: Real>(a: ArrayView2<F>, b: ArrayView2<F>) -> Array2<F> {
    a.t().dot(&b)
}

/// `a·b`, out of line.
#[inline(never)]
fn dot<F: Real>(a: ArrayView2<F>, b: ArrayView2<F>) -> Array2<F> {
    a.dot(&b)
}

/// Mean loss and gradient of the linear softmax classifier
/// `scores = [x, 1]·Wᵀ`: W is C×(D+1) with the bias folded in as its last
/// column (CS231n's convention), x is N×D.
pub fn linear_softmax_loss<F: Real>(
    w: ArrayView2<F>,
    x: ArrayView2<F>,
    labels: &[u32],
) -> Result<(F, Array2<F>)> {
    let d = x.ncols();
    if w.ncols() != d + 1 {
        return Err(Error::shape(
            "linear_softmax_loss",
            format!(
                "W must be C×(D+1) = C×{} for x of {} features (bias as last column), got {:?}",
                d + 1,
                d,
                w.shape()
            ),
        ));
    }
    let weights = w.slice(s![.., ..d]);
    let bias = w.column(d);
    let scores = dot_t(x, weights) + bias;
    let (loss, dscores) = mean_loss(&scores, labels)?;
    let mut dw = Array2::zeros(w.raw_dim());
    dw.slice_mut(s![.., ..d]).assign(&t_dot(dscores.view(), x));
    dw.column_mut(d).assign(&column_sum(&dscores)?);
    Ok((loss, dw))
}

/// A multilayer perceptron's parameters, nn.Linear style: `weights[l]` is
/// out×in, `biases[l]` has out elements. The activation follows every layer
/// but the last, whose outputs are the logits.
#[derive(Clone, Debug, PartialEq)]
pub struct MlpParams<F> {
    pub weights: Vec<Array2<F>>,
    pub biases: Vec<Array1<F>>,
}

/// The forward and backward pass of an MLP on one batch.
#[derive(Clone, Debug, PartialEq)]
pub struct MlpPass<F> {
    /// Mean loss over the batch.
    pub loss: F,
    pub weight_grads: Vec<Array2<F>>,
    pub bias_grads: Vec<Array1<F>>,
    /// The activations of each hidden layer (N × width).
    pub hidden: Vec<Array2<F>>,
}

/// Forward and backward of the MLP through the CPU twins: each layer is
/// `h = act(x·Wᵀ + b)`, the last without activation, then mean softmax
/// cross-entropy; backward uses [`activation_bias_backward`] for the hidden
/// layers as the GPU will.
pub fn mlp_loss<F: Real>(
    params: &MlpParams<F>,
    x: ArrayView2<F>,
    labels: &[u32],
    activation: Activation,
) -> Result<MlpPass<F>> {
    let layers = params.weights.len();
    if layers == 0 || params.biases.len() != layers {
        return Err(Error::shape(
            "mlp_loss",
            format!(
                "need at least one layer and one bias per weight, got {} weights and {} biases",
                layers,
                params.biases.len()
            ),
        ));
    }
    let mut width = x.ncols();
    for (l, (w, b)) in params.weights.iter().zip(&params.biases).enumerate() {
        if w.ncols() != width || b.len() != w.nrows() {
            return Err(Error::shape(
                "mlp_loss",
                format!(
                    "layer {l}: W is {:?} and b has {} elements, but its input has {width} features",
                    w.shape(),
                    b.len()
                ),
            ));
        }
        width = w.nrows();
    }

    let mut hidden: Vec<Array2<F>> = Vec::with_capacity(layers - 1);
    let mut logits = None;
    for l in 0..layers {
        let input = if l == 0 { x } else { hidden[l - 1].view() };
        let z = dot_t(input, params.weights[l].view()) + &params.biases[l];
        if l + 1 == layers {
            logits = Some(z);
        } else {
            hidden.push(z.mapv(|v| activate(activation, v)));
        }
    }
    let logits = logits.ok_or_else(|| Error::shape("mlp_loss", "no output layer"))?;
    let (loss, mut dz) = mean_loss(&logits, labels)?;

    let mut weight_grads = vec![Array2::zeros((0, 0)); layers];
    let mut bias_grads = vec![Array1::zeros(0); layers];
    bias_grads[layers - 1] = column_sum(&dz)?;
    for l in (0..layers).rev() {
        let input = if l == 0 { x } else { hidden[l - 1].view() };
        weight_grads[l] = t_dot(dz.view(), input);
        if l > 0 {
            let dh = dot(dz.view(), params.weights[l].view());
            let (dz_prev, db_prev) = activation_bias_backward(&dh, &hidden[l - 1], activation)?;
            bias_grads[l - 1] = db_prev;
            dz = dz_prev;
        }
    }
    Ok(MlpPass {
        loss,
        weight_grads,
        bias_grads,
        hidden,
    })
}

/// Which hidden units are positive, row by row: the ReLU kink pattern.
fn relu_pattern(hidden: &[Array2<f64>], activation: Activation) -> Vec<bool> {
    if activation != Activation::Relu {
        return Vec::new();
    }
    hidden
        .iter()
        .flat_map(|h| h.iter().map(|&v| v > 0.0))
        .collect()
}

/// Gradient check of [`linear_softmax_loss`]. The bias column is reported
/// (and sampled) as its own tensor, so it is always covered.
pub fn check_linear_softmax(
    w: &Array2<f64>,
    x: &Array2<f64>,
    labels: &[u32],
    opts: &GradCheckOptions,
) -> Result<GradCheckReport> {
    let (_, dw) = linear_softmax_loss(w.view(), x.view(), labels)?;
    let d = x.ncols();
    let split = |a: &Array2<f64>| {
        (
            a.slice(s![.., ..d]).to_owned().into_dyn(),
            a.column(d).to_owned().into_dyn(),
        )
    };
    let (w_value, b_value) = split(w);
    let (w_grad, b_grad) = split(&dw);
    let params = [
        Parameter {
            name: "W[:, :D]".into(),
            value: w_value,
            grad: w_grad,
        },
        Parameter {
            name: "W[:, D] (bias)".into(),
            value: b_value,
            grad: b_grad,
        },
    ];
    let mut full = w.clone();
    check_gradients(
        &params,
        |v| {
            let weights = v[0]
                .view()
                .into_dimensionality::<Ix2>()
                .map_err(|e| Error::shape("gradcheck", e))?;
            full.slice_mut(s![.., ..d]).assign(&weights);
            full.column_mut(d).assign(
                &v[1]
                    .view()
                    .into_shape_with_order(w.nrows())
                    .map_err(|e| Error::shape("gradcheck", e))?,
            );
            let (loss, _) = linear_softmax_loss(full.view(), x.view(), labels)?;
            Ok(Evaluation {
                loss,
                kinks: Vec::new(),
            })
        },
        opts,
    )
}

/// Gradient check of [`mlp_loss`]: every weight and bias tensor, named
/// `W1`, `b1`, `W2`, ….
pub fn check_mlp(
    params: &MlpParams<f64>,
    x: &Array2<f64>,
    labels: &[u32],
    activation: Activation,
    opts: &GradCheckOptions,
) -> Result<GradCheckReport> {
    let pass = mlp_loss(params, x.view(), labels, activation)?;
    let layers = params.weights.len();
    let mut checked = Vec::with_capacity(2 * layers);
    for l in 0..layers {
        checked.push(Parameter {
            name: format!("W{}", l + 1),
            value: params.weights[l].clone().into_dyn(),
            grad: pass.weight_grads[l].clone().into_dyn(),
        });
        checked.push(Parameter {
            name: format!("b{}", l + 1),
            value: params.biases[l].clone().into_dyn(),
            grad: pass.bias_grads[l].clone().into_dyn(),
        });
    }
    let mut current = params.clone();
    check_gradients(
        &checked,
        |v| {
            for l in 0..layers {
                current.weights[l].assign(
                    &v[2 * l]
                        .view()
                        .into_dimensionality::<Ix2>()
                        .map_err(|e| Error::shape("gradcheck", e))?,
                );
                current.biases[l].assign(
                    &v[2 * l + 1]
                        .view()
                        .into_dimensionality::<Ix1>()
                        .map_err(|e| Error::shape("gradcheck", e))?,
                );
            }
            let pass = mlp_loss(&current, x.view(), labels, activation)?;
            Ok(Evaluation {
                loss: pass.loss,
                kinks: relu_pattern(&pass.hidden, activation),
            })
        },
        opts,
    )
}

// ------------------------------------------------ the linear SVM classifier

/// Mean multiclass SVM loss over the batch, from the per-row twin
/// ([`super::loss::hinge`]), and its gradient with respect to the scores.
fn mean_hinge<F: Real>(scores: &Array2<F>, labels: &[u32]) -> Result<(F, Array2<F>)> {
    let out = super::loss::hinge(scores, labels, true)?;
    let correct = out.correct.map(|c| c.to_vec()).unwrap_or_default();
    let (total, _) = loss_correct_sum(&out.loss.to_vec(), &correct)?;
    let dscores = out
        .grad
        .ok_or_else(|| Error::shape("gradcheck", "hinge returned no gradient"))?;
    Ok((total / F::of(labels.len() as f64), dscores))
}

/// `[x, 1]·Wᵀ` for W C×(D+1) with the bias as its last column.
fn linear_scores<F: Real>(
    w: ArrayView2<F>,
    x: ArrayView2<F>,
    op: &'static str,
) -> Result<Array2<F>> {
    let d = x.ncols();
    if w.ncols() != d + 1 {
        return Err(Error::shape(
            op,
            format!(
                "W must be C×(D+1) = C×{} for x of {} features (bias as last column), got {:?}",
                d + 1,
                d,
                w.shape()
            ),
        ));
    }
    Ok(dot_t(x, w.slice(s![.., ..d])) + w.column(d))
}

/// Mean loss and gradient of the linear SVM classifier (CS231n's multiclass
/// SVM, margin 1) `scores = [x, 1]·Wᵀ`: W is C×(D+1) with the bias folded in
/// as its last column, x is N×D. The twin of [`linear_softmax_loss`] with
/// the hinge loss.
pub fn linear_svm_loss<F: Real>(
    w: ArrayView2<F>,
    x: ArrayView2<F>,
    labels: &[u32],
) -> Result<(F, Array2<F>)> {
    let d = x.ncols();
    let scores = linear_scores(w, x, "linear_svm_loss")?;
    let (loss, dscores) = mean_hinge(&scores, labels)?;
    let mut dw = Array2::zeros(w.raw_dim());
    dw.slice_mut(s![.., ..d]).assign(&t_dot(dscores.view(), x));
    dw.column_mut(d).assign(&column_sum(&dscores)?);
    Ok((loss, dw))
}

/// Which margins `s_j − s_y + 1` (j ≠ y) are positive, row by row: the
/// hinge's kink pattern. A difference taken across a change of it measures
/// nothing, so [`check_gradients`] shrinks its step until none changes.
pub fn hinge_pattern(scores: &Array2<f64>, labels: &[u32]) -> Vec<bool> {
    let mut out = Vec::with_capacity(scores.len());
    for (row, &y) in scores.rows().into_iter().zip(labels) {
        let sy = row[y as usize];
        for (j, &sj) in row.iter().enumerate() {
            if j != y as usize {
                out.push((sj - sy) + 1.0 > 0.0);
            }
        }
    }
    out
}

/// Gradient check of [`linear_svm_loss`], the bias column as its own
/// tensor, with the hinge's kinks avoided as ReLU's are.
pub fn check_linear_svm(
    w: &Array2<f64>,
    x: &Array2<f64>,
    labels: &[u32],
    opts: &GradCheckOptions,
) -> Result<GradCheckReport> {
    let (_, dw) = linear_svm_loss(w.view(), x.view(), labels)?;
    let d = x.ncols();
    let split = |a: &Array2<f64>| {
        (
            a.slice(s![.., ..d]).to_owned().into_dyn(),
            a.column(d).to_owned().into_dyn(),
        )
    };
    let (w_value, b_value) = split(w);
    let (w_grad, b_grad) = split(&dw);
    let params = [
        Parameter {
            name: "W[:, :D]".into(),
            value: w_value,
            grad: w_grad,
        },
        Parameter {
            name: "W[:, D] (bias)".into(),
            value: b_value,
            grad: b_grad,
        },
    ];
    let mut full = w.clone();
    check_gradients(
        &params,
        |v| {
            let weights = v[0]
                .view()
                .into_dimensionality::<Ix2>()
                .map_err(|e| Error::shape("gradcheck", e))?;
            full.slice_mut(s![.., ..d]).assign(&weights);
            full.column_mut(d).assign(
                &v[1]
                    .view()
                    .into_shape_with_order(w.nrows())
                    .map_err(|e| Error::shape("gradcheck", e))?,
            );
            let (loss, _) = linear_svm_loss(full.view(), x.view(), labels)?;
            let scores = linear_scores(full.view(), x.view(), "gradcheck")?;
            Ok(Evaluation {
                loss,
                kinks: hinge_pattern(&scores, labels),
            })
        },
        opts,
    )
}
