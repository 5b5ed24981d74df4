//! Training on the GPU: [`GpuEngine`] (the dataset resident, an epoch's
//! steps recorded in bulk — gather, the model's program, the optimizer — and
//! loss and accuracy read back once per epoch), built on [`GpuSets`]: the
//! sets, their gathers and the compiled programs ([`GpuProgram`], in
//! `gpu_program.rs`) for K ≥ 1 models, which the sweep's engine runs too.
//!
//! With [`TrainConfig::fused`] (the default) the engine runs the models'
//! fused programs, the first product gathers its own rows (when the
//! training set fits one binding) and the optimizer reads host-planned step
//! scalars: 8 dispatches a step for the MLP, 4 for the linear model, against
//! 16 and 7 for the reference kernels. [`GpuEngine::bytes_per_step`] is the
//! counted traffic beside [`Engine::dispatches_per_step`].

#[cfg(not(target_arch = "wasm32"))]
use super::Engine;
use super::gpu_program::{Bindings, GpuProgram, StepPart};
use super::{EvalSet, TrainConfig, TrainData, TrainState, batch_sizes, check_model, eval_order};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuTensor};
use crate::kernels::{Gather, GatherMatmul, GpuDataset, GpuOptimizer, WeightStep};
use crate::model::Model;
use std::collections::BTreeMap;

/// A set resident on the GPU: its data, its order, and the gather of its
/// minibatches into the engine's shared rows.
struct GpuSet {
    data: GpuDataset,
    order: GpuTensor<u32>,
    gather: Gather,
    len: usize,
}

/// What an engine runs, for K ≥ 1 models ([`GpuEngine`] is K = 1, a sweep
/// K models): the training, validation and test sets resident, each
/// gathered into rows shared by the models, and every program compiled
/// once per batch size.
pub(crate) struct GpuSets {
    train: GpuSet,
    val: Option<GpuSet>,
    test: GpuSet,
    train_programs: BTreeMap<usize, GpuProgram>,
    eval_programs: BTreeMap<usize, GpuProgram>,
}

/// The models an engine trains: `models` of `per_model` parameters each,
/// with one loss and correct total per model.
pub(crate) struct Models<'a> {
    pub params: &'a GpuTensor<f32>,
    pub grads: &'a GpuTensor<f32>,
    pub loss_total: &'a GpuTensor<f32>,
    pub correct_total: &'a GpuTensor<u32>,
    pub models: usize,
    pub per_model: usize,
    /// The optimizer the weight tiles apply themselves, where they do.
    pub update: Option<&'a GpuOptimizer>,
}

impl GpuSets {
    /// Uploads the data and compiles [`StepProgram::of`]`(config)` for every
    /// training batch size and the evaluation program for every evaluation
    /// batch size. A batch larger than its set is one whole-set batch: the
    /// rows are sized by what a step can hold, as the CPU engine does.
    pub(crate) fn new(
        gpu: &Gpu,
        model: &dyn Model,
        data: &TrainData,
        config: &TrainConfig,
        m: &Models<'_>,
    ) -> Result<Self> {
        let opts = config.gather_options(model.appends_one());
        let width = model.input_dim();
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
                len: order.len(),
            })
        };
        let train_data = GpuDataset::upload(gpu, &data.train)?;
        let test_data = GpuDataset::upload(gpu, &data.test)?;
        let batch = config.batch.min(data.train_idx.len()).max(1);
        let x = GpuTensor::<f32>::zeros(gpu, &[batch, width])?;
        let y = GpuTensor::<u32>::zeros(gpu, &[batch])?;
        let train = set(&train_data, &data.train_idx, &x, &y, batch)?;
        let bindings = Bindings {
            x: &x,
            y: &y,
            classes: model.classes(),
            params: m.params,
            grads: m.grads,
            loss_total: m.loss_total,
            correct_total: m.correct_total,
            models: m.models,
            per_model: m.per_model,
            update: m.update,
        };
        // Fused: the first product gathers its own rows, when the training
        // set fits one binding and the adapter binds the eight buffers it
        // needs (else the gather stays a dispatch of its own).
        let gathers = (config.fused && train_data.chunk_count() == 1 && GatherMatmul::fits(gpu))
            .then_some(&train.gather);
        let step = super::StepProgram::of(config);
        let mut train_programs = BTreeMap::new();
        for rows in batch_sizes(data.train_idx.len(), config.batch) {
            let program = step.program(model, rows);
            train_programs.insert(
                rows,
                GpuProgram::compile(gpu, &program, &bindings, gathers)?,
            );
        }

        let eval_rows = data.test.len().max(data.val_idx.len()).max(1);
        let eval_batch = config.eval_batch.min(eval_rows).max(1);
        let ex = GpuTensor::<f32>::zeros(gpu, &[eval_batch, width])?;
        let ey = GpuTensor::<u32>::zeros(gpu, &[eval_batch])?;
        let eval_bindings = Bindings {
            x: &ex,
            y: &ey,
            update: None,
            ..bindings
        };
        let mut eval_programs = BTreeMap::new();
        let mut eval_set = |d: &GpuDataset, order: Vec<u32>| -> Result<GpuSet> {
            for rows in batch_sizes(order.len(), eval_batch) {
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
            set(d, &order, &ex, &ey, eval_batch)
        };
        let val = if data.val_idx.is_empty() {
            None
        } else {
            Some(eval_set(&train_data, data.val_idx.clone())?)
        };
        let test = eval_set(&test_data, eval_order(data, EvalSet::Test))?;
        Ok(GpuSets {
            train,
            val,
            test,
            train_programs,
            eval_programs,
        })
    }

    /// The program of a full training batch.
    fn full_step(&self) -> &GpuProgram {
        let rows = self.train.gather.rows(0);
        &self.train_programs[&rows]
    }

    /// Whether the training programs' weight tiles apply the optimizer's
    /// update (then no update is recorded after them); all or none do.
    pub(crate) fn updates(&self) -> bool {
        self.full_step().updates()
    }

    /// Dispatches of one full training step, the update apart.
    pub(crate) fn dispatches_per_step(&self) -> usize {
        self.full_step().dispatches(&self.train.gather)
    }

    /// Counted bytes of one full training step for one model, the update apart.
    pub(crate) fn bytes_per_step(&self) -> u64 {
        self.full_step().bytes(&self.train.gather)
    }

    /// How many examples `which` holds (the training set for `None`).
    pub(crate) fn len(&self, which: Option<EvalSet>) -> usize {
        self.set(which).map_or(0, |(s, _)| s.len)
    }

    /// Steps of a training epoch.
    pub(crate) fn train_steps(&self) -> usize {
        self.train.gather.steps()
    }

    /// Writes the training order of the next epoch.
    pub(crate) fn write_train_order(&self, gpu: &Gpu, order: &[u32]) -> Result<()> {
        if order.len() != self.train.len {
            return Err(Error::shape(
                "train_epoch",
                format!(
                    "the order holds {} indices, the training set {}",
                    order.len(),
                    self.train.len
                ),
            ));
        }
        self.train.data.write_order(gpu, &self.train.order, order)
    }

    fn set(&self, which: Option<EvalSet>) -> Result<(&GpuSet, &BTreeMap<usize, GpuProgram>)> {
        Ok(match which {
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
        })
    }

    /// Records every step of `which` (the training set for `None`, each
    /// step followed by `update`), `per_submit` steps per submit, adding
    /// to the epoch totals; returns the blocking waits made and the steps.
    pub(crate) fn pass(
        &self,
        gpu: &Gpu,
        which: Option<EvalSet>,
        per_submit: usize,
        update: impl Fn(&mut wgpu::ComputePass<'_>, usize) -> Result<()>,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<(usize, usize)> {
        let (set, programs) = self.set(which)?;
        let steps = set.gather.steps();
        let syncs = submit_steps(
            gpu,
            "steps",
            steps,
            per_submit,
            |pass, s| {
                let rows = set.gather.rows(s);
                let program = programs
                    .get(&rows)
                    .ok_or_else(|| Error::shape("train", format!("no program for {rows} rows")))?;
                program.record(pass, &set.gather, s)?;
                if which.is_none() {
                    update(pass, s)?;
                }
                Ok(())
            },
            |done| progress(done, steps),
        )?;
        Ok((syncs, steps))
    }

    /// The launches of training step `step`, for the latency report.
    #[cfg_attr(any(target_arch = "wasm32", not(feature = "lab")), allow(dead_code))]
    fn step_parts(&self, step: usize) -> Result<Vec<StepPart<'_>>> {
        let rows = self.train.gather.rows(step);
        let program = self
            .train_programs
            .get(&rows)
            .ok_or_else(|| Error::shape("train", format!("no program for {rows} rows")))?;
        Ok(program.parts(&self.train.gather, step))
    }
}

/// Training on the GPU: dataset resident, steps recorded in bulk, loss and
/// accuracy read back once per epoch. One model of the engine a sweep runs
/// K of ([`GpuSets`], [`GpuProgram`]), with the single run's optimizer.
pub struct GpuEngine<'g> {
    gpu: &'g Gpu,
    params: GpuTensor<f32>,
    optimizer: GpuOptimizer,
    loss_total: GpuTensor<f32>,
    correct_total: GpuTensor<u32>,
    sets: GpuSets,
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
        let models = Models {
            params: &params,
            grads: &grads,
            loss_total: &loss_total,
            correct_total: &correct_total,
            models: 1,
            per_model: init.len(),
            // The three-dispatch step: the weight tiles update the
            // parameters where the device binds the buffers they need.
            update: (config.fused
                && config.fused_step == super::FusedStep::Rows
                && WeightStep::fuses_update(gpu))
            .then_some(&optimizer),
        };
        let sets = GpuSets::new(gpu, model, data, config, &models)?;
        let update_dispatches = if sets.updates() {
            0
        } else {
            optimizer.dispatches()
        };
        let dispatches_per_step = (sets.dispatches_per_step() + update_dispatches) as f64;
        let bytes_per_step = sets.bytes_per_step() + optimizer_bytes(&optimizer);
        Ok(GpuEngine {
            gpu,
            params,
            optimizer,
            loss_total,
            correct_total,
            sets,
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

    /// Records every step of a set through its programs (with the optimizer
    /// when training), `steps_per_submit` steps per submit; returns (mean
    /// loss, accuracy) read back once at the end, and the number of
    /// blocking waits it made.
    ///
    /// Async for the browser, where the readback is a promise and the
    /// in-flight waits are left to the page's event loop; natively the
    /// waits block as before and [`Engine`]'s methods block on this.
    async fn pass(
        &mut self,
        which: Option<EvalSet>,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<(f64, f64, usize)> {
        let gpu = self.gpu;
        self.loss_total.fill(gpu, 0.0)?;
        self.correct_total.fill(gpu, 0)?;
        let optimizer = &self.optimizer;
        let fused_update = self.sets.updates();
        let (mut syncs, steps) = self.sets.pass(
            gpu,
            which,
            self.steps_per_submit,
            |pass, s| {
                if fused_update {
                    Ok(())
                } else if optimizer.is_planned() {
                    optimizer.record_planned(pass, s)
                } else {
                    optimizer.record(pass);
                    Ok(())
                }
            },
            progress,
        )?;
        let loss = self.loss_total.read_async(gpu).await?[0] as f64;
        let correct = self.correct_total.read_async(gpu).await?[0] as f64;
        syncs += 2;
        progress(steps, steps);
        let n = self.sets.len(which).max(1) as f64;
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
        self.sets.write_train_order(self.gpu, order)?;
        if self.optimizer.is_planned() {
            self.optimizer.plan(self.gpu, self.sets.train_steps())?;
        }
        let (loss, accuracy, syncs) = self.pass(None, progress).await?;
        self.train_syncs = syncs;
        Ok((loss, accuracy))
    }

    /// [`Engine::evaluate`], awaiting the readback.
    pub async fn evaluate_async(&mut self, set: EvalSet) -> Result<(f64, f64)> {
        let (loss, accuracy, _) = self.pass(Some(set), &mut |_, _| {}).await?;
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

impl GpuEngine<'_> {
    /// Step `step` of the epoch last trained as its launches, in order (the
    /// gather where the first product does not gather itself, each op, the
    /// totals where separate, the update): recording every part in turn
    /// records the step. A planned optimizer needs its epoch planned, i.e.
    /// one epoch trained first.
    #[cfg_attr(any(target_arch = "wasm32", not(feature = "lab")), allow(dead_code))]
    pub(crate) fn step_parts(&self, step: usize) -> Result<Vec<StepPart<'_>>> {
        let mut parts = self.sets.step_parts(step)?;
        if self.sets.updates() {
            return Ok(parts); // the weight tiles update
        }
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

/// One update: [`crate::optim::OptimizerConfig::bytes_per_param`] per
/// parameter, and the step scalars (v1: `advance` reads and writes them;
/// v2: the update reads its slot).
fn optimizer_bytes(o: &GpuOptimizer) -> u64 {
    let step = crate::kernels::optim::STEP_BYTES;
    o.config().bytes_per_param() * o.len() as u64 + if o.is_planned() { step } else { 3 * step }
}
