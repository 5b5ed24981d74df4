//! Shapes and options shared by the GPU launchers and their CPU twins, so
//! both sides accept exactly the same options and reject the same shapes with
//! the same errors.

use crate::error::{Error, Result};
use std::fmt;

/// Elementwise activation fused into a matmul epilogue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Activation {
    #[default]
    Identity,
    /// `1 / (1 + e^-x)`, evaluated without overflow for large |x|.
    Sigmoid,
    /// `max(x, 0)`.
    Relu,
}

impl Activation {
    /// The value of the shader's `ACTIVATION` override constant.
    pub(crate) fn shader_code(self) -> f64 {
        match self {
            Activation::Identity => 0.0,
            Activation::Sigmoid => 1.0,
            Activation::Relu => 2.0,
        }
    }

    /// Applies the activation to one value, exactly as the shaders do.
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Activation::Identity => x,
            Activation::Sigmoid => {
                // The shader's two exact branches, with their one exp
                // (always of −|x|) taken first: the same bits, and no
                // unpredictable jump per element on the CPU.
                let e = (-x.abs()).exp();
                if x >= 0.0 {
                    1.0 / (1.0 + e)
                } else {
                    e / (1.0 + e)
                }
            }
            Activation::Relu => {
                if x > 0.0 {
                    x
                } else {
                    0.0
                }
            }
        }
    }
}

/// Options of `matmul`: `C = act(op(A)·op(B) + bias)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MatmulOptions {
    /// A is stored K×M and used transposed.
    pub trans_a: bool,
    /// B is stored N×K and used transposed.
    pub trans_b: bool,
    /// Activation applied after the bias.
    pub activation: Activation,
}

impl MatmulOptions {
    /// `C = A·B`.
    pub fn nn() -> Self {
        Self::default()
    }
    /// `C = A·Bᵀ` (a linear layer's forward with W stored out×in).
    pub fn nt() -> Self {
        MatmulOptions {
            trans_b: true,
            ..Self::default()
        }
    }
    /// `C = Aᵀ·B` (a linear layer's weight gradient).
    pub fn tn() -> Self {
        MatmulOptions {
            trans_a: true,
            ..Self::default()
        }
    }
    /// `C = Aᵀ·Bᵀ`.
    pub fn tt() -> Self {
        MatmulOptions {
            trans_a: true,
            trans_b: true,
            ..Self::default()
        }
    }
    /// The same product with an activation.
    pub fn with_activation(self, activation: Activation) -> Self {
        MatmulOptions { activation, ..self }
    }
}

/// The sizes of one batched product, resolved from operand shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatmulShape {
    pub batch: usize,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    /// Elements between consecutive batches of A (0: one A for all batches).
    pub a_batch_stride: usize,
    /// Elements between consecutive batches of B (0: one B for all batches).
    pub b_batch_stride: usize,
}

impl MatmulShape {
    /// Resolves `op(A)·op(B)` from stored shapes. Each operand is 2-D (one
    /// matrix, broadcast over the batch) or 3-D (batch, rows, cols); batched
    /// operands must agree on the batch size. `bias`, if any, must hold N.
    pub fn resolve(
        a: &[usize],
        b: &[usize],
        bias: Option<&[usize]>,
        opts: &MatmulOptions,
    ) -> Result<Self> {
        let split = |name: &str, s: &[usize]| -> Result<(Option<usize>, usize, usize)> {
            match *s {
                [r, c] => Ok((None, r, c)),
                [bt, r, c] => Ok((Some(bt), r, c)),
                _ => Err(Error::shape(
                    "matmul",
                    format!("{name} must be 2-D or 3-D (batch, rows, cols), got shape {s:?}"),
                )),
            }
        };
        let (ab, ar, ac) = split("A", a)?;
        let (bb, br, bc) = split("B", b)?;
        let (m, ka) = if opts.trans_a { (ac, ar) } else { (ar, ac) };
        let (kb, n) = if opts.trans_b { (bc, br) } else { (br, bc) };
        if ka != kb {
            return Err(Error::shape(
                "matmul",
                format!(
                    "inner dimensions differ: op(A) is {m}×{ka} (A {a:?}, trans_a={}) but op(B) is {kb}×{n} (B {b:?}, trans_b={})",
                    opts.trans_a, opts.trans_b
                ),
            ));
        }
        let batch = match (ab, bb) {
            (Some(x), Some(y)) if x != y => {
                return Err(Error::shape(
                    "matmul",
                    format!("batch sizes differ: A has {x}, B has {y}"),
                ));
            }
            (Some(x), _) | (None, Some(x)) => x,
            (None, None) => 1,
        };
        if batch == 0 || m == 0 || n == 0 || ka == 0 {
            return Err(Error::shape(
                "matmul",
                format!("every size must be at least 1, got batch={batch} M={m} N={n} K={ka}"),
            ));
        }
        if let Some(bs) = bias
            && bs != [n]
        {
            return Err(Error::shape(
                "matmul",
                format!("bias must have shape [{n}] (one value per column of C), got {bs:?}"),
            ));
        }
        Ok(MatmulShape {
            batch,
            m,
            n,
            k: ka,
            a_batch_stride: if ab.is_some() { m * ka } else { 0 },
            b_batch_stride: if bb.is_some() { ka * n } else { 0 },
        })
    }

    /// Shape of C: `[M, N]` when neither operand is batched, else `[batch, M, N]`.
    pub fn output_shape(&self) -> Vec<usize> {
        if self.a_batch_stride == 0 && self.b_batch_stride == 0 && self.batch == 1 {
            vec![self.m, self.n]
        } else {
            vec![self.batch, self.m, self.n]
        }
    }

    /// Floating-point operations: 2·batch·M·N·K (a multiply and an add each).
    pub fn flops(&self) -> u64 {
        2 * (self.batch * self.m * self.n * self.k) as u64
    }
}

/// The sizes of one softmax cross-entropy: logits N×C (rows are examples),
/// one label per row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SoftmaxXentShape {
    pub n: usize,
    pub c: usize,
}

impl SoftmaxXentShape {
    /// Checks that `logits` is N×C and `labels` holds N values.
    pub fn resolve(logits: &[usize], labels: &[usize]) -> Result<Self> {
        let [n, c] = *logits else {
            return Err(Error::shape(
                "softmax_xent",
                format!("logits must be 2-D (rows, classes), got shape {logits:?}"),
            ));
        };
        if n == 0 || c == 0 {
            return Err(Error::shape(
                "softmax_xent",
                format!("logits need at least one row and one class, got shape {logits:?}"),
            ));
        }
        if labels != [n] {
            return Err(Error::shape(
                "softmax_xent",
                format!("labels must have shape [{n}] (one per row of logits), got {labels:?}"),
            ));
        }
        Ok(SoftmaxXentShape { n, c })
    }

    /// Bytes the fused kernel moves through memory: logits and labels in;
    /// per-row loss and correct flag out; with the gradient, dlogits out too.
    pub fn bytes(&self, with_grad: bool) -> u64 {
        let (n, c) = (self.n as u64, self.c as u64);
        let base = 4 * (n * c + n) + 8 * n;
        if with_grad { base + 4 * n * c } else { base }
    }
}

/// Checks that every label is a class index below `classes`; the error names
/// the first bad row and its value.
pub fn check_labels(labels: &[u32], classes: usize) -> Result<()> {
    match labels.iter().position(|&l| l as usize >= classes) {
        None => Ok(()),
        Some(row) => Err(Error::Label {
            row,
            label: labels[row].to_string(),
            classes,
        }),
    }
}

/// Converts labels of any integer type (datasets store them as `u8`) to the
/// `u32` the kernels read, checking each is a class index below `classes`.
/// Negative values and values past `u32::MAX` are errors, not wrapped.
pub fn class_labels<L>(labels: &[L], classes: usize) -> Result<Vec<u32>>
where
    L: Copy + TryInto<u32> + fmt::Display,
{
    labels
        .iter()
        .enumerate()
        .map(|(row, &l)| match l.try_into() {
            Ok(v) if (v as usize) < classes => Ok(v),
            _ => Err(Error::Label {
                row,
                label: l.to_string(),
                classes,
            }),
        })
        .collect()
}

/// Checks that a backward operand has the shape of the activations it pairs
/// with (elementwise ops: dH and h must match exactly).
pub(crate) fn check_same_shape(
    op: &'static str,
    a_name: &str,
    a: &[usize],
    b_name: &str,
    b: &[usize],
) -> Result<()> {
    if a != b {
        return Err(Error::shape(
            op,
            format!("{a_name} has shape {a:?} but {b_name} has shape {b:?}; they must match"),
        ));
    }
    Ok(())
}

/// The rows × columns of a 2-D operand, as the column reductions read it.
pub(crate) fn matrix_shape(
    op: &'static str,
    name: &str,
    shape: &[usize],
) -> Result<(usize, usize)> {
    match *shape {
        [r, c] if r > 0 && c > 0 => Ok((r, c)),
        _ => Err(Error::shape(
            op,
            format!("{name} must be a non-empty 2-D matrix (rows, columns), got shape {shape:?}"),
        )),
    }
}

/// The sizes of one of the losses of `shaders/loss.wgsl`: an N×K input (N
/// rows, K predictions, scores or logits each) and, for the elementwise
/// losses, targets of the same shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LossShape {
    pub n: usize,
    pub k: usize,
}

impl LossShape {
    /// Checks that `input` is N×K with N, K ≥ 1 and N·K within the u32
    /// indices of the shader; `op` names the loss in the error.
    pub fn resolve(op: &'static str, input: &[usize]) -> Result<Self> {
        let [n, k] = *input else {
            return Err(Error::shape(
                op,
                format!("the input must be 2-D (rows, columns), got shape {input:?}"),
            ));
        };
        if n == 0 || k == 0 {
            return Err(Error::shape(
                op,
                format!("the input needs at least one row and one column, got shape {input:?}"),
            ));
        }
        if n.checked_mul(k).is_none_or(|e| e > u32::MAX as usize) {
            return Err(Error::shape(
                op,
                format!("{n}×{k} elements do not fit the kernel's u32 indices"),
            ));
        }
        Ok(LossShape { n, k })
    }

    /// Also checks that `targets` has the input's shape.
    pub fn with_targets(op: &'static str, input: &[usize], targets: &[usize]) -> Result<Self> {
        let shape = Self::resolve(op, input)?;
        if targets != input {
            return Err(Error::shape(
                op,
                format!("targets must have the input's shape {input:?}, got {targets:?}"),
            ));
        }
        Ok(shape)
    }

    /// Also checks that `labels` holds one value per row.
    pub fn with_labels(op: &'static str, input: &[usize], labels: &[usize]) -> Result<Self> {
        let shape = Self::resolve(op, input)?;
        if labels != [shape.n] {
            return Err(Error::shape(
                op,
                format!(
                    "labels must have shape [{}] (one per row), got {labels:?}",
                    shape.n
                ),
            ));
        }
        Ok(shape)
    }
}
