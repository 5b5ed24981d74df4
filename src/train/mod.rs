//! Training: epochs of minibatches on the GPU or on the CPU, with the same
//! model program, the same data order and the same optimizer formulas.
//!
//! [`fit`] drives either [`GpuEngine`] or [`CpuEngine`] through the
//! [`Engine`] trait. The GPU engine keeps the dataset resident, records many
//! steps per command encoder (gather → forward → loss → backward → update,
//! [`GpuEngine::dispatches_per_step`] dispatches each) and reads loss and
//! accuracy back once per epoch.

mod cpu;
mod gpu;
mod gradient;
mod resume;

// The strategies run the linear model's program through the same runners.
pub(crate) use cpu::CpuProgram;
pub(crate) use gpu::{Bindings, GpuProgram};
pub use gradient::{Gradient, gradient_cpu, gradient_gpu};
pub use resume::{load_checkpoint, save_checkpoint};

use crate::data::Dataset;
use crate::error::{Error, Result, positive};
use crate::gpu::{Gpu, GpuTensor};
use crate::kernels::{Gather, GatherOptions, GpuDataset, GpuOptimizer};
use crate::metrics::{EpochMetrics, History};
use crate::model::Model;
use crate::optim::{OptimizerConfig, StepScalars};
use rand::{SeedableRng, seq::SliceRandom};
use std::collections::BTreeMap;
use std::time::Instant;

/// How to train.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch: usize,
    /// Seeds the parameter initialisation and every epoch's shuffle.
    pub seed: u64,
    pub optimizer: OptimizerConfig,
    /// Examples held out of the training set for validation (0: none).
    pub validation: usize,
    /// Rows per evaluation batch.
    pub eval_batch: usize,
    /// Pixel normalisation `(x/255 − mean)/std`.
    pub mean: f32,
    pub std: f32,
    /// GPU steps recorded per command encoder (one submit each).
    pub steps_per_submit: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 10,
            batch: 128,
            seed: 0,
            optimizer: OptimizerConfig::adam(),
            validation: 0,
            eval_batch: 1000,
            mean: 0.0,
            std: 1.0,
            steps_per_submit: 64,
        }
    }
}

impl TrainConfig {
    /// Checks everything that does not depend on the data.
    pub fn validate(&self) -> Result<()> {
        positive("epochs", self.epochs)?;
        positive("batch", self.batch)?;
        positive("eval_batch", self.eval_batch)?;
        positive("steps_per_submit", self.steps_per_submit)?;
        self.optimizer.validate()?;
        self.gather_options(false).affine()?;
        Ok(())
    }

    fn gather_options(&self, append_one: bool) -> GatherOptions {
        GatherOptions {
            mean: self.mean,
            std: self.std,
            append_one,
        }
    }
}

/// The training and test sets, and which training examples are held out.
pub struct TrainData {
    pub train: Dataset,
    pub test: Dataset,
    /// Indices into `train` used for training.
    pub train_idx: Vec<u32>,
    /// Indices into `train` held out for validation.
    pub val_idx: Vec<u32>,
}

impl TrainData {
    /// Holds out `validation` examples of `train`, chosen by `seed`.
    pub fn new(train: Dataset, test: Dataset, validation: usize, seed: u64) -> Result<Self> {
        if train.dim() != test.dim() || train.classes != test.classes {
            return Err(Error::shape(
                "TrainData",
                format!(
                    "train ({} pixels, {} classes) and test ({} pixels, {} classes) differ",
                    train.dim(),
                    train.classes,
                    test.dim(),
                    test.classes
                ),
            ));
        }
        if validation >= train.len() {
            return Err(Error::InvalidArgument {
                name: "validation",
                msg: format!(
                    "{validation} would leave none of the {} training examples",
                    train.len()
                ),
            });
        }
        let mut all: Vec<u32> = (0..train.len() as u32).collect();
        if validation > 0 {
            all.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed ^ 0x5eed_5b11));
        }
        let val_idx = all.split_off(train.len() - validation);
        let mut train_idx = all;
        train_idx.sort_unstable();
        Ok(TrainData {
            train,
            test,
            train_idx,
            val_idx,
        })
    }

    /// The training order of `epoch`: the training indices shuffled by a
    /// generator seeded from (`seed`, `epoch`), the same on every device.
    pub fn epoch_order(&self, seed: u64, epoch: usize) -> Vec<u32> {
        let mut order = self.train_idx.clone();
        let mut rng = rand::rngs::StdRng::seed_from_u64(
            seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ epoch as u64,
        );
        order.shuffle(&mut rng);
        order
    }
}

/// Which examples to evaluate on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvalSet {
    Validation,
    Test,
}

/// Parameters and optimizer state: everything a checkpoint holds.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainState {
    pub params: Vec<f32>,
    pub optimizer_state: Vec<Vec<f32>>,
    pub step: StepScalars,
}

/// What [`fit`] needs from a device.
pub trait Engine {
    /// "gpu" or "cpu".
    fn device(&self) -> &'static str;
    /// The adapter, or the CPU's description.
    fn adapter(&self) -> String;
    /// One epoch over `order` (indices into the training set). Calls
    /// `progress(steps_done, steps_total)` as work completes. Returns the
    /// mean loss and the accuracy over the epoch's batches.
    fn train_epoch(
        &mut self,
        order: &[u32],
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<(f64, f64)>;
    /// Mean loss and accuracy on a whole set, in evaluation batches.
    fn evaluate(&mut self, set: EvalSet) -> Result<(f64, f64)>;
    /// Lets the plateau schedule see the epoch's metric (lower is better).
    fn end_epoch(&mut self, metric: f32) -> Result<()>;
    /// Parameters and optimizer state, read back.
    fn state(&mut self) -> Result<TrainState>;
    /// Replaces parameters and optimizer state (resuming from a checkpoint).
    fn restore(&mut self, state: &TrainState) -> Result<()>;
    /// Dispatches recorded per training step (GPU only).
    fn dispatches_per_step(&self) -> Option<f64> {
        None
    }
    /// Blocking waits on the device in the last epoch (GPU only).
    fn host_syncs_last_epoch(&self) -> Option<usize> {
        None
    }
}

/// The outcome of [`fit`].
#[derive(Clone, Debug)]
pub struct FitResult {
    pub history: History,
    pub test_loss: f64,
    pub test_accuracy: f64,
}

/// What [`fit`] reports while it runs.
pub enum Event<'a> {
    /// Steps done out of the epoch's total.
    Step {
        epoch: usize,
        done: usize,
        total: usize,
    },
    /// An epoch finished.
    Epoch(&'a EpochMetrics),
}

/// Trains for `config.epochs` epochs starting at `first_epoch` (0 unless
/// resuming), evaluates on the validation set after each epoch when there is
/// one, and on the test set at the end.
pub fn fit(
    engine: &mut dyn Engine,
    data: &TrainData,
    config: &TrainConfig,
    first_epoch: usize,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<FitResult> {
    config.validate()?;
    let mut history = History::new();
    for epoch in first_epoch..config.epochs {
        let order = data.epoch_order(config.seed, epoch);
        let start = Instant::now();
        let (train_loss, train_accuracy) = engine.train_epoch(&order, &mut |done, total| {
            on_event(Event::Step { epoch, done, total })
        })?;
        let seconds = start.elapsed().as_secs_f64();
        let (val_loss, val_accuracy) = if data.val_idx.is_empty() {
            (None, None)
        } else {
            let (l, a) = engine.evaluate(EvalSet::Validation)?;
            (Some(l), Some(a))
        };
        engine.end_epoch(val_loss.unwrap_or(train_loss) as f32)?;
        let m = EpochMetrics {
            epoch: epoch + 1,
            train_loss,
            train_accuracy,
            val_loss,
            val_accuracy,
            seconds,
            samples_per_sec: order.len() as f64 / seconds.max(1e-12),
        };
        on_event(Event::Epoch(&m));
        history.push(m);
    }
    let (test_loss, test_accuracy) = engine.evaluate(EvalSet::Test)?;
    Ok(FitResult {
        history,
        test_loss,
        test_accuracy,
    })
}

fn eval_order(data: &TrainData, set: EvalSet) -> Vec<u32> {
    match set {
        EvalSet::Validation => data.val_idx.clone(),
        EvalSet::Test => (0..data.test.len() as u32).collect(),
    }
}

fn check_model(model: &dyn Model, data: &TrainData) -> Result<()> {
    let pixels = model.input_dim() - usize::from(model.appends_one());
    if pixels != data.train.dim() || model.classes() != data.train.classes {
        return Err(Error::shape(
            "train",
            format!(
                "model {} expects {pixels} pixels and {} classes; the data has {} pixels and {} classes",
                model.name(),
                model.classes(),
                data.train.dim(),
                data.train.classes
            ),
        ));
    }
    Ok(())
}

/// Runs whole-batch programs of the full batch size and of the short last
/// batch, built once each.
fn batch_sizes(n: usize, batch: usize) -> Vec<usize> {
    let mut sizes = vec![batch.min(n)];
    if n > batch && !n.is_multiple_of(batch) {
        sizes.push(n % batch);
    }
    sizes
}

// ------------------------------------------------------------------- CPU

/// Training on the CPU with the ndarray twins (threaded matrix products).
pub struct CpuEngine<'d> {
    data: &'d TrainData,
    config: TrainConfig,
    append_one: bool,
    params: Vec<f32>,
    grads: Vec<f32>,
    optimizer: crate::cpu::CpuOptimizer,
    train: BTreeMap<usize, cpu::CpuProgram>,
    eval: BTreeMap<usize, cpu::CpuProgram>,
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
            train.insert(rows, cpu::CpuProgram::new(model.train_program(rows)));
        }
        let mut eval = BTreeMap::new();
        for set in [EvalSet::Validation, EvalSet::Test] {
            let len = eval_order(data, set).len();
            if len > 0 {
                for rows in batch_sizes(len, config.eval_batch) {
                    eval.entry(rows)
                        .or_insert_with(|| cpu::CpuProgram::new(model.eval_program(rows)));
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
        // One input buffer for the whole pass: a step allocates nothing.
        self.x.resize(batch * width, 0.0);
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
        if state.params.len() != self.params.len() {
            return Err(Error::shape(
                "restore",
                format!(
                    "{} parameters given, the model has {}",
                    state.params.len(),
                    self.params.len()
                ),
            ));
        }
        self.optimizer.restore(&state.optimizer_state, state.step)?;
        self.params.copy_from_slice(&state.params);
        Ok(())
    }
}

// ------------------------------------------------------------------- GPU

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
    train_programs: BTreeMap<usize, gpu::GpuProgram>,
    val: Option<(GpuSet, Vec<u32>)>,
    test: (GpuSet, Vec<u32>),
    eval_programs: BTreeMap<usize, gpu::GpuProgram>,
    steps_per_submit: usize,
    dispatches_per_step: f64,
    /// Blocking waits in the last training epoch.
    train_syncs: usize,
}

impl<'g> GpuEngine<'g> {
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
        let optimizer = GpuOptimizer::new(gpu, config.optimizer, &params, &grads)?;
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
        let x = GpuTensor::<f32>::zeros(gpu, &[config.batch, width])?;
        let y = GpuTensor::<u32>::zeros(gpu, &[config.batch])?;
        let train = set(&train_data, &data.train_idx, &x, &y, config.batch)?;
        let bindings = gpu::Bindings {
            x: &x,
            y: &y,
            classes: model.classes(),
            params: &params,
            grads: &grads,
            loss_total: &loss_total,
            correct_total: &correct_total,
        };
        let mut train_programs = BTreeMap::new();
        for rows in batch_sizes(data.train_idx.len(), config.batch) {
            train_programs.insert(
                rows,
                gpu::GpuProgram::compile(gpu, &model.train_program(rows), &bindings)?,
            );
        }

        let ex = GpuTensor::<f32>::zeros(gpu, &[config.eval_batch, width])?;
        let ey = GpuTensor::<u32>::zeros(gpu, &[config.eval_batch])?;
        let eval_bindings = gpu::Bindings {
            x: &ex,
            y: &ey,
            ..bindings
        };
        let mut eval_programs = BTreeMap::new();
        let mut eval_set = |d: &GpuDataset, order: Vec<u32>| -> Result<(GpuSet, Vec<u32>)> {
            for rows in batch_sizes(order.len(), config.eval_batch) {
                if let std::collections::btree_map::Entry::Vacant(slot) = eval_programs.entry(rows)
                {
                    slot.insert(gpu::GpuProgram::compile(
                        gpu,
                        &model.eval_program(rows),
                        &eval_bindings,
                    )?);
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
        let dispatches_per_step =
            (train_data.chunk_count() + full.dispatches() + optimizer.dispatches()) as f64;
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
            train_syncs: 0,
        })
    }

    /// Records every step of a set's gather through its programs (with the
    /// optimizer when training), `steps_per_submit` steps per submit; returns
    /// (mean loss, accuracy) read back once at the end, and the number of
    /// blocking waits it made.
    fn pass(
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
        let mut previous: Option<(wgpu::SubmissionIndex, usize)> = None;
        let mut first = 0;
        while first < steps {
            let last = (first + self.steps_per_submit).min(steps);
            let mut encoder = gpu.encoder("steps");
            {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("steps"),
                    timestamp_writes: None,
                });
                for s in first..last {
                    let rows = set.gather.rows(s);
                    let program = programs.get(&rows).ok_or_else(|| {
                        Error::shape("train", format!("no program for {rows} rows"))
                    })?;
                    set.gather.record(&mut pass, s)?;
                    program.record(&mut pass);
                    if which.is_none() {
                        self.optimizer.record(&mut pass);
                    }
                }
            }
            let index = gpu.submit(encoder)?;
            // Keep one submit in flight while waiting for the one before it:
            // the GPU never idles, and progress reports real completion.
            if let Some((prev, done)) = previous.replace((index, last)) {
                gpu.wait_for(prev)?;
                syncs += 1;
                progress(done, steps);
            }
            first = last;
        }
        let loss = self.loss_total.read(gpu)?[0] as f64;
        let correct = self.correct_total.read(gpu)?[0] as f64;
        syncs += 2;
        progress(steps, steps);
        let n = order_len.max(1) as f64;
        Ok((loss / n, correct / n, syncs))
    }
}

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
        let (loss, accuracy, syncs) = self.pass(None, order.len(), progress)?;
        self.train_syncs = syncs;
        Ok((loss, accuracy))
    }

    fn evaluate(&mut self, set: EvalSet) -> Result<(f64, f64)> {
        let len = match set {
            EvalSet::Validation => self.val.as_ref().map_or(0, |v| v.1.len()),
            EvalSet::Test => self.test.1.len(),
        };
        let (loss, accuracy, _) = self.pass(Some(set), len, &mut |_, _| {})?;
        Ok((loss, accuracy))
    }

    fn end_epoch(&mut self, metric: f32) -> Result<()> {
        self.optimizer.end_epoch(self.gpu, metric).map(|_| ())
    }

    fn state(&mut self) -> Result<TrainState> {
        let optimizer_state = self
            .optimizer
            .state()
            .iter()
            .map(|t| t.read(self.gpu))
            .collect::<Result<Vec<_>>>()?;
        Ok(TrainState {
            params: self.params.read(self.gpu)?,
            optimizer_state,
            step: self.optimizer.step_scalars(self.gpu)?,
        })
    }

    fn restore(&mut self, state: &TrainState) -> Result<()> {
        if state.params.len() != self.params.len() {
            return Err(Error::shape(
                "restore",
                format!(
                    "{} parameters given, the model has {}",
                    state.params.len(),
                    self.params.len()
                ),
            ));
        }
        self.optimizer
            .restore(self.gpu, &state.optimizer_state, state.step)?;
        self.params.write(self.gpu, &state.params)
    }

    fn dispatches_per_step(&self) -> Option<f64> {
        Some(self.dispatches_per_step)
    }

    fn host_syncs_last_epoch(&self) -> Option<usize> {
        Some(self.train_syncs)
    }
}
