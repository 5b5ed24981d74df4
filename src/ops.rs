//! Operation descriptions shared by the GPU launchers and their CPU twins, so
//! both sides accept exactly the same options and reject the same shapes with
//! the same errors.

use crate::error::{Error, Result};

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
                if x >= 0.0 {
                    1.0 / (1.0 + (-x).exp())
                } else {
                    let e = x.exp();
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
