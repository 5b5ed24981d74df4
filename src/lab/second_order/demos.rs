//! The course's small second-order demonstrations, on the CPU in f64:
//! Newton's method on a parabola, BFGS with a dense inverse Hessian on a
//! two-variable function, and Levenberg–Marquardt fitting a line.
//! `src/lab/cli/second_order.rs` (the `second_order` example) prints them before the large comparison.

use crate::error::{Error, Result};

/// Newton's method in one variable, `w ← w − f'(w)/f''(w)`, for `steps`
/// steps: the iterates, `w0` first. On a parabola the first step lands on
/// the minimum, since the quadratic model is the function itself.
pub fn newton_1d(
    grad: impl Fn(f64) -> f64,
    hess: impl Fn(f64) -> f64,
    w0: f64,
    steps: usize,
) -> Result<Vec<f64>> {
    let mut w = vec![w0];
    for _ in 0..steps {
        let x = w[w.len() - 1];
        let h = hess(x);
        if !(h.is_finite() && h > 0.0) {
            return Err(Error::InvalidArgument {
                name: "newton_1d",
                msg: format!("f''({x}) = {h}: Newton needs positive curvature"),
            });
        }
        w.push(x - grad(x) / h);
    }
    Ok(w)
}

/// Iterates and the final gradient norm of [`bfgs`].
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    pub points: Vec<Vec<f64>>,
    pub values: Vec<f64>,
    pub grad_norm: f64,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// BFGS (Nocedal & Wright Algorithm 6.1) with a dense inverse-Hessian
/// approximation H, starting from the identity scaled after the first step
/// (eq. 6.20), and a backtracking line search that also halves until the
/// curvature `sᵀy > 0` holds, so that H stays positive definite. Stops when
/// `‖∇f‖ ≤ gtol` or after `max_iterations`.
pub fn bfgs(
    f: impl Fn(&[f64]) -> f64,
    grad: impl Fn(&[f64]) -> Vec<f64>,
    x0: &[f64],
    gtol: f64,
    max_iterations: usize,
) -> Trace {
    let n = x0.len();
    let mut h = vec![vec![0.0; n]; n];
    (0..n).for_each(|i| h[i][i] = 1.0);
    let mut x = x0.to_vec();
    let mut fx = f(&x);
    let mut g = grad(&x);
    let mut trace = Trace {
        points: vec![x.clone()],
        values: vec![fx],
        grad_norm: dot(&g, &g).sqrt(),
    };
    for k in 0..max_iterations {
        if trace.grad_norm <= gtol {
            break;
        }
        let d: Vec<f64> = h.iter().map(|row| -dot(row, &g)).collect();
        let slope = dot(&g, &d);
        let mut t = 1.0;
        let (mut xn, mut fxn, mut gn) = (x.clone(), fx, g.clone());
        for _ in 0..60 {
            xn = x.iter().zip(&d).map(|(a, b)| a + t * b).collect();
            fxn = f(&xn);
            gn = grad(&xn);
            let s_y: f64 = d
                .iter()
                .zip(gn.iter().zip(&g))
                .map(|(di, (a, b))| t * di * (a - b))
                .sum();
            if fxn <= fx + 1e-4 * t * slope && s_y > 0.0 {
                break;
            }
            t *= 0.5;
        }
        let s: Vec<f64> = xn.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = gn.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 1e-12 * dot(&y, &y).sqrt() * dot(&s, &s).sqrt() {
            if k == 0 {
                let scale = sy / dot(&y, &y);
                h.iter_mut().flatten().for_each(|v| *v *= scale);
            }
            // H ← (I − ρ s yᵀ) H (I − ρ y sᵀ) + ρ s sᵀ
            let rho = 1.0 / sy;
            let hy: Vec<f64> = h.iter().map(|row| dot(row, &y)).collect();
            let yhy = dot(&y, &hy);
            for i in 0..n {
                for j in 0..n {
                    h[i][j] += -rho * (s[i] * hy[j] + hy[i] * s[j])
                        + (rho * rho * yhy + rho) * s[i] * s[j];
                }
            }
        }
        (x, fx, g) = (xn, fxn, gn);
        trace.points.push(x.clone());
        trace.values.push(fx);
        trace.grad_norm = dot(&g, &g).sqrt();
    }
    trace
}

/// Rosenbrock's function `(1 − x)² + 100·(y − x²)²`, minimum 0 at (1, 1),
/// along a curved narrow valley: the classic test of quasi-Newton methods.
pub fn rosenbrock(p: &[f64]) -> f64 {
    (1.0 - p[0]).powi(2) + 100.0 * (p[1] - p[0] * p[0]).powi(2)
}

/// The gradient of [`rosenbrock`].
pub fn rosenbrock_grad(p: &[f64]) -> Vec<f64> {
    let (x, y) = (p[0], p[1]);
    vec![
        -2.0 * (1.0 - x) - 400.0 * x * (y - x * x),
        200.0 * (y - x * x),
    ]
}

/// Levenberg–Marquardt for the line `y = a·t + b`: least squares on the
/// residuals `r_i = a·t_i + b − y_i` with the damped Gauss–Newton step
/// `(JᵀJ + μ·diag(JᵀJ))·δ = −Jᵀr`; μ shrinks ×10 after a step that lowers
/// the squared error and grows ×10 after one that does not. Stops when a
/// step changes a and b by less than 1e-12 relative. Returns `(a, b)` and
/// the iterations taken.
pub fn levenberg_marquardt_line(
    t: &[f64],
    y: &[f64],
    start: (f64, f64),
    max_iterations: usize,
) -> Result<((f64, f64), usize)> {
    if t.len() != y.len() || t.len() < 2 {
        return Err(Error::InvalidArgument {
            name: "levenberg_marquardt_line",
            msg: format!(
                "need as many t as y, at least two: {} and {}",
                t.len(),
                y.len()
            ),
        });
    }
    let sse = |a: f64, b: f64| {
        t.iter()
            .zip(y)
            .map(|(&ti, &yi)| (a * ti + b - yi).powi(2))
            .sum::<f64>()
    };
    let (mut a, mut b) = start;
    let mut mu = 1e-3;
    let mut cost = sse(a, b);
    for k in 0..max_iterations {
        // J = [t_i, 1]: JᵀJ = [[Σt², Σt], [Σt, n]], Jᵀr = [Σ t r, Σ r].
        let (mut stt, mut st, mut str_, mut sr) = (0.0, 0.0, 0.0, 0.0);
        for (&ti, &yi) in t.iter().zip(y) {
            let r = a * ti + b - yi;
            stt += ti * ti;
            st += ti;
            str_ += ti * r;
            sr += r;
        }
        let n = t.len() as f64;
        let (m00, m11) = (stt * (1.0 + mu), n * (1.0 + mu));
        let det = m00 * m11 - st * st;
        let da = (-str_ * m11 + sr * st) / det;
        let db = (-sr * m00 + str_ * st) / det;
        if da.abs() <= 1e-12 * a.abs().max(1e-12) && db.abs() <= 1e-12 * b.abs().max(1e-12) {
            return Ok(((a, b), k));
        }
        let next = sse(a + da, b + db);
        if next < cost {
            (a, b, cost) = (a + da, b + db, next);
            mu /= 10.0;
        } else {
            mu *= 10.0;
        }
    }
    Ok(((a, b), max_iterations))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newton_solves_a_parabola_in_one_step() {
        let w = newton_1d(|w| 2.0 * (w - 3.0), |_| 2.0, -7.5, 2).unwrap();
        assert_eq!(w, vec![-7.5, 3.0, 3.0]);
        assert!(newton_1d(|w| w, |_| -1.0, 0.0, 1).is_err());
    }

    #[test]
    fn bfgs_finds_rosenbrocks_minimum() {
        let tr = bfgs(rosenbrock, rosenbrock_grad, &[-1.2, 1.0], 1e-8, 200);
        let p = &tr.points[tr.points.len() - 1];
        assert!(
            (p[0] - 1.0).abs() < 1e-6 && (p[1] - 1.0).abs() < 1e-6,
            "{p:?} after {}",
            tr.points.len()
        );
        assert!(tr.points.len() < 60, "{} iterations", tr.points.len());
    }

    #[test]
    fn levenberg_marquardt_fits_a_line() {
        let t: Vec<f64> = (0..20).map(|i| i as f64 / 19.0).collect();
        let noise = [
            0.05, -0.03, 0.02, -0.06, 0.04, 0.0, -0.02, 0.03, -0.04, 0.01,
        ];
        let y: Vec<f64> = t
            .iter()
            .enumerate()
            .map(|(i, &ti)| 2.0 * ti + 1.0 + noise[i % 10])
            .collect();
        let ((a, b), k) = levenberg_marquardt_line(&t, &y, (0.0, 0.0), 100).unwrap();
        // The least-squares line, from the normal equations.
        let n = t.len() as f64;
        let (st, sy) = (t.iter().sum::<f64>(), y.iter().sum::<f64>());
        let stt: f64 = t.iter().map(|v| v * v).sum();
        let sty: f64 = t.iter().zip(&y).map(|(a, b)| a * b).sum();
        let a_ls = (n * sty - st * sy) / (n * stt - st * st);
        let b_ls = (sy - a_ls * st) / n;
        assert!(
            (a - a_ls).abs() < 1e-9 && (b - b_ls).abs() < 1e-9,
            "{a} {b} vs {a_ls} {b_ls} after {k}"
        );
        assert!((a - 2.0).abs() < 0.1 && (b - 1.0).abs() < 0.1);
        // A linear least-squares problem: a handful of damped Gauss–Newton steps.
        assert!(k < 10, "{k} iterations");
    }
}
