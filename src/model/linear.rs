//! The linear classifier of the course notebooks: W is C×(D+1) with the bias
//! folded in as the last column (the input rows carry a trailing 1), trained
//! with softmax cross-entropy or, as CS231n's other linear classifier, the
//! multiclass SVM (hinge) loss ([`LinearLoss`]).

use super::{Builder, Model, Op, ParamSpec, Program, Region, TensorId, fuse_totals};
use crate::error::{Error, Result};
use crate::options::MatmulOptions;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

/// `scores = x·Wᵀ` with W C×(D+1). L2 regularisation is the optimizer's
/// weight decay (`wd = 2·reg` for a loss term `reg·‖W‖²`). The loss is
/// softmax cross-entropy unless built with [`LinearSoftmax::with_loss`].
#[derive(Clone, Debug, PartialEq)]
pub struct LinearSoftmax {
    classes: usize,
    pixels: usize,
    loss: LinearLoss,
}

/// The loss a [`LinearSoftmax`] trains with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LinearLoss {
    /// Softmax cross-entropy (`Op::SoftmaxXent`): the softmax classifier.
    #[default]
    Softmax,
    /// The multiclass SVM loss of CS231n, `Σ_{j≠y} max(0, s_j − s_y + 1)`
    /// per example (`Op::Hinge`): the SVM classifier.
    Svm,
}

impl LinearLoss {
    /// "softmax" or "svm" (what `train_linear --loss` takes).
    pub fn name(self) -> &'static str {
        match self {
            LinearLoss::Softmax => "softmax",
            LinearLoss::Svm => "svm",
        }
    }
}

impl LinearSoftmax {
    /// A classifier over `pixels` inputs (plus the bias column).
    pub fn new(pixels: usize, classes: usize) -> Result<Self> {
        Self::with_loss(pixels, classes, LinearLoss::Softmax)
    }

    /// A classifier over `pixels` inputs trained with `loss`.
    pub fn with_loss(pixels: usize, classes: usize, loss: LinearLoss) -> Result<Self> {
        if pixels == 0 || classes == 0 {
            return Err(Error::InvalidArgument {
                name: "linear model size",
                msg: format!("pixels and classes must be > 0, got {pixels} and {classes}"),
            });
        }
        Ok(LinearSoftmax {
            classes,
            pixels,
            loss,
        })
    }

    /// The loss it trains with.
    pub fn loss(&self) -> LinearLoss {
        self.loss
    }

    /// The loss op on `scores` (with its gradient when `dscores` is given).
    fn loss_op(
        &self,
        scores: TensorId,
        loss: TensorId,
        correct: TensorId,
        dscores: Option<TensorId>,
    ) -> Op {
        match self.loss {
            LinearLoss::Softmax => Op::SoftmaxXent {
                logits: scores,
                loss,
                correct,
                dlogits: dscores,
                totals: false,
            },
            LinearLoss::Svm => Op::Hinge {
                scores,
                loss,
                correct,
                dscores,
            },
        }
    }

    /// The name of the scores tensor and of its gradient.
    fn score_names(&self) -> (&'static str, &'static str) {
        match self.loss {
            LinearLoss::Softmax => ("logits", "dlogits"),
            LinearLoss::Svm => ("scores", "dscores"),
        }
    }
}

impl Model for LinearSoftmax {
    fn name(&self) -> String {
        // The softmax classifier keeps the name its checkpoints carry.
        match self.loss {
            LinearLoss::Softmax => format!("linear-{}x{}", self.classes, self.pixels + 1),
            LinearLoss::Svm => format!("linear-svm-{}x{}", self.classes, self.pixels + 1),
        }
    }

    fn input_dim(&self) -> usize {
        self.pixels + 1
    }

    fn appends_one(&self) -> bool {
        true
    }

    fn classes(&self) -> usize {
        self.classes
    }

    fn parameters(&self) -> Vec<ParamSpec> {
        vec![ParamSpec {
            name: "weight".into(),
            shape: vec![self.classes, self.pixels + 1],
            offset: 0,
        }]
    }

    fn init(&self, seed: u64) -> Vec<f32> {
        // 1e-4·randn for the weights (as in the course), 0 for the bias column.
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let normal = Normal::new(0.0f32, 1e-4).unwrap_or_else(|_| unreachable!("σ = 1e-4 > 0"));
        let d = self.pixels + 1;
        (0..self.classes * d)
            .map(|i| {
                if i % d == self.pixels {
                    0.0
                } else {
                    normal.sample(&mut rng)
                }
            })
            .collect()
    }

    fn train_program(&self, rows: usize) -> Program {
        let mut b = Builder::new(rows);
        let x = b.tensor("x", &[rows, self.pixels + 1], Region::Input);
        let shape = [self.classes, self.pixels + 1];
        let w = b.tensor("weight", &shape, Region::Param { offset: 0 });
        let dw = b.tensor("dweight", &shape, Region::Grad { offset: 0 });
        let (scores, dscores) = self.score_names();
        let logits = b.tensor(scores, &[rows, self.classes], Region::Work);
        let loss = b.tensor("loss", &[rows], Region::Work);
        let correct = b.tensor("correct", &[rows], Region::WorkU32);
        let dlogits = b.tensor(dscores, &[rows, self.classes], Region::Work);
        b.op(Op::Matmul {
            a: x,
            b: w,
            bias: None,
            out: logits,
            opts: MatmulOptions::nt(),
        });
        b.op(self.loss_op(logits, loss, correct, Some(dlogits)));
        b.op(Op::Matmul {
            a: dlogits,
            b: x,
            bias: None,
            out: dw,
            opts: MatmulOptions::tn(),
        });
        b.finish(x, loss, correct)
    }

    fn eval_program(&self, rows: usize) -> Program {
        let mut b = Builder::new(rows);
        let x = b.tensor("x", &[rows, self.pixels + 1], Region::Input);
        let w = b.tensor(
            "weight",
            &[self.classes, self.pixels + 1],
            Region::Param { offset: 0 },
        );
        let logits = b.tensor(self.score_names().0, &[rows, self.classes], Region::Work);
        let loss = b.tensor("loss", &[rows], Region::Work);
        let correct = b.tensor("correct", &[rows], Region::WorkU32);
        b.op(Op::Matmul {
            a: x,
            b: w,
            bias: None,
            out: logits,
            opts: MatmulOptions::nt(),
        });
        b.op(self.loss_op(logits, loss, correct, None));
        b.finish(x, loss, correct)
    }

    /// The same ops but the fused softmax cross-entropy with the batch
    /// totals: the bias is already inside the one weight-gradient product.
    /// (The SVM loss has no fused variant: its program stays the reference,
    /// and the runner adds the totals.)
    fn fused_train_program(&self, rows: usize) -> Program {
        fuse_totals(self.train_program(rows))
    }

    fn fused_eval_program(&self, rows: usize) -> Program {
        fuse_totals(self.eval_program(rows))
    }

    fn flops_per_example(&self) -> u64 {
        4 * (self.classes * (self.pixels + 1)) as u64
    }
}
