//! Training on the GPU: [`GpuEngine`] (the dataset resident, an epoch's
//! steps recorded in bulk — gather, the model's program, the optimizer — and
//! loss and accuracy read back once per epoch) and its runner [`GpuProgram`],
//! which compiles a model's [`Program`] into launchers once and then records
//! it into any number of steps.
//!
//! With [`TrainConfig::fused`] (the default) the engine runs the models'
//! fused programs, the first product gathers its own rows (when the
//! training set fits one binding) and the optimizer reads host-planned step
//! scalars: 8 dispatches a step for the MLP, 4 for the linear model, against
//! 16 and 7 for the reference kernels. [`GpuEngine::bytes_per_step`] is the
//! counted traffic beside [`Engine::dispatches_per_step`].

#[cfg(not(target_arch = "wasm32"))]
use super::Engine;
use super::{EvalSet, TrainConfig, TrainData, TrainState, batch_sizes, check_model, eval_order};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuLabels, GpuTensor};
use crate::kernels::loss::Hinge;
use crate::kernels::weight_step::WeightGradLayer;
use crate::kernels::{
    ColumnSum, ColumnSumKernel, LossCorrectSum, Matmul, MatmulEpilogue, MatmulKernel, SoftmaxXent,
    SoftmaxXentKernel,
};
use crate::kernels::{
    Gather, GatherMatmul, GpuDataset, GpuOptimizer, LayerBackward, RowStep, WeightStep,
};
use crate::model::Model;
use crate::model::{Op, Program, Region};
use crate::options::MatmulOptions;
use crate::tune;
use std::collections::BTreeMap;

struct GpuSet {
    data: GpuDataset,
    order: GpuTensor<u32>,
    gather: Gather,
}

/// Training on the GPU: dataset resident, steps recorded in bulk, loss and
/// accuracy read back once per epoch.
pub struct GpuEngine<'g> {
    gpu: &'g Gpu,
    params: GpuTensor<f32>,
    optimizer: GpuOptimizer,
    loss_total: GpuTensor<f32>,
    correct_total: GpuTensor<u32>,
    train: GpuSet,
    train_programs: BTreeMap<usize, GpuProgram>,
    val: Option<(GpuSet, Vec<u32>)>,
    test: (GpuSet, Vec<u32>),
    eval_programs: BTreeMap<usize, GpuProgram>,
    steps_per_submit: usize,
    #[cfg_attr(any(target_arch = "wasm32", not(feature = "lab")), allow(dead_code))]
    dispatches_per_step: f64,
    bytes_per_step: u64,
    /// Blocking waits in the last training epoch.
    train_syncs: usize,
}

impl<'g> GpuEngine<'g> {
    /// Whether [`TrainConfig::fused`] should be on for `gpu`, as measured:
    /// on software adapters (lavapipe) the fused step's fewer dispatches and
    /// bytes win; on an NVIDIA H200 (2026-11-30, BENCHMARKS.md) the unfused
    /// step ran 2.7× faster for the MLP and 3–4× for the linear model, its
    /// fused kernels being under-occupied at these small shapes. So hardware
    /// GPUs get the unfused kernels until the fused ones are tuned there.
    pub fn fused_by_default(gpu: &Gpu) -> bool {
        gpu.is_software()
    }

    /// Uploads the data and the initial parameters, builds every pipeline,
    /// bind group and program once.
    pub fn new(
        gpu: &'g Gpu,
        model: &dyn Model,
        data: &TrainData,
        config: &TrainConfig,
    ) -> Result<Self> {
        config.validate()?;
        check_model(model, data)?;
        let opts = config.gather_options(model.appends_one());
        let width = model.input_dim();
        let init = model.init(config.seed);
        let params = GpuTensor::from_slice(gpu, &[init.len()], &init)?;
        let grads = GpuTensor::<f32>::zeros(gpu, &[init.len()])?;
        let steps = data.train_idx.len().div_ceil(config.batch);
        // Fused: each update reads its step scalars from a slot the host
        // plans per epoch (no `advance` dispatch).
        let optimizer = if config.fused {
            crate::tune::optimizer(gpu, &config.optimizer, params.len());
            GpuOptimizer::with_planned_steps(gpu, config.optimizer, &params, &grads, steps)?
        } else {
            crate::tune::new_optimizer(gpu, config.optimizer, &params, &grads)?
        };
        let loss_total = GpuTensor::<f32>::zeros(gpu, &[1])?;
        let correct_total = GpuTensor::<u32>::zeros(gpu, &[1])?;

        let set = |d: &GpuDataset,
                   order: &[u32],
                   x: &GpuTensor<f32>,
                   y: &GpuTensor<u32>,
                   batch: usize|
         -> Result<GpuSet> {
            let buf = d.order_buffer(gpu, order.len())?;
            d.write_order(gpu, &buf, order)?;
            let gather = Gather::new(gpu, d, &buf, x, y, batch, opts)?;
            Ok(GpuSet {
                data: d.clone(),
                order: buf,
                gather,
            })
        };

        let train_data = GpuDataset::upload(gpu, &data.train)?;
        let test_data = GpuDataset::upload(gpu, &data.test)?;
        // A batch larger than the training set is one full-set batch: size
        // the buffers by what a step can hold, as the CPU engine does.
        let batch = config.batch.min(data.train_idx.len()).max(1);
        let x = GpuTensor::<f32>::zeros(gpu, &[batch, width])?;
        let y = GpuTensor::<u32>::zeros(gpu, &[batch])?;
        let train = set(&train_data, &data.train_idx, &x, &y, batch)?;
        let bindings = Bindings {
            x: &x,
            y: &y,
            classes: model.classes(),
            params: &params,
            grads: &grads,
            loss_total: &loss_total,
            correct_total: &correct_total,
        };
        let mut train_programs = BTreeMap::new();
        // Fused: the first product gathers its own rows, when the training
        // set fits one binding and the adapter binds the eight buffers it
        // needs (else the gather stays a dispatch of its own).
        let gathers = (config.fused && train_data.chunk_count() == 1 && GatherMatmul::fits(gpu))
            .then_some(&train.gather);
        for rows in batch_sizes(data.train_idx.len(), config.batch) {
            let program = super::StepProgram::of(config).program(model, rows);
            train_programs.insert(
                rows,
                GpuProgram::compile(gpu, &program, &bindings, gathers)?,
            );
        }

        let ex = GpuTensor::<f32>::zeros(gpu, &[config.eval_batch, width])?;
        let ey = GpuTensor::<u32>::zeros(gpu, &[config.eval_batch])?;
        let eval_bindings = Bindings {
            x: &ex,
            y: &ey,
            ..bindings
        };
        let mut eval_programs = BTreeMap::new();
        let mut eval_set = |d: &GpuDataset, order: Vec<u32>| -> Result<(GpuSet, Vec<u32>)> {
            for rows in batch_sizes(order.len(), config.eval_batch) {
                if let std::collections::btree_map::Entry::Vacant(slot) = eval_programs.entry(rows)
                {
                    let program = if config.fused {
                        model.fused_eval_program(rows)
                    } else {
                        model.eval_program(rows)
                    };
                    slot.insert(GpuProgram::compile(gpu, &program, &eval_bindings, None)?);
                }
            }
            Ok((set(d, &order, &ex, &ey, config.eval_batch)?, order))
        };
        let val = if data.val_idx.is_empty() {
            None
        } else {
            Some(eval_set(&train_data, data.val_idx.clone())?)
        };
        let test = eval_set(&test_data, eval_order(data, EvalSet::Test))?;

        let full = &train_programs[&batch_sizes(data.train_idx.len(), config.batch)[0]];
        let dispatches_per_step = (full.dispatches(&train.gather) + optimizer.dispatches()) as f64;
        let bytes_per_step = full.bytes(&train.gather) + optimizer_bytes(&optimizer);
        Ok(GpuEngine {
            gpu,
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
            bytes_per_step,
            train_syncs: 0,
        })
    }

    /// The counted memory traffic of one full training step, in bytes: every
    /// dispatch's inputs read once and outputs written once (the floor a
    /// kernel cannot go under; caches only help above it). The model the
    /// fused kernels are measured by, beside [`Engine::dispatches_per_step`].
    pub fn bytes_per_step(&self) -> u64 {
        self.bytes_per_step
    }

    /// Records every step of a set's gather through its programs (with the
    /// optimizer when training), `steps_per_submit` steps per submit; returns
    /// (mean loss, accuracy) read back once at the end, and the number of
    /// blocking waits it made.
    ///
    /// Async for the browser, where the readback is a promise and the
    /// in-flight waits are left to the page's event loop; natively the
    /// waits block as before and [`Engine`]'s methods block on this.
    async fn pass(
        &mut self,
        which: Option<EvalSet>,
        order_len: usize,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<(f64, f64, usize)> {
        let gpu = self.gpu;
        let mut syncs = 0;
        self.loss_total.fill(gpu, 0.0)?;
        self.correct_total.fill(gpu, 0)?;
        let (set, programs) = match which {
            None => (&self.train, &self.train_programs),
            Some(EvalSet::Validation) => match &self.val {
                Some((s, _)) => (s, &self.eval_programs),
                None => {
                    return Err(Error::InvalidArgument {
                        name: "evaluation set",
                        msg: "there is no validation split".into(),
                    });
                }
            },
            Some(EvalSet::Test) => (&self.test.0, &self.eval_programs),
        };
        let steps = set.gather.steps();
        let optimizer = &self.optimizer;
        syncs += submit_steps(
            gpu,
            "steps",
            steps,
            self.steps_per_submit,
            |pass, s| {
                let rows = set.gather.rows(s);
                let program = programs
                    .get(&rows)
                    .ok_or_else(|| Error::shape("train", format!("no program for {rows} rows")))?;
                program.record(pass, &set.gather, s)?;
                if which.is_none() {
                    if optimizer.is_planned() {
                        optimizer.record_planned(pass, s)?;
                    } else {
                        optimizer.record(pass);
                    }
                }
                Ok(())
            },
            |done| progress(done, steps),
        )?;
        let loss = self.loss_total.read_async(gpu).await?[0] as f64;
        let correct = self.correct_total.read_async(gpu).await?[0] as f64;
        syncs += 2;
        progress(steps, steps);
        let n = order_len.max(1) as f64;
        Ok((loss / n, correct / n, syncs))
    }
}

/// Records `steps` steps with `record`, `per_submit` to a submit, keeping
/// one submit in flight while waiting for the one before it: the GPU never
/// idles, and `progress(done)` reports real completion. Returns the waits
/// made (none in a browser, where the readback that follows is awaited).
pub(super) fn submit_steps(
    gpu: &Gpu,
    label: &str,
    steps: usize,
    per_submit: usize,
    mut record: impl FnMut(&mut wgpu::ComputePass<'_>, usize) -> Result<()>,
    mut progress: impl FnMut(usize),
) -> Result<usize> {
    // Counted natively only: a browser never waits here.
    #[cfg_attr(target_arch = "wasm32", allow(unused_mut))]
    let mut syncs = 0;
    let mut previous: Option<(wgpu::SubmissionIndex, usize)> = None;
    let mut first = 0;
    while first < steps {
        let last = (first + per_submit).min(steps);
        let mut encoder = gpu.encoder(label);
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(label),
                timestamp_writes: None,
            });
            for s in first..last {
                record(&mut pass, s)?;
            }
        }
        let index = gpu.submit(encoder)?;
        if let Some((prev, done)) = previous.replace((index, last)) {
            #[cfg(not(target_arch = "wasm32"))]
            {
                gpu.wait_for(prev)?;
                syncs += 1;
            }
            #[cfg(target_arch = "wasm32")]
            drop(prev);
            progress(done);
        }
        first = last;
    }
    Ok(syncs)
}

impl GpuEngine<'_> {
    /// [`Engine::train_epoch`], awaiting the readback (the browser's way).
    pub async fn train_epoch_async(
        &mut self,
        order: &[u32],
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<(f64, f64)> {
        if order.len() != self.train.order.len() {
            return Err(Error::shape(
                "train_epoch",
                format!(
                    "the order holds {} indices, the training set {}",
                    order.len(),
                    self.train.order.len()
                ),
            ));
        }
        self.train
            .data
            .write_order(self.gpu, &self.train.order, order)?;
        if self.optimizer.is_planned() {
            self.optimizer.plan(self.gpu, self.train.gather.steps())?;
        }
        let (loss, accuracy, syncs) = self.pass(None, order.len(), progress).await?;
        self.train_syncs = syncs;
        Ok((loss, accuracy))
    }

    /// [`Engine::evaluate`], awaiting the readback.
    pub async fn evaluate_async(&mut self, set: EvalSet) -> Result<(f64, f64)> {
        let len = match set {
            EvalSet::Validation => self.val.as_ref().map_or(0, |v| v.1.len()),
            EvalSet::Test => self.test.1.len(),
        };
        let (loss, accuracy, _) = self.pass(Some(set), len, &mut |_, _| {}).await?;
        Ok((loss, accuracy))
    }

    /// [`Engine::state`], awaiting the readbacks.
    pub async fn state_async(&mut self) -> Result<TrainState> {
        let tensors = self.optimizer.state().to_vec();
        let mut optimizer_state = Vec::with_capacity(tensors.len());
        for t in &tensors {
            optimizer_state.push(t.read_async(self.gpu).await?);
        }
        Ok(TrainState {
            params: self.params.read_async(self.gpu).await?,
            optimizer_state,
            step: self.optimizer.step_scalars_async(self.gpu).await?,
        })
    }
}

// Native only: the trait's methods block on the async ones.
#[cfg(not(target_arch = "wasm32"))]
impl Engine for GpuEngine<'_> {
    fn device(&self) -> &'static str {
        "gpu"
    }

    fn adapter(&self) -> String {
        self.gpu.summary().to_string()
    }

    fn train_epoch(
        &mut self,
        order: &[u32],
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<(f64, f64)> {
        pollster::block_on(self.train_epoch_async(order, progress))
    }

    fn evaluate(&mut self, set: EvalSet) -> Result<(f64, f64)> {
        pollster::block_on(self.evaluate_async(set))
    }

    fn end_epoch(&mut self, metric: f32) -> Result<()> {
        self.optimizer.end_epoch(self.gpu, metric).map(|_| ())
    }

    fn state(&mut self) -> Result<TrainState> {
        pollster::block_on(self.state_async())
    }

    fn restore(&mut self, state: &TrainState) -> Result<()> {
        state.check_params(self.params.len())?;
        self.optimizer
            .restore(self.gpu, &state.optimizer_state, state.step)?;
        self.params.write(self.gpu, &state.params)
    }

    fn kernel_choices(&self) -> std::collections::BTreeMap<String, String> {
        self.gpu.tune_record().choices()
    }

    fn dispatches_per_step(&self) -> Option<f64> {
        Some(self.dispatches_per_step)
    }

    fn host_syncs_last_epoch(&self) -> Option<usize> {
        Some(self.train_syncs)
    }
}

// ------------------------------------------------------------ the runner
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
            Launch::Weights(w) => w.record(pass),
            Launch::Hinge(h) => h.record(pass),
        }
        Ok(())
    }
}

enum Slot {
    F32(GpuTensor<f32>),
    U32(GpuTensor<u32>),
}

/// A program bound to its buffers: every launcher built, nothing left to
/// decide when a step is recorded.
pub(crate) struct GpuProgram {
    rows: usize,
    launches: Vec<Launch>,
    /// What each launch computes, from the program's tensor names.
    #[cfg_attr(any(target_arch = "wasm32", not(feature = "lab")), allow(dead_code))]
    names: Vec<String>,
    /// Whether the first product gathers its own rows (no gather dispatch).
    gathers: bool,
    /// Counted bytes the launches move (the gather's, if separate, apart).
    bytes: u64,
    /// The epoch totals' dispatch, unless an op adds them itself.
    totals: Option<LossCorrectSum>,
}

/// Where a program's inputs and outputs live on the GPU.
pub(crate) struct Bindings<'a> {
    /// Gather output rows (`[batch, input_dim]`); the program uses the first `rows`.
    pub x: &'a GpuTensor<f32>,
    /// Gather output labels (`[batch]`), already checked against `classes`.
    pub y: &'a GpuTensor<u32>,
    pub classes: usize,
    pub params: &'a GpuTensor<f32>,
    pub grads: &'a GpuTensor<f32>,
    /// Running totals for the epoch: loss sum `[1]` and correct count `[1]`.
    pub loss_total: &'a GpuTensor<f32>,
    pub correct_total: &'a GpuTensor<u32>,
}

impl GpuProgram {
    /// Builds every launcher of `program`. With `gather` (whose outputs
    /// must be `b.x` and `b.y`), the product that first reads the input
    /// rows gathers them itself ([`GatherMatmul`]).
    pub(crate) fn compile(
        gpu: &Gpu,
        program: &Program,
        b: &Bindings<'_>,
        gather: Option<&Gather>,
    ) -> Result<Self> {
        let rows = program.rows;
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
            Some(GpuTensor::<f32>::zeros(gpu, &[arena_len])?)
        } else {
            None
        };
        let mut slots = Vec::with_capacity(program.tensors.len());
        for (i, spec) in program.tensors.iter().enumerate() {
            let len: usize = spec.shape.iter().product();
            if let (Some(&offset), Some(a), Region::Work) = (in_arena.get(&i), &arena, spec.region)
            {
                slots.push(Slot::F32(a.view(offset, &spec.shape)?));
                continue;
            }
            slots.push(match spec.region {
                Region::Input => {
                    let width = spec.shape.get(1).copied().unwrap_or(0);
                    if b.x.shape().get(1) != Some(&width) || b.x.shape()[0] < rows {
                        return Err(Error::shape(
                            "program",
                            format!("input {:?} cannot hold {:?}", b.x.shape(), spec.shape),
                        ));
                    }
                    Slot::F32(b.x.view(0, &spec.shape)?)
                }
                Region::Param { offset } => Slot::F32(b.params.view(offset, &spec.shape)?),
                Region::Grad { offset } => Slot::F32(b.grads.view(offset, &spec.shape)?),
                Region::Work => Slot::F32(GpuTensor::zeros(gpu, &spec.shape)?),
                Region::WorkU32 => Slot::U32(GpuTensor::zeros(gpu, &[len])?),
            });
        }
        let f = |id: crate::model::TensorId| -> Result<&GpuTensor<f32>> {
            match &slots[id.0] {
                Slot::F32(t) => Ok(t),
                Slot::U32(_) => Err(Error::shape(
                    "program",
                    format!("{} is not an f32 tensor", program.spec(id).name),
                )),
            }
        };
        let u = |id: crate::model::TensorId| -> Result<&GpuTensor<u32>> {
            match &slots[id.0] {
                Slot::U32(t) => Ok(t),
                Slot::F32(_) => Err(Error::shape(
                    "program",
                    format!("{} is not a u32 tensor", program.spec(id).name),
                )),
            }
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
                let all = |ids: &[crate::model::TensorId]| -> Result<Vec<&GpuTensor<f32>>> {
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
                let mut ls = Vec::with_capacity(layers.len());
                for l in layers {
                    ls.push(WeightGradLayer {
                        dz: f(l.dz)?,
                        h: f(l.h)?,
                        dw: f(l.dw)?,
                        db: f(l.db)?,
                    });
                }
                launches.push(Launch::Weights(WeightStep::new(
                    gpu,
                    &ls,
                    f(*loss)?,
                    u(*correct)?,
                    b.loss_total,
                    b.correct_total,
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
                    && gather.is_some() =>
                {
                    let Some(g) = gather else {
                        unreachable!("checked")
                    };
                    gathers = true;
                    let bias = match bias {
                        Some(id) => Some(f(id)?),
                        None => None,
                    };
                    Launch::GatherMatmul(GatherMatmul::new(
                        gpu,
                        g,
                        rows,
                        f(bb)?,
                        bias,
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
                    let bias = match bias {
                        Some(id) => Some(f(id)?),
                        None => None,
                    };
                    let (a, bb) = (f(a)?, f(bb)?);
                    let kernel = tune::matmul_for(gpu, a, bb, bias, &opts, MatmulKernel::Auto);
                    Launch::Matmul(Matmul::new(gpu, a, bb, bias, f(out)?, opts, kernel)?)
                }
                Op::SoftmaxXent {
                    logits,
                    loss,
                    correct,
                    dlogits,
                    totals,
                } => {
                    let d = match dlogits {
                        Some(id) => Some(f(id)?),
                        None => None,
                    };
                    let (logits, loss, correct) = (f(logits)?, f(loss)?, u(correct)?);
                    Launch::Softmax(if totals {
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
                        SoftmaxXent::new(gpu, logits, &labels, loss, correct, d, kernel)?
                    })
                }
                Op::Hinge {
                    scores,
                    loss,
                    correct,
                    dscores,
                } => {
                    let d = match dscores {
                        Some(id) => Some(f(id)?),
                        None => None,
                    };
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
                    let dh = f(dh)?;
                    let kernel =
                        tune::column_sum_for(gpu, dh, Some(activation), ColumnSumKernel::Auto);
                    Launch::Sum(ColumnSum::with_activation(
                        gpu,
                        dh,
                        f(h)?,
                        f(dz)?,
                        f(db)?,
                        activation,
                        kernel,
                    )?)
                }
                Op::ColumnSum { x, sums } => {
                    let x = f(x)?;
                    let kernel = tune::column_sum_for(gpu, x, None, ColumnSumKernel::Auto);
                    Launch::Sum(ColumnSum::new(gpu, x, f(sums)?, kernel)?)
                }
                Op::WeightGrad { dz, h, dw, db } => {
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
                } => Launch::Backward(LayerBackward::new(
                    gpu,
                    f(dz)?,
                    f(h)?,
                    f(w)?,
                    f(dw)?,
                    f(db)?,
                    f(dz_below)?,
                    activation,
                )?),
                Op::RowStep { .. } | Op::WeightGrads { .. } => unreachable!("recorded above"),
            });
        }
        let totals = if program.accumulates_totals() {
            None
        } else {
            Some(LossCorrectSum::new(
                gpu,
                f(program.loss)?,
                u(program.correct)?,
                b.loss_total,
                b.correct_total,
                true,
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
                Launch::Weights(w) => w.record(pass),
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
    fn parts<'a>(&'a self, gather: &'a Gather, step: usize) -> Vec<StepPart<'a>> {
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

impl GpuEngine<'_> {
    /// Step `step` of the epoch last trained as its launches, in order (the
    /// gather where the first product does not gather itself, each op, the
    /// totals where separate, the update): recording every part in turn
    /// records the step. A planned optimizer needs its epoch planned, i.e.
    /// one epoch trained first.
    #[cfg_attr(any(target_arch = "wasm32", not(feature = "lab")), allow(dead_code))]
    pub(crate) fn step_parts(&self, step: usize) -> Result<Vec<StepPart<'_>>> {
        let rows = self.train.gather.rows(step);
        let program = self
            .train_programs
            .get(&rows)
            .ok_or_else(|| Error::shape("train", format!("no program for {rows} rows")))?;
        let mut parts = program.parts(&self.train.gather, step);
        let optimizer = &self.optimizer;
        parts.push(StepPart {
            name: format!("update ({})", optimizer.config().name()),
            dispatches: optimizer.dispatches(),
            record: Box::new(move |pass| {
                if optimizer.is_planned() {
                    optimizer.record_planned(pass, step)
                } else {
                    optimizer.record(pass);
                    Ok(())
                }
            }),
        });
        Ok(parts)
    }
}

/// What an op computes, by the names of the tensors it writes.
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

/// One update: [`crate::optim::OptimizerConfig::bytes_per_param`] per
/// parameter, and the step scalars (v1: `advance` reads and writes them;
/// v2: the update reads its slot).
fn optimizer_bytes(o: &GpuOptimizer) -> u64 {
    let step = crate::kernels::optim::STEP_BYTES;
    o.config().bytes_per_param() * o.len() as u64 + if o.is_planned() { step } else { 3 * step }
}
