//! The strategies' GPU side: the examples uploaded once as f32 chunks, and
//! kernel plans (pipelines, bind groups, scratch buffers) built once per
//! shape and reused on every call.
//!
//! Scoring K candidates on a split records, per chunk, one matmul, one
//! softmax-CE and the loss sums of the [`ScoreLayout`], all into one pass of
//! one encoder; one readback returns the K totals. The gradient and
//! minibatch descent run the linear model's training program through the
//! training loop's GPU runner: descent records a whole epoch (forward
//! matmul, softmax-CE, dW matmul, loss sum, then SGD: 6 dispatches a step)
//! into one encoder and reads the epoch's loss and correct count back once.

use super::{
    Backend, EpochStats, Evaluation, Problem, ScoreLayout, Split, Task, chunk_ranges, one_weight,
    weight_count,
};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuLabels, GpuTensor};
use crate::kernels::{
    ColumnSum, ColumnSumKernel, LossCorrectSum, Matmul, MatmulKernel, SoftmaxXent,
    SoftmaxXentKernel,
};
use crate::model::{LinearSoftmax, Model};
use crate::optim::OptimizerConfig;
use crate::options::MatmulOptions;
use crate::train::{Bindings, GpuProgram};
use crate::tune;
use ndarray::{ArrayView2, s};
use std::collections::HashMap;
use std::sync::Arc;

const F32: u64 = 4;

/// The storage binding size every buffer of the strategies must fit.
fn binding_limit(gpu: &Gpu) -> u64 {
    gpu.limits()
        .max_storage_buffer_binding_size
        .min(gpu.limits().max_buffer_size)
}

/// The most rows of `features` f32 values one chunk tensor may hold.
pub(super) fn max_chunk_rows(gpu: &Gpu, features: usize) -> Result<usize> {
    let row = F32 * features as u64;
    let rows = binding_limit(gpu) / row.max(1);
    if rows == 0 {
        return Err(Error::TooLarge {
            what: format!("one example of {features} f32 values"),
            needed: crate::error::bytes(row),
            limit: crate::error::bytes(binding_limit(gpu)),
            limit_name: "max_storage_buffer_binding_size",
        });
    }
    Ok(rows as usize)
}

/// One chunk of examples on the GPU, with its labels (also kept on the host,
/// to build the repeated labels of a scoring layout).
struct Chunk {
    x: GpuTensor<f32>,
    labels: GpuLabels,
    host_labels: Vec<u32>,
}

impl Chunk {
    fn rows(&self) -> usize {
        self.host_labels.len()
    }
}

/// A split of the examples on the GPU, in chunks.
struct Rows {
    chunks: Vec<Chunk>,
    rows: usize,
}

impl Rows {
    fn upload(
        gpu: &Gpu,
        x: ArrayView2<f32>,
        y: &[u32],
        classes: usize,
        chunk_rows: usize,
    ) -> Result<Self> {
        let chunks = chunk_ranges(y.len(), chunk_rows)
            .into_iter()
            .map(|r| {
                Ok(Chunk {
                    x: GpuTensor::from_array(gpu, &x.slice(s![r.clone(), ..]))?,
                    labels: GpuLabels::new(gpu, &y[r.clone()], classes)?,
                    host_labels: y[r].to_vec(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Rows {
            chunks,
            rows: y.len(),
        })
    }

    fn max_chunk(&self) -> usize {
        self.chunks.iter().map(Chunk::rows).max().unwrap_or(1)
    }
}

/// The kernels that score one chunk.
struct ChunkScore {
    matmul: Matmul,
    xent: SoftmaxXent,
    /// Batched: one loss sum per candidate.
    sums: Vec<LossCorrectSum>,
    /// Wide: the column sum of the chunk's R×K losses.
    column: Option<ColumnSum>,
}

/// K candidates scored on one split, built once.
struct ScorePlan {
    w: GpuTensor<f32>,
    chunks: Vec<ChunkScore>,
    /// Wide: the sum over the chunks' rows of totals.
    total_over_chunks: Option<ColumnSum>,
    totals: GpuTensor<f32>,
    counts: Option<GpuTensor<u32>>,
    rows: usize,
    dispatches: usize,
}

impl ScorePlan {
    fn new(
        gpu: &Gpu,
        rows: &Rows,
        k: usize,
        classes: usize,
        features: usize,
        layout: ScoreLayout,
    ) -> Result<Self> {
        let c = classes;
        let layout = layout.resolve();
        let max_rows = rows.max_chunk();
        let w = GpuTensor::<f32>::zeros(gpu, &[k, c, features])?;
        // Scratch shared by every chunk (wgpu orders the reuse with barriers).
        let scores = GpuTensor::<f32>::zeros(gpu, &[k * max_rows * c])?;
        let loss = GpuTensor::<f32>::zeros(gpu, &[k * max_rows])?;
        let correct = GpuTensor::<u32>::zeros(gpu, &[k * max_rows])?;
        let totals = GpuTensor::<f32>::zeros(gpu, &[k])?;
        let (counts, per_chunk) = match layout {
            ScoreLayout::Wide => (
                None,
                Some(GpuTensor::<f32>::zeros(gpu, &[rows.chunks.len(), k])?),
            ),
            _ => (Some(GpuTensor::<u32>::zeros(gpu, &[k])?), None),
        };
        let mut chunks = Vec::with_capacity(rows.chunks.len());
        for (i, ch) in rows.chunks.iter().enumerate() {
            let r = ch.rows();
            let loss = loss.view(0, &[k * r])?;
            let correct = correct.view(0, &[k * r])?;
            let (out, b, repeated): (GpuTensor<f32>, GpuTensor<f32>, Vec<u32>) = match layout {
                ScoreLayout::Wide => (
                    scores.view(0, &[r, k * c])?,
                    w.reshape(&[k * c, features])?,
                    // Row r·K + j of the [R·K, C] logits is candidate j on example r.
                    ch.host_labels
                        .iter()
                        .flat_map(|&l| std::iter::repeat_n(l, k))
                        .collect(),
                ),
                _ => (
                    scores.view(0, &[k, r, c])?,
                    w.clone(),
                    // Row j·R + r of the [K·R, C] logits is candidate j on example r.
                    ch.host_labels.repeat(k),
                ),
            };
            let nt = MatmulOptions::nt();
            let kernel = tune::matmul_for(gpu, &ch.x, &b, None, &nt, MatmulKernel::Auto);
            let matmul = Matmul::new(gpu, &ch.x, &b, None, &out, nt, kernel)?;
            let labels = GpuLabels::new(gpu, &repeated, c)?;
            let logits = out.reshape(&[k * r, c])?;
            let kernel = tune::softmax_xent_for(gpu, &logits, false, SoftmaxXentKernel::Auto);
            let xent = SoftmaxXent::new(gpu, &logits, &labels, &loss, &correct, None, kernel)?;
            let (sums, column) = match (&per_chunk, &counts) {
                (Some(per_chunk), _) => (
                    Vec::new(),
                    Some(ColumnSum::new(
                        gpu,
                        &loss.reshape(&[r, k])?,
                        &per_chunk.view(i * k, &[k])?,
                        ColumnSumKernel::Auto,
                    )?),
                ),
                (None, Some(counts)) => {
                    let sums = (0..k)
                        .map(|j| {
                            // The first chunk overwrites, the rest add:
                            // no separate zeroing pass.
                            LossCorrectSum::new(
                                gpu,
                                &loss.view(j * r, &[r])?,
                                &correct.view(j * r, &[r])?,
                                &totals.view(j, &[1])?,
                                &counts.view(j, &[1])?,
                                i > 0,
                            )
                        })
                        .collect::<Result<Vec<_>>>()?;
                    (sums, None)
                }
                (None, None) => {
                    return Err(Error::shape("score", "no loss reduction for the layout"));
                }
            };
            chunks.push(ChunkScore {
                matmul,
                xent,
                sums,
                column,
            });
        }
        let total_over_chunks = per_chunk
            .map(|p| ColumnSum::new(gpu, &p, &totals, ColumnSumKernel::Auto))
            .transpose()?;
        let dispatches = chunks
            .iter()
            .map(|ch| 2 + ch.sums.len() + usize::from(ch.column.is_some()))
            .sum::<usize>()
            + usize::from(total_over_chunks.is_some());
        Ok(ScorePlan {
            w,
            chunks,
            total_over_chunks,
            totals,
            counts,
            rows: rows.rows,
            dispatches,
        })
    }

    /// Mean loss of each candidate (and correct counts in the batched
    /// layout), with one submit and one readback of the totals.
    fn score(&self, gpu: &Gpu, w: &[f32]) -> Result<(Vec<f32>, Option<Vec<u32>>)> {
        self.w.write(gpu, w)?;
        let mut encoder = gpu.encoder("score candidates");
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("score candidates"),
                timestamp_writes: None,
            });
            for ch in &self.chunks {
                ch.matmul.record(&mut pass);
                ch.xent.record(&mut pass);
                for s in &ch.sums {
                    s.record(&mut pass);
                }
                if let Some(c) = &ch.column {
                    c.record(&mut pass);
                }
            }
            if let Some(t) = &self.total_over_chunks {
                t.record(&mut pass);
            }
        }
        gpu.submit(encoder)?;
        let n = self.rows as f32;
        let losses = self.totals.read(gpu)?.into_iter().map(|t| t / n).collect();
        let counts = self.counts.as_ref().map(|c| c.read(gpu)).transpose()?;
        Ok((losses, counts))
    }
}

/// The linear model's training program on every minibatch of an epoch
/// over W, compiled once per minibatch (each binds its own rows of a chunk):
/// logits = x·Wᵀ, softmax-CE (loss, correct, dlogits), dW = dlogitsᵀ·x,
/// and the loss and correct totals accumulated over the epoch. The program
/// is [`LinearSoftmax::train_program`], run by the training loop's GPU
/// runner: the model's one backward.
struct GradPlan {
    w: GpuTensor<f32>,
    dw: GpuTensor<f32>,
    total: GpuTensor<f32>,
    count: GpuTensor<u32>,
    steps: Vec<GpuProgram>,
}

impl GradPlan {
    fn new(gpu: &Gpu, rows: &Rows, batch: usize, classes: usize, features: usize) -> Result<Self> {
        let model = LinearSoftmax::new(features - 1, classes)?;
        let max_batch = batch.min(rows.max_chunk()).max(1);
        let w = GpuTensor::<f32>::zeros(gpu, &[classes, features])?;
        let dw = GpuTensor::<f32>::zeros(gpu, &[classes, features])?;
        let total = GpuTensor::<f32>::zeros(gpu, &[1])?;
        let count = GpuTensor::<u32>::zeros(gpu, &[1])?;
        let mut programs = HashMap::new();
        let mut steps = Vec::new();
        for ch in &rows.chunks {
            // The same batches as `super::step_ranges`: none crosses a chunk.
            for start in (0..ch.rows()).step_by(max_batch) {
                let b = max_batch.min(ch.rows() - start);
                let program = programs.entry(b).or_insert_with(|| model.train_program(b));
                let x = ch.x.view(start * features, &[b, features])?;
                let labels = ch.labels.view(start, b)?;
                let bindings = Bindings {
                    x: &x,
                    y: labels.tensor(),
                    classes,
                    params: &w,
                    grads: &dw,
                    loss_total: &total,
                    correct_total: &count,
                    models: 1,
                    per_model: w.len(),
                    update: None,
                };
                steps.push(GpuProgram::compile(gpu, program, &bindings, None)?);
            }
        }
        Ok(GradPlan {
            w,
            dw,
            total,
            count,
            steps,
        })
    }

    /// Dispatches one step records.
    fn dispatches_per_step(&self) -> usize {
        self.steps.first().map_or(0, GpuProgram::dispatches_rows)
    }

    /// Records every step (each followed by `after`, the optimizer when
    /// descending) into one pass and submits it; the totals start at zero.
    fn run(
        &self,
        gpu: &Gpu,
        label: &str,
        after: impl Fn(&mut wgpu::ComputePass<'_>),
    ) -> Result<()> {
        self.total.fill(gpu, 0.0)?;
        self.count.fill(gpu, 0)?;
        let mut encoder = gpu.encoder(label);
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(label),
                timestamp_writes: None,
            });
            for step in &self.steps {
                step.record_rows(&mut pass)?;
                after(&mut pass);
            }
        }
        gpu.submit(encoder)?;
        Ok(())
    }
}

/// The GPU kernels as a [`super::Backend`].
pub struct GpuBackend<'g> {
    gpu: &'g Gpu,
    problem: Arc<Problem>,
    train: Rows,
    test: Rows,
    minibatch: Rows,
    per_pass: usize,
    layout: ScoreLayout,
    scorers: HashMap<(Split, usize, ScoreLayout), ScorePlan>,
    gradient: Option<GradPlan>,
    descents: HashMap<usize, GradPlan>,
    score_dispatches: Option<usize>,
    descent_dispatches: Option<usize>,
}

impl<'g> GpuBackend<'g> {
    /// Uploads both splits (and the first `grad_rows` training rows as the
    /// minibatch) in chunks of `chunk_rows` rows; scores up to
    /// `candidates_per_pass` candidates per pass, fewer where a pass's
    /// scores or weights would exceed the storage binding limit. The
    /// problem's shapes and labels are checked first.
    pub fn new(
        gpu: &'g Gpu,
        problem: Arc<Problem>,
        chunk_rows: usize,
        grad_rows: usize,
        candidates_per_pass: usize,
        layout: ScoreLayout,
    ) -> Result<Self> {
        problem.check()?;
        let (c, f) = (problem.classes, problem.features());
        let chunk_rows = chunk_rows.min(max_chunk_rows(gpu, f)?).max(1);
        let train = Rows::upload(gpu, problem.x_train.view(), &problem.y_train, c, chunk_rows)?;
        let test = Rows::upload(gpu, problem.x_test.view(), &problem.y_test, c, chunk_rows)?;
        // The minibatch is one chunk: its gradient is one step's dW.
        let g = grad_rows.clamp(1, problem.y_train.len());
        if g > max_chunk_rows(gpu, f)? {
            return Err(Error::InvalidArgument {
                name: "gradient check batch",
                msg: format!(
                    "{g} rows of {f} f32 values exceed one storage binding ({})",
                    crate::error::bytes(binding_limit(gpu))
                ),
            });
        }
        let minibatch = Rows::upload(
            gpu,
            problem.x_train.slice(s![..g, ..]),
            &problem.y_train[..g],
            c,
            g,
        )?;
        let limit = binding_limit(gpu);
        let biggest = train.max_chunk().max(test.max_chunk()) as u64;
        let by_scores = limit / (F32 * c as u64 * biggest).max(1);
        let by_weights = limit / (F32 * (c * f) as u64).max(1);
        let per_pass = (candidates_per_pass as u64)
            .min(by_scores)
            .min(by_weights)
            .max(1) as usize;
        Ok(GpuBackend {
            gpu,
            problem,
            train,
            test,
            minibatch,
            per_pass,
            layout,
            scorers: HashMap::new(),
            gradient: None,
            descents: HashMap::new(),
            score_dispatches: None,
            descent_dispatches: None,
        })
    }

    /// Candidates scored per pass.
    pub fn candidates_per_pass(&self) -> usize {
        self.per_pass
    }

    fn rows(&self, split: Split) -> &Rows {
        match split {
            Split::Train => &self.train,
            Split::Test => &self.test,
            Split::Minibatch => &self.minibatch,
        }
    }

    /// Builds the scorer for `(split, k, layout)` unless it exists; its key.
    fn ensure_scorer(
        &mut self,
        split: Split,
        k: usize,
        layout: ScoreLayout,
    ) -> Result<(Split, usize, ScoreLayout)> {
        let key = (split, k, layout.resolve());
        if !self.scorers.contains_key(&key) {
            let (c, f) = (self.problem.classes, self.problem.features());
            let scorer = ScorePlan::new(self.gpu, self.rows(split), k, c, f, layout)?;
            self.scorers.insert(key, scorer);
        }
        Ok(key)
    }

    fn ensure_gradient(&mut self) -> Result<()> {
        if self.gradient.is_none() {
            let (c, f) = (self.problem.classes, self.problem.features());
            let batch = self.minibatch.rows;
            self.gradient = Some(GradPlan::new(self.gpu, &self.minibatch, batch, c, f)?);
        }
        Ok(())
    }

    fn ensure_descent(&mut self, batch: usize) -> Result<()> {
        if !self.descents.contains_key(&batch) {
            let (c, f) = (self.problem.classes, self.problem.features());
            let plan = GradPlan::new(self.gpu, &self.train, batch, c, f)?;
            self.descents.insert(batch, plan);
        }
        Ok(())
    }

    /// Scores `k` candidates with the scorer for `(split, k, layout)`,
    /// building it on first use.
    fn score_group(
        &mut self,
        split: Split,
        w: &[f32],
        layout: ScoreLayout,
    ) -> Result<(Vec<f32>, Option<Vec<u32>>, usize)> {
        let k = weight_count(&self.problem, w, "candidates")?;
        let key = self.ensure_scorer(split, k, layout)?;
        let scorer = self
            .scorers
            .get(&key)
            .ok_or_else(|| Error::shape("strategies", "scorer missing from its cache"))?;
        let (losses, counts) = scorer.score(self.gpu, w)?;
        Ok((losses, counts, scorer.dispatches))
    }
}

impl Backend for GpuBackend<'_> {
    fn label(&self) -> &'static str {
        "GPU"
    }

    fn score(&mut self, split: Split, w: &[f32]) -> Result<Vec<f32>> {
        weight_count(&self.problem, w, "candidates")?;
        let group = self.per_pass * self.problem.weights();
        let mut losses = Vec::new();
        let mut dispatches = 0;
        for part in w.chunks(group) {
            let (l, _, d) = self.score_group(split, part, self.layout)?;
            losses.extend(l);
            dispatches += d;
        }
        self.score_dispatches = Some(dispatches);
        Ok(losses)
    }

    fn evaluate(&mut self, split: Split, w: &[f32]) -> Result<Evaluation> {
        one_weight(&self.problem, w, "evaluate")?;
        let (losses, counts, _) = self.score_group(split, w, ScoreLayout::Batched)?;
        let count = counts.and_then(|c| c.first().copied()).unwrap_or(0);
        Ok(Evaluation {
            loss: losses.first().copied().unwrap_or(f32::NAN),
            accuracy: count as f32 / self.rows(split).rows as f32,
        })
    }

    fn gradient(&mut self, w: &[f32]) -> Result<(f32, Vec<f32>)> {
        one_weight(&self.problem, w, "gradient")?;
        self.ensure_gradient()?;
        let plan = self
            .gradient
            .as_ref()
            .ok_or_else(|| Error::shape("strategies", "gradient plan missing"))?;
        plan.w.write(self.gpu, w)?;
        plan.run(self.gpu, "gradient", |_| {})?;
        let total = plan.total.read(self.gpu)?[0];
        let dw = plan.dw.read(self.gpu)?;
        Ok((total / self.minibatch.rows as f32, dw))
    }

    fn descend(
        &mut self,
        w0: &[f32],
        batch: usize,
        epochs: usize,
        lr: f32,
    ) -> Result<(Vec<EpochStats>, Vec<f32>)> {
        one_weight(&self.problem, w0, "descend")?;
        let gpu = self.gpu;
        self.ensure_descent(batch)?;
        let plan = self
            .descents
            .get(&batch)
            .ok_or_else(|| Error::shape("strategies", "descent plan missing"))?;
        plan.w.write(gpu, w0)?;
        let opt = tune::new_optimizer(gpu, OptimizerConfig::sgd(lr), &plan.w, &plan.dw)?;
        self.descent_dispatches = Some(plan.dispatches_per_step() + opt.dispatches());
        let n = self.train.rows as f32;
        let mut stats = Vec::new();
        for _ in 0..epochs {
            plan.run(gpu, "epoch", |pass| opt.record(pass))?;
            // One wait per epoch: the first read waits for the epoch's work,
            // the second copies four bytes.
            let total = plan.total.read(gpu)?[0];
            let count = plan.count.read(gpu)?[0];
            stats.push(EpochStats {
                loss: total / n,
                accuracy: count as f32 / n,
            });
        }
        Ok((stats, plan.w.read(gpu)?))
    }

    fn prepare(&mut self, task: Task) -> Result<()> {
        match task {
            Task::Score { split, candidates } => {
                let mut left = candidates;
                while left > 0 {
                    let k = left.min(self.per_pass);
                    self.ensure_scorer(split, k, self.layout)?;
                    left -= k;
                }
                Ok(())
            }
            Task::Gradient => self.ensure_gradient(),
            Task::Descent { batch } => self.ensure_descent(batch),
        }
    }

    fn score_dispatches(&self) -> Option<usize> {
        self.score_dispatches
    }

    fn descent_dispatches_per_step(&self) -> Option<usize> {
        self.descent_dispatches
    }
}
