//! The multilayer perceptron of the classic Keras MNIST example:
//! 784-128-128-10 with sigmoid (or ReLU) hidden layers and softmax output.

use super::{Builder, LayerGrad, Model, Op, ParamSpec, Program, Region, TensorId, fuse_totals};
use crate::error::{Error, Result};
use crate::options::{Activation, MatmulOptions};
use rand::{RngExt, SeedableRng, rngs::StdRng};

/// Dense layers `sizes[0] → sizes[1] → … → sizes[last]`; weights are
/// out×in as in `nn.Linear`, Glorot-uniform initialised; biases start at 0.
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp {
    sizes: Vec<usize>,
    activation: Activation,
}

impl Mlp {
    /// An MLP with these layer sizes (input first, classes last).
    pub fn new(sizes: &[usize], activation: Activation) -> Result<Self> {
        if sizes.len() < 2 || sizes.contains(&0) {
            return Err(Error::InvalidArgument {
                name: "layer sizes",
                msg: format!("need at least an input and an output size, all > 0; got {sizes:?}"),
            });
        }
        if activation == Activation::Identity && sizes.len() > 2 {
            return Err(Error::InvalidArgument {
                name: "activation",
                msg: "hidden layers need sigmoid or ReLU".into(),
            });
        }
        Ok(Mlp {
            sizes: sizes.to_vec(),
            activation,
        })
    }

    /// The course's 784-128-128-10.
    pub fn mnist(activation: Activation) -> Self {
        Mlp {
            sizes: vec![784, 128, 128, 10],
            activation,
        }
    }

    fn layers(&self) -> usize {
        self.sizes.len() - 1
    }

    /// Builds the forward pass; returns (input, what each layer reads —
    /// the input then the hidden activations —, logits).
    fn forward(&self, b: &mut Builder, rows: usize) -> (TensorId, Vec<TensorId>, TensorId) {
        let params = self.parameters();
        let x = b.tensor("x", &[rows, self.sizes[0]], Region::Input);
        let mut inputs = vec![x];
        for l in 0..self.layers() {
            let (w, bias) = (&params[2 * l], &params[2 * l + 1]);
            let wid = b.tensor(&w.name, &w.shape, Region::Param { offset: w.offset });
            let bid = b.tensor(
                &bias.name,
                &bias.shape,
                Region::Param {
                    offset: bias.offset,
                },
            );
            let last = l + 1 == self.layers();
            let name = if last {
                "logits".to_string()
            } else {
                format!("h{}", l + 1)
            };
            let out = b.tensor(&name, &[rows, self.sizes[l + 1]], Region::Work);
            let act = if last {
                Activation::Identity
            } else {
                self.activation
            };
            b.op(Op::Matmul {
                a: inputs[l],
                b: wid,
                bias: Some(bid),
                out,
                opts: MatmulOptions::nt().with_activation(act),
            });
            inputs.push(out);
        }
        let logits = inputs.pop().unwrap_or(x);
        (x, inputs, logits)
    }
}

impl Model for Mlp {
    fn name(&self) -> String {
        let sizes: Vec<String> = self.sizes.iter().map(|s| s.to_string()).collect();
        let act = match self.activation {
            Activation::Sigmoid => "sigmoid",
            Activation::Relu => "relu",
            Activation::Identity => "linear",
        };
        format!("mlp-{}-{act}", sizes.join("-"))
    }

    fn input_dim(&self) -> usize {
        self.sizes[0]
    }

    fn classes(&self) -> usize {
        self.sizes[self.sizes.len() - 1]
    }

    fn parameters(&self) -> Vec<ParamSpec> {
        let mut out = Vec::new();
        let mut offset = 0;
        for l in 0..self.layers() {
            let (fan_in, fan_out) = (self.sizes[l], self.sizes[l + 1]);
            for (name, shape) in [
                (format!("layer{}.weight", l + 1), vec![fan_out, fan_in]),
                (format!("layer{}.bias", l + 1), vec![fan_out]),
            ] {
                let p = ParamSpec {
                    name,
                    shape,
                    offset,
                };
                offset += p.len();
                out.push(p);
            }
        }
        out
    }

    fn init(&self, seed: u64) -> Vec<f32> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut flat = Vec::new();
        for p in self.parameters() {
            if p.shape.len() == 2 {
                // Glorot (Xavier) uniform: U(−a, a), a = √(6 / (fan_in + fan_out)).
                let a = (6.0 / (p.shape[0] + p.shape[1]) as f32).sqrt();
                flat.extend((0..p.len()).map(|_| rng.random_range(-a..a)));
            } else {
                flat.extend(std::iter::repeat_n(0.0, p.len()));
            }
        }
        flat
    }

    fn train_program(&self, rows: usize) -> Program {
        self.training(rows, false)
    }

    fn eval_program(&self, rows: usize) -> Program {
        let mut b = Builder::new(rows);
        let (x, _, logits) = self.forward(&mut b, rows);
        let loss = b.tensor("loss", &[rows], Region::Work);
        let correct = b.tensor("correct", &[rows], Region::WorkU32);
        b.op(Op::SoftmaxXent {
            logits,
            loss,
            correct,
            dlogits: None,
            totals: false,
        });
        b.finish(x, loss, correct)
    }

    fn fused_train_program(&self, rows: usize) -> Program {
        self.training(rows, true)
    }

    fn row_train_program(&self, rows: usize) -> Program {
        if crate::kernels::row_step::fits(&self.sizes) {
            self.row_training(rows)
        } else {
            self.training(rows, true)
        }
    }

    fn fused_eval_program(&self, rows: usize) -> Program {
        fuse_totals(self.eval_program(rows))
    }

    fn flops_per_example(&self) -> u64 {
        // Forward 2·in·out per layer; backward dW for every layer and dX for
        // all but the first.
        let mut f = 0u64;
        for l in 0..self.layers() {
            let mac = (self.sizes[l] * self.sizes[l + 1]) as u64;
            f += 2 * mac * if l == 0 { 2 } else { 3 };
        }
        f
    }
}

impl Mlp {
    /// The step shaped for latency (issue 23): the first layer's product
    /// (which gathers its own rows on the GPU), the row block
    /// ([`Op::RowStep`]: the rest of the forward, the loss and every
    /// delta), then every layer's weight and bias gradients and the batch
    /// totals ([`Op::WeightGrads`]): three dispatches and the optimizer's.
    /// The same sums as
    /// [`Self::training`], some of them in another (fixed) order.
    fn row_training(&self, rows: usize) -> Program {
        let mut b = Builder::new(rows);
        let params = self.parameters();
        let layers = self.layers();
        let x = b.tensor("x", &[rows, self.sizes[0]], Region::Input);
        let param = |b: &mut Builder, p: &ParamSpec| {
            b.tensor(&p.name, &p.shape, Region::Param { offset: p.offset })
        };
        let grad = |b: &mut Builder, p: &ParamSpec| {
            b.tensor(
                &format!("d{}", p.name),
                &p.shape,
                Region::Grad { offset: p.offset },
            )
        };
        let (w1, b1) = (param(&mut b, &params[0]), param(&mut b, &params[1]));
        let h1 = b.tensor("h1", &[rows, self.sizes[1]], Region::Work);
        b.op(Op::Matmul {
            a: x,
            b: w1,
            bias: Some(b1),
            out: h1,
            opts: MatmulOptions::nt().with_activation(self.activation),
        });
        let (mut weights, mut biases, mut hidden, mut dz) = (vec![], vec![], vec![], vec![]);
        for l in 1..layers {
            weights.push(param(&mut b, &params[2 * l]));
            biases.push(param(&mut b, &params[2 * l + 1]));
            if l + 1 < layers {
                hidden.push(b.tensor(
                    &format!("h{}", l + 1),
                    &[rows, self.sizes[l + 1]],
                    Region::Work,
                ));
            }
        }
        for l in 0..layers {
            let name = if l + 1 == layers {
                "dlogits".to_string()
            } else {
                format!("dz{}", l + 1)
            };
            dz.push(b.tensor(&name, &[rows, self.sizes[l + 1]], Region::Work));
        }
        let loss = b.tensor("loss", &[rows], Region::Work);
        let correct = b.tensor("correct", &[rows], Region::WorkU32);
        let mut inputs = vec![x, h1];
        inputs.extend(&hidden);
        b.op(Op::RowStep {
            h: h1,
            weights,
            biases,
            hidden,
            dz: dz.clone(),
            loss,
            correct,
            activation: self.activation,
        });
        let mut grads = Vec::with_capacity(layers);
        for l in 0..layers {
            grads.push(LayerGrad {
                dz: dz[l],
                h: inputs[l],
                dw: grad(&mut b, &params[2 * l]),
                db: grad(&mut b, &params[2 * l + 1]),
            });
        }
        b.op(Op::WeightGrads {
            layers: grads,
            loss,
            correct,
        });
        b.finish(x, loss, correct)
    }

    /// The training program: the reference one, or (`fused`) the one with
    /// fewer dispatches, which runs the same arithmetic in the same order.
    fn training(&self, rows: usize, fused: bool) -> Program {
        let mut b = Builder::new(rows);
        let (x, inputs, logits) = self.forward(&mut b, rows);
        let classes = self.classes();
        let loss = b.tensor("loss", &[rows], Region::Work);
        let correct = b.tensor("correct", &[rows], Region::WorkU32);
        let dlogits = b.tensor("dlogits", &[rows, classes], Region::Work);
        b.op(Op::SoftmaxXent {
            logits,
            loss,
            correct,
            dlogits: Some(dlogits),
            totals: fused,
        });
        // Backward, last layer first. `dz` is the gradient at layer l's
        // pre-activation; `inputs[l]` is what layer l read.
        let params = self.parameters();
        let grad = |b: &mut Builder, p: &ParamSpec| {
            b.tensor(
                &format!("d{}", p.name),
                &p.shape,
                Region::Grad { offset: p.offset },
            )
        };
        let mut dz = dlogits;
        for l in (0..self.layers()).rev() {
            let (w, bias) = (&params[2 * l], &params[2 * l + 1]);
            let wid = b.tensor(&w.name, &w.shape, Region::Param { offset: w.offset });
            let dw = grad(&mut b, w);
            let db = grad(&mut b, bias);
            let dz_below =
                (l > 0).then(|| b.tensor(&format!("dz{l}"), &[rows, self.sizes[l]], Region::Work));
            if fused {
                // One dispatch per layer: its weight and bias gradients and
                // (but for the first layer) the dz of the layer below,
                // through its activation — the reference's five kernels per
                // hidden layer in one.
                let Some(dz_below) = dz_below else {
                    b.op(Op::WeightGrad {
                        dz,
                        h: inputs[l],
                        dw,
                        db,
                    });
                    break;
                };
                b.op(Op::LayerBackward {
                    dz,
                    h: inputs[l],
                    w: wid,
                    dw,
                    db,
                    dz_below,
                    activation: self.activation,
                });
                dz = dz_below;
                continue;
            }
            b.op(Op::Matmul {
                a: dz,
                b: inputs[l],
                bias: None,
                out: dw,
                opts: MatmulOptions::tn(),
            });
            if l == self.layers() - 1 {
                b.op(Op::ColumnSum { x: dz, sums: db });
            }
            let Some(dz_below) = dz_below else { break };
            // dh = dz·W, then through the activation into the layer below
            // (whose bias gradient comes out of the same pass).
            let dh = b.tensor(&format!("dh{l}"), &[rows, self.sizes[l]], Region::Work);
            b.op(Op::Matmul {
                a: dz,
                b: wid,
                bias: None,
                out: dh,
                opts: MatmulOptions::nn(),
            });
            let db_below = grad(&mut b, &params[2 * (l - 1) + 1]);
            b.op(Op::ActivationBiasBackward {
                dh,
                h: inputs[l],
                dz: dz_below,
                db: db_below,
                activation: self.activation,
            });
            dz = dz_below;
        }
        b.finish(x, loss, correct)
    }
}
