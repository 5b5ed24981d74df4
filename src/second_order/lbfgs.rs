//! L-BFGS with the two-loop recursion run on the Gram matrix of its vectors
//! (module docs of [`super`]): the device holds x, g, the trial point and
//! its gradient, the direction and the m pairs (s, y); the host holds their
//! inner products and does the recursion's arithmetic in f64.

use super::line_search::Search;
use super::{Objective, Recorder, SecondOrderConfig, Slot, Stop, finite};
use crate::error::Result;
use std::collections::VecDeque;

const X: Slot = Slot(0);
const G: Slot = Slot(1);
const XT: Slot = Slot(2);
const GT: Slot = Slot(3);
const D: Slot = Slot(4);
const FIRST_PAIR: usize = 5;

/// Bank slots for history `m`.
pub(crate) fn slots(m: usize) -> usize {
    FIRST_PAIR + 2 * m
}

/// One curvature pair and `ρ = 1/(sᵀy)`.
#[derive(Clone, Copy, Debug)]
struct Pair {
    s: Slot,
    y: Slot,
    rho: f64,
}

/// Inner products between bank slots, symmetric.
struct Gram {
    n: usize,
    v: Vec<f64>,
}

impl Gram {
    fn new(n: usize) -> Self {
        Gram {
            n,
            v: vec![f64::NAN; n * n],
        }
    }

    fn get(&self, a: Slot, b: Slot) -> f64 {
        self.v[a.0 * self.n + b.0]
    }

    fn set(&mut self, a: Slot, b: Slot, value: f64) {
        self.v[a.0 * self.n + b.0] = value;
        self.v[b.0 * self.n + a.0] = value;
    }
}

/// Writes the direction `d = −H·g` into `D` and returns `gᵀd`. The two-loop
/// recursion runs on coefficient vectors over the basis (g, s₀, y₀, s₁, …):
/// each dot product it needs is a combination of Gram entries.
fn direction(
    obj: &mut dyn Objective,
    history: &VecDeque<Pair>,
    gram: &Gram,
    g: Slot,
) -> Result<f64> {
    if history.is_empty() {
        obj.combine(D, &[(-1.0, g)])?;
        return Ok(-gram.get(g, g));
    }
    let basis: Vec<Slot> = std::iter::once(g)
        .chain(history.iter().flat_map(|p| [p.s, p.y]))
        .collect();
    let dot = |q: &[f64], v: Slot| -> f64 {
        q.iter()
            .zip(&basis)
            .map(|(&c, &b)| if c == 0.0 { 0.0 } else { c * gram.get(b, v) })
            .sum()
    };
    let mut q = vec![0.0; basis.len()];
    q[0] = 1.0;
    let mut alpha = vec![0.0; history.len()];
    for (i, p) in history.iter().enumerate().rev() {
        alpha[i] = p.rho * dot(&q, p.s);
        q[2 + 2 * i] -= alpha[i];
    }
    // H₀ = γ·I with γ = sᵀy / yᵀy of the newest pair (N&W eq. 7.20).
    let newest = history[history.len() - 1];
    let gamma = gram.get(newest.s, newest.y) / gram.get(newest.y, newest.y);
    q.iter_mut().for_each(|c| *c *= gamma);
    for (i, p) in history.iter().enumerate() {
        let beta = p.rho * dot(&q, p.y);
        q[1 + 2 * i] += alpha[i] - beta;
    }
    let dphi0 = -dot(&q, g);
    let terms: Vec<(f64, Slot)> = q.iter().zip(&basis).map(|(&c, &b)| (-c, b)).collect();
    obj.combine(D, &terms)?;
    Ok(dphi0)
}

pub(crate) fn run(
    obj: &mut dyn Objective,
    w0: &[f32],
    config: &SecondOrderConfig,
    rec: &mut Recorder<'_>,
) -> Result<(Stop, Slot)> {
    let m = config.history;
    let (mut x, mut g, mut xt, mut gt) = (X, G, XT, GT);
    obj.write(x, w0)?;
    let e = obj.loss_grad(x, g, &[(g, g)])?;
    rec.pass(1);
    let (mut f, mut gg) = (e.loss, e.dots[0]);
    rec.record(obj, f, e.correct, gg.sqrt(), 0.0, 1, 0);
    if let Err(why) = finite("the initial loss", f).and(finite("the initial ‖g‖²", gg)) {
        return Ok((Stop::NonFinite(why), x));
    }
    let mut gram = Gram::new(slots(m));
    gram.set(g, g, gg);
    let mut history: VecDeque<Pair> = VecDeque::with_capacity(m);
    let mut free: Vec<(Slot, Slot)> = (0..m)
        .rev()
        .map(|i| (Slot(FIRST_PAIR + 2 * i), Slot(FIRST_PAIR + 2 * i + 1)))
        .collect();
    for k in 0usize.. {
        if config.target_loss.is_some_and(|t| f <= t) {
            return Ok((Stop::TargetReached, x));
        }
        if gg.sqrt() <= config.gtol {
            return Ok((Stop::Converged, x));
        }
        if let Some(why) = rec.stalled() {
            return Ok((Stop::Stalled(why), x));
        }
        if k >= config.max_iterations {
            return Ok((Stop::MaxIterations, x));
        }
        let mut dphi0 = direction(obj, &history, &gram, g)?;
        if (dphi0.is_nan() || dphi0 >= 0.0) && !history.is_empty() {
            // Rounding broke the model's positive definiteness: restart it.
            free.extend(history.drain(..).map(|p| (p.s, p.y)));
            dphi0 = direction(obj, &history, &gram, g)?;
        }
        // The first step along −g is scaled to length 1 at most (the scale
        // of g says nothing about the step's); later ones start at 1.
        let t0 = if history.is_empty() {
            (1.0 / gg.sqrt()).min(1.0)
        } else {
            1.0
        };
        let mut search = Search::new(obj, rec, [x, D, xt, gt], (f, dphi0), config);
        let mut found = search.strong_wolfe(t0, config.c2)?;
        let mut evaluations = search.evaluations;
        let mut stop = found.as_ref().err().map(|why| search.stop(why.clone()));
        if found.is_err() && !history.is_empty() {
            // The quasi-Newton model misled the search: forget it and try
            // once more along −g.
            free.extend(history.drain(..).map(|p| (p.s, p.y)));
            let dphi0 = direction(obj, &history, &gram, g)?;
            let mut search = Search::new(obj, rec, [x, D, xt, gt], (f, dphi0), config);
            found = search.strong_wolfe((1.0 / gg.sqrt()).min(1.0), config.c2)?;
            evaluations += search.evaluations;
            stop = found.as_ref().err().map(|why| search.stop(why.clone()));
        }
        let trial = match (found, stop) {
            (Ok(t), _) => t,
            (Err(why), stop) => return Ok((stop.unwrap_or(Stop::LineSearchFailed(why)), x)),
        };
        // The new pair: s = t·d, y = g⁺ − g, in the oldest pair's slots
        // once the history is full.
        let (s, y) = match free.pop() {
            Some(p) => p,
            None => {
                let p = history
                    .pop_front()
                    .ok_or_else(|| crate::Error::shape("lbfgs", "no slots for a new pair"))?;
                (p.s, p.y)
            }
        };
        obj.combine(s, &[(trial.t, D)])?;
        obj.combine(y, &[(1.0, gt), (-1.0, g)])?;
        std::mem::swap(&mut x, &mut xt);
        std::mem::swap(&mut g, &mut gt);
        f = trial.loss;
        gg = trial.gg;
        // The new rows of the Gram matrix, in one readback: s and y against
        // every kept vector and themselves, and the new g against all.
        let kept: Vec<Slot> = history
            .iter()
            .flat_map(|p| [p.s, p.y])
            .chain([s, y])
            .collect();
        let mut pairs = Vec::with_capacity(3 * kept.len());
        for &b in &kept {
            pairs.push((s, b));
            if b != s {
                pairs.push((y, b));
            }
            pairs.push((g, b));
        }
        let values = obj.dots(&pairs)?;
        for (&(a, b), &v) in pairs.iter().zip(&values) {
            gram.set(a, b, v);
        }
        gram.set(g, g, gg);
        let (sy, yy) = (gram.get(s, y), gram.get(y, y));
        if sy.is_finite() && yy.is_finite() && sy > 1e-10 * yy {
            history.push_back(Pair {
                s,
                y,
                rho: 1.0 / sy,
            });
        } else {
            free.push((s, y));
        }
        rec.record(obj, f, trial.correct, gg.sqrt(), trial.t, evaluations, 0);
        if let Err(why) = finite("the loss", f).and(finite("‖g‖²", gg)) {
            return Ok((Stop::NonFinite(why), x));
        }
    }
    Ok((Stop::MaxIterations, x))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::second_order::quadratic::Quadratic;
    use crate::second_order::{Method, minimize};

    /// The recursion on Gram entries gives the direction and `gᵀd` of the
    /// textbook two-loop recursion on the vectors themselves.
    #[test]
    fn gram_two_loop_matches_the_vector_two_loop() {
        let (n, m) = (15, 5);
        let mut q = Quadratic::new(n, slots(m));
        let vec = |k: usize| -> Vec<f32> {
            (0..n)
                .map(|i| ((i * 7 + k * 13) as f32 * 0.41).cos())
                .collect()
        };
        q.write(G, &vec(0)).unwrap();
        let mut history = VecDeque::new();
        for i in 0..m {
            let (s, y) = (Slot(FIRST_PAIR + 2 * i), Slot(FIRST_PAIR + 2 * i + 1));
            q.write(s, &vec(i + 1)).unwrap();
            // y = A·s (+ a little of another vector): sᵀy > 0 as from a Wolfe step.
            let mut y_val = q.times(&q.bank[s.0].clone());
            y_val
                .iter_mut()
                .zip(vec(i + 20))
                .for_each(|(a, b)| *a += 0.1 * b as f64);
            q.bank[y.0] = y_val;
            history.push_back(Pair {
                s,
                y,
                rho: 1.0 / q.dot(s, y),
            });
        }
        let mut gram = Gram::new(slots(m));
        let all: Vec<Slot> = std::iter::once(G)
            .chain(history.iter().flat_map(|p| [p.s, p.y]))
            .collect();
        for &a in &all {
            for &b in &all {
                gram.set(a, b, q.dot(a, b));
            }
        }
        let dphi0 = direction(&mut q, &history, &gram, G).unwrap();

        // Textbook: q = g; αᵢ = ρᵢ sᵢᵀq, q −= αᵢ yᵢ (newest first); r = γq;
        // β = ρᵢ yᵢᵀr, r += (αᵢ − β) sᵢ (oldest first); d = −r.
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        let mut v = q.bank[G.0].clone();
        let mut alpha = vec![0.0; m];
        for (i, p) in history.iter().enumerate().rev() {
            alpha[i] = p.rho * dot(&q.bank[p.s.0], &v);
            v.iter_mut()
                .zip(&q.bank[p.y.0])
                .for_each(|(a, y)| *a -= alpha[i] * y);
        }
        let last = history[m - 1];
        let gamma =
            dot(&q.bank[last.s.0], &q.bank[last.y.0]) / dot(&q.bank[last.y.0], &q.bank[last.y.0]);
        v.iter_mut().for_each(|a| *a *= gamma);
        for (i, p) in history.iter().enumerate() {
            let beta = p.rho * dot(&q.bank[p.y.0], &v);
            v.iter_mut()
                .zip(&q.bank[p.s.0])
                .for_each(|(a, s)| *a += (alpha[i] - beta) * s);
        }
        let d: Vec<f64> = v.iter().map(|a| -a).collect();
        let scale = d.iter().fold(0f64, |m, x| m.max(x.abs()));
        for (got, want) in q.bank[D.0].iter().zip(&d) {
            assert!((got - want).abs() <= 1e-12 * scale, "{got} vs {want}");
        }
        let want = dot(&q.bank[G.0], &d);
        assert!(
            (dphi0 - want).abs() <= 1e-12 * want.abs(),
            "{dphi0} vs {want}"
        );
    }

    /// On an n-dimensional quadratic with exact line searches L-BFGS would
    /// finish in n steps; with Wolfe steps it takes a few more.
    #[test]
    fn solves_a_quadratic() {
        let n = 12;
        let mut q = Quadratic::new(n, slots(10));
        let config = SecondOrderConfig {
            gtol: 1e-9,
            ..SecondOrderConfig::new(Method::Lbfgs)
        };
        let out = minimize(&mut q, &vec![0.0; n], &config, &mut |_| {}).unwrap();
        assert_eq!(out.stop, Stop::Converged);
        assert!(
            out.iterations.len() <= 3 * n,
            "{} iterations",
            out.iterations.len()
        );
    }
}
