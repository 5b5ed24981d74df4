//! Notebook 001's second-order examples: BFGS on (x − 1)² + (y − 2)² and
//! Levenberg–Marquardt fitting a line, with the lab's own BFGS and LM
//! (`lab::second_order::demos`).

use serde_json::json;

use super::first_order::least_squares_line;
use super::{NumpyRng, Options, Report, linspace, picture};
use crate::error::Result;
use crate::lab::plot::{Axes, Contour, Line, Mark, plot_axes, plot_contour};
use crate::lab::second_order::demos;

fn quadratic(p: &[f64]) -> f64 {
    (p[0] - 1.0).powi(2) + (p[1] - 2.0).powi(2)
}

fn quadratic_grad(p: &[f64]) -> Vec<f64> {
    vec![2.0 * (p[0] - 1.0), 2.0 * (p[1] - 2.0)]
}

pub(super) fn run_bfgs(o: &Options<'_>) -> Result<Report> {
    let mut r = Report::new("bfgs-quadratic");
    // The notebook's start is np.random.randn(2), unseeded: ours is drawn
    // after np.random.seed(seed). scipy's BFGS stops at ‖∇f‖ ≤ 1e-5.
    let mut rng = NumpyRng::new(o.seed);
    let x0 = [rng.randn(), rng.randn()];
    let trace = demos::bfgs(quadratic, quadratic_grad, &x0, 1e-5, 100);
    let last = &trace.points[trace.points.len() - 1];
    let value = trace.values[trace.values.len() - 1];
    r.line(format!(
        "start ({:.6}, {:.6}) (np.random.seed({})); BFGS to |grad f| <= 1e-5",
        x0[0], x0[1], o.seed
    ));
    r.line(format!(
        "optimum ({:.10}, {:.10}), f = {value:.3e}, {} iterations, |grad f| = {:.1e}",
        last[0],
        last[1],
        trace.points.len() - 1,
        trace.grad_norm
    ));
    r.line("notebook (scipy, its own start): optimum (1, 2), f about 1e-16");
    r.set("seed", json!(o.seed));
    r.set("start", json!(x0));
    r.set("optimum", json!(last));
    r.set("value", json!(value));
    r.set("iterations", json!(trace.points.len() - 1));
    r.set("path", json!(trace.points));
    picture(&mut r, o, "", |path| {
        let pts: Vec<(f64, f64)> = trace.points.iter().map(|p| (p[0], p[1])).collect();
        let lo_x = pts.iter().map(|p| p.0).fold(-1.0, f64::min) - 0.2;
        let hi_x = pts.iter().map(|p| p.0).fold(3.0, f64::max) + 0.2;
        let lo_y = pts.iter().map(|p| p.1).fold(0.0, f64::min) - 0.2;
        let hi_y = pts.iter().map(|p| p.1).fold(4.0, f64::max) + 0.2;
        let top = quadratic(&[lo_x, lo_y]).max(quadratic(&[hi_x, hi_y]));
        plot_contour(
            path,
            "BFGS on (x-1)^2 + (y-2)^2",
            &Contour::sample(
                "20 levels, the BFGS path, the minimum (1, 2)",
                |x, y| quadratic(&[x, y]),
                (lo_x, hi_x),
                (lo_y, hi_y),
                101,
                linspace(0.05, top, 20),
                vec![
                    Line::new("BFGS", 3, Mark::LineDots, pts),
                    Line::new("minimum (1, 2)", 1, Mark::Dots, vec![(1.0, 2.0)]),
                ],
            ),
        )
    })?;
    Ok(r)
}

/// The notebook's data: 50 points on [0, 10], y = 2t + 1 + N(0, 1) after
/// `np.random.seed(seed)`.
pub fn lm_data(seed: u32) -> (Vec<f64>, Vec<f64>) {
    let t = linspace(0.0, 10.0, 50);
    let noise = NumpyRng::new(seed).normal(0.0, 1.0, 50);
    let y = t
        .iter()
        .zip(&noise)
        .map(|(a, e)| 2.0 * a + 1.0 + e)
        .collect();
    (t, y)
}

pub(super) fn run_lm(o: &Options<'_>) -> Result<Report> {
    let mut r = Report::new("levenberg-marquardt");
    // The notebook seeds its data itself (np.random.seed(42)); --seed
    // does not change it.
    let (t, y) = lm_data(42);
    let ((a, b), iterations) = demos::levenberg_marquardt_line(&t, &y, (0.0, 0.0), 100)?;
    let (la, lb) = least_squares_line(&t, &y);
    r.line(
        "data: 50 points on [0, 10], y = 2 t + 1 + N(0, 1), np.random.seed(42) (the notebook's)",
    );
    r.line(format!(
        "LM from (0, 0): a = {a:.15}, b = {b:.15} in {iterations} iterations"
    ));
    r.line("   (notebook: a = 1.9420165984712758, b = 1.064443102989749: scipy stops at its tolerance 1.5e-8)");
    r.line(format!(
        "least squares in closed form: a = {la:.15}, b = {lb:.15}"
    ));
    r.set("a", json!(a));
    r.set("b", json!(b));
    r.set("iterations", json!(iterations));
    r.set("least_squares", json!([la, lb]));
    r.set("notebook", json!([1.9420165984712758, 1.064443102989749]));
    picture(&mut r, o, "", |path| {
        plot_axes(
            path,
            "Levenberg-Marquardt: a line through 50 noisy points",
            &[Axes::linear(
                "fit",
                "t",
                "y",
                vec![
                    Line::new(
                        "data",
                        0,
                        Mark::Dots,
                        t.iter().copied().zip(y.iter().copied()).collect(),
                    ),
                    Line::new(
                        format!("fit a = {a:.3}, b = {b:.3}"),
                        3,
                        Mark::Line,
                        vec![(0.0, b), (10.0, 10.0 * a + b)],
                    ),
                ],
            )],
        )
    })?;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lm_on_the_notebooks_data_prints_its_figures() {
        let (t, y) = lm_data(42);
        let ((a, b), _) = demos::levenberg_marquardt_line(&t, &y, (0.0, 0.0), 100).unwrap();
        // scipy's 'lm' stops at its ftol/xtol of 1.5e-8, 1e-8 from the exact
        // least-squares line that ours reaches.
        assert!((a - 1.9420165984712758).abs() < 5e-8, "{a}");
        assert!((b - 1.064443102989749).abs() < 5e-8, "{b}");
    }
}
