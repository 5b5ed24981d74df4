//! The strategies' CPU side: the same chunks and the same sequence of
//! operations as [`super::GpuBackend`], through the ndarray twins
//! (`cpu::matmul`, `cpu::softmax_xent`, `cpu::column_sum`,
//! `cpu::loss_correct_sum`, `CpuOptimizer`). Candidates are scored in the
//! wide layout (one GEMM of N = K·C per chunk): the best shape for the CPU
//! too, so the baseline is not a strawman. Gradients are the linear model's
//! training program ([`LinearSoftmax::train_program`]) run by the training
//! loop's CPU runner: the model's one backward, not a copy of it.

use super::{
    Backend, EpochStats, Evaluation, Problem, Split, chunk_ranges, one_weight, step_ranges,
    weight_count,
};
use crate::cpu;
use crate::cpu::optim::CpuOptimizer;
use crate::error::{Error, Result};
use crate::model::{LinearSoftmax, Model};
use crate::optim::OptimizerConfig;
use crate::shapes::MatmulOptions;
use crate::train::CpuProgram;
use ndarray::{Array2, ArrayView2, Ix2, s};
use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

/// The CPU twins as a [`Backend`].
pub struct CpuBackend {
    problem: Arc<Problem>,
    chunk_rows: usize,
    grad_rows: usize,
    model: LinearSoftmax,
    /// The model's training program per batch size, built on first use.
    programs: BTreeMap<usize, CpuProgram>,
    /// dW of the last step, written by the program.
    grads: Vec<f32>,
}

impl CpuBackend {
    /// A backend over `problem` in chunks of `chunk_rows` rows; the
    /// minibatch is the first `grad_rows` training rows.
    /// Checks that the problem's shapes and labels agree.
    pub fn new(problem: Arc<Problem>, chunk_rows: usize, grad_rows: usize) -> Result<Self> {
        problem.check()?;
        let model = LinearSoftmax::new(problem.features() - 1, problem.classes)?;
        Ok(CpuBackend {
            grads: vec![0.0; problem.weights()],
            problem,
            chunk_rows: chunk_rows.max(1),
            grad_rows: grad_rows.max(1),
            model,
            programs: BTreeMap::new(),
        })
    }

    fn rows(&self, split: Split) -> (ArrayView2<'_, f32>, &[u32]) {
        let p = &*self.problem;
        match split {
            Split::Train => (p.x_train.view(), &p.y_train),
            Split::Test => (p.x_test.view(), &p.y_test),
            Split::Minibatch => {
                let n = self.grad_rows.min(p.y_train.len());
                (p.x_train.slice(s![..n, ..]), &p.y_train[..n])
            }
        }
    }
}

/// `x·wᵀ` for x R×F and w K×F through the matmul twin.
fn scores(x: ArrayView2<f32>, w: ArrayView2<f32>) -> Result<Array2<f32>> {
    cpu::matmul(&x, &w, None, MatmulOptions::nt())?
        .into_dimensionality::<Ix2>()
        .map_err(|e| Error::shape("strategies", e))
}

impl Backend for CpuBackend {
    fn label(&self) -> &'static str {
        "CPU"
    }

    fn score(&mut self, split: Split, w: &[f32]) -> Result<Vec<f32>> {
        let k = weight_count(&self.problem, w, "candidates")?;
        let (c, f) = (self.problem.classes, self.problem.features());
        let w = ArrayView2::from_shape((k * c, f), w).map_err(|e| Error::shape("score", e))?;
        let (x, y) = self.rows(split);
        let mut totals = vec![0.0f32; k];
        for r in chunk_ranges(y.len(), self.chunk_rows) {
            let n = r.len();
            // [R, K·C] read as [R·K, C]: row r·K + j is candidate j on example r.
            let logits = scores(x.slice(s![r.clone(), ..]), w)?
                .into_shape_with_order((n * k, c))
                .map_err(|e| Error::shape("score", e))?;
            let labels: Vec<u32> = y[r]
                .iter()
                .flat_map(|&l| std::iter::repeat_n(l, k))
                .collect();
            let out = cpu::softmax_xent_eval::<f32, _, _>(&logits, &labels)?;
            let per_row = out
                .loss
                .into_shape_with_order((n, k))
                .map_err(|e| Error::shape("score", e))?;
            for (t, s) in totals.iter_mut().zip(cpu::column_sum(&per_row)?) {
                *t += s;
            }
        }
        let n = y.len() as f32;
        Ok(totals.into_iter().map(|t| t / n).collect())
    }

    fn evaluate(&mut self, split: Split, w: &[f32]) -> Result<Evaluation> {
        weight_count(&self.problem, w, "W")?;
        let (c, f) = (self.problem.classes, self.problem.features());
        let w = ArrayView2::from_shape((c, f), w).map_err(|e| Error::shape("evaluate", e))?;
        let (x, y) = self.rows(split);
        let (mut total, mut count) = (0.0f32, 0u32);
        for r in chunk_ranges(y.len(), self.chunk_rows) {
            let logits = scores(x.slice(s![r.clone(), ..]), w)?;
            let out = cpu::softmax_xent_eval::<f32, _, _>(&logits, &y[r])?;
            let (t, n) = cpu::loss_correct_sum(&out.loss.to_vec(), &out.correct.to_vec())?;
            total += t;
            count += n;
        }
        let n = y.len() as f32;
        Ok(Evaluation {
            loss: total / n,
            accuracy: count as f32 / n,
        })
    }

    fn gradient(&mut self, w: &[f32]) -> Result<(f32, Vec<f32>)> {
        one_weight(&self.problem, w, "gradient")?;
        let n = self.grad_rows.min(self.problem.y_train.len());
        let (loss, _) = self.step(w, 0..n)?;
        Ok((loss / n as f32, self.grads.clone()))
    }

    fn descend(
        &mut self,
        w0: &[f32],
        batch: usize,
        epochs: usize,
        lr: f32,
    ) -> Result<(Vec<EpochStats>, Vec<f32>)> {
        one_weight(&self.problem, w0, "descend")?;
        let n = self.problem.y_train.len();
        let steps = step_ranges(n, self.chunk_rows, batch);
        let mut w = w0.to_vec();
        let mut opt = CpuOptimizer::new(OptimizerConfig::sgd(lr), w.len())?;
        let mut stats = Vec::new();
        for _ in 0..epochs {
            let (mut total, mut count) = (0.0f32, 0u32);
            for r in &steps {
                let (t, c) = self.step(&w, r.clone())?;
                total += t;
                count += c;
                opt.step(&mut w, &self.grads)?;
            }
            stats.push(EpochStats {
                loss: total / n as f32,
                accuracy: count as f32 / n as f32,
            });
        }
        Ok((stats, w))
    }
}

impl CpuBackend {
    /// The model's training program on training rows `r`: the batch's loss
    /// total and correct count, with dW (of the mean loss) in `self.grads`.
    fn step(&mut self, w: &[f32], r: Range<usize>) -> Result<(f32, u32)> {
        let program = self
            .programs
            .entry(r.len())
            .or_insert_with(|| CpuProgram::new(self.model.train_program(r.len())));
        let x = self.problem.x_train.slice(s![r.clone(), ..]);
        program.run(x.into_dyn(), &self.problem.y_train[r], w, &mut self.grads)
    }
}
