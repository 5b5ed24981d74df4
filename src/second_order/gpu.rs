//! The full-batch objective on the GPU.
//!
//! The training set goes up once as bytes ([`GpuDataset`]) and is gathered
//! chunk by chunk (`chunk_rows` f32 rows at a time, with the bias column):
//! once, into a buffer per chunk, when `resident` (the default), else on
//! every pass. A pass runs, per chunk:
//!
//! ```text
//! loss_grad   [gather] → logits = X·Wᵀ → softmax-CE (loss, correct, dlogits)
//!             → loss/correct totals → dW = dlogitsᵀ·X → g = [g] + (rows/N)·dW [+ λW]
//! hvp         [gather] → [Z | U] = X·[W; V]ᵀ → R = (diag(p) − p pᵀ)·U/N per row
//!             → Rᵀ·X → Hv = [Hv] + Rᵀ·X [+ λV]
//! ```
//!
//! all recorded into one compute pass, then the dot products the caller
//! asked for, then one copy of every scalar (loss total, correct count,
//! dots) into one staging buffer: one submit and one wait per evaluation.
//!
//! Vectors live in one bank buffer: slot 0 holds the W being evaluated and
//! slot 1 the V of a Hessian-vector product (adjacent, so `[W; V]` is one
//! 2C×(D+1) view and one matmul gives logits and X·Vᵀ); the caller's slots
//! follow. Linear combinations the optimizers ask for are queued and
//! recorded at the start of the next pass, so they cost no submit of their
//! own.

use super::{Evaluation, FullBatchConfig, Objective, Slot, check_data};
use crate::MatmulOptions;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuLabels, GpuTensor};
use crate::kernels::linalg::{Combine, Dots, MAX_TERMS, XentHvpRows};
use crate::kernels::{
    Gather, GpuDataset, LossCorrectSum, Matmul, MatmulKernel, SoftmaxXent, SoftmaxXentKernel,
};
use crate::tune;

/// Bank slots before the caller's: W under evaluation, then V.
const FIXED: usize = 2;

/// The launchers of one training chunk, built once.
struct TrainChunk {
    rows: usize,
    forward: Matmul,
    xent: SoftmaxXent,
    sum: LossCorrectSum,
    backward: Matmul,
    accumulate: Combine,
    hv_forward: Matmul,
    hv_rows: XentHvpRows,
    hv_backward: Matmul,
    hv_accumulate: Combine,
}

/// The launchers of one test chunk (forward only).
struct TestChunk {
    forward: Matmul,
    xent: SoftmaxXent,
    sum: LossCorrectSum,
}

/// Per-chunk scratch shared by every chunk (wgpu orders the reuse).
struct Scratch {
    x: GpuTensor<f32>,
    y: GpuTensor<u32>,
    logits: GpuTensor<f32>,
    loss: GpuTensor<f32>,
    correct: GpuTensor<u32>,
    dlogits: GpuTensor<f32>,
    /// A chunk's dW or Rᵀ·X (C×(D+1)).
    cw: GpuTensor<f32>,
    zu: GpuTensor<f32>,
    r: GpuTensor<f32>,
}

/// The full-batch loss, gradient and Hessian-vector products on the GPU,
/// with a bank of vectors in one GPU buffer; only scalars come back.
pub struct GpuObjective<'g> {
    gpu: &'g Gpu,
    dim: usize,
    examples: usize,
    test_examples: usize,
    l2: f64,
    slots: usize,
    bank: GpuTensor<f32>,
    scratch: Scratch,
    train_gather: Gather,
    train: Vec<TrainChunk>,
    test_gather: Option<Gather>,
    test: Vec<TestChunk>,
    totals: GpuTensor<f32>,
    count: GpuTensor<u32>,
    scalars: GpuTensor<f32>,
    dots: Dots,
    copy_w: Combine,
    copy_v: Combine,
    /// Combine launchers for queued combinations; the first `pending` are
    /// set and wait for the next submit.
    pool: Vec<Combine>,
    pending: usize,
    staging: wgpu::Buffer,
    readbacks: usize,
    dataset_chunks: usize,
    /// The training rows are gathered once, not every pass.
    resident: bool,
}

impl<'g> GpuObjective<'g> {
    /// Uploads `train` (and `test`, for [`Objective::evaluate_test`]) once
    /// and builds every launcher, for a bank of `slots` vectors.
    pub fn new(
        gpu: &'g Gpu,
        train: &Dataset,
        test: Option<&Dataset>,
        slots: usize,
        config: &FullBatchConfig,
    ) -> Result<Self> {
        config.validate()?;
        check_data(train, test)?;
        crate::error::positive("slots", slots)?;
        let c = train.classes;
        let width = train.dim() + 1;
        let dim = c * width;
        let opts = config.gather_options();
        let limit = gpu
            .limits()
            .max_storage_buffer_binding_size
            .min(gpu.limits().max_buffer_size);
        let row_bytes = 4 * width.max(2 * c) as u64;
        let max_rows = (limit / row_bytes) as usize;
        if max_rows == 0 {
            return Err(Error::TooLarge {
                what: format!("one row of {width} f32 inputs"),
                needed: crate::error::bytes(row_bytes),
                limit: crate::error::bytes(limit),
                limit_name: "max_storage_buffer_binding_size",
            });
        }
        let longest = train.len().max(test.map_or(0, Dataset::len));
        let chunk_rows = config.chunk_rows.min(longest).min(max_rows);
        let bank_len = (FIXED + slots)
            .checked_mul(dim)
            .ok_or_else(|| Error::shape("GpuObjective", "the bank's size overflows"))?;
        gpu.check_storage_binding("the vector bank", 4 * bank_len as u64)?;
        let bank = GpuTensor::<f32>::zeros(gpu, &[bank_len])?;
        let scratch = Scratch {
            x: GpuTensor::zeros(gpu, &[chunk_rows, width])?,
            y: GpuTensor::zeros(gpu, &[chunk_rows])?,
            logits: GpuTensor::zeros(gpu, &[chunk_rows, c])?,
            loss: GpuTensor::zeros(gpu, &[chunk_rows])?,
            correct: GpuTensor::zeros(gpu, &[chunk_rows])?,
            dlogits: GpuTensor::zeros(gpu, &[chunk_rows, c])?,
            cw: GpuTensor::zeros(gpu, &[c, width])?,
            zu: GpuTensor::zeros(gpu, &[chunk_rows, 2 * c])?,
            r: GpuTensor::zeros(gpu, &[chunk_rows, c])?,
        };
        let totals = GpuTensor::<f32>::zeros(gpu, &[1])?;
        let count = GpuTensor::<u32>::zeros(gpu, &[1])?;
        let w_eval = bank.view(0, &[c, width])?;
        let wv_eval = bank.view(0, &[2 * c, width])?;
        let cw_flat = scratch.cw.reshape(&[dim])?;
        let inv_n = 1.0 / train.len() as f32;
        let nt = MatmulOptions::nt();
        let tn = MatmulOptions::tn();

        let train_data = GpuDataset::upload(gpu, train)?;
        let dataset_chunks = train_data.chunk_count();
        let train_order = train_data.order_buffer(gpu, train.len())?;
        let identity: Vec<u32> = (0..train.len() as u32).collect();
        train_data.write_order(gpu, &train_order, &identity)?;
        let train_gather = Gather::new(
            gpu,
            &train_data,
            &train_order,
            &scratch.x,
            &scratch.y,
            chunk_rows,
            opts,
        )?;
        let s = &scratch;
        // Resident: each chunk's rows and labels in buffers of their own,
        // gathered once below; otherwise every chunk reuses the scratch.
        let mut resident = Vec::new();
        if config.resident {
            for k in 0..train_gather.steps() {
                let rows = train_gather.rows(k);
                resident.push((
                    GpuTensor::<f32>::zeros(gpu, &[rows, width])?,
                    GpuTensor::<u32>::zeros(gpu, &[rows])?,
                ));
            }
        }
        let mut train_chunks = Vec::with_capacity(train_gather.steps());
        for k in 0..train_gather.steps() {
            let rows = train_gather.rows(k);
            let (x, y) = match resident.get(k) {
                Some((x, y)) => (x.clone(), y.clone()),
                None => (s.x.view(0, &[rows, width])?, s.y.view(0, &[rows])?),
            };
            let logits = s.logits.view(0, &[rows, c])?;
            let loss = s.loss.view(0, &[rows])?;
            let correct = s.correct.view(0, &[rows])?;
            let dlogits = s.dlogits.view(0, &[rows, c])?;
            let labels = GpuLabels::from_checked(y, c);
            let zu = s.zu.view(0, &[rows, 2 * c])?;
            let r = s.r.view(0, &[rows, c])?;
            // The tuner ([`tune`]) measures each shape once where tuning is
            // on; the launchers then run its choice.
            let mm = |a, b, c, opts| {
                let kernel = tune::matmul_for(gpu, a, b, None, &opts, MatmulKernel::Auto);
                Matmul::new(gpu, a, b, None, c, opts, kernel)
            };
            train_chunks.push(TrainChunk {
                rows,
                forward: mm(&x, &w_eval, &logits, nt)?,
                xent: SoftmaxXent::new(
                    gpu,
                    &logits,
                    &labels,
                    &loss,
                    &correct,
                    Some(&dlogits),
                    tune::softmax_xent_for(gpu, &logits, true, SoftmaxXentKernel::Auto),
                )?,
                // The first chunk overwrites the totals, the rest add.
                sum: LossCorrectSum::new(gpu, &loss, &correct, &totals, &count, k > 0)?,
                backward: mm(&dlogits, &x, &s.cw, tn)?,
                accumulate: Combine::new(gpu, &bank, Some(&cw_flat), dim)?,
                hv_forward: mm(&x, &wv_eval, &zu, nt)?,
                hv_rows: XentHvpRows::stacked(gpu, &zu, &r, inv_n)?,
                hv_backward: mm(&r, &x, &s.cw, tn)?,
                hv_accumulate: Combine::new(gpu, &bank, Some(&cw_flat), dim)?,
            });
        }

        let (test_gather, test_chunks) = match test {
            None => (None, Vec::new()),
            Some(t) => {
                let data = GpuDataset::upload(gpu, t)?;
                let order = data.order_buffer(gpu, t.len())?;
                let identity: Vec<u32> = (0..t.len() as u32).collect();
                data.write_order(gpu, &order, &identity)?;
                let gather = Gather::new(gpu, &data, &order, &s.x, &s.y, chunk_rows, opts)?;
                let mut chunks = Vec::with_capacity(gather.steps());
                for k in 0..gather.steps() {
                    let rows = gather.rows(k);
                    let x = s.x.view(0, &[rows, width])?;
                    let logits = s.logits.view(0, &[rows, c])?;
                    let loss = s.loss.view(0, &[rows])?;
                    let correct = s.correct.view(0, &[rows])?;
                    let labels = GpuLabels::from_checked(s.y.view(0, &[rows])?, c);
                    chunks.push(TestChunk {
                        forward: Matmul::new(
                            gpu,
                            &x,
                            &w_eval,
                            None,
                            &logits,
                            nt,
                            tune::matmul_for(gpu, &x, &w_eval, None, &nt, MatmulKernel::Auto),
                        )?,
                        xent: SoftmaxXent::new(
                            gpu,
                            &logits,
                            &labels,
                            &loss,
                            &correct,
                            None,
                            tune::softmax_xent_for(gpu, &logits, false, SoftmaxXentKernel::Auto),
                        )?,
                        sum: LossCorrectSum::new(gpu, &loss, &correct, &totals, &count, k > 0)?,
                    });
                }
                (Some(gather), chunks)
            }
        };

        if !resident.is_empty() {
            let mut encoder = gpu.encoder("gathering the resident rows");
            for (k, (x, y)) in resident.iter().enumerate() {
                {
                    let mut pass = begin(&mut encoder, "gather");
                    train_gather.record(&mut pass, k)?;
                }
                encoder.copy_buffer_to_buffer(s.x.buffer(), 0, x.buffer(), 0, x.size_bytes());
                encoder.copy_buffer_to_buffer(s.y.buffer(), 0, y.buffer(), 0, y.size_bytes());
            }
            gpu.submit(encoder)?;
        }

        // Room for the largest batch of dots an optimizer asks for (L-BFGS:
        // three per kept vector) plus the loss's ‖W‖².
        let capacity = 8 + 3 * (FIXED + slots);
        let scalars = GpuTensor::<f32>::zeros(gpu, &[capacity])?;
        let dots = Dots::new(gpu, &bank, &bank, &scalars, dim, false)?;
        let staging = gpu.scoped("creating the scalar staging buffer", || {
            gpu.device().create_buffer(&wgpu::BufferDescriptor {
                label: Some("second-order scalars"),
                size: 8 + 4 * capacity as u64,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        })?;
        Ok(GpuObjective {
            gpu,
            dim,
            examples: train.len(),
            test_examples: test.map_or(0, Dataset::len),
            l2: config.l2,
            slots,
            copy_w: Combine::new(gpu, &bank, None, dim)?,
            copy_v: Combine::new(gpu, &bank, None, dim)?,
            bank,
            scratch,
            train_gather,
            train: train_chunks,
            test_gather,
            test: test_chunks,
            totals,
            count,
            scalars,
            dots,
            pool: Vec::new(),
            pending: 0,
            staging,
            readbacks: 0,
            dataset_chunks,
            resident: !resident.is_empty(),
        })
    }

    /// Dispatches one loss-and-gradient evaluation records (besides queued
    /// combinations): the copy of W, per chunk the gather (one per dataset
    /// buffer) and five kernels, and the dots.
    pub fn dispatches_per_evaluation(&self) -> usize {
        let gathers = if self.resident {
            0
        } else {
            self.dataset_chunks
        };
        2 + self.train.len() * (gathers + 5)
    }

    /// Chunks a pass over the training set takes.
    pub fn chunks(&self) -> usize {
        self.train.len()
    }

    /// The bank window of a caller's slot.
    fn slot(&self, s: Slot) -> Result<GpuTensor<f32>> {
        if s.0 >= self.slots {
            return Err(Error::InvalidArgument {
                name: "slot",
                msg: format!("{} is past the bank's {} slots", s.0, self.slots),
            });
        }
        self.bank.view((FIXED + s.0) * self.dim, &[self.dim])
    }

    fn fixed(&self, i: usize) -> Result<GpuTensor<f32>> {
        self.bank.view(i * self.dim, &[self.dim])
    }

    /// Sets the dots launcher to `pairs` (fixed slots and the caller's).
    fn set_dots(&mut self, pairs: &[(GpuTensor<f32>, GpuTensor<f32>)]) -> Result<()> {
        let refs: Vec<(&GpuTensor<f32>, &GpuTensor<f32>)> =
            pairs.iter().map(|(a, b)| (a, b)).collect();
        self.dots.set(self.gpu, &refs)
    }

    fn caller_pairs(
        &self,
        pairs: &[(Slot, Slot)],
    ) -> Result<Vec<(GpuTensor<f32>, GpuTensor<f32>)>> {
        pairs
            .iter()
            .map(|&(a, b)| Ok((self.slot(a)?, self.slot(b)?)))
            .collect()
    }

    /// Records the queued combinations into `pass`.
    fn record_pending(&self, pass: &mut wgpu::ComputePass<'_>) {
        for c in &self.pool[..self.pending] {
            c.record(pass);
        }
    }

    /// Submits the queued combinations on their own (before a write or a
    /// vector readback, which the queue would otherwise order first).
    fn flush(&mut self) -> Result<()> {
        if self.pending == 0 {
            return Ok(());
        }
        let mut encoder = self.gpu.encoder("queued combinations");
        {
            let mut pass = begin(&mut encoder, "queued combinations");
            self.record_pending(&mut pass);
        }
        self.pending = 0;
        self.gpu.submit(encoder)?;
        Ok(())
    }

    /// Submits `encoder` and, when asked for, copies the totals and the
    /// first `dots` scalars back in one wait.
    fn finish(
        &mut self,
        mut encoder: wgpu::CommandEncoder,
        totals: bool,
        dots: usize,
    ) -> Result<(f32, u32, Vec<f64>)> {
        self.pending = 0;
        if !totals && dots == 0 {
            self.gpu.submit(encoder)?;
            return Ok((0.0, 0, Vec::new()));
        }
        if totals {
            encoder.copy_buffer_to_buffer(self.totals.buffer(), 0, &self.staging, 0, 4);
            encoder.copy_buffer_to_buffer(self.count.buffer(), 0, &self.staging, 4, 4);
        }
        let size = 8 + 4 * dots as u64;
        if dots > 0 {
            encoder.copy_buffer_to_buffer(
                self.scalars.buffer(),
                0,
                &self.staging,
                8,
                4 * dots as u64,
            );
        }
        self.gpu.submit(encoder)?;
        let words: Vec<u32> = pollster::block_on(crate::gpu::read_mapped(
            self.gpu,
            &self.staging,
            0..size,
            "the scalars",
        ))?;
        self.readbacks += 1;
        let dots = words[2..2 + dots]
            .iter()
            .map(|&w| f32::from_bits(w) as f64)
            .collect();
        Ok((f32::from_bits(words[0]), words[1], dots))
    }
}

fn begin<'e>(encoder: &'e mut wgpu::CommandEncoder, label: &str) -> wgpu::ComputePass<'e> {
    encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
        label: Some(label),
        timestamp_writes: None,
    })
}

impl Objective for GpuObjective<'_> {
    fn device(&self) -> &'static str {
        "gpu"
    }

    fn adapter(&self) -> String {
        self.gpu.summary().to_string()
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn slots(&self) -> usize {
        self.slots
    }

    fn examples(&self) -> usize {
        self.examples
    }

    fn l2(&self) -> f64 {
        self.l2
    }

    fn write(&mut self, slot: Slot, values: &[f32]) -> Result<()> {
        let v = self.slot(slot)?;
        self.flush()?;
        v.write(self.gpu, values)
    }

    fn read(&mut self, slot: Slot) -> Result<Vec<f32>> {
        let v = self.slot(slot)?;
        self.flush()?;
        v.read(self.gpu)
    }

    fn loss_grad(&mut self, w: Slot, g: Slot, pairs: &[(Slot, Slot)]) -> Result<Evaluation> {
        let gpu = self.gpu;
        let (wv, gv, w_eval) = (self.slot(w)?, self.slot(g)?, self.fixed(0)?);
        let cw = self.scratch.cw.reshape(&[self.dim])?;
        self.copy_w.set(gpu, &w_eval, &[(1.0, &wv)])?;
        let n = self.examples as f32;
        let last = self.train.len() - 1;
        for (k, ch) in self.train.iter().enumerate() {
            let mut terms = Vec::with_capacity(3);
            if k > 0 {
                terms.push((1.0, &gv));
            }
            terms.push((ch.rows as f32 / n, &cw));
            if k == last {
                terms.push((self.l2 as f32, &w_eval));
            }
            ch.accumulate.set(gpu, &gv, &terms)?;
        }
        let mut all = vec![(w_eval.clone(), w_eval)];
        all.extend(self.caller_pairs(pairs)?);
        self.set_dots(&all)?;
        let mut encoder = gpu.encoder("loss and gradient");
        {
            let mut pass = begin(&mut encoder, "loss and gradient");
            self.record_pending(&mut pass);
            self.copy_w.record(&mut pass);
            for (k, ch) in self.train.iter().enumerate() {
                if !self.resident {
                    self.train_gather.record(&mut pass, k)?;
                }
                ch.forward.record(&mut pass);
                ch.xent.record(&mut pass);
                ch.sum.record(&mut pass);
                ch.backward.record(&mut pass);
                ch.accumulate.record(&mut pass);
            }
            self.dots.record(&mut pass);
        }
        let (total, correct, dots) = self.finish(encoder, true, all.len())?;
        Ok(Evaluation {
            loss: total as f64 / self.examples as f64 + 0.5 * self.l2 * dots[0],
            correct: correct as u64,
            dots: dots[1..].to_vec(),
        })
    }

    fn hvp(&mut self, w: Slot, v: Slot, out: Slot, pairs: &[(Slot, Slot)]) -> Result<Vec<f64>> {
        let gpu = self.gpu;
        let (wv, vv, ov) = (self.slot(w)?, self.slot(v)?, self.slot(out)?);
        let (w_eval, v_eval) = (self.fixed(0)?, self.fixed(1)?);
        let cw = self.scratch.cw.reshape(&[self.dim])?;
        self.copy_w.set(gpu, &w_eval, &[(1.0, &wv)])?;
        self.copy_v.set(gpu, &v_eval, &[(1.0, &vv)])?;
        let last = self.train.len() - 1;
        for (k, ch) in self.train.iter().enumerate() {
            let mut terms = Vec::with_capacity(3);
            if k > 0 {
                terms.push((1.0, &ov));
            }
            terms.push((1.0, &cw));
            if k == last {
                terms.push((self.l2 as f32, &v_eval));
            }
            ch.hv_accumulate.set(gpu, &ov, &terms)?;
        }
        let all = self.caller_pairs(pairs)?;
        if !all.is_empty() {
            self.set_dots(&all)?;
        }
        let mut encoder = gpu.encoder("Hessian-vector product");
        {
            let mut pass = begin(&mut encoder, "Hessian-vector product");
            self.record_pending(&mut pass);
            self.copy_w.record(&mut pass);
            self.copy_v.record(&mut pass);
            for (k, ch) in self.train.iter().enumerate() {
                if !self.resident {
                    self.train_gather.record(&mut pass, k)?;
                }
                ch.hv_forward.record(&mut pass);
                ch.hv_rows.record(&mut pass);
                ch.hv_backward.record(&mut pass);
                ch.hv_accumulate.record(&mut pass);
            }
            if !all.is_empty() {
                self.dots.record(&mut pass);
            }
        }
        Ok(self.finish(encoder, false, all.len())?.2)
    }

    fn combine(&mut self, out: Slot, terms: &[(f64, Slot)]) -> Result<()> {
        let ov = self.slot(out)?;
        if terms.is_empty() {
            return Err(Error::shape("combine", "at least one term is needed"));
        }
        // The output's own terms go first, as one: later dispatches of a
        // long sum read the output only as their running total.
        let own: f64 = terms.iter().filter(|t| t.1 == out).map(|t| t.0).sum();
        let mut list: Vec<(f32, GpuTensor<f32>)> = Vec::with_capacity(terms.len());
        if terms.iter().any(|t| t.1 == out) {
            list.push((own as f32, ov.clone()));
        }
        for &(c, s) in terms.iter().filter(|t| t.1 != out) {
            list.push((c as f32, self.slot(s)?));
        }
        let mut first = true;
        let mut rest = &list[..];
        while !rest.is_empty() {
            let take = if first { MAX_TERMS } else { MAX_TERMS - 1 };
            let (batch, tail) = rest.split_at(take.min(rest.len()));
            let mut refs: Vec<(f32, &GpuTensor<f32>)> = Vec::with_capacity(MAX_TERMS);
            if !first {
                refs.push((1.0, &ov));
            }
            refs.extend(batch.iter().map(|(c, t)| (*c, t)));
            if self.pending == self.pool.len() {
                self.pool
                    .push(Combine::new(self.gpu, &self.bank, None, self.dim)?);
            }
            self.pool[self.pending].set(self.gpu, &ov, &refs)?;
            self.pending += 1;
            first = false;
            rest = tail;
        }
        Ok(())
    }

    fn dots(&mut self, pairs: &[(Slot, Slot)]) -> Result<Vec<f64>> {
        let all = self.caller_pairs(pairs)?;
        if all.is_empty() {
            return Ok(Vec::new());
        }
        self.set_dots(&all)?;
        let mut encoder = self.gpu.encoder("dots");
        {
            let mut pass = begin(&mut encoder, "dots");
            self.record_pending(&mut pass);
            self.dots.record(&mut pass);
        }
        Ok(self.finish(encoder, false, all.len())?.2)
    }

    fn evaluate_test(&mut self, w: Slot) -> Result<(f64, f64)> {
        let gather = self
            .test_gather
            .as_ref()
            .ok_or_else(|| Error::InvalidArgument {
                name: "test set",
                msg: "the objective was built without one".into(),
            })?;
        let (wv, w_eval) = (self.slot(w)?, self.fixed(0)?);
        self.copy_w.set(self.gpu, &w_eval, &[(1.0, &wv)])?;
        let mut encoder = self.gpu.encoder("test set");
        {
            let mut pass = begin(&mut encoder, "test set");
            self.record_pending(&mut pass);
            self.copy_w.record(&mut pass);
            for (k, ch) in self.test.iter().enumerate() {
                gather.record(&mut pass, k)?;
                ch.forward.record(&mut pass);
                ch.xent.record(&mut pass);
                ch.sum.record(&mut pass);
            }
        }
        let (total, correct, _) = self.finish(encoder, true, 0)?;
        let n = self.test_examples as f64;
        Ok((total as f64 / n, correct as f64 / n))
    }

    fn readbacks(&self) -> usize {
        self.readbacks
    }
}
