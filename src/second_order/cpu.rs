//! The full-batch objective on the CPU: the twin of [`super::GpuObjective`],
//! chunk for chunk. The training set is gathered in chunks of `chunk_rows`
//! f32 rows, once and kept when `resident`, else on every pass (then no
//! more than the bytes and one chunk are held), and each pass runs the same
//! products and kernels' twins in the same order as the GPU: `f32` to
//! compare with the GPU, `f64` for reference runs.

use super::{Evaluation, FullBatchConfig, Objective, Slot, check_data};
use crate::cpu::linalg::{combine, dot, xent_hvp_rows};
use crate::cpu::{Real, gather_into, softmax_xent, softmax_xent_eval};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::kernels::GatherOptions;
use ndarray::{Array2, ArrayView2, s};
use std::borrow::Cow;

/// A chunk's rows and labels, kept or just gathered.
type Rows<'a, F> = (Cow<'a, Array2<F>>, Cow<'a, [u32]>);

/// The full-batch loss, gradient and Hessian-vector products on the CPU,
/// with a bank of `slots` vectors in memory.
pub struct CpuObjective<'d, F: Real = f32> {
    train: &'d Dataset,
    test: Option<&'d Dataset>,
    opts: GatherOptions,
    classes: usize,
    width: usize,
    dim: usize,
    l2: F,
    chunk_rows: usize,
    bank: Vec<F>,
    slots: usize,
    x32: Vec<f32>,
    y: Vec<u32>,
    order: Vec<u32>,
    test_order: Vec<u32>,
    /// With `resident`: every training chunk's rows and labels, kept.
    resident: Vec<(Array2<F>, Vec<u32>)>,
    readbacks: usize,
}

impl<'d, F: Real> CpuObjective<'d, F> {
    /// An objective over all of `train` (and `test` for
    /// [`Objective::evaluate_test`]) with a bank of `slots` vectors.
    pub fn new(
        train: &'d Dataset,
        test: Option<&'d Dataset>,
        slots: usize,
        config: &FullBatchConfig,
    ) -> Result<Self> {
        config.validate()?;
        check_data(train, test)?;
        crate::error::positive("slots", slots)?;
        let width = train.dim() + 1;
        let dim = train.classes * width;
        let chunk_rows = config.chunk_rows.min(train.len());
        let mut obj = CpuObjective {
            train,
            test,
            opts: config.gather_options(),
            classes: train.classes,
            width,
            dim,
            l2: F::of(config.l2),
            chunk_rows,
            bank: vec![F::zero(); slots * dim],
            slots,
            x32: Vec::new(),
            y: Vec::new(),
            order: (0..train.len() as u32).collect(),
            test_order: (0..test.map_or(0, Dataset::len) as u32).collect(),
            resident: Vec::new(),
            readbacks: 0,
        };
        if config.resident {
            for c in 0..obj.chunks(false) {
                let x = obj.gather(false, c)?;
                obj.resident.push((x, obj.y.clone()));
            }
        }
        Ok(obj)
    }

    fn range(&self, slot: Slot) -> Result<std::ops::Range<usize>> {
        if slot.0 >= self.slots {
            return Err(Error::InvalidArgument {
                name: "slot",
                msg: format!("{} is past the bank's {} slots", slot.0, self.slots),
            });
        }
        Ok(slot.0 * self.dim..(slot.0 + 1) * self.dim)
    }

    fn matrix(&self, slot: Slot) -> Result<Array2<F>> {
        let r = self.range(slot)?;
        Array2::from_shape_vec((self.classes, self.width), self.bank[r].to_vec())
            .map_err(|e| Error::shape("CpuObjective", e))
    }

    fn store(&mut self, slot: Slot, m: &Array2<F>) -> Result<()> {
        let r = self.range(slot)?;
        for (o, &v) in self.bank[r].iter_mut().zip(m.iter()) {
            *o = v;
        }
        Ok(())
    }

    /// Chunk `c` of the training (or test) rows and their labels: kept, or
    /// gathered now.
    fn chunk(&mut self, test: bool, c: usize) -> Result<Rows<'_, F>> {
        if !test && !self.resident.is_empty() {
            let (x, y) = &self.resident[c];
            return Ok((Cow::Borrowed(x), Cow::Borrowed(y)));
        }
        let x = self.gather(test, c)?;
        Ok((Cow::Owned(x), Cow::Borrowed(&self.y)))
    }

    /// Gathers chunk `c` of `order` as an F matrix, its labels into `self.y`.
    fn gather(&mut self, test: bool, c: usize) -> Result<Array2<F>> {
        let (data, order) = if test {
            (self.test.ok_or_else(no_test)?, &self.test_order)
        } else {
            (self.train, &self.order)
        };
        let start = c * self.chunk_rows;
        let rows = self.chunk_rows.min(order.len() - start);
        self.x32.resize(rows * self.width, 0.0);
        gather_into(
            data,
            order,
            start,
            rows,
            self.opts,
            &mut self.x32,
            &mut self.y,
        )?;
        let x = ArrayView2::from_shape((rows, self.width), &self.x32[..])
            .map_err(|e| Error::shape("CpuObjective", e))?;
        Ok(x.mapv(|v| F::of(v as f64)))
    }

    fn chunks(&self, test: bool) -> usize {
        let n = if test {
            self.test_order.len()
        } else {
            self.order.len()
        };
        n.div_ceil(self.chunk_rows)
    }

    fn dot_pairs(&self, pairs: &[(Slot, Slot)]) -> Result<Vec<f64>> {
        pairs
            .iter()
            .map(
                |&(a, b)| Ok(dot(&self.bank[self.range(a)?], &self.bank[self.range(b)?])?.to_f64()),
            )
            .collect()
    }
}

fn no_test() -> Error {
    Error::InvalidArgument {
        name: "test set",
        msg: "the objective was built without one".into(),
    }
}

impl<F: Real> Objective for CpuObjective<'_, F> {
    fn device(&self) -> &'static str {
        "cpu"
    }

    fn adapter(&self) -> String {
        format!(
            "CPU, ndarray + matrixmultiply, {} threads, {}",
            rayon::current_num_threads(),
            std::any::type_name::<F>()
        )
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn slots(&self) -> usize {
        self.slots
    }

    fn examples(&self) -> usize {
        self.order.len()
    }

    fn l2(&self) -> f64 {
        self.l2.to_f64()
    }

    fn write(&mut self, slot: Slot, values: &[f32]) -> Result<()> {
        let r = self.range(slot)?;
        if values.len() != self.dim {
            return Err(Error::shape(
                "Objective::write",
                format!("{} values for vectors of {}", values.len(), self.dim),
            ));
        }
        for (o, &v) in self.bank[r].iter_mut().zip(values) {
            *o = F::of(v as f64);
        }
        Ok(())
    }

    fn read(&mut self, slot: Slot) -> Result<Vec<f32>> {
        let r = self.range(slot)?;
        Ok(self.bank[r]
            .iter()
            .map(|&v| Real::to_f64(v) as f32)
            .collect())
    }

    fn loss_grad(&mut self, w: Slot, g: Slot, pairs: &[(Slot, Slot)]) -> Result<Evaluation> {
        let wm = self.matrix(w)?;
        self.range(g)?;
        let n = F::of(self.order.len() as f64);
        // Totals in f64: an f32 running sum of N losses drifts by ~1e-6
        // relative, which would steer the line search's interpolation.
        let (mut total, mut correct) = (0f64, 0u64);
        let mut grad: Option<Array2<F>> = None;
        let chunks = self.chunks(false);
        let (classes, width, l2) = (self.classes, self.width, self.l2);
        for c in 0..chunks {
            let (x, y) = self.chunk(false, c)?;
            let rows = F::of(x.nrows() as f64);
            let out = softmax_xent(&x.dot(&wm.t()), &y)?;
            total += out.loss.iter().map(|&l| Real::to_f64(l)).sum::<f64>();
            correct += out.correct.iter().map(|&v| v as u64).sum::<u64>();
            let dlogits = out
                .dlogits
                .ok_or_else(|| Error::shape("loss_grad", "no gradient from softmax_xent"))?;
            // The GPU's chunk accumulation: g = [g] + (rows/N)·dW [+ λ·W].
            let dw = dlogits.t().dot(x.as_ref());
            let mut terms: Vec<(F, &[F])> = Vec::with_capacity(3);
            if let Some(acc) = grad.as_ref() {
                terms.push((F::one(), slice(acc)?));
            }
            terms.push((rows / n, slice(&dw)?));
            if c + 1 == chunks {
                terms.push((l2, slice(&wm)?));
            }
            let next = combine(&terms)?;
            grad = Some(
                Array2::from_shape_vec((classes, width), next)
                    .map_err(|e| Error::shape("loss_grad", e))?,
            );
        }
        let grad = grad.ok_or_else(|| Error::shape("loss_grad", "no chunks"))?;
        self.store(g, &grad)?;
        let ww = dot(slice(&wm)?, slice(&wm)?)?.to_f64();
        self.readbacks += 1;
        Ok(Evaluation {
            loss: total / self.order.len() as f64 + 0.5 * self.l2.to_f64() * ww,
            correct,
            dots: self.dot_pairs(pairs)?,
        })
    }

    fn hvp(&mut self, w: Slot, v: Slot, out: Slot, pairs: &[(Slot, Slot)]) -> Result<Vec<f64>> {
        let (wm, vm) = (self.matrix(w)?, self.matrix(v)?);
        self.range(out)?;
        // [W; V] as one 2C×D' matrix: one product gives logits and X·Vᵀ.
        let wv = ndarray::concatenate(ndarray::Axis(0), &[wm.view(), vm.view()])
            .map_err(|e| Error::shape("hvp", e))?;
        let inv_n = F::one() / F::of(self.order.len() as f64);
        let (c, width, l2) = (self.classes, self.width, self.l2);
        let mut acc: Option<Array2<F>> = None;
        let chunks = self.chunks(false);
        for k in 0..chunks {
            let (x, _) = self.chunk(false, k)?;
            let zu = x.dot(&wv.t());
            let r = xent_hvp_rows(zu.slice(s![.., ..c]), zu.slice(s![.., c..]), inv_n)?;
            let hv = r.t().dot(x.as_ref());
            let mut terms: Vec<(F, &[F])> = Vec::with_capacity(3);
            if let Some(a) = acc.as_ref() {
                terms.push((F::one(), slice(a)?));
            }
            terms.push((F::one(), slice(&hv)?));
            if k + 1 == chunks {
                terms.push((l2, slice(&vm)?));
            }
            let next = combine(&terms)?;
            acc =
                Some(Array2::from_shape_vec((c, width), next).map_err(|e| Error::shape("hvp", e))?);
        }
        let acc = acc.ok_or_else(|| Error::shape("hvp", "no chunks"))?;
        self.store(out, &acc)?;
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        self.readbacks += 1;
        self.dot_pairs(pairs)
    }

    fn combine(&mut self, out: Slot, terms: &[(f64, Slot)]) -> Result<()> {
        let r = self.range(out)?;
        let slices = terms
            .iter()
            .map(|&(c, s)| Ok((F::of(c), &self.bank[self.range(s)?])))
            .collect::<Result<Vec<_>>>()?;
        let next = combine(&slices)?;
        self.bank[r].copy_from_slice(&next);
        Ok(())
    }

    fn dots(&mut self, pairs: &[(Slot, Slot)]) -> Result<Vec<f64>> {
        self.readbacks += 1;
        self.dot_pairs(pairs)
    }

    fn evaluate_test(&mut self, w: Slot) -> Result<(f64, f64)> {
        let wm = self.matrix(w)?;
        let len = self.test.ok_or_else(no_test)?.len();
        let (mut total, mut correct) = (0f64, 0u64);
        for c in 0..self.chunks(true) {
            let (x, y) = self.chunk(true, c)?;
            let out = softmax_xent_eval(&x.dot(&wm.t()), &y)?;
            total += out.loss.iter().map(|&l| Real::to_f64(l)).sum::<f64>();
            correct += out.correct.iter().map(|&v| v as u64).sum::<u64>();
        }
        self.readbacks += 1;
        Ok((total / len as f64, correct as f64 / len as f64))
    }

    fn readbacks(&self) -> usize {
        self.readbacks
    }
}

fn slice<F: Real>(m: &Array2<F>) -> Result<&[F]> {
    m.as_slice()
        .ok_or_else(|| Error::shape("CpuObjective", "a matrix is not contiguous"))
}
