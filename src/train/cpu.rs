//! Training on the CPU: [`CpuEngine`] (the epoch loop: gather a minibatch,
//! run the model's program, step the optimizer) and its runner
//! [`CpuProgram`], which executes a model's [`Program`] with the ndarray twins.
//!
//! Every scratch tensor is allocated once, at its shape, when the program is
//! built; each op writes into its outputs in place (weight and bias
//! gradients straight into the flat gradient buffer), so a training step
//! allocates no tensors. The arithmetic is the twins', unchanged.

use super::{
    Engine, EvalSet, TrainConfig, TrainData, TrainState, batch_sizes, check_model, eval_order,
};
use crate::cpu;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::model::{LayerGrad, Op, Program, Region, TensorId};
use crate::options::MatmulOptions;
use ndarray::{
    ArrayD, ArrayView1, ArrayView2, ArrayViewD, ArrayViewMut1, ArrayViewMut2, ArrayViewMutD, IxDyn,
};
use std::collections::BTreeMap;

/// Training on the CPU with the ndarray twins (threaded matrix products).
pub struct CpuEngine<'d> {
    data: &'d TrainData,
    config: TrainConfig,
    append_one: bool,
    params: Vec<f32>,
    grads: Vec<f32>,
    optimizer: crate::cpu::CpuOptimizer,
    train: BTreeMap<usize, CpuProgram>,
    eval: BTreeMap<usize, CpuProgram>,
    /// The gathered minibatch, reused from step to step.
    x: Vec<f32>,
    y: Vec<u32>,
}

impl<'d> CpuEngine<'d> {
    /// Initialises `model`'s parameters from `config.seed`.
    pub fn new(model: &dyn Model, data: &'d TrainData, config: &TrainConfig) -> Result<Self> {
        config.validate()?;
        check_model(model, data)?;
        let params = model.init(config.seed);
        let n = params.len();
        let mut train = BTreeMap::new();
        for rows in batch_sizes(data.train_idx.len(), config.batch) {
            let program = super::StepProgram::of(config).program(model, rows);
            train.insert(rows, CpuProgram::new(program));
        }
        let mut eval = BTreeMap::new();
        for set in [EvalSet::Validation, EvalSet::Test] {
            let len = eval_order(data, set).len();
            if len > 0 {
                for rows in batch_sizes(len, config.eval_batch) {
                    eval.entry(rows).or_insert_with(|| {
                        CpuProgram::new(if config.fused {
                            model.fused_eval_program(rows)
                        } else {
                            model.eval_program(rows)
                        })
                    });
                }
            }
        }
        Ok(CpuEngine {
            data,
            config: config.clone(),
            append_one: model.appends_one(),
            params,
            grads: vec![0.0; n],
            optimizer: crate::cpu::CpuOptimizer::new(config.optimizer, n)?,
            train,
            eval,
            x: Vec::new(),
            y: Vec::new(),
        })
    }

    /// Runs `order` in batches through the training programs (with an
    /// optimizer step after each) or the evaluation programs; returns the
    /// mean loss and the accuracy.
    fn pass(
        &mut self,
        set: Option<EvalSet>,
        order: &[u32],
        mut progress: impl FnMut(usize, usize),
    ) -> Result<(f64, f64)> {
        let batch = if set.is_some() {
            self.config.eval_batch
        } else {
            self.config.batch
        };
        let data = self.data;
        let dataset = match set {
            Some(EvalSet::Test) => &data.test,
            _ => &data.train,
        };
        let opts = self.config.gather_options(self.append_one);
        let width = dataset.dim() + usize::from(self.append_one);
        // One input buffer for the whole pass: a step allocates nothing. It
        // holds the largest real batch, never more than the set, so a huge
        // nominal batch cannot ask for more memory than the data implies.
        let rows = batch.min(order.len()).max(1);
        let len = rows.checked_mul(width).ok_or_else(|| {
            Error::shape(
                "train",
                format!("a batch of {rows}×{width} values overflows"),
            )
        })?;
        self.x.clear();
        self.x
            .try_reserve_exact(len)
            .map_err(|_| Error::InvalidArgument {
                name: "batch",
                msg: format!(
                    "cannot allocate a batch of {rows}×{width} f32 values ({})",
                    crate::error::bytes((len as u64).saturating_mul(4))
                ),
            })?;
        self.x.resize(len, 0.0);
        let steps = order.len().div_ceil(batch);
        let (mut loss, mut correct) = (0f32, 0u64);
        for s in 0..steps {
            let rows = batch.min(order.len() - s * batch);
            let xs = &mut self.x[..rows * width];
            crate::cpu::gather_into(dataset, order, s * batch, rows, opts, xs, &mut self.y)?;
            let x = ndarray::ArrayView2::from_shape((rows, width), &*xs)
                .map_err(|e| Error::shape("train", e))?;
            let programs = if set.is_some() {
                &mut self.eval
            } else {
                &mut self.train
            };
            let program = programs
                .get_mut(&rows)
                .ok_or_else(|| Error::shape("train", format!("no program for {rows} rows")))?;
            let (l, c) = program.run(x.into_dyn(), &self.y, &self.params, &mut self.grads)?;
            loss += l;
            correct += c as u64;
            if set.is_none() {
                self.optimizer.step(&mut self.params, &self.grads)?;
            }
            progress(s + 1, steps);
        }
        let n = order.len().max(1) as f64;
        Ok((loss as f64 / n, correct as f64 / n))
    }
}

impl Engine for CpuEngine<'_> {
    fn device(&self) -> &'static str {
        "cpu"
    }

    fn adapter(&self) -> String {
        format!(
            "CPU, ndarray + matrixmultiply + rayon, {} threads",
            rayon::current_num_threads()
        )
    }

    fn train_epoch(
        &mut self,
        order: &[u32],
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<(f64, f64)> {
        self.pass(None, order, progress)
    }

    fn evaluate(&mut self, set: EvalSet) -> Result<(f64, f64)> {
        let order = eval_order(self.data, set);
        if order.is_empty() {
            return Err(Error::InvalidArgument {
                name: "evaluation set",
                msg: format!("{set:?} is empty"),
            });
        }
        self.pass(Some(set), &order, |_, _| {})
    }

    fn end_epoch(&mut self, metric: f32) -> Result<()> {
        self.optimizer.end_epoch(metric).map(|_| ())
    }

    fn state(&mut self) -> Result<TrainState> {
        Ok(TrainState {
            params: self.params.clone(),
            optimizer_state: self.optimizer.state().to_vec(),
            step: *self.optimizer.step_scalars(),
        })
    }

    fn restore(&mut self, state: &TrainState) -> Result<()> {
        state.check_params(self.params.len())?;
        self.optimizer.restore(&state.optimizer_state, state.step)?;
        self.params.copy_from_slice(&state.params);
        Ok(())
    }
}

// ------------------------------------------------------------ the runner
/// Scratch for one program: one slot per tensor it owns.
pub(crate) struct CpuProgram {
    pub(crate) program: Program,
    /// `Some` for every [`Region::Work`] tensor (taken out of its slot while
    /// an op writes it, so the op can read the others through `&self`).
    work: Vec<Option<ArrayD<f32>>>,
    /// Per-row flags for every [`Region::WorkU32`] tensor.
    flags: Vec<Vec<u32>>,
    /// Which scratch tensors this run has written: reading one before it is
    /// written is a broken program, reported rather than read as stale data.
    written: Vec<bool>,
}

fn missing(program: &Program, id: TensorId) -> Error {
    Error::shape(
        "program",
        format!(
            "tensor {} is read before it is written",
            program.spec(id).name
        ),
    )
}

/// Where an op writes one output: its scratch array (out of its slot until
/// [`CpuProgram::put_back`]) or its window of the gradient buffer.
enum Out<'g> {
    Work(TensorId, ArrayD<f32>),
    Grad(ArrayViewMutD<'g, f32>),
}

impl Out<'_> {
    fn view_mut(&mut self) -> ArrayViewMutD<'_, f32> {
        match self {
            Out::Work(_, a) => a.view_mut(),
            Out::Grad(v) => v.view_mut(),
        }
    }
}

fn to2<'a>(v: ArrayViewMutD<'a, f32>) -> Result<ArrayViewMut2<'a, f32>> {
    v.into_dimensionality()
        .map_err(|e| Error::shape("program", e))
}

fn to1<'a>(v: ArrayViewMutD<'a, f32>) -> Result<ArrayViewMut1<'a, f32>> {
    v.into_dimensionality()
        .map_err(|e| Error::shape("program", e))
}

fn to2v(v: ArrayViewD<'_, f32>) -> Result<ArrayView2<'_, f32>> {
    v.into_dimensionality()
        .map_err(|e| Error::shape("program", e))
}

impl CpuProgram {
    pub(crate) fn new(program: Program) -> Self {
        let work = program
            .tensors
            .iter()
            .map(|t| (t.region == Region::Work).then(|| ArrayD::zeros(IxDyn(&t.shape))))
            .collect();
        let flags = program
            .tensors
            .iter()
            .map(|t| match t.region {
                Region::WorkU32 => vec![0; t.shape.iter().product()],
                _ => Vec::new(),
            })
            .collect();
        let written = vec![false; program.tensors.len()];
        CpuProgram {
            program,
            work,
            flags,
            written,
        }
    }

    fn view<'a>(
        &'a self,
        id: TensorId,
        x: &'a ArrayViewD<'a, f32>,
        params: &'a [f32],
    ) -> Result<ArrayViewD<'a, f32>> {
        let spec = self.program.spec(id);
        match spec.region {
            Region::Input => Ok(x.view()),
            Region::Param { offset } => {
                let len: usize = spec.shape.iter().product();
                params
                    .get(offset..offset + len)
                    .and_then(|s| ArrayViewD::from_shape(IxDyn(&spec.shape), s).ok())
                    .ok_or_else(|| {
                        Error::shape(
                            "program",
                            format!("{} lies outside the parameters", spec.name),
                        )
                    })
            }
            Region::Work => self.work[id.0]
                .as_ref()
                .filter(|_| self.written[id.0])
                .map(|a| a.view())
                .ok_or_else(|| missing(&self.program, id)),
            Region::Grad { .. } | Region::WorkU32 => Err(Error::shape(
                "program",
                format!("{} cannot be read as an input here", spec.name),
            )),
        }
    }

    /// The output `id`, to be handed back with [`Self::put_back`].
    fn output<'g>(&mut self, id: TensorId, grads: &'g mut [f32]) -> Result<Out<'g>> {
        let spec = self.program.spec(id);
        match spec.region {
            Region::Work => {
                let a = self.work[id.0].take().ok_or_else(|| {
                    Error::shape("program", format!("{} is written twice at once", spec.name))
                })?;
                self.written[id.0] = true;
                Ok(Out::Work(id, a))
            }
            Region::Grad { offset } => {
                let len: usize = spec.shape.iter().product();
                grads
                    .get_mut(offset..offset + len)
                    .and_then(|s| ArrayViewMutD::from_shape(IxDyn(&spec.shape), s).ok())
                    .map(Out::Grad)
                    .ok_or_else(|| {
                        Error::shape(
                            "program",
                            format!("{} lies outside the gradients", spec.name),
                        )
                    })
            }
            _ => Err(Error::shape(
                "program",
                format!("{} is not writable", spec.name),
            )),
        }
    }

    /// A layer's `[dW | db]` with the ones column: `dzᵀ·[h | 1]`.
    fn weight_grad(
        &self,
        l: LayerGrad,
        x: &ArrayViewD<'_, f32>,
        params: &[f32],
        grads: &mut [f32],
    ) -> Result<()> {
        let (mut w, mut b) = self.grad_pair(l.dw, l.db, grads)?;
        let dzv = self.view(l.dz, x, params)?;
        let hv = self.view(l.h, x, params)?;
        cpu::matmul_ones_column_into(
            &to2v(dzv)?,
            &to2v(hv)?,
            MatmulOptions::tn(),
            to2(w.view_mut())?,
            to1(b.view_mut())?,
        )
    }

    /// Two windows of the gradient buffer written by one op (a weight and
    /// its bias gradient), which must not overlap.
    fn grad_pair<'g>(
        &self,
        first: TensorId,
        second: TensorId,
        grads: &'g mut [f32],
    ) -> Result<(ArrayViewMutD<'g, f32>, ArrayViewMutD<'g, f32>)> {
        let window = |id: TensorId| -> Result<(usize, &[usize])> {
            let spec = self.program.spec(id);
            match spec.region {
                Region::Grad { offset } => Ok((offset, &spec.shape)),
                _ => Err(Error::shape(
                    "program",
                    format!("{} must be a gradient", spec.name),
                )),
            }
        };
        let (o1, s1) = window(first)?;
        let (o2, s2) = window(second)?;
        let (l1, l2) = (s1.iter().product::<usize>(), s2.iter().product::<usize>());
        let bad = || {
            Error::shape(
                "program",
                format!(
                    "{} and {} overlap or lie outside the gradients",
                    self.program.spec(first).name,
                    self.program.spec(second).name
                ),
            )
        };
        // Split the buffer between the two windows, whichever comes first.
        let (lo, hi, swap) = if o1 <= o2 {
            ((o1, l1, s1), (o2, l2, s2), false)
        } else {
            ((o2, l2, s2), (o1, l1, s1), true)
        };
        if lo.0 + lo.1 > hi.0 || hi.0 + hi.1 > grads.len() {
            return Err(bad());
        }
        let (left, right) = grads.split_at_mut(hi.0);
        let a = ArrayViewMutD::from_shape(IxDyn(lo.2), &mut left[lo.0..lo.0 + lo.1])
            .map_err(|e| Error::shape("program", e))?;
        let b = ArrayViewMutD::from_shape(IxDyn(hi.2), &mut right[..hi.1])
            .map_err(|e| Error::shape("program", e))?;
        Ok(if swap { (b, a) } else { (a, b) })
    }

    /// Returns a scratch output to its slot.
    fn put_back(&mut self, out: Out<'_>) {
        if let Out::Work(id, a) = out {
            self.work[id.0] = Some(a);
        }
    }

    /// A scratch output only (the ops' first outputs are read later, so they
    /// must be scratch: the loss by the runner, `dz` by the next product).
    fn work_output(&mut self, id: TensorId) -> Result<Out<'static>> {
        match self.program.spec(id).region {
            Region::Work => self.output(id, &mut []),
            _ => Err(Error::shape(
                "program",
                format!("{} must be a scratch tensor", self.program.spec(id).name),
            )),
        }
    }

    /// Runs the program on input rows `x` with `labels`, writing gradients
    /// (if it has any) into `grads`; returns the batch's (loss sum, correct).
    pub(crate) fn run(
        &mut self,
        x: ArrayViewD<'_, f32>,
        labels: &[u32],
        params: &[f32],
        grads: &mut [f32],
    ) -> Result<(f32, u32)> {
        self.written.fill(false);
        for i in 0..self.program.ops.len() {
            let op = self.program.ops[i].clone();
            match op {
                Op::Matmul {
                    a,
                    b,
                    bias,
                    out,
                    opts,
                } => {
                    let mut o = self.output(out, grads)?;
                    let r = (|| {
                        let av = self.view(a, &x, params)?;
                        let bv = self.view(b, &x, params)?;
                        let biasv = match bias {
                            Some(id) => Some(self.view(id, &x, params)?),
                            None => None,
                        };
                        let bias1: Option<ArrayView1<f32>> = match &biasv {
                            Some(v) => Some(
                                v.view()
                                    .into_dimensionality()
                                    .map_err(|e| Error::shape("program", e))?,
                            ),
                            None => None,
                        };
                        cpu::matmul_into(&av, &bv, bias1, opts, o.view_mut())
                    })();
                    self.put_back(o);
                    r?;
                }
                // The fused op's totals are the runner's own sum below.
                Op::SoftmaxXent {
                    logits,
                    loss,
                    correct,
                    dlogits,
                    totals: _,
                } => {
                    let mut l = self.work_output(loss)?;
                    let mut d = match dlogits {
                        Some(id) => Some(self.output(id, grads)?),
                        None => None,
                    };
                    let mut flags = std::mem::take(&mut self.flags[correct.0]);
                    let r = (|| {
                        let lv = self.view(logits, &x, params)?;
                        let dv = match d.as_mut() {
                            Some(d) => Some(to2(d.view_mut())?),
                            None => None,
                        };
                        cpu::softmax_xent_into::<f32, _, _>(
                            &lv,
                            labels,
                            to1(l.view_mut())?,
                            &mut flags,
                            dv,
                        )
                    })();
                    self.flags[correct.0] = flags;
                    self.written[correct.0] = true;
                    self.put_back(l);
                    if let Some(d) = d {
                        self.put_back(d);
                    }
                    r?;
                }
                Op::Hinge {
                    scores,
                    loss,
                    correct,
                    dscores,
                } => {
                    let mut l = self.work_output(loss)?;
                    let mut d = match dscores {
                        Some(id) => Some(self.output(id, grads)?),
                        None => None,
                    };
                    let mut flags = std::mem::take(&mut self.flags[correct.0]);
                    let r = (|| {
                        let sv = self.view(scores, &x, params)?;
                        let dv = match d.as_mut() {
                            Some(d) => Some(to2(d.view_mut())?),
                            None => None,
                        };
                        cpu::loss::hinge_into::<f32, _, _>(
                            &sv,
                            labels,
                            to1(l.view_mut())?,
                            &mut flags,
                            dv,
                        )
                    })();
                    self.flags[correct.0] = flags;
                    self.written[correct.0] = true;
                    self.put_back(l);
                    if let Some(d) = d {
                        self.put_back(d);
                    }
                    r?;
                }
                Op::ActivationBiasBackward {
                    dh,
                    h,
                    dz,
                    db,
                    activation,
                } => {
                    let mut z = self.work_output(dz)?;
                    let mut s = self.output(db, grads)?;
                    let r = (|| {
                        let dhv = self.view(dh, &x, params)?;
                        let hv = self.view(h, &x, params)?;
                        cpu::activation_bias_backward_into::<f32, _, _, _, _>(
                            &dhv,
                            &hv,
                            activation,
                            to2(z.view_mut())?,
                            to1(s.view_mut())?,
                        )
                    })();
                    self.put_back(z);
                    self.put_back(s);
                    r?;
                }
                Op::ColumnSum { x: src, sums } => {
                    let mut s = self.output(sums, grads)?;
                    let r = (|| {
                        let v = self.view(src, &x, params)?;
                        cpu::column_sum_into::<f32, _, _>(&v, to1(s.view_mut())?)
                    })();
                    self.put_back(s);
                    r?;
                }
                Op::WeightGrad { dz, h, dw, db } => {
                    self.weight_grad(LayerGrad { dz, h, dw, db }, &x, params, grads)?;
                }
                Op::LayerBackward {
                    dz,
                    h,
                    w,
                    dw,
                    db,
                    dz_below,
                    activation,
                } => {
                    let mut o = self.work_output(dz_below)?;
                    let r = (|| {
                        let (mut gw, mut gb) = self.grad_pair(dw, db, grads)?;
                        let dzv = to2v(self.view(dz, &x, params)?)?;
                        let hv = to2v(self.view(h, &x, params)?)?;
                        let wv = to2v(self.view(w, &x, params)?)?;
                        cpu::layer_backward_into(
                            dzv,
                            hv,
                            wv,
                            activation,
                            to2(gw.view_mut())?,
                            to1(gb.view_mut())?,
                            to2(o.view_mut())?,
                        )
                    })();
                    self.put_back(o);
                    r?;
                }
                Op::WeightGrads { layers, .. } => {
                    for l in layers {
                        self.weight_grad(l, &x, params, grads)?;
                    }
                }
                Op::RowStep {
                    h,
                    weights,
                    biases,
                    hidden,
                    dz,
                    loss,
                    correct,
                    activation,
                } => {
                    let mut outs = Vec::with_capacity(hidden.len() + dz.len() + 1);
                    for &id in hidden.iter().chain(&dz).chain([&loss]) {
                        match self.work_output(id) {
                            Ok(o) => outs.push(o),
                            Err(e) => {
                                outs.into_iter().for_each(|o| self.put_back(o));
                                return Err(e);
                            }
                        }
                    }
                    let mut flags = std::mem::take(&mut self.flags[correct.0]);
                    let r = (|| {
                        let hv = to2v(self.view(h, &x, params)?)?;
                        let mut ws = Vec::with_capacity(weights.len());
                        for &w in &weights {
                            ws.push(to2v(self.view(w, &x, params)?)?);
                        }
                        let mut bs = Vec::with_capacity(biases.len());
                        for &b in &biases {
                            bs.push(
                                self.view(b, &x, params)?
                                    .into_dimensionality()
                                    .map_err(|e| Error::shape("program", e))?,
                            );
                        }
                        let mut views = Vec::with_capacity(outs.len());
                        for o in outs.iter_mut() {
                            views.push(o.view_mut());
                        }
                        let loss_view =
                            to1(views.pop().ok_or_else(|| missing(&self.program, loss))?)?;
                        let mut two = Vec::with_capacity(views.len());
                        for v in views {
                            two.push(to2(v)?);
                        }
                        let dzs = two.split_off(hidden.len());
                        cpu::row_step_into(
                            hv, &ws, &bs, labels, activation, two, dzs, loss_view, &mut flags,
                        )
                    })();
                    self.flags[correct.0] = flags;
                    self.written[correct.0] = true;
                    outs.into_iter().for_each(|o| self.put_back(o));
                    r?;
                }
            }
        }
        let (loss_id, correct_id) = (self.program.loss, self.program.correct);
        // The fused totals (Op::WeightGrads) are the runner's own sum below.
        if !self.written[loss_id.0] || !self.written[correct_id.0] {
            return Err(missing(&self.program, loss_id));
        }
        let loss = self.work[loss_id.0]
            .as_ref()
            .and_then(|a| a.as_slice())
            .ok_or_else(|| missing(&self.program, loss_id))?;
        cpu::loss_correct_sum(loss, &self.flags[correct_id.0])
    }
}
