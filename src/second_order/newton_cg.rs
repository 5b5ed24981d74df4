//! Line-search Newton-CG (Nocedal & Wright Algorithm 7.1): truncated
//! conjugate gradient on Hessian-vector products for `H·z = −g`, then
//! backtracking Armijo along z from the unit step.
//!
//! Each CG step is one Hessian-vector product and one readback of five dot
//! products (`pᵀHp`, `rᵀHp`, `‖Hp‖²`, `gᵀHp`, `‖p‖²`): from them the host
//! gets the step `α = ‖r‖²/pᵀHp`, the new residual norm
//! `‖r + αHp‖² = ‖r‖² + 2α·rᵀHp + α²‖Hp‖²` and the directional derivative
//! `gᵀz` the line search starts from, without another round trip. The norm is recomputed directly
//! (one more readback) when it falls below 1e-4 of the previous one, where
//! the three-term sum would lose digits to cancellation.

use super::line_search::Search;
use super::{Objective, Recorder, SecondOrderConfig, Slot, Stop, finite};
use crate::error::Result;

const X: Slot = Slot(0);
const G: Slot = Slot(1);
const XT: Slot = Slot(2);
const GT: Slot = Slot(3);
const Z: Slot = Slot(4);
const R: Slot = Slot(5);
const P: Slot = Slot(6);
const HP: Slot = Slot(7);

/// Bank slots Newton-CG uses.
pub(crate) const SLOTS: usize = 8;

/// How the CG solve ended, with `gᵀz` and its step count.
struct Solve {
    gz: f64,
    steps: usize,
}

/// Truncated CG from z = 0 for `H(x)·z = −g`: `r = H·z + g`, `p` the search
/// direction. Stops at `‖r‖ ≤ tol`, after `max_cg` steps, or at a direction
/// of non-positive curvature (then z so far, or −g if there is none yet).
fn solve(
    obj: &mut dyn Objective,
    rec: &mut Recorder<'_>,
    x: Slot,
    g: Slot,
    gg: f64,
    tol: f64,
    max_cg: usize,
) -> Result<std::result::Result<Solve, String>> {
    obj.combine(R, &[(1.0, g)])?;
    obj.combine(P, &[(-1.0, g)])?;
    let (mut rr, mut gr, mut gp) = (gg, gg, -gg);
    let mut gz = 0.0;
    let mut steps = 0;
    while steps < max_cg {
        let v = obj.hvp(x, P, HP, &[(P, HP), (R, HP), (HP, HP), (g, HP), (P, P)])?;
        rec.pass(1);
        steps += 1;
        let [php, rhp, hphp, ghp, pp] = [v[0], v[1], v[2], v[3], v[4]];
        if let Some(bad) = v.iter().find(|d| !d.is_finite()) {
            return Ok(Err(format!("a Hessian-vector dot product is {bad}")));
        }
        if php <= 0.0 || pp == 0.0 {
            if steps == 1 {
                obj.combine(Z, &[(-1.0, g)])?;
                gz = -gg;
            }
            break;
        }
        let alpha = rr / php;
        if steps == 1 {
            obj.combine(Z, &[(alpha, P)])?;
        } else {
            obj.combine(Z, &[(1.0, Z), (alpha, P)])?;
        }
        gz += alpha * gp;
        obj.combine(R, &[(1.0, R), (alpha, HP)])?;
        gr += alpha * ghp;
        let mut rr_new = rr + 2.0 * alpha * rhp + alpha * alpha * hphp;
        if rr_new.is_nan() || rr_new <= 1e-4 * rr {
            rr_new = obj.dots(&[(R, R)])?[0];
        }
        if rr_new.sqrt() <= tol {
            break;
        }
        let beta = rr_new / rr;
        obj.combine(P, &[(-1.0, R), (beta, P)])?;
        gp = -gr + beta * gp;
        rr = rr_new;
    }
    Ok(Ok(Solve { gz, steps }))
}

pub(crate) fn run(
    obj: &mut dyn Objective,
    w0: &[f32],
    config: &SecondOrderConfig,
    rec: &mut Recorder<'_>,
) -> Result<(Stop, Slot)> {
    let (mut x, mut g, mut xt, mut gt) = (X, G, XT, GT);
    obj.write(x, w0)?;
    let e = obj.loss_grad(x, g, &[(g, g)])?;
    rec.pass(1);
    let (mut f, mut gg) = (e.loss, e.dots[0]);
    rec.record(obj, f, e.correct, gg.sqrt(), 0.0, 1, 0);
    if let Err(why) = finite("the initial loss", f).and(finite("the initial ‖g‖²", gg)) {
        return Ok((Stop::NonFinite(why), x));
    }
    for k in 0usize.. {
        if config.target_loss.is_some_and(|t| f <= t) {
            return Ok((Stop::TargetReached, x));
        }
        let gnorm = gg.sqrt();
        if gnorm <= config.gtol {
            return Ok((Stop::Converged, x));
        }
        if let Some(why) = rec.stalled() {
            return Ok((Stop::Stalled(why), x));
        }
        if k >= config.max_iterations {
            return Ok((Stop::MaxIterations, x));
        }
        // The forcing sequence of N&W (7.3) with η = min(0.5, √‖g‖):
        // loose far away, superlinear near the optimum.
        let tol = gnorm.sqrt().min(0.5) * gnorm;
        let solved = match solve(obj, rec, x, g, gg, tol, config.max_cg)? {
            Ok(s) => s,
            Err(why) => return Ok((Stop::NonFinite(why), x)),
        };
        let mut search = Search::new(obj, rec, [x, Z, xt, gt], (f, solved.gz), config);
        let found = search.armijo()?;
        let evaluations = search.evaluations;
        let trial = match found {
            Ok(t) => t,
            Err(why) => return Ok((search.stop(why), x)),
        };
        std::mem::swap(&mut x, &mut xt);
        std::mem::swap(&mut g, &mut gt);
        f = trial.loss;
        gg = trial.gg;
        rec.record(
            obj,
            f,
            trial.correct,
            gg.sqrt(),
            trial.t,
            evaluations,
            solved.steps,
        );
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

    /// The `gᵀz` CG tracks from its per-step dots is `gᵀz` computed directly.
    #[test]
    fn tracked_directional_derivative_matches_a_direct_dot() {
        let n = 12;
        let mut q = Quadratic::new(n, SLOTS);
        let x0: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
        q.write(X, &x0).unwrap();
        let gg = q.loss_grad(X, G, &[(G, G)]).unwrap().dots[0];
        let mut noop = |_: &super::super::Iteration| {};
        let mut rec = Recorder::new(&q, &mut noop);
        for max_cg in [1, 2, 5, n] {
            let s = solve(&mut q, &mut rec, X, G, gg, 0.0, max_cg)
                .unwrap()
                .unwrap();
            let direct = q.dot(G, Z);
            assert!(
                (s.gz - direct).abs() <= 1e-10 * direct.abs(),
                "{max_cg} steps: tracked {} direct {direct}",
                s.gz
            );
            assert!(s.gz < 0.0, "z is a descent direction");
        }
    }

    /// On a quadratic, inexact Newton with the forcing term √‖g‖ converges
    /// superlinearly: the gradient's reduction per step improves towards 0.
    #[test]
    fn converges_superlinearly_on_a_quadratic() {
        let n = 10;
        let mut q = Quadratic::new(n, SLOTS);
        let config = SecondOrderConfig {
            max_cg: n,
            gtol: 1e-9,
            ..SecondOrderConfig::new(Method::NewtonCg)
        };
        let out = minimize(&mut q, &vec![0.0; n], &config, &mut |_| {}).unwrap();
        assert_eq!(out.stop, Stop::Converged);
        assert!(out.iterations.len() <= 10, "{:?}", out.iterations);
        let norms: Vec<f64> = out.iterations.iter().map(|i| i.grad_norm).collect();
        let last = norms[norms.len() - 1] / norms[norms.len() - 2];
        assert!(last < 1e-2, "last reduction {last}: {norms:?}");
        // The unit step is always accepted on a quadratic.
        assert!(
            out.iterations[1..]
                .iter()
                .all(|i| i.step == 1.0 && i.evaluations == 1)
        );
    }
}
