//! A dense quadratic `f(w) = ½·wᵀAw − bᵀw` as an [`Objective`] in f64, for
//! the unit tests of the algorithms: its minimiser `A⁻¹b` and its Hessian
//! are known exactly.

use super::{Evaluation, Objective, Slot};
use crate::error::Result;

pub(crate) struct Quadratic {
    pub a: Vec<Vec<f64>>,
    pub b: Vec<f64>,
    pub bank: Vec<Vec<f64>>,
    pub readbacks: usize,
}

impl Quadratic {
    /// A = MᵀM + I (positive definite) from a fixed pseudo-random M.
    pub(crate) fn new(n: usize, slots: usize) -> Self {
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let m: Vec<Vec<f64>> = (0..n).map(|_| (0..n).map(|_| next()).collect()).collect();
        let a = (0..n)
            .map(|i| {
                (0..n)
                    .map(|j| (0..n).map(|k| m[k][i] * m[k][j]).sum::<f64>() + f64::from(i == j))
                    .collect()
            })
            .collect();
        let b = (0..n).map(|_| next()).collect();
        Quadratic {
            a,
            b,
            bank: vec![vec![0.0; n]; slots],
            readbacks: 0,
        }
    }

    pub(crate) fn times(&self, v: &[f64]) -> Vec<f64> {
        self.a
            .iter()
            .map(|row| row.iter().zip(v).map(|(x, y)| x * y).sum())
            .collect()
    }

    pub(crate) fn dot(&self, a: Slot, b: Slot) -> f64 {
        self.bank[a.0]
            .iter()
            .zip(&self.bank[b.0])
            .map(|(x, y)| x * y)
            .sum()
    }

    fn pairs(&self, pairs: &[(Slot, Slot)]) -> Vec<f64> {
        pairs.iter().map(|&(a, b)| self.dot(a, b)).collect()
    }
}

impl Objective for Quadratic {
    fn device(&self) -> &'static str {
        "quadratic"
    }
    fn adapter(&self) -> String {
        "f64 test quadratic".into()
    }
    fn dim(&self) -> usize {
        self.b.len()
    }
    fn slots(&self) -> usize {
        self.bank.len()
    }
    fn examples(&self) -> usize {
        1
    }
    fn l2(&self) -> f64 {
        0.0
    }
    fn write(&mut self, slot: Slot, values: &[f32]) -> Result<()> {
        self.bank[slot.0] = values.iter().map(|&v| v as f64).collect();
        Ok(())
    }
    fn read(&mut self, slot: Slot) -> Result<Vec<f32>> {
        Ok(self.bank[slot.0].iter().map(|&v| v as f32).collect())
    }
    fn loss_grad(&mut self, w: Slot, g: Slot, pairs: &[(Slot, Slot)]) -> Result<Evaluation> {
        let x = self.bank[w.0].clone();
        let ax = self.times(&x);
        let loss = 0.5 * x.iter().zip(&ax).map(|(a, b)| a * b).sum::<f64>()
            - x.iter().zip(&self.b).map(|(a, b)| a * b).sum::<f64>();
        self.bank[g.0] = ax.iter().zip(&self.b).map(|(a, b)| a - b).collect();
        self.readbacks += 1;
        Ok(Evaluation {
            loss,
            correct: 0,
            dots: self.pairs(pairs),
        })
    }
    fn hvp(&mut self, _w: Slot, v: Slot, out: Slot, pairs: &[(Slot, Slot)]) -> Result<Vec<f64>> {
        self.bank[out.0] = self.times(&self.bank[v.0].clone());
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        self.readbacks += 1;
        Ok(self.pairs(pairs))
    }
    fn combine(&mut self, out: Slot, terms: &[(f64, Slot)]) -> Result<()> {
        let n = self.b.len();
        let mut next = vec![0.0; n];
        for &(c, s) in terms {
            for (o, v) in next.iter_mut().zip(&self.bank[s.0]) {
                *o += c * v;
            }
        }
        self.bank[out.0] = next;
        Ok(())
    }
    fn dots(&mut self, pairs: &[(Slot, Slot)]) -> Result<Vec<f64>> {
        self.readbacks += 1;
        Ok(self.pairs(pairs))
    }
    fn evaluate_test(&mut self, _w: Slot) -> Result<(f64, f64)> {
        Ok((0.0, 0.0))
    }
    fn readbacks(&self) -> usize {
        self.readbacks
    }
}
