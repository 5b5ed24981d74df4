//! The two models, each written once as a [`Program`]: a list of tensor
//! operations that the CPU runner executes with the ndarray twins and the
//! GPU runner records as dispatches. Whole runs on both devices therefore do
//! the same work in the same order, and GPU-vs-CPU parity is a test.
//!
//! Parameters and gradients each live in one flat buffer (per-tensor offsets
//! from [`Model::parameters`]), so the optimizer is one dispatch.
//!
//! Each model has two training programs: the reference
//! ([`Model::train_program`]), one op per unfused kernel, and the fused one
//! ([`Model::fused_train_program`]), whose ops each map to one fused kernel
//! ([`Op::WeightGrad`], [`Op::LayerBackward`], [`Op::SoftmaxXent`] with `totals`):
//! the same arithmetic in fewer dispatches (see `TrainConfig::fused`).

mod linear;
mod mlp;

pub use linear::{LinearLoss, LinearSoftmax};
pub use mlp::Mlp;

use crate::options::{Activation, MatmulOptions};

/// A tensor of a [`Program`], by index into [`Program::tensors`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TensorId(pub usize);

/// Where a tensor lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Region {
    /// The minibatch input rows (written by the gather).
    Input,
    /// A window of the flat parameter buffer at `offset`.
    Param { offset: usize },
    /// The same window of the flat gradient buffer.
    Grad { offset: usize },
    /// Scratch owned by the program (activations, their gradients).
    Work,
    /// Per-row u32 flags (1 where the prediction is right).
    WorkU32,
}

/// A tensor's name (for messages), shape and home.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorSpec {
    pub name: String,
    pub shape: Vec<usize>,
    pub region: Region,
}

/// One operation; the runners map each to a kernel and its CPU twin.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// `out = act(op(a)·op(b) + bias)`.
    Matmul {
        a: TensorId,
        b: TensorId,
        bias: Option<TensorId>,
        out: TensorId,
        opts: MatmulOptions,
    },
    /// Per-row loss and correctness against the minibatch labels, and
    /// `dlogits = (softmax − onehot)/N` unless evaluating. With `totals`
    /// (fused), the batch's loss and correct count are also added to the
    /// epoch's totals in the same kernel, and the runner adds nothing itself.
    SoftmaxXent {
        logits: TensorId,
        loss: TensorId,
        correct: TensorId,
        dlogits: Option<TensorId>,
        totals: bool,
    },
    /// The multiclass SVM (hinge) loss against the minibatch labels
    /// (`kernels::Hinge`, margin 1): per-row loss and correctness, and
    /// `dscores`, the gradient of the mean loss, unless evaluating. The
    /// runner adds the batch's totals.
    Hinge {
        scores: TensorId,
        loss: TensorId,
        correct: TensorId,
        dscores: Option<TensorId>,
    },
    /// `dz = dh ⊙ act'(h)` and `db = Σ_rows dz`, fused.
    ActivationBiasBackward {
        dh: TensorId,
        h: TensorId,
        dz: TensorId,
        db: TensorId,
        activation: Activation,
    },
    /// `sums = Σ_rows x`.
    ColumnSum { x: TensorId, sums: TensorId },
    /// Fused: `dw = dzᵀ·h` and `db = Σ_rows dz` in one product (h with a
    /// virtual column of ones): a layer's weight and bias gradients.
    WeightGrad {
        dz: TensorId,
        h: TensorId,
        dw: TensorId,
        db: TensorId,
    },
    /// Fused: a hidden layer's whole backward in one kernel: [`Op::WeightGrad`]
    /// (`dw`, `db`) and `dz_below = (dz·w) ⊙ act'(h)`, the gradient at the
    /// pre-activation of the layer below, whose output `h` is.
    LayerBackward {
        dz: TensorId,
        h: TensorId,
        w: TensorId,
        dw: TensorId,
        db: TensorId,
        dz_below: TensorId,
        activation: Activation,
    },
    /// Fused (issue 23's D2): an MLP's row block in one kernel. From `h`,
    /// the first layer's output, for the layers after it (`weights`,
    /// `biases`): the rest of the forward (`hidden` outputs, then the
    /// logits, kept in the kernel), softmax cross-entropy (`loss`,
    /// `correct`) and every delta `dz` down to the first layer's (`dz[0]`;
    /// the last is dlogits). The runner allocates `h`, `hidden` and `dz`
    /// in one buffer on the GPU, which the kernel binds once.
    RowStep {
        h: TensorId,
        weights: Vec<TensorId>,
        biases: Vec<TensorId>,
        hidden: Vec<TensorId>,
        dz: Vec<TensorId>,
        loss: TensorId,
        correct: TensorId,
        activation: Activation,
    },
    /// Fused (issue 23's D3): every layer's [`Op::WeightGrad`] in one
    /// kernel, and the batch's loss and correct count (`loss`, `correct`)
    /// added to the epoch's totals.
    WeightGrads {
        layers: Vec<LayerGrad>,
        loss: TensorId,
        correct: TensorId,
    },
}

/// One layer of an [`Op::WeightGrads`]: its delta, what it read, and its
/// weight and bias gradients.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerGrad {
    pub dz: TensorId,
    pub h: TensorId,
    pub dw: TensorId,
    pub db: TensorId,
}

impl Op {
    /// The tensors a [`Op::RowStep`] keeps in its one buffer (none for the
    /// other ops).
    pub fn arena(&self) -> Vec<TensorId> {
        match self {
            Op::RowStep { h, hidden, dz, .. } => {
                let mut ids = vec![*h];
                ids.extend(hidden);
                ids.extend(dz);
                ids
            }
            _ => Vec::new(),
        }
    }
}

/// A training step or an evaluation pass for a batch of `rows` examples.
#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    pub rows: usize,
    pub tensors: Vec<TensorSpec>,
    pub ops: Vec<Op>,
    pub input: TensorId,
    /// Per-row losses `[rows]` and correctness flags `[rows]`, summed into
    /// the epoch's totals by the runner.
    pub loss: TensorId,
    pub correct: TensorId,
}

impl Program {
    /// The spec of `id`.
    pub fn spec(&self, id: TensorId) -> &TensorSpec {
        &self.tensors[id.0]
    }

    /// Whether an op adds the batch's loss and correct count to the epoch's
    /// totals itself ([`Op::SoftmaxXent`] with `totals`).
    pub fn accumulates_totals(&self) -> bool {
        self.ops.iter().any(|op| {
            matches!(
                op,
                Op::SoftmaxXent { totals: true, .. } | Op::WeightGrads { .. }
            )
        })
    }
}

/// The program with its softmax cross-entropy replaced by the fused one
/// that also adds the batch totals.
pub(crate) fn fuse_totals(mut program: Program) -> Program {
    for op in &mut program.ops {
        if let Op::SoftmaxXent { totals, .. } = op {
            *totals = true;
        }
    }
    program
}

/// Builds a program's tensor table.
pub(crate) struct Builder {
    rows: usize,
    tensors: Vec<TensorSpec>,
    ops: Vec<Op>,
}

impl Builder {
    pub(crate) fn new(rows: usize) -> Self {
        Builder {
            rows,
            tensors: Vec::new(),
            ops: Vec::new(),
        }
    }

    pub(crate) fn tensor(&mut self, name: &str, shape: &[usize], region: Region) -> TensorId {
        self.tensors.push(TensorSpec {
            name: name.to_string(),
            shape: shape.to_vec(),
            region,
        });
        TensorId(self.tensors.len() - 1)
    }

    pub(crate) fn op(&mut self, op: Op) {
        self.ops.push(op);
    }

    pub(crate) fn finish(self, input: TensorId, loss: TensorId, correct: TensorId) -> Program {
        Program {
            rows: self.rows,
            tensors: self.tensors,
            ops: self.ops,
            input,
            loss,
            correct,
        }
    }
}

/// One named parameter tensor of a model, at `offset` in the flat buffer.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamSpec {
    pub name: String,
    pub shape: Vec<usize>,
    pub offset: usize,
}

impl ParamSpec {
    /// Elements in this tensor.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Always false: parameter tensors are non-empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What the trainer needs from a model.
pub trait Model: Send + Sync {
    /// Short name for reports ("mlp-784-128-128-10-sigmoid").
    fn name(&self) -> String;
    /// Values per input row (pixels, plus 1 with the bias trick).
    fn input_dim(&self) -> usize;
    /// True when the input rows carry a trailing 1 (the bias trick).
    fn appends_one(&self) -> bool {
        false
    }
    /// Number of classes.
    fn classes(&self) -> usize;
    /// Parameter tensors in flat-buffer order.
    fn parameters(&self) -> Vec<ParamSpec>;
    /// Initial parameters, flat, from `seed`.
    fn init(&self, seed: u64) -> Vec<f32>;
    /// Forward, loss and backward for a batch of `rows`: fills every gradient.
    fn train_program(&self, rows: usize) -> Program;
    /// Forward and loss only.
    fn eval_program(&self, rows: usize) -> Program;
    /// [`Model::train_program`] with fused ops (fewer kernels, the same
    /// arithmetic); the reference program unless a model has one.
    fn fused_train_program(&self, rows: usize) -> Program {
        self.train_program(rows)
    }
    /// The training step shaped for latency (issue 23): the fused program
    /// with its row-local work in one op ([`Op::RowStep`]) where the model
    /// has one that fits; [`Model::fused_train_program`] otherwise.
    fn row_train_program(&self, rows: usize) -> Program {
        self.fused_train_program(rows)
    }
    /// [`Model::eval_program`] with fused ops.
    fn fused_eval_program(&self, rows: usize) -> Program {
        self.eval_program(rows)
    }
    /// Matrix-product FLOPs of one training step per example (for reports).
    fn flops_per_example(&self) -> u64;
}

/// Total number of parameters.
pub fn parameter_count(model: &dyn Model) -> usize {
    model.parameters().iter().map(ParamSpec::len).sum()
}
