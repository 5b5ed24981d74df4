//! The one GPU program compiler: [`GpuProgram`] binds a model's op
//! [`Program`] to its buffers for K ≥ 1 models (one launcher per op,
//! batched along the grid's z for K > 1) and records it into any number of
//! steps; beside it, the counted byte model of each op.

use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuLabels, GpuTensor};
use crate::kernels::GpuOptimizer;
use crate::kernels::loss::Hinge;
use crate::kernels::weight_step::{Update, WeightGradLayer};
use crate::kernels::{
    BatchStrides, ColumnSum, ColumnSumKernel, Gather, GatherMatmul, LayerBackward, LossCorrectSum,
    Matmul, MatmulEpilogue, MatmulKernel, RowStep, SoftmaxXent, SoftmaxXentKernel, WeightStep,
};
use crate::model::{Op, Program, Region, TensorId};
use crate::options::MatmulOptions;
use crate::tune;
use std::collections::BTreeMap;

enum Launch {
    Matmul(Matmul),
    Softmax(SoftmaxXent),
    Sum(ColumnSum),
    /// The first product, gathering its own input rows.
    GatherMatmul(GatherMatmul),
    Backward(LayerBackward),
    Rows(RowStep),
    Weights(WeightStep),
    Hinge(Hinge),
}

impl Launch {
    /// Dispatches one recording makes (a split-K product makes 2).
    fn dispatches(&self) -> usize {
        match self {
            Launch::Matmul(m) => m.dispatches(),
            _ => 1,
        }
    }

    /// The kernel and its shape, for the latency report.
    #[cfg_attr(any(target_arch = "wasm32", not(feature = "lab")), allow(dead_code))]
    fn kernel(&self) -> String {
        match self {
            Launch::Matmul(m) => {
                let s = m.shape();
                format!("matmul {} {}x{}x{}", m.kernel().name(), s.m, s.n, s.k)
            }
            Launch::Softmax(_) => "softmax-CE".into(),
            Launch::Sum(_) => "column sum".into(),
            Launch::GatherMatmul(_) => "gather+matmul".into(),
            Launch::Backward(_) => "layer backward".into(),
            Launch::Rows(_) => "row block".into(),
            Launch::Weights(_) => "weight tiles".into(),
            Launch::Hinge(_) => "SVM hinge".into(),
        }
    }

    fn record(&self, pass: &mut wgpu::ComputePass<'_>, gather: &Gather, step: usize) -> Result<()> {
        match self {
            Launch::Matmul(m) => m.record(pass),
            Launch::Softmax(s) => s.record(pass),
            Launch::Sum(c) => c.record(pass),
            Launch::GatherMatmul(g) => g.record(pass, gather, step)?,
            Launch::Backward(b) => b.record(pass),
            Launch::Rows(r) => r.record(pass),
            Launch::Weights(w) => w.record_step(pass, step)?,
            Launch::Hinge(h) => h.record(pass),
        }
        Ok(())
    }
}

/// A tensor of the program for model 0, and the distance to model 1's (the
/// models of a sweep lie one after another in each buffer; 0 where all
/// models share it, as the input rows).
enum Slot {
    F32(GpuTensor<f32>, usize),
    U32(GpuTensor<u32>, usize),
}

/// A program bound to its buffers for K ≥ 1 models: every launcher built,
/// nothing left to decide when a step is recorded. One model (K = 1) is a
/// training run; K models are a sweep, each product, loss and column sum
/// one launch batched along the grid's z ([`Matmul::batched`] and the
/// others), every model computing the bits it computes alone.
pub(crate) struct GpuProgram {
    rows: usize,
    launches: Vec<Launch>,
    /// What each launch computes, from the program's tensor names.
    #[cfg_attr(any(target_arch = "wasm32", not(feature = "lab")), allow(dead_code))]
    names: Vec<String>,
    /// Whether the first product gathers its own rows (no gather dispatch).
    gathers: bool,
    /// Counted bytes the launches move for one model (the gather's, if
    /// separate, apart).
    bytes: u64,
    /// The epoch totals' dispatch, unless an op adds them itself.
    totals: Option<LossCorrectSum>,
}

/// Where a program's inputs and outputs live on the GPU, for `models` ≥ 1
/// models: model `i`'s parameters and gradients at `i · per_model` in
/// `params` and `grads`, its epoch totals at element `i`; the input rows and
/// labels shared by all.
pub(crate) struct Bindings<'a> {
    /// Gather output rows (`[batch, input_dim]`); the program uses the first `rows`.
    pub x: &'a GpuTensor<f32>,
    /// Gather output labels (`[batch]`), already checked against `classes`.
    pub y: &'a GpuTensor<u32>,
    pub classes: usize,
    pub params: &'a GpuTensor<f32>,
    pub grads: &'a GpuTensor<f32>,
    /// Running totals for the epoch, one per model: loss sums and correct counts.
    pub loss_total: &'a GpuTensor<f32>,
    pub correct_total: &'a GpuTensor<u32>,
    /// How many models (1 for a training run).
    pub models: usize,
    /// Parameters per model: the distance between two models' parameters.
    pub per_model: usize,
    /// The optimizer whose update the weight tiles apply themselves
    /// ([`crate::kernels::weight_step::Update`]), one model only: the step's update
    /// then records no dispatch of its own.
    pub update: Option<&'a GpuOptimizer>,
}

impl Bindings<'_> {
    /// The models and their per-model parameter count, checked against the
    /// buffers' lengths.
    fn check(&self) -> Result<(usize, usize)> {
        let (k, p) = (self.models, self.per_model);
        let fits = |len: usize| k.checked_mul(p).is_some_and(|kp| kp <= len);
        if k == 0 || !fits(self.params.len()) || !fits(self.grads.len()) {
            return Err(Error::shape(
                "program",
                format!(
                    "{k} models of {p} parameters do not fit parameters [{}] and gradients [{}]",
                    self.params.len(),
                    self.grads.len()
                ),
            ));
        }
        if self.loss_total.len() < k || self.correct_total.len() < k {
            return Err(Error::shape(
                "program",
                format!("{k} models need {k} loss and correct totals"),
            ));
        }
        Ok((k, p))
    }
}

impl GpuProgram {
    /// Builds every launcher of `program` for `b.models` models. With
    /// `gather` (whose outputs must be `b.x` and `b.y`), the product that
    /// first reads the input rows gathers them itself ([`GatherMatmul`]).
    /// The fused ops (row block, weight tiles, layer backward, the fused
    /// products and totals) are built for one model only: more models run
    /// a model's reference program.
    pub(crate) fn compile(
        gpu: &Gpu,
        program: &Program,
        b: &Bindings<'_>,
        gather: Option<&Gather>,
    ) -> Result<Self> {
        let rows = program.rows;
        let (k, per_model) = b.check()?;
        let one = |what: &str| -> Result<()> {
            if k == 1 {
                return Ok(());
            }
            Err(Error::shape(
                "program",
                format!(
                    "{what} is built for one model: {k} models run a model's reference \
                     program (train_program), not the fused one"
                ),
            ))
        };
        // A row block's tensors share one buffer (its kernel binds it once).
        let mut in_arena = BTreeMap::new();
        let mut arena_len = 0;
        for id in program.ops.iter().flat_map(Op::arena) {
            if let std::collections::btree_map::Entry::Vacant(e) = in_arena.entry(id.0) {
                e.insert(arena_len);
                arena_len += program.spec(id).shape.iter().product::<usize>();
            }
        }
        let arena = if arena_len > 0 {
            one("a row block")?;
            Some(GpuTensor::<f32>::zeros(gpu, &[arena_len])?)
        } else {
            None
        };
        let mut slots = Vec::with_capacity(program.tensors.len());
        for (i, spec) in program.tensors.iter().enumerate() {
            let len: usize = spec.shape.iter().product();
            if let (Some(&offset), Some(a), Region::Work) = (in_arena.get(&i), &arena, spec.region)
            {
                slots.push(Slot::F32(a.view(offset, &spec.shape)?, len));
                continue;
            }
            // Checked: `k · len` of a work tensor is what one binding holds
            // (`max_models` bounds K before any program is compiled).
            let for_all = k.checked_mul(len).ok_or_else(|| {
                Error::shape("program", format!("{k} copies of {} overflow", spec.name))
            })?;
            slots.push(match spec.region {
                Region::Input => {
                    let width = spec.shape.get(1).copied().unwrap_or(0);
                    if b.x.shape().get(1) != Some(&width) || b.x.shape()[0] < rows {
                        return Err(Error::shape(
                            "program",
                            format!("input {:?} cannot hold {:?}", b.x.shape(), spec.shape),
                        ));
                    }
                    Slot::F32(b.x.view(0, &spec.shape)?, 0)
                }
                Region::Param { offset } => {
                    Slot::F32(b.params.view(offset, &spec.shape)?, per_model)
                }
                Region::Grad { offset } => Slot::F32(b.grads.view(offset, &spec.shape)?, per_model),
                Region::Work => Slot::F32(
                    GpuTensor::<f32>::zeros(gpu, &[for_all])?.view(0, &spec.shape)?,
                    len,
                ),
                Region::WorkU32 => Slot::U32(
                    GpuTensor::<u32>::zeros(gpu, &[for_all])?.view(0, &[len])?,
                    len,
                ),
            });
        }
        let fs = |id: TensorId| -> Result<(&GpuTensor<f32>, usize)> {
            match &slots[id.0] {
                Slot::F32(t, s) => Ok((t, *s)),
                Slot::U32(..) => Err(Error::shape(
                    "program",
                    format!("{} is not an f32 tensor", program.spec(id).name),
                )),
            }
        };
        let us = |id: TensorId| -> Result<(&GpuTensor<u32>, usize)> {
            match &slots[id.0] {
                Slot::U32(t, s) => Ok((t, *s)),
                Slot::F32(..) => Err(Error::shape(
                    "program",
                    format!("{} is not a u32 tensor", program.spec(id).name),
                )),
            }
        };
        let f = |id: TensorId| fs(id).map(|(t, _)| t);
        let u = |id: TensorId| us(id).map(|(t, _)| t);
        let opt_f = |id: Option<TensorId>| id.map(f).transpose();
        // The batched softmax, column sums and totals step their per-row
        // tensors by the tensor's own size: with K models those must be
        // per-model work tensors.
        let packed = |id: TensorId, stride: usize| -> Result<()> {
            let len: usize = program.spec(id).shape.iter().product();
            if k > 1 && stride != len {
                return Err(Error::shape(
                    "program",
                    format!(
                        "{} must be a per-model work tensor to be batched",
                        program.spec(id).name
                    ),
                ));
            }
            Ok(())
        };
        let pf = |id: TensorId| -> Result<&GpuTensor<f32>> {
            let (t, s) = fs(id)?;
            packed(id, s)?;
            Ok(t)
        };
        let pu = |id: TensorId| -> Result<&GpuTensor<u32>> {
            let (t, s) = us(id)?;
            packed(id, s)?;
            Ok(t)
        };
        let labels = GpuLabels::from_checked(b.y.view(0, &[rows])?, b.classes);
        let mut launches = Vec::with_capacity(program.ops.len());
        let mut gathers = false;
        for (i, op) in program.ops.iter().enumerate() {
            if let Op::RowStep {
                h,
                weights,
                biases,
                hidden,
                dz,
                loss,
                correct,
                activation,
            } = op
            {
                one("a row block")?;
                let all = |ids: &[TensorId]| -> Result<Vec<&GpuTensor<f32>>> {
                    ids.iter().map(|&id| f(id)).collect()
                };
                launches.push(Launch::Rows(RowStep::new(
                    gpu,
                    f(*h)?,
                    &all(weights)?,
                    &all(biases)?,
                    &labels,
                    &all(hidden)?,
                    &all(dz)?,
                    f(*loss)?,
                    u(*correct)?,
                    *activation,
                )?));
                continue;
            }
            if let Op::WeightGrads {
                layers,
                loss,
                correct,
            } = op
            {
                one("the weight tiles")?;
                let mut ls = Vec::with_capacity(layers.len());
                for l in layers {
                    ls.push(WeightGradLayer {
                        dz: f(l.dz)?,
                        h: f(l.h)?,
                        dw: f(l.dw)?,
                        db: f(l.db)?,
                    });
                }
                let (loss, correct) = (f(*loss)?, u(*correct)?);
                let update = b.update.map(|optimizer| Update {
                    params: b.params,
                    optimizer,
                });
                launches.push(Launch::Weights(WeightStep::new(
                    gpu,
                    &ls,
                    loss,
                    correct,
                    b.loss_total,
                    b.correct_total,
                    update,
                )?));
                continue;
            }
            launches.push(match *op {
                Op::Matmul {
                    a,
                    b: bb,
                    bias,
                    out,
                    opts,
                } if i == 0
                    && a == program.input
                    && !opts.trans_a
                    && opts.trans_b
                    && gather.is_some()
                    && k == 1 =>
                {
                    let Some(g) = gather else {
                        unreachable!("checked")
                    };
                    gathers = true;
                    Launch::GatherMatmul(GatherMatmul::new(
                        gpu,
                        g,
                        rows,
                        f(bb)?,
                        opt_f(bias)?,
                        f(out)?,
                        opts.activation,
                    )?)
                }
                Op::Matmul {
                    a,
                    b: bb,
                    bias,
                    out,
                    opts,
                } => {
                    let ((a, sa), (bm, sb), (c, sc)) = (fs(a)?, fs(bb)?, fs(out)?);
                    let (bias, sbias) = match bias {
                        Some(id) => fs(id).map(|(t, s)| (Some(t), s))?,
                        None => (None, 0),
                    };
                    let kernel = tune::matmul_for(gpu, a, bm, bias, &opts, MatmulKernel::Auto);
                    Launch::Matmul(if k == 1 {
                        Matmul::new(gpu, a, bm, bias, c, opts, kernel)?
                    } else {
                        let strides = BatchStrides {
                            a: sa,
                            b: sb,
                            bias: sbias,
                            c: sc,
                        };
                        Matmul::batched(gpu, a, bm, bias, c, opts, kernel, k, strides)?
                    })
                }
                Op::SoftmaxXent {
                    logits,
                    loss,
                    correct,
                    dlogits,
                    totals,
                } => {
                    let d = dlogits.map(pf).transpose()?;
                    let (logits, loss) = (pf(logits)?, pf(loss)?);
                    let correct = pu(correct)?;
                    Launch::Softmax(if totals {
                        one("the softmax with totals")?;
                        SoftmaxXent::with_totals(
                            gpu,
                            logits,
                            &labels,
                            loss,
                            correct,
                            d,
                            b.loss_total,
                            b.correct_total,
                        )?
                    } else {
                        let kernel = tune::softmax_xent_for(
                            gpu,
                            logits,
                            d.is_some(),
                            SoftmaxXentKernel::Auto,
                        );
                        SoftmaxXent::batched(gpu, logits, &labels, loss, correct, d, kernel, k)?
                    })
                }
                Op::Hinge {
                    scores,
                    loss,
                    correct,
                    dscores,
                } => {
                    one("the SVM loss (it has no batched kernel)")?;
                    let d = opt_f(dscores)?;
                    let (s, l, c) = (f(scores)?, f(loss)?, u(correct)?);
                    Launch::Hinge(Hinge::new(gpu, s, &labels, l, c, d)?)
                }
                Op::ActivationBiasBackward {
                    dh,
                    h,
                    dz,
                    db,
                    activation,
                } => {
                    let (dh, h, dz) = (pf(dh)?, pf(h)?, pf(dz)?);
                    let (db, sdb) = fs(db)?;
                    let kernel =
                        tune::column_sum_for(gpu, dh, Some(activation), ColumnSumKernel::Auto);
                    Launch::Sum(ColumnSum::with_activation_batched(
                        gpu, dh, h, dz, db, activation, kernel, k, sdb,
                    )?)
                }
                Op::ColumnSum { x, sums } => {
                    let x = pf(x)?;
                    let (sums, ss) = fs(sums)?;
                    let kernel = tune::column_sum_for(gpu, x, None, ColumnSumKernel::Auto);
                    Launch::Sum(ColumnSum::batched(gpu, x, sums, kernel, k, ss)?)
                }
                Op::WeightGrad { dz, h, dw, db } => {
                    one("the product with the ones column")?;
                    let (dz, h, opts) = (f(dz)?, f(h)?, MatmulOptions::tn());
                    let kernel = tune::matmul_for(gpu, dz, h, None, &opts, MatmulKernel::Auto);
                    Launch::Matmul(Matmul::fused(
                        gpu,
                        dz,
                        h,
                        f(dw)?,
                        opts,
                        MatmulEpilogue::OnesColumn { sums: f(db)? },
                        kernel,
                    )?)
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
                    one("the layer backward")?;
                    Launch::Backward(LayerBackward::new(
                        gpu,
                        f(dz)?,
                        f(h)?,
                        f(w)?,
                        f(dw)?,
                        f(db)?,
                        f(dz_below)?,
                        activation,
                    )?)
                }
                Op::RowStep { .. } | Op::WeightGrads { .. } => unreachable!("recorded above"),
            });
        }
        let totals = if program.accumulates_totals() {
            None
        } else {
            Some(LossCorrectSum::batched(
                gpu,
                pf(program.loss)?,
                pu(program.correct)?,
                &b.loss_total.view(0, &[1])?,
                &b.correct_total.view(0, &[1])?,
                true,
                k,
            )?)
        };
        let mut bytes: u64 = program.ops.iter().map(|op| op_bytes(program, op)).sum();
        if totals.is_some() {
            bytes += totals_bytes(rows);
        }
        if let (true, Some(g)) = (gathers, gather) {
            // The first product reads bytes by index instead of the f32 rows,
            // and writes the rows and labels the gather would have.
            bytes = bytes - tensor_bytes(program, program.input) + gather_bytes(g, rows);
        }
        Ok(GpuProgram {
            rows,
            launches,
            names: program.ops.iter().map(|op| op_label(program, op)).collect(),
            gathers,
            totals,
            bytes,
        })
    }
    /// Whether the program's weight tiles apply the optimizer's update.
    pub(crate) fn updates(&self) -> bool {
        self.launches
            .iter()
            .any(|l| matches!(l, Launch::Weights(w) if w.updates()))
    }

    /// Records step `step` of `gather` (unless the first product gathers
    /// itself), the program and the accumulation of its loss and correct
    /// count.
    pub(crate) fn record(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        gather: &Gather,
        step: usize,
    ) -> Result<()> {
        if !self.gathers {
            gather.record(pass, step)?;
        }
        for l in &self.launches {
            l.record(pass, gather, step)?;
        }
        if let Some(t) = &self.totals {
            t.record(pass);
        }
        Ok(())
    }

    /// Records the program on input rows already in place, for programs
    /// compiled without a gather (the gradient check, the strategies).
    #[cfg_attr(any(target_arch = "wasm32", not(feature = "lab")), allow(dead_code))]
    pub(crate) fn record_rows(&self, pass: &mut wgpu::ComputePass<'_>) -> Result<()> {
        for l in &self.launches {
            match l {
                Launch::Matmul(m) => m.record(pass),
                Launch::Softmax(s) => s.record(pass),
                Launch::Sum(c) => c.record(pass),
                Launch::Backward(b) => b.record(pass),
                Launch::Rows(r) => r.record(pass),
                Launch::Weights(w) if !w.updates() => w.record(pass),
                Launch::Weights(_) => {
                    return Err(Error::shape(
                        "program",
                        "compiled with the optimizer's update: record it step by step",
                    ));
                }
                Launch::Hinge(h) => h.record(pass),
                Launch::GatherMatmul(_) => {
                    return Err(Error::shape(
                        "program",
                        "compiled to gather its own rows: record it with its gather",
                    ));
                }
            }
        }
        if let Some(t) = &self.totals {
            t.record(pass);
        }
        Ok(())
    }

    /// Dispatches one [`GpuProgram::record_rows`] makes.
    #[cfg_attr(any(target_arch = "wasm32", not(feature = "lab")), allow(dead_code))]
    pub(crate) fn dispatches_rows(&self) -> usize {
        self.launch_dispatches() + usize::from(self.totals.is_some())
    }

    /// Counted bytes one recording with `gather` moves.
    pub(crate) fn bytes(&self, gather: &Gather) -> u64 {
        let gather = if self.gathers {
            0
        } else {
            gather_bytes(gather, self.rows)
        };
        gather + self.bytes
    }

    /// Dispatches one recording with `gather` makes.
    pub(crate) fn dispatches(&self, gather: &Gather) -> usize {
        let gather = if self.gathers { 0 } else { gather.dispatches() };
        gather + self.launch_dispatches() + usize::from(self.totals.is_some())
    }

    fn launch_dispatches(&self) -> usize {
        self.launches.iter().map(Launch::dispatches).sum()
    }

    /// [`GpuProgram::record`] as its launches, one part each.
    #[cfg_attr(any(target_arch = "wasm32", not(feature = "lab")), allow(dead_code))]
    pub(crate) fn parts<'a>(&'a self, gather: &'a Gather, step: usize) -> Vec<StepPart<'a>> {
        let mut parts = Vec::new();
        if !self.gathers {
            parts.push(StepPart {
                name: "gather".into(),
                dispatches: gather.dispatches(),
                record: Box::new(move |pass| gather.record(pass, step)),
            });
        }
        for (l, name) in self.launches.iter().zip(&self.names) {
            parts.push(StepPart {
                name: format!("{} ({})", name, l.kernel()),
                dispatches: l.dispatches(),
                record: Box::new(move |pass| l.record(pass, gather, step)),
            });
        }
        if let Some(t) = &self.totals {
            parts.push(StepPart {
                name: "loss and correct totals".into(),
                dispatches: 1,
                record: Box::new(move |pass| {
                    t.record(pass);
                    Ok(())
                }),
            });
        }
        parts
    }
}

/// Records one launch into an open pass.
#[cfg_attr(any(target_arch = "wasm32", not(feature = "lab")), allow(dead_code))]
pub(crate) type Recorder<'a> = Box<dyn Fn(&mut wgpu::ComputePass<'_>) -> Result<()> + 'a>;

/// One launch of a training step, to be timed on its own (the latency
/// report): what it computes, the dispatches it records, and the recording.
/// Native only, as the benchmarks are.
#[cfg_attr(any(target_arch = "wasm32", not(feature = "lab")), allow(dead_code))]
pub(crate) struct StepPart<'a> {
    pub name: String,
    pub dispatches: usize,
    pub record: Recorder<'a>,
}

fn op_label(program: &Program, op: &Op) -> String {
    let name = |id| program.spec(id).name.as_str();
    match *op {
        Op::Matmul { out, .. } => name(out).to_string(),
        Op::SoftmaxXent { logits, .. } => format!("loss of {}", name(logits)),
        Op::Hinge { scores, .. } => format!("SVM loss of {}", name(scores)),
        Op::ActivationBiasBackward { dz, db, .. } => format!("{}, {}", name(dz), name(db)),
        Op::ColumnSum { sums, .. } => name(sums).to_string(),
        Op::WeightGrad { dw, db, .. } => format!("{}, {}", name(dw), name(db)),
        Op::LayerBackward { dw, dz_below, .. } => format!("{}, {}", name(dw), name(dz_below)),
        Op::RowStep { ref dz, .. } => {
            let dz: Vec<_> = dz.iter().map(|&id| name(id)).collect();
            format!("forward rest, loss, {}", dz.join(", "))
        }
        Op::WeightGrads { ref layers, .. } => {
            let dw: Vec<_> = layers.iter().map(|l| name(l.dw)).collect();
            format!("{} and biases, totals", dw.join(", "))
        }
    }
}

// ------------------------------------------------- the counted byte model
// Each dispatch's floor: its inputs read once, its outputs written once.

fn tensor_bytes(program: &Program, id: crate::model::TensorId) -> u64 {
    4 * program.spec(id).shape.iter().product::<usize>() as u64
}

fn op_bytes(program: &Program, op: &Op) -> u64 {
    let t = |id| tensor_bytes(program, id);
    let rows = 4 * program.rows as u64; // one u32 per row: labels, flags
    match *op {
        Op::Matmul {
            a, b, bias, out, ..
        } => t(a) + t(b) + bias.map_or(0, t) + t(out),
        Op::SoftmaxXent {
            logits,
            loss,
            dlogits,
            totals,
            ..
        } => {
            // The fused totals read and write two 8-byte accumulators.
            let totals = if totals { 16 } else { 0 };
            t(logits) + rows + t(loss) + rows + dlogits.map_or(0, t) + totals
        }
        // Scores and labels in, losses and flags out, dscores out.
        Op::Hinge {
            scores,
            loss,
            dscores,
            ..
        } => t(scores) + rows + t(loss) + rows + dscores.map_or(0, t),
        Op::ActivationBiasBackward { dh, h, dz, db, .. } => t(dh) + t(h) + t(dz) + t(db),
        Op::ColumnSum { x, sums } => t(x) + t(sums),
        Op::WeightGrad { dz, h, dw, db } => t(dz) + t(h) + t(dw) + t(db),
        Op::LayerBackward {
            dz,
            h,
            w,
            dw,
            db,
            dz_below,
            ..
        } => t(dz) + t(h) + t(w) + t(dw) + t(db) + t(dz_below),
        Op::RowStep {
            h,
            ref weights,
            ref biases,
            ref hidden,
            ref dz,
            loss,
            ..
        } => {
            let all = |ids: &[crate::model::TensorId]| ids.iter().map(|&id| t(id)).sum::<u64>();
            // The labels in, the flags out.
            t(h) + all(weights) + all(biases) + all(hidden) + all(dz) + t(loss) + 2 * rows
        }
        Op::WeightGrads {
            ref layers, loss, ..
        } => {
            let grads: u64 = layers
                .iter()
                .map(|l| t(l.dz) + t(l.h) + t(l.dw) + t(l.db))
                .sum();
            // The per-row values in, the totals read and written.
            grads + t(loss) + rows + 16
        }
    }
}

/// The loss and correct-count sum: the per-row values in, the totals read
/// and written.
fn totals_bytes(rows: usize) -> u64 {
    8 * rows as u64 + 16
}

/// A gather of `rows`: the order, the packed pixels and the labels in, the
/// f32 rows and the labels out.
fn gather_bytes(gather: &Gather, rows: usize) -> u64 {
    let src = &gather.source;
    let (rows, width) = (rows as u64, src.x.shape()[1] as u64);
    let pixels = src.data.dim().div_ceil(4) as u64 * 4;
    rows * (4 + pixels + 4) + rows * (4 * width + 4)
}
