//! Line searches along `x + t·d`: strong Wolfe (bracketing and zoom with
//! safeguarded cubic interpolation, Nocedal & Wright Algorithms 3.5–3.6) for
//! L-BFGS, and backtracking Armijo from t = 1 for Newton-CG.
//!
//! Every trial evaluates loss and gradient at `x + t·d` into the trial slots
//! and returns φ(t) = L(x + t·d), φ'(t) = ∇L(x + t·d)·d and ‖∇L‖² in one
//! readback. A search accepts only the point it evaluated last, so the trial
//! slots always hold the accepted point and its gradient.
//!
//! **Losses in f32.** The loss is a sum of N per-row f32 losses: its
//! rounding is ~1e-7 relative, so once the decrease a step promises falls
//! below that (‖∇L‖ around 1e-4 here), comparing losses is comparing noise
//! and a strict Armijo test would fail at random. Near φ(0) the searches
//! therefore also accept Hager & Zhang's *approximate* Armijo condition,
//! `φ'(t) ≤ (2c₁ − 1)·φ'(0)` while `φ(t) ≤ φ(0) + ε·|φ(0)|` (CG_DESCENT,
//! SIAM J. Optim. 2005), which is exact for a quadratic and relies on the
//! gradient, whose dot products stay accurate; ε = 1e-6, ten times the
//! rounding of a loss total. Losses within ε·|φ(0)| of each other are
//! treated as equal for the same reason.

use super::{Objective, Recorder, SecondOrderConfig, Slot};
use crate::error::Result;

/// Relative loss difference below which f32 loss totals are not compared.
const LOSS_NOISE: f64 = 1e-6;

/// One evaluated trial step.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Trial {
    pub t: f64,
    pub loss: f64,
    pub correct: u64,
    /// φ'(t) = ∇L(x + t·d)·d.
    pub dphi: f64,
    /// ‖∇L(x + t·d)‖².
    pub gg: f64,
}

impl Trial {
    fn finite(&self) -> bool {
        self.loss.is_finite() && self.dphi.is_finite() && self.gg.is_finite()
    }
}

/// A search along `d` from `x`, with the trial point and its gradient
/// written to `xt` and `gt`.
pub(crate) struct Search<'a, 'r> {
    pub obj: &'a mut dyn Objective,
    pub rec: &'a mut Recorder<'r>,
    pub x: Slot,
    pub d: Slot,
    pub xt: Slot,
    pub gt: Slot,
    /// φ(0) and φ'(0) (< 0 for a descent direction).
    pub f0: f64,
    pub dphi0: f64,
    pub c1: f64,
    pub max_evaluations: usize,
    /// Evaluations so far.
    pub evaluations: usize,
    /// Of those, the ones whose loss or gradient was not finite.
    pub non_finite: usize,
}

impl<'a, 'r> Search<'a, 'r> {
    /// A search from `x` (loss `f0`) along `d` (`φ'(0) = dphi0`), its trial
    /// points and their gradients in `xt` and `gt`, with the method's
    /// Armijo constant and evaluation budget.
    pub(crate) fn new(
        obj: &'a mut dyn Objective,
        rec: &'a mut Recorder<'r>,
        [x, d, xt, gt]: [Slot; 4],
        (f0, dphi0): (f64, f64),
        config: &SecondOrderConfig,
    ) -> Self {
        Search {
            obj,
            rec,
            x,
            d,
            xt,
            gt,
            f0,
            dphi0,
            c1: config.c1,
            max_evaluations: config.max_evaluations,
            evaluations: 0,
            non_finite: 0,
        }
    }
}

/// A failed search's reason, for [`super::Stop::LineSearchFailed`].
pub(crate) type Outcome = std::result::Result<Trial, String>;

impl Search<'_, '_> {
    fn eval(&mut self, t: f64) -> Result<Trial> {
        self.obj.combine(self.xt, &[(1.0, self.x), (t, self.d)])?;
        let e = self
            .obj
            .loss_grad(self.xt, self.gt, &[(self.gt, self.d), (self.gt, self.gt)])?;
        self.rec.pass(1);
        self.evaluations += 1;
        let trial = Trial {
            t,
            loss: e.loss,
            correct: e.correct,
            dphi: e.dots[0],
            gg: e.dots[1],
        };
        if !trial.finite() {
            self.non_finite += 1;
        }
        Ok(trial)
    }

    /// The stop for a failed search: non-finite when every trial was.
    pub(crate) fn stop(&self, why: String) -> super::Stop {
        if self.non_finite > 0 && self.non_finite == self.evaluations {
            super::Stop::NonFinite(format!(
                "all {} trial steps gave a non-finite loss or gradient",
                self.evaluations
            ))
        } else {
            super::Stop::LineSearchFailed(why)
        }
    }

    /// Sufficient decrease: Armijo, or its approximate form near φ(0).
    fn decreases(&self, tr: &Trial) -> bool {
        tr.finite()
            && (tr.loss <= self.f0 + self.c1 * tr.t * self.dphi0
                || (tr.loss <= self.f0 + LOSS_NOISE * self.f0.abs()
                    && tr.dphi <= (2.0 * self.c1 - 1.0) * self.dphi0))
    }

    /// `a` is above `b` by more than loss rounding.
    fn above(&self, a: f64, b: f64) -> bool {
        a > b + LOSS_NOISE * self.f0.abs()
    }

    fn not_descent(&self) -> Option<String> {
        (self.dphi0.is_nan() || self.dphi0 >= 0.0)
            .then(|| format!("not a descent direction (gᵀd = {:e})", self.dphi0))
    }

    /// Backtracking from t = 1: the first `t` with sufficient decrease,
    /// shrinking by the minimiser of the quadratic through φ(0), φ'(0), φ(t),
    /// kept within [0.1·t, 0.5·t] (halving when φ(t) is not finite).
    pub(crate) fn armijo(&mut self) -> Result<Outcome> {
        if let Some(why) = self.not_descent() {
            return Ok(Err(why));
        }
        let mut t = 1.0;
        while self.evaluations < self.max_evaluations {
            let tr = self.eval(t)?;
            if self.decreases(&tr) {
                return Ok(Ok(tr));
            }
            let q = -self.dphi0 * t * t / (2.0 * (tr.loss - self.f0 - self.dphi0 * t));
            t = if q.is_finite() {
                q.clamp(0.1 * t, 0.5 * t)
            } else {
                0.5 * t
            };
        }
        Ok(Err(format!(
            "no sufficient decrease in {} evaluations (last step {t:e})",
            self.evaluations
        )))
    }

    /// The strong Wolfe conditions, sufficient decrease and
    /// `|φ'(t)| ≤ c₂·|φ'(0)|`, from the first trial `t0`.
    pub(crate) fn strong_wolfe(&mut self, t0: f64, c2: f64) -> Result<Outcome> {
        if let Some(why) = self.not_descent() {
            return Ok(Err(why));
        }
        let curvature = -c2 * self.dphi0;
        let mut prev = Trial {
            t: 0.0,
            loss: self.f0,
            correct: 0,
            dphi: self.dphi0,
            gg: f64::NAN,
        };
        let mut t = t0;
        while self.evaluations < self.max_evaluations {
            let cur = self.eval(t)?;
            if !self.decreases(&cur) || (self.evaluations > 1 && self.above(cur.loss, prev.loss)) {
                return self.zoom(prev, cur, curvature);
            }
            if cur.dphi.abs() <= curvature {
                return Ok(Ok(cur));
            }
            if cur.dphi >= 0.0 {
                return self.zoom(cur, prev, curvature);
            }
            // Still descending: extrapolate, at least a little and at most 10×.
            let (lo, hi) = (t + 0.01 * (t - prev.t), 10.0 * t);
            t = cubic(&prev, &cur).map_or(hi, |c| c.clamp(lo, hi));
            prev = cur;
        }
        Ok(Err(format!(
            "no bracket in {} evaluations (last step {t:e})",
            self.evaluations
        )))
    }

    /// Narrows `[lo, hi]` (lo: the better end, satisfying sufficient
    /// decrease; the minimiser lies between) until a trial satisfies both
    /// conditions.
    fn zoom(&mut self, mut lo: Trial, mut hi: Trial, curvature: f64) -> Result<Outcome> {
        while self.evaluations < self.max_evaluations {
            let (a, b) = (lo.t.min(hi.t), lo.t.max(hi.t));
            if b - a <= 1e-12 * b.max(1e-12) {
                break;
            }
            // The cubic's minimiser when it lies well inside, else bisection.
            let t = match cubic(&lo, &hi) {
                Some(c) if c > a + 0.1 * (b - a) && c < b - 0.1 * (b - a) => c,
                _ => 0.5 * (a + b),
            };
            let cur = self.eval(t)?;
            if !self.decreases(&cur) || self.above(cur.loss, lo.loss) {
                hi = cur;
            } else {
                if cur.dphi.abs() <= curvature {
                    return Ok(Ok(cur));
                }
                if cur.dphi * (hi.t - lo.t) >= 0.0 {
                    hi = lo;
                }
                lo = cur;
            }
        }
        // Out of evaluations: the best point found still decreases the
        // loss; take it (evaluated once more, so the trial slots hold it).
        if lo.t > 0.0 {
            let again = self.eval(lo.t)?;
            if self.decreases(&again) {
                return Ok(Ok(again));
            }
        }
        Ok(Err(format!(
            "no strong Wolfe point in {} evaluations (interval [{:e}, {:e}])",
            self.evaluations,
            lo.t.min(hi.t),
            lo.t.max(hi.t)
        )))
    }
}

/// The minimiser of the cubic through (t, φ, φ') at two points (N&W eq.
/// 3.59), or `None` when it has none or an input is not finite.
fn cubic(p: &Trial, q: &Trial) -> Option<f64> {
    if !(p.loss.is_finite() && q.loss.is_finite() && p.dphi.is_finite() && q.dphi.is_finite()) {
        return None;
    }
    let d1 = p.dphi + q.dphi - 3.0 * (p.loss - q.loss) / (p.t - q.t);
    let disc = d1 * d1 - p.dphi * q.dphi;
    if disc < 0.0 {
        return None;
    }
    let d2 = (q.t - p.t).signum() * disc.sqrt();
    let t = q.t - (q.t - p.t) * (q.dphi + d2 - d1) / (q.dphi - p.dphi + 2.0 * d2);
    t.is_finite().then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(t: f64, f: impl Fn(f64) -> (f64, f64)) -> Trial {
        let (loss, dphi) = f(t);
        Trial {
            t,
            loss,
            correct: 0,
            dphi,
            gg: 0.0,
        }
    }

    /// A cubic's interpolant is the cubic itself: its minimiser is exact.
    #[test]
    fn cubic_interpolation_finds_a_cubics_minimiser() {
        // φ(t) = t³ − 3t, minimum at t = 1.
        let f = |t: f64| (t * t * t - 3.0 * t, 3.0 * t * t - 3.0);
        let t = cubic(&point(0.0, f), &point(3.0, f)).unwrap();
        assert!((t - 1.0).abs() < 1e-12, "{t}");
        let t = cubic(&point(2.0, f), &point(0.5, f)).unwrap();
        assert!((t - 1.0).abs() < 1e-12, "{t}");
    }

    #[test]
    fn cubic_without_a_minimiser_or_with_nan_is_none() {
        let nan = Trial {
            t: 1.0,
            loss: f64::NAN,
            correct: 0,
            dphi: 0.0,
            gg: 0.0,
        };
        let f = |t: f64| (t, 1.0);
        assert!(cubic(&point(0.0, f), &nan).is_none());
        // Slopes of −10 at both ends but a drop of only 9: the cubic
        // through them has no stationary point (d1² < φ'(a)·φ'(b)).
        let a = Trial {
            t: 0.0,
            loss: 0.0,
            correct: 0,
            dphi: -10.0,
            gg: 0.0,
        };
        let b = Trial {
            t: 1.0,
            loss: -9.0,
            ..a
        };
        assert!(cubic(&a, &b).is_none());
    }
}
