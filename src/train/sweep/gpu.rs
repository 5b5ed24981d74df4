//! The GPU sweep: [`SweepEngine`] trains K models in the same dispatches,
//! and [`SweepProgram`] compiles a model's reference [`Program`] into
//! launchers batched over the K models.
//!
//! Memory layout: parameters, gradients and optimizer state are `[K, P]`
//! (model k's flat buffer at `k·P`); every work tensor of the program is
//! `[K, …]`; the gathered input rows and labels are one copy shared by all.
//! Models are stored grouped by rule variant (so each variant's updates are
//! one dispatch over consecutive models); results come back in the order of
//! the runs given.

use super::{ModelOutcome, SweepEvent, SweepRun, divergence};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuLabels, GpuTensor};
use crate::kernels::{
    BatchStrides, ColumnSum, ColumnSumKernel, Gather, GpuDataset, LossCorrectSum, Matmul,
    MatmulKernel, SoftmaxXent, SoftmaxXentKernel, SweepOptimizer,
};
use crate::metrics::EpochMetrics;
use crate::model::{Model, Op, Program, Region, TensorId, parameter_count};
use crate::train::gpu::submit_steps;
use crate::train::{EvalSet, TrainConfig, TrainData, batch_sizes, check_model, eval_order};
use crate::tune;
use std::collections::BTreeMap;
use std::time::Instant;

/// The most models of `model` one sweep can hold on `gpu` with `config`'s
/// batch sizes: the largest per-model buffer (parameters, or a work tensor
/// of the training or evaluation program) times K must fit one storage
/// binding, and K workgroups one grid dimension. Pass the batch sizes the
/// engine really uses ([`SweepEngine::new`] clamps them to the data, as
/// [`super::super::GpuEngine`] does); sizes are multiplied in saturating
/// arithmetic, so an absurd one gives 0 models, never a wrapped product.
pub fn max_models(gpu: &Gpu, model: &dyn Model, config: &TrainConfig) -> (usize, String) {
    let limits = gpu.limits();
    let binding = limits
        .max_storage_buffer_binding_size
        .min(limits.max_buffer_size)
        .max(1);
    let mut largest = (parameter_count(model), "parameters".to_string());
    for program in [
        model.train_program(config.batch.max(1)),
        model.eval_program(config.eval_batch.max(1)),
    ] {
        for t in &program.tensors {
            if matches!(t.region, Region::Work | Region::WorkU32) {
                let len = t.shape.iter().fold(1usize, |a, &d| a.saturating_mul(d));
                if len > largest.0 {
                    largest = (len, format!("activation {}", t.name));
                }
            }
        }
    }
    let per_model = (largest.0.max(1) as u64).saturating_mul(4);
    let by_memory = usize::try_from(binding / per_model).unwrap_or(usize::MAX);
    let by_grid = limits.max_compute_workgroups_per_dimension as usize;
    (
        by_memory.min(by_grid),
        format!(
            "{} of {} floats ({}) per model, and one storage binding holds {}",
            largest.1,
            largest.0,
            crate::error::bytes(per_model),
            crate::error::bytes(binding)
        ),
    )
}

struct Set {
    data: GpuDataset,
    order: GpuTensor<u32>,
    gather: Gather,
    len: usize,
}

/// K models of one architecture training in the same dispatches.
pub struct SweepEngine<'g> {
    gpu: &'g Gpu,
    k: usize,
    per_model: usize,
    /// `slot[i]` is where run `i` is stored.
    slot: Vec<usize>,
    params: GpuTensor<f32>,
    optimizer: SweepOptimizer,
    loss_total: GpuTensor<f32>,
    correct_total: GpuTensor<u32>,
    train: Set,
    train_programs: BTreeMap<usize, SweepProgram>,
    val: Option<Set>,
    test: Set,
    eval_programs: BTreeMap<usize, SweepProgram>,
    steps_per_submit: usize,
    dispatches_per_step: f64,
}

impl<'g> SweepEngine<'g> {
    /// Checks that the K models fit ([`max_models`]), uploads the data and
    /// every model's initial parameters, and builds every launcher once.
    pub fn new(
        gpu: &'g Gpu,
        model: &dyn Model,
        data: &TrainData,
        config: &TrainConfig,
        runs: &[SweepRun],
    ) -> Result<Self> {
        config.validate()?;
        check_model(model, data)?;
        // A batch larger than the training set is one full-set batch, and an
        // evaluation batch larger than every evaluated set is that set: size
        // (and bound) the buffers for what runs, as GpuEngine does.
        let eval_rows = data.test.len().max(data.val_idx.len()).max(1);
        let config = &TrainConfig {
            batch: config.batch.min(data.train_idx.len()).max(1),
            eval_batch: config.eval_batch.min(eval_rows),
            ..config.clone()
        };
        let k = runs.len();
        let (most, why) = max_models(gpu, model, config);
        if k > most {
            return Err(Error::TooLarge {
                what: format!(
                    "a sweep of {k} models of {} (at most {most} fit on this device)",
                    model.name()
                ),
                needed: format!("{k} × the largest per-model buffer: {why}"),
                limit: crate::error::bytes(gpu.limits().max_storage_buffer_binding_size),
                limit_name: "max_storage_buffer_binding_size",
            });
        }
        // Stored grouped by rule variant, stably: one update dispatch each.
        let mut stored: Vec<usize> = (0..k).collect();
        stored.sort_by_key(|&i| runs[i].optimizer.name());
        let mut slot = vec![0; k];
        for (s, &i) in stored.iter().enumerate() {
            slot[i] = s;
        }
        let per_model = parameter_count(model);
        let mut init = Vec::with_capacity(k * per_model);
        for &i in &stored {
            init.extend(model.init(runs[i].seed));
        }
        let params = GpuTensor::from_slice(gpu, &[k * per_model], &init)?;
        let grads = GpuTensor::<f32>::zeros(gpu, &[k * per_model])?;
        let configs: Vec<_> = stored.iter().map(|&i| runs[i].optimizer).collect();
        let steps = data.train_idx.len().div_ceil(config.batch);
        let optimizer = SweepOptimizer::new(gpu, &configs, &params, &grads, steps)?;
        let loss_total = GpuTensor::<f32>::zeros(gpu, &[k])?;
        let correct_total = GpuTensor::<u32>::zeros(gpu, &[k])?;

        let opts = config.gather_options(model.appends_one());
        let width = model.input_dim();
        let set = |d: &GpuDataset,
                   order: &[u32],
                   x: &GpuTensor<f32>,
                   y: &GpuTensor<u32>,
                   batch: usize|
         -> Result<Set> {
            let buf = d.order_buffer(gpu, order.len())?;
            d.write_order(gpu, &buf, order)?;
            let gather = Gather::new(gpu, d, &buf, x, y, batch, opts)?;
            Ok(Set {
                data: d.clone(),
                order: buf,
                gather,
                len: order.len(),
            })
        };
        let train_data = GpuDataset::upload(gpu, &data.train)?;
        let test_data = GpuDataset::upload(gpu, &data.test)?;
        let batch = config.batch.min(data.train_idx.len()).max(1);
        let x = GpuTensor::<f32>::zeros(gpu, &[batch, width])?;
        let y = GpuTensor::<u32>::zeros(gpu, &[batch])?;
        let train = set(&train_data, &data.train_idx, &x, &y, batch)?;
        let shared = Shared {
            k,
            x: &x,
            y: &y,
            classes: model.classes(),
            params: &params,
            grads: &grads,
            per_model,
            loss_total: &loss_total,
            correct_total: &correct_total,
        };
        let mut train_programs = BTreeMap::new();
        for rows in batch_sizes(data.train_idx.len(), config.batch) {
            let program = SweepProgram::compile(gpu, &model.train_program(rows), &shared)?;
            train_programs.insert(rows, program);
        }
        let ex = GpuTensor::<f32>::zeros(gpu, &[config.eval_batch, width])?;
        let ey = GpuTensor::<u32>::zeros(gpu, &[config.eval_batch])?;
        let eval_shared = Shared {
            x: &ex,
            y: &ey,
            ..shared
        };
        let mut eval_programs = BTreeMap::new();
        let mut eval_set = |d: &GpuDataset, order: Vec<u32>| -> Result<Set> {
            for rows in batch_sizes(order.len(), config.eval_batch) {
                if let std::collections::btree_map::Entry::Vacant(e) = eval_programs.entry(rows) {
                    e.insert(SweepProgram::compile(
                        gpu,
                        &model.eval_program(rows),
                        &eval_shared,
                    )?);
                }
            }
            set(d, &order, &ex, &ey, config.eval_batch)
        };
        let val = if data.val_idx.is_empty() {
            None
        } else {
            Some(eval_set(&train_data, data.val_idx.clone())?)
        };
        let test = eval_set(&test_data, eval_order(data, EvalSet::Test))?;
        let full = &train_programs[&batch_sizes(data.train_idx.len(), config.batch)[0]];
        let dispatches_per_step =
            (train.gather.dispatches() + full.dispatches() + optimizer.dispatches()) as f64;
        Ok(SweepEngine {
            gpu,
            k,
            per_model,
            slot,
            params,
            optimizer,
            loss_total,
            correct_total,
            train,
            train_programs,
            val,
            test,
            eval_programs,
            steps_per_submit: config.steps_per_submit,
            dispatches_per_step,
        })
    }

    /// Dispatches per training step, for all K models together.
    pub fn dispatches_per_step(&self) -> f64 {
        self.dispatches_per_step
    }

    /// One epoch over `order` for every model: per-model (mean loss,
    /// accuracy), in the order of the runs.
    pub fn train_epoch(&mut self, order: &[u32]) -> Result<Vec<(f64, f64)>> {
        if order.len() != self.train.len {
            return Err(Error::shape(
                "sweep train_epoch",
                format!(
                    "the order holds {} indices, the training set {}",
                    order.len(),
                    self.train.len
                ),
            ));
        }
        self.train
            .data
            .write_order(self.gpu, &self.train.order, order)?;
        self.optimizer.plan(self.gpu, self.train.gather.steps())?;
        self.pass(None)
    }

    /// Per-model (mean loss, accuracy) on a whole set, in the order of the runs.
    pub fn evaluate(&mut self, set: EvalSet) -> Result<Vec<(f64, f64)>> {
        self.pass(Some(set))
    }

    /// Lets run `run`'s plateau schedule see its epoch metric.
    pub fn end_epoch(&mut self, run: usize, metric: f32) -> Result<()> {
        self.optimizer.end_epoch(self.slot[run], metric).map(|_| ())
    }

    /// Run `run`'s parameters, read back.
    pub fn params(&self, run: usize) -> Result<Vec<f32>> {
        let at = self.slot[run] * self.per_model;
        Ok(self.params.read(self.gpu)?[at..at + self.per_model].to_vec())
    }

    /// Every epoch of `config` for every model, as [`super::train_alone`]
    /// trains one: the shared order, validation after each epoch, a
    /// diverged model reported (and its plateau schedule left alone) from
    /// the epoch it diverged in on, the test set at the end.
    pub fn run(
        &mut self,
        data: &TrainData,
        config: &TrainConfig,
        on_event: &mut dyn FnMut(SweepEvent<'_>),
    ) -> Result<Vec<ModelOutcome>> {
        let k = self.k;
        let mut histories: Vec<Vec<EpochMetrics>> = vec![Vec::new(); k];
        let mut diverged = vec![None; k];
        for epoch in 0..config.epochs {
            let order = data.epoch_order(config.seed, epoch);
            let start = Instant::now();
            let train = self.train_epoch(&order)?;
            let seconds = start.elapsed().as_secs_f64();
            let val = if data.val_idx.is_empty() {
                None
            } else {
                Some(self.evaluate(EvalSet::Validation)?)
            };
            let mut row = vec![None; k];
            for m in 0..k {
                if diverged[m].is_some() {
                    continue;
                }
                let (train_loss, train_accuracy) = train[m];
                let metrics = EpochMetrics {
                    epoch: epoch + 1,
                    train_loss,
                    train_accuracy,
                    val_loss: val.as_ref().map(|v| v[m].0),
                    val_accuracy: val.as_ref().map(|v| v[m].1),
                    seconds,
                    samples_per_sec: order.len() as f64 / seconds.max(1e-12),
                };
                diverged[m] = divergence(epoch + 1, train_loss, metrics.val_loss);
                if diverged[m].is_none() {
                    self.end_epoch(m, metrics.val_loss.unwrap_or(train_loss) as f32)?;
                }
                histories[m].push(metrics.clone());
                row[m] = Some(metrics);
            }
            on_event(SweepEvent::Epoch {
                model: None,
                epoch: epoch + 1,
                metrics: &row,
            });
        }
        let test = self.evaluate(EvalSet::Test)?;
        let all = self.params.read(self.gpu)?;
        let mut out = Vec::with_capacity(k);
        for (m, history) in histories.into_iter().enumerate() {
            let (loss, accuracy) = test[m];
            let mut d = diverged[m];
            let mut t = None;
            if d.is_none() {
                if loss.is_finite() {
                    t = Some((loss, accuracy));
                } else {
                    d = Some(super::Divergence {
                        epoch: config.epochs,
                        what: "test loss",
                        value: loss,
                    });
                }
            }
            let at = self.slot[m] * self.per_model;
            out.push(ModelOutcome {
                history,
                diverged: d,
                test: t,
                params: all[at..at + self.per_model].to_vec(),
            });
        }
        Ok(out)
    }

    /// Records every step of a set for all models, `steps_per_submit` steps
    /// per submit, and reads the K totals back once.
    fn pass(&mut self, which: Option<EvalSet>) -> Result<Vec<(f64, f64)>> {
        let gpu = self.gpu;
        self.loss_total.fill(gpu, 0.0)?;
        self.correct_total.fill(gpu, 0)?;
        let (set, programs) = match which {
            None => (&self.train, &self.train_programs),
            Some(EvalSet::Validation) => match &self.val {
                Some(s) => (s, &self.eval_programs),
                None => {
                    return Err(Error::InvalidArgument {
                        name: "evaluation set",
                        msg: "there is no validation split".into(),
                    });
                }
            },
            Some(EvalSet::Test) => (&self.test, &self.eval_programs),
        };
        let optimizer = &self.optimizer;
        submit_steps(
            gpu,
            "sweep steps",
            set.gather.steps(),
            self.steps_per_submit,
            |pass, s| {
                let rows = set.gather.rows(s);
                let program = programs
                    .get(&rows)
                    .ok_or_else(|| Error::shape("sweep", format!("no program for {rows} rows")))?;
                set.gather.record(pass, s)?;
                program.record(pass);
                if which.is_none() {
                    optimizer.record_planned(pass, s)?;
                }
                Ok(())
            },
            |_| {},
        )?;
        let loss = self.loss_total.read(gpu)?;
        let correct = self.correct_total.read(gpu)?;
        let n = set.len.max(1) as f64;
        Ok(self
            .slot
            .iter()
            .map(|&s| (loss[s] as f64 / n, correct[s] as f64 / n))
            .collect())
    }
}

/// What a [`SweepProgram`] binds: the shared input and the `[K, …]` buffers.
#[derive(Clone, Copy)]
struct Shared<'a> {
    k: usize,
    /// Gathered rows `[batch, input_dim]` and labels `[batch]`, shared.
    x: &'a GpuTensor<f32>,
    y: &'a GpuTensor<u32>,
    classes: usize,
    params: &'a GpuTensor<f32>,
    grads: &'a GpuTensor<f32>,
    per_model: usize,
    /// Per-model epoch totals `[K]`.
    loss_total: &'a GpuTensor<f32>,
    correct_total: &'a GpuTensor<u32>,
}

enum Launch {
    Matmul(Matmul),
    Softmax(SoftmaxXent),
    Sum(ColumnSum),
}

/// A tensor of the program for model 0, and the distance to model 1's.
enum Slot {
    F32(GpuTensor<f32>, usize),
    U32(GpuTensor<u32>, usize),
}

/// A model's reference program compiled for K models: one batched launch
/// per op, then the K loss/accuracy totals.
pub(crate) struct SweepProgram {
    launches: Vec<Launch>,
    totals: LossCorrectSum,
}

impl SweepProgram {
    fn compile(gpu: &Gpu, program: &Program, b: &Shared<'_>) -> Result<Self> {
        let (k, rows) = (b.k, program.rows);
        let mut slots = Vec::with_capacity(program.tensors.len());
        for spec in &program.tensors {
            let len: usize = spec.shape.iter().product();
            slots.push(match spec.region {
                Region::Input => {
                    let width = spec.shape.get(1).copied().unwrap_or(0);
                    if b.x.shape().get(1) != Some(&width) || b.x.shape()[0] < rows {
                        return Err(Error::shape(
                            "sweep program",
                            format!("input {:?} cannot hold {:?}", b.x.shape(), spec.shape),
                        ));
                    }
                    Slot::F32(b.x.view(0, &spec.shape)?, 0)
                }
                Region::Param { offset } => {
                    Slot::F32(b.params.view(offset, &spec.shape)?, b.per_model)
                }
                Region::Grad { offset } => {
                    Slot::F32(b.grads.view(offset, &spec.shape)?, b.per_model)
                }
                Region::Work => Slot::F32(
                    GpuTensor::<f32>::zeros(gpu, &[k * len])?.view(0, &spec.shape)?,
                    len,
                ),
                Region::WorkU32 => Slot::U32(
                    GpuTensor::<u32>::zeros(gpu, &[k * len])?.view(0, &[len])?,
                    len,
                ),
            });
        }
        let f = |id: TensorId| -> Result<(&GpuTensor<f32>, usize)> {
            match &slots[id.0] {
                Slot::F32(t, s) => Ok((t, *s)),
                Slot::U32(..) => Err(Error::shape(
                    "sweep program",
                    format!("{} is not an f32 tensor", program.spec(id).name),
                )),
            }
        };
        let u = |id: TensorId| -> Result<(&GpuTensor<u32>, usize)> {
            match &slots[id.0] {
                Slot::U32(t, s) => Ok((t, *s)),
                Slot::F32(..) => Err(Error::shape(
                    "sweep program",
                    format!("{} is not a u32 tensor", program.spec(id).name),
                )),
            }
        };
        // The batched softmax, column sums and totals step their per-row
        // tensors by the tensor's own size: those must be work tensors.
        let packed = |id: TensorId, stride: usize| -> Result<()> {
            let len: usize = program.spec(id).shape.iter().product();
            if stride != len {
                return Err(Error::shape(
                    "sweep program",
                    format!(
                        "{} must be a per-model work tensor to be batched",
                        program.spec(id).name
                    ),
                ));
            }
            Ok(())
        };
        let labels = GpuLabels::from_checked(b.y.view(0, &[rows])?, b.classes);
        let mut launches = Vec::with_capacity(program.ops.len());
        for op in &program.ops {
            launches.push(match *op {
                Op::Matmul {
                    a,
                    b: bb,
                    bias,
                    out,
                    opts,
                } => {
                    let (a, sa) = f(a)?;
                    let (bm, sb) = f(bb)?;
                    let (c, sc) = f(out)?;
                    let (bias, sbias) = match bias {
                        Some(id) => {
                            let (t, s) = f(id)?;
                            (Some(t), s)
                        }
                        None => (None, 0),
                    };
                    Launch::Matmul(Matmul::batched(
                        gpu,
                        a,
                        bm,
                        bias,
                        c,
                        opts,
                        tune::matmul_for(gpu, a, bm, bias, &opts, MatmulKernel::Auto),
                        k,
                        BatchStrides {
                            a: sa,
                            b: sb,
                            bias: sbias,
                            c: sc,
                        },
                    )?)
                }
                Op::SoftmaxXent {
                    logits,
                    loss,
                    correct,
                    dlogits,
                    totals: false,
                } => {
                    let (lg, s) = f(logits)?;
                    packed(logits, s)?;
                    let (ls, s) = f(loss)?;
                    packed(loss, s)?;
                    let (cr, s) = u(correct)?;
                    packed(correct, s)?;
                    let d = match dlogits {
                        Some(id) => {
                            let (t, s) = f(id)?;
                            packed(id, s)?;
                            Some(t)
                        }
                        None => None,
                    };
                    Launch::Softmax(SoftmaxXent::batched(
                        gpu,
                        lg,
                        &labels,
                        ls,
                        cr,
                        d,
                        tune::softmax_xent_for(gpu, lg, d.is_some(), SoftmaxXentKernel::Auto),
                        k,
                    )?)
                }
                Op::ActivationBiasBackward {
                    dh,
                    h,
                    dz,
                    db,
                    activation,
                } => {
                    for id in [dh, h, dz] {
                        packed(id, f(id)?.1)?;
                    }
                    let (db, sdb) = f(db)?;
                    Launch::Sum(ColumnSum::with_activation_batched(
                        gpu,
                        f(dh)?.0,
                        f(h)?.0,
                        f(dz)?.0,
                        db,
                        activation,
                        tune::column_sum_for(gpu, f(dh)?.0, Some(activation), ColumnSumKernel::Auto),
                        k,
                        sdb,
                    )?)
                }
                Op::ColumnSum { x, sums } => {
                    packed(x, f(x)?.1)?;
                    let (s, ss) = f(sums)?;
                    Launch::Sum(ColumnSum::batched(
                        gpu,
                        f(x)?.0,
                        s,
                        tune::column_sum_for(gpu, f(x)?.0, None, ColumnSumKernel::Auto),
                        k,
                        ss,
                    )?)
                }
                Op::Hinge { .. } => {
                    return Err(Error::shape(
                        "sweep program",
                        "a sweep trains softmax models only: the SVM loss has no batched kernel",
                    ));
                }
                Op::WeightGrad { .. }
                | Op::LayerBackward { .. }
                | Op::RowStep { .. }
                | Op::WeightGrads { .. }
                | Op::SoftmaxXent { totals: true, .. } => {
                    return Err(Error::shape(
                        "sweep program",
                        "a sweep runs a model's reference program (train_program), not the fused one",
                    ));
                }
            });
        }
        let (loss, s) = f(program.loss)?;
        packed(program.loss, s)?;
        let (correct, s) = u(program.correct)?;
        packed(program.correct, s)?;
        let totals = LossCorrectSum::batched(
            gpu,
            loss,
            correct,
            &b.loss_total.view(0, &[1])?,
            &b.correct_total.view(0, &[1])?,
            true,
            k,
        )?;
        Ok(SweepProgram { launches, totals })
    }

    fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        for l in &self.launches {
            match l {
                Launch::Matmul(m) => m.record(pass),
                Launch::Softmax(s) => s.record(pass),
                Launch::Sum(c) => c.record(pass),
            }
        }
        self.totals.record(pass);
    }

    /// Dispatches one recording makes (the gather and optimizer apart).
    fn dispatches(&self) -> usize {
        self.launches.len() + 1
    }
}
