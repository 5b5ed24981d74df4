//! Notebook 004: the loss functions side by side, and forward against
//! centred finite differences.

use serde_json::json;

use super::{Options, Report, linspace, picture};
use crate::error::Result;
use crate::lab::plot::{Axes, Line, Mark, plot_axes};

/// The notebook's losses of one sample as functions of the margin
/// m = y·f(x) (y = ±1): square (1 − m)², hinge max(0, 1 − m), logistic
/// log(1 + e^(−m)), and softmax cross-entropy over two classes with scores
/// (m/2, −m/2) for (true, other), computed the stable way (subtracting the
/// largest score) — which is the logistic loss again.
pub fn losses(m: f64) -> [f64; 4] {
    let square = (1.0 - m) * (1.0 - m);
    let hinge = (1.0 - m).max(0.0);
    // log(1 + e^(−m)) without overflow for m ≪ 0.
    let logistic = if m > 0.0 {
        (-m).exp().ln_1p()
    } else {
        -m + m.exp().ln_1p()
    };
    let (s_true, s_other) = (m / 2.0, -m / 2.0);
    let top = s_true.max(s_other);
    let softmax_ce = -(s_true - top) + ((s_true - top).exp() + (s_other - top).exp()).ln();
    [square, hinge, logistic, softmax_ce]
}

const LOSS_NAMES: [&str; 4] = [
    "square",
    "hinge",
    "logistic",
    "softmax-CE, 2 classes (= logistic)",
];

pub(super) fn run_losses(o: &Options<'_>) -> Result<Report> {
    let mut r = Report::new("losses");
    r.line("losses of one sample against the margin m = y f(x):");
    r.line(format!(
        "{:>6} {:>10} {:>10} {:>10} {:>10}",
        "m", "square", "hinge", "logistic", "softmax-CE"
    ));
    let mut table = Vec::new();
    for m in [-2.0, -1.0, 0.0, 0.5, 1.0, 2.0, 3.0] {
        let l = losses(m);
        r.line(format!(
            "{m:>6.1} {:>10.6} {:>10.6} {:>10.6} {:>10.6}",
            l[0], l[1], l[2], l[3]
        ));
        table.push(
            json!({ "m": m, "square": l[0], "hinge": l[1], "logistic": l[2], "softmax_ce": l[3] }),
        );
    }
    let grid = linspace(-3.0, 3.0, 241);
    let gap = grid
        .iter()
        .map(|&m| {
            let l = losses(m);
            (l[2] - l[3]).abs()
        })
        .fold(0.0, f64::max);
    r.line(format!(
        "two-class softmax cross-entropy equals the logistic loss: largest difference on [-3, 3] {gap:.1e}"
    ));
    r.line("square keeps penalising m > 1 (correct and confident); hinge is exactly 0 there; logistic decays smoothly");
    r.set("table", json!(table));
    r.set("softmax_logistic_max_difference", json!(gap));
    picture(&mut r, o, "", |path| {
        let lines = (0..4)
            .map(|k| {
                Line::new(
                    LOSS_NAMES[k],
                    k,
                    Mark::Line,
                    grid.iter().map(|&m| (m, losses(m)[k])).collect(),
                )
            })
            .chain(std::iter::once(Line::new(
                "zero-one",
                7,
                Mark::Line,
                grid.iter()
                    .map(|&m| (m, if m < 0.0 { 1.0 } else { 0.0 }))
                    .collect(),
            )))
            .collect();
        plot_axes(
            path,
            "Loss functions against the margin",
            &[Axes::linear(
                "one sample",
                "margin m = y f(x)",
                "loss",
                lines,
            )],
        )
    })?;
    Ok(r)
}

/// Cell [12]'s e, written to 12 decimals: kept rather than
/// `std::f64::consts::E` so that our forward difference prints the
/// notebook's digits.
#[allow(clippy::approx_constant)]
const NOTEBOOK_E: f64 = 2.718281828459;

/// The neuron of notebook 004's automatic-differentiation cells,
/// f(x) = 1/(1 + e^(−(w·x + b))) at w = 2, b = 1, written as cell [12]
/// writes it (with the constant 2.718281828459 for e).
fn neuron(x: f64) -> f64 {
    1.0 / (1.0 + NOTEBOOK_E.powf(-(2.0 * x + 1.0)))
}

/// Its exact derivative: w·f·(1 − f), with the same constant for e (the
/// difference a 12-digit e makes is ~1e-13 relative, below every error here).
fn neuron_derivative(x: f64) -> f64 {
    let f = neuron(x);
    2.0 * f * (1.0 - f) * NOTEBOOK_E.ln()
}

/// Errors of the forward and centred differences of the neuron at x = 3
/// for each h.
#[derive(Clone, Debug, PartialEq)]
pub struct FiniteDifferences {
    pub h: Vec<f64>,
    pub forward: Vec<f64>,
    pub centred: Vec<f64>,
    /// Slopes of log10(error) against log10(h) fitted where truncation
    /// dominates (h from 1e-4 to 1e-1 forward, 1e-3 to 1e-1 centred).
    pub forward_slope: f64,
    pub centred_slope: f64,
}

/// The least-squares slope of `points`.
pub fn fit_slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = points.iter().map(|p| (p.0 - mx) * (p.0 - mx)).sum();
    sxy / sxx
}

/// Forward `(f(x+h) − f(x))/h` and centred `(f(x+h) − f(x−h))/2h`
/// differences of the neuron at x = 3 for h = 10⁻¹, 10^(−1.25), …, 10⁻¹³,
/// against the exact derivative.
pub fn finite_differences() -> FiniteDifferences {
    let x = 3.0;
    let exact = neuron_derivative(x);
    let h: Vec<f64> = (0..=48)
        .map(|k| 10f64.powf(-1.0 - 0.25 * f64::from(k)))
        .collect();
    let forward: Vec<f64> = h
        .iter()
        .map(|&h| ((neuron(x + h) - neuron(x)) / h - exact).abs())
        .collect();
    let centred: Vec<f64> = h
        .iter()
        .map(|&h| ((neuron(x + h) - neuron(x - h)) / (2.0 * h) - exact).abs())
        .collect();
    let slope = |errors: &[f64], smallest: f64| {
        let pts: Vec<(f64, f64)> = h
            .iter()
            .zip(errors)
            .filter(|(h, _)| **h >= smallest * 0.999)
            .map(|(h, e)| (h.log10(), e.log10()))
            .collect();
        fit_slope(&pts)
    };
    FiniteDifferences {
        forward_slope: slope(&forward, 1e-4),
        centred_slope: slope(&centred, 1e-3),
        h,
        forward,
        centred,
    }
}

pub(super) fn run_finite_differences(o: &Options<'_>) -> Result<Report> {
    let mut r = Report::new("finite-differences");
    // Cell [1]: forward difference of x² at 2 with h = 1e-5.
    let sq = |x: f64| x * x;
    let fd = (sq(2.0 + 1e-5) - sq(2.0)) / 1e-5;
    r.line(format!(
        "forward difference of x^2 at 2, h 1e-5: {fd:.4}   (notebook cell [1]: 4.0000)"
    ));
    // Cell [12]: the neuron's forward difference at x = 3, h = 1e-5.
    let theirs = (neuron(3.0 + 0.00001) - neuron(3.0)) / 0.00001;
    r.line(format!(
        "forward difference of sigmoid(2x+1) at 3, h 1e-5: {theirs:.16}   (notebook cell [12]: 0.0018204242002717306)"
    ));
    r.line(format!("exact derivative: {:.16}", neuron_derivative(3.0)));
    let d = finite_differences();
    r.line("error against h (derivative of sigmoid(2x+1) at x = 3):");
    r.line(format!("{:>10} {:>12} {:>12}", "h", "forward", "centred"));
    for i in (0..d.h.len()).step_by(4) {
        r.line(format!(
            "{:>10.0e} {:>12.3e} {:>12.3e}",
            d.h[i], d.forward[i], d.centred[i]
        ));
    }
    let best = |e: &[f64]| {
        let i = (0..e.len())
            .min_by(|&a, &b| e[a].total_cmp(&e[b]))
            .unwrap_or(0);
        (d.h[i], e[i])
    };
    let (fh, fe) = best(&d.forward);
    let (ch, ce) = best(&d.centred);
    r.line(format!(
        "fitted slopes of log error against log h: forward {:.3} (O(h)), centred {:.3} (O(h^2))",
        d.forward_slope, d.centred_slope
    ));
    r.line(format!(
        "best h: forward {fh:.0e} (error {fe:.1e}), centred {ch:.0e} (error {ce:.1e}); below them rounding (about 1e-16/h) wins"
    ));
    r.set("forward_slope", json!(d.forward_slope));
    r.set("centred_slope", json!(d.centred_slope));
    r.set("best_h", json!({ "forward": fh, "centred": ch }));
    r.set("h", json!(d.h));
    r.set("forward_error", json!(d.forward));
    r.set("centred_error", json!(d.centred));
    r.set(
        "notebook_forward_h1e-5",
        json!({ "ours": theirs, "notebook": 0.0018204242002717306 }),
    );
    picture(&mut r, o, "", |path| {
        let pts = |e: &[f64]| d.h.iter().copied().zip(e.iter().copied()).collect();
        plot_axes(
            path,
            "Finite differences: error against h",
            &[Axes {
                x_log: true,
                y_log: true,
                ..Axes::linear(
                    "d/dx sigmoid(2x+1) at x = 3",
                    "h",
                    "absolute error",
                    vec![
                        Line::new(
                            format!("forward (slope {:.2})", d.forward_slope),
                            0,
                            Mark::LineDots,
                            pts(&d.forward),
                        ),
                        Line::new(
                            format!("centred (slope {:.2})", d.centred_slope),
                            1,
                            Mark::LineDots,
                            pts(&d.centred),
                        ),
                    ],
                )
            }],
        )
    })?;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slopes_are_one_and_two() {
        let d = finite_differences();
        assert!((d.forward_slope - 1.0).abs() < 0.1, "{}", d.forward_slope);
        assert!((d.centred_slope - 2.0).abs() < 0.1, "{}", d.centred_slope);
    }

    #[test]
    fn losses_at_known_margins() {
        assert_eq!(losses(1.0)[..2], [0.0, 0.0]);
        assert!((losses(0.0)[2] - 2f64.ln()).abs() < 1e-15);
        assert!((losses(-700.0)[2] - 700.0).abs() < 1e-9);
    }
}
