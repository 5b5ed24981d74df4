//! Notebook 003: gradient descent with centred differences on (x − 1)² from
//! many random starts and on x⁴ + y⁴ − 2(x − y)², and one sigmoid neuron
//! trained as an AND gate.

use serde_json::json;

use super::{NumpyRng, Options, Report, linspace, picture};
use crate::cpu;
use crate::error::{Error, Result};
use crate::kernels::{self, descent::Surface};
use crate::lab::plot::{Axes, Contour, Line, Mark, plot_axes, plot_contour};

/// The largest |a − b| over two equally long slices (NaN counts as ∞).
fn max_abs_diff(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from((x - y).abs()))
        .map(|d| if d.is_nan() { f64::INFINITY } else { d })
        .fold(
            if a.len() == b.len() {
                0.0
            } else {
                f64::INFINITY
            },
            f64::max,
        )
}

/// Cell [2]: f(x) = (x − 1)².
fn f1(x: f64) -> f64 {
    (x - 1.0) * (x - 1.0)
}

/// Cell [3]: the centred difference `(f(x+h) − f(x−h)) / 2h`.
fn centred(f: impl Fn(f64) -> f64, x: f64, h: f64) -> f64 {
    (f(x + h) - f(x - h)) / (2.0 * h)
}

/// Cell [6]: `x ← x − γ·Df(x)` for `steps` steps from each start; each
/// path holds the start and the point after every step.
pub fn descent_1d(starts: &[f64], steps: usize, gamma: f64, h: f64) -> Vec<Vec<f64>> {
    starts
        .iter()
        .map(|&x0| {
            let mut path = Vec::with_capacity(steps + 1);
            let mut x = x0;
            path.push(x);
            for _ in 0..steps {
                x -= gamma * centred(f1, x, h);
                path.push(x);
            }
            path
        })
        .collect()
}

/// Cell [9]: f(x, y) = x⁴ + y⁴ − 2(x − y)², minima −8 at ±(√2, −√2).
pub fn f2(x: f64, y: f64) -> f64 {
    x.powi(4) + y.powi(4) - 2.0 * (x - y) * (x - y)
}

/// Cell [12]: the centred partial derivatives of [`f2`].
pub fn grad_f2_centred(x: f64, y: f64, h: f64) -> (f64, f64) {
    (
        (f2(x + h, y) - f2(x - h, y)) / (2.0 * h),
        (f2(x, y + h) - f2(x, y - h)) / (2.0 * h),
    )
}

/// Cell [13]: descent on [`f2`] from `(x, y)`, as the notebook steps it: x
/// first, then y from the *new* x. The start and every step's point.
pub fn descent_2d_path(start: (f64, f64), steps: usize, gamma: f64, h: f64) -> Vec<(f64, f64)> {
    let (mut x, mut y) = start;
    let mut path = vec![(x, y)];
    for _ in 0..steps {
        x -= gamma * grad_f2_centred(x, y, h).0;
        y -= gamma * grad_f2_centred(x, y, h).1;
        path.push((x, y));
    }
    path
}

pub(super) fn run_1d(o: &Options<'_>) -> Result<Report> {
    let mut r = Report::new("descent-1d");
    // Cell [6]: γ = 0.01, 50 starts ("Epochs"), 50 steps, h = 1e-3; the
    // notebook's starts were unseeded: ours are np.random.seed(seed) draws.
    let (gamma, h, n, steps) = (0.01, 1e-3, 50, 50);
    let mut rng = NumpyRng::new(o.seed);
    let starts: Vec<f64> = (0..n).map(|_| rng.uniform(-10.0, 10.0)).collect();
    let paths = descent_1d(&starts, steps, gamma, h);
    let finals: Vec<f64> = paths.iter().map(|p| p[steps]).collect();
    // For a parabola the centred difference is exact, so each step scales
    // the distance to the minimum by 1 − 2γ: after 50 steps by 0.98⁵⁰.
    let shrink = (1.0 - 2.0 * gamma).powi(steps as i32);
    let worst_law = starts
        .iter()
        .zip(&finals)
        .map(|(&s, &x)| (x - (1.0 + shrink * (s - 1.0))).abs())
        .fold(0.0, f64::max);
    let best = finals
        .iter()
        .copied()
        .min_by(|a, b| f1(*a).total_cmp(&f1(*b)))
        .unwrap_or(f64::NAN);
    // Enough steps to land: 0.98^k · 11 < 1e-6 needs k ≥ 805.
    let long = descent_1d(&starts, 1000, gamma, h);
    let long_worst = long
        .iter()
        .map(|p| (p[1000] - 1.0).abs())
        .fold(0.0, f64::max);
    r.line(format!(
        "{n} starts in [-10, 10] (np.random.seed({})), gamma {gamma}, h {h}, {steps} steps",
        o.seed
    ));
    r.line(format!(
        "each step scales x - 1 by 1 - 2 gamma = {}: after {steps} steps by {shrink:.4} (largest deviation from that law {worst_law:.1e})",
        1.0 - 2.0 * gamma
    ));
    r.line(format!(
        "best final x {best:.10}   (notebook, its own unseeded starts: 0.8616231535508936)"
    ));
    r.line(format!(
        "after 1000 steps every start is within {long_worst:.1e} of x = 1"
    ));
    r.set("seed", json!(o.seed));
    r.set("gamma", json!(gamma));
    r.set("steps", json!(steps));
    r.set("starts", json!(starts));
    r.set("finals", json!(finals));
    r.set("best", json!(best));
    r.set("shrink_per_run", json!(shrink));
    r.set("max_deviation_from_law", json!(worst_law));
    r.set("max_distance_after_1000_steps", json!(long_worst));
    r.set("notebook_best", json!(0.8616231535508936));
    if let Some(g) = o.gpu {
        let s32: Vec<f32> = starts.iter().map(|&s| s as f32).collect();
        let (gm, hm) = (gamma as f32, h as f32);
        let on_gpu = kernels::descent::descent(g, Surface::Parabola, &s32, steps, gm, hm)?;
        let twin = cpu::descent::descent(Surface::Parabola, &s32, steps, gm, hm)?;
        let vs_twin = max_abs_diff(&on_gpu, &twin);
        let vs_f64 = (0..n)
            .map(|i| (f64::from(on_gpu[i * (steps + 1) + steps]) - finals[i]).abs())
            .fold(0.0, f64::max);
        r.line(format!(
            "GPU, {n} starts in one dispatch (f32): paths within {vs_twin:.1e} of the f32 CPU twin, finals within {vs_f64:.1e} of the f64 run"
        ));
        r.set(
            "gpu",
            json!({ "adapter": g.summary().name, "max_diff_vs_cpu_twin": vs_twin, "max_final_diff_vs_f64": vs_f64 }),
        );
    }
    picture(&mut r, o, "", |path| {
        let lines = paths
            .iter()
            .enumerate()
            .map(|(i, p)| {
                Line::new(
                    if i == 0 { "each start" } else { "" },
                    0,
                    Mark::Line,
                    p.iter().enumerate().map(|(k, &x)| (k as f64, x)).collect(),
                )
            })
            .collect();
        let curve = linspace(-1.0, 4.0, 20);
        plot_axes(
            path,
            "Gradient descent on (x-1)^2 from 50 starts",
            &[
                Axes::linear("x against step", "step", "x", lines),
                Axes::linear(
                    "f and its centred derivative (cell [5])",
                    "x",
                    "",
                    vec![
                        Line::new(
                            "f(x)",
                            3,
                            Mark::Dots,
                            curve.iter().map(|&x| (x, f1(x))).collect(),
                        ),
                        Line::new(
                            "Df(x)",
                            0,
                            Mark::Line,
                            curve.iter().map(|&x| (x, centred(f1, x, h))).collect(),
                        ),
                    ],
                ),
            ],
        )
    })?;
    Ok(r)
}

/// Where a 2-D descent ended: which minimum (`+` is (√2, −√2), `-` its
/// mirror) or elsewhere.
fn basin(p: (f64, f64)) -> &'static str {
    let s = std::f64::consts::SQRT_2;
    if (p.0 - s).abs() < 1e-3 && (p.1 + s).abs() < 1e-3 {
        "+"
    } else if (p.0 + s).abs() < 1e-3 && (p.1 - s).abs() < 1e-3 {
        "-"
    } else {
        "other"
    }
}

pub(super) fn run_2d(o: &Options<'_>) -> Result<Report> {
    let mut r = Report::new("descent-2d");
    // Cell [13]: γ = 0.01, 4 starts in [-3, 3]², 100 steps, h = 1e-3.
    let (gamma, h, steps, lim) = (0.01, 1e-3, 100, 3.0);
    let mut rng = NumpyRng::new(o.seed);
    let starts: Vec<(f64, f64)> = (0..4)
        .map(|_| (rng.uniform(-lim, lim), rng.uniform(-lim, lim)))
        .collect();
    let paths: Vec<Vec<(f64, f64)>> = starts
        .iter()
        .map(|&s| descent_2d_path(s, steps, gamma, h))
        .collect();
    let finals: Vec<(f64, f64)> = paths.iter().map(|p| p[steps]).collect();
    let values: Vec<f64> = finals.iter().map(|&(x, y)| f2(x, y)).collect();
    let best = (0..4)
        .min_by(|&a, &b| values[a].total_cmp(&values[b]))
        .unwrap_or(0);
    r.line(format!(
        "4 starts in [-3, 3]^2 (np.random.seed({})), gamma {gamma}, {steps} steps",
        o.seed
    ));
    for (i, (s, (f, v))) in starts.iter().zip(finals.iter().zip(&values)).enumerate() {
        r.line(format!(
            "  start {i}: ({:+.4}, {:+.4}) -> ({:+.8}, {:+.8})  f = {v:.8}",
            s.0, s.1, f.0, f.1
        ));
    }
    r.line(format!(
        "best: ({:.10}, {:.10})   (notebook: (1.4142132154399008, -1.4142132148755735), f = -8)",
        finals[best].0, finals[best].1
    ));
    // A grid of starts: which minimum each reaches in 1000 steps.
    let grid = linspace(-lim, lim, 13);
    let mut counts = std::collections::BTreeMap::new();
    for &x in &grid {
        for &y in &grid {
            let end = descent_2d_path((x, y), 1000, gamma, h)[1000];
            *counts.entry(basin(end)).or_insert(0usize) += 1;
        }
    }
    r.line(format!(
        "13 x 13 grid of starts, 1000 steps: {} reach (sqrt2, -sqrt2), {} reach (-sqrt2, sqrt2), {} neither (the diagonal x = y leads to the saddle at 0)",
        counts.get("+").unwrap_or(&0),
        counts.get("-").unwrap_or(&0),
        counts.get("other").unwrap_or(&0)
    ));
    if let Some(g) = o.gpu {
        let s32: Vec<f32> = grid
            .iter()
            .flat_map(|&x| grid.iter().flat_map(move |&y| [x as f32, y as f32]))
            .collect();
        let (gm, hm) = (gamma as f32, h as f32);
        let on_gpu = kernels::descent::descent(g, Surface::Quartic, &s32, 1000, gm, hm)?;
        let twin = cpu::descent::descent(Surface::Quartic, &s32, 1000, gm, hm)?;
        let vs_twin = max_abs_diff(&on_gpu, &twin);
        let mut gpu_counts = std::collections::BTreeMap::new();
        for k in 0..grid.len() * grid.len() {
            let at = (k * 1001 + 1000) * 2;
            let end = (f64::from(on_gpu[at]), f64::from(on_gpu[at + 1]));
            *gpu_counts.entry(basin(end)).or_insert(0usize) += 1;
        }
        r.line(format!(
            "GPU, the 169 grid starts x 1000 steps in one dispatch (f32): paths within {vs_twin:.1e} of the f32 CPU twin; basins {gpu_counts:?}"
        ));
        r.set(
            "gpu",
            json!({ "adapter": g.summary().name, "max_diff_vs_cpu_twin": vs_twin, "grid_counts": gpu_counts }),
        );
    }
    r.set("seed", json!(o.seed));
    r.set("starts", json!(starts));
    r.set("finals", json!(finals));
    r.set("final_values", json!(values));
    r.set("best", json!(finals[best]));
    r.set("grid_counts", json!(counts));
    r.set(
        "notebook_best",
        json!([1.4142132154399008, -1.4142132148755735]),
    );
    picture(&mut r, o, "", |path| {
        let lines = paths
            .iter()
            .enumerate()
            .map(|(i, p)| Line::new(format!("start {i}"), i + 1, Mark::LineDots, p.clone()))
            .collect();
        let levels = linspace(-7.5, 30.0, 26);
        plot_contour(
            path,
            "x^4 + y^4 - 2(x-y)^2: descent paths",
            &Contour::sample(
                "contours and 4 paths (cell [21])",
                f2,
                (-lim, lim),
                (-lim, lim),
                121,
                levels,
                lines,
            ),
        )
    })?;
    Ok(r)
}

/// The AND neuron's run: what [`and_neuron`] returns.
#[derive(Clone, Debug, PartialEq)]
pub struct AndNeuron {
    /// Mean cost of each epoch.
    pub costs: Vec<f64>,
    /// Weights and bias at the end.
    pub w: [f64; 2],
    pub b: f64,
    /// The outputs for inputs 00, 01, 10, 11, and rounded.
    pub outputs: [f64; 4],
    pub truth_table: [u8; 4],
}

/// Cells [22]–[32]: one sigmoid neuron, cost ½(a − y)², trained sample by
/// sample (the notebook's order: 11, 10, 01, 00) with learning rate `lr`
/// from `w`, `b` until an epoch's mean cost is below `target`, at most
/// `max_epochs` epochs.
pub fn and_neuron(
    w: [f64; 2],
    b: f64,
    lr: f64,
    target: f64,
    max_epochs: usize,
) -> Result<AndNeuron> {
    if !(lr.is_finite() && lr > 0.0 && target > 0.0) {
        return Err(Error::InvalidArgument {
            name: "and_neuron",
            msg: format!("lr must be positive and finite, target positive: {lr}, {target}"),
        });
    }
    let sigm = |z: f64| 1.0 / (1.0 + (-z).exp());
    let data = [
        ([1.0, 1.0], 1.0),
        ([1.0, 0.0], 0.0),
        ([0.0, 1.0], 0.0),
        ([0.0, 0.0], 0.0),
    ];
    let (mut w, mut b) = (w, b);
    let mut costs = Vec::new();
    for _ in 0..max_epochs {
        let mut sum = 0.0;
        for (x, y) in data {
            let a = sigm(b + x[0] * w[0] + x[1] * w[1]);
            // dsigm in the notebook takes the activation: a(1 − a).
            let delta = (a - y) * a * (1.0 - a);
            b -= lr * delta;
            w[0] -= lr * delta * x[0];
            w[1] -= lr * delta * x[1];
            sum += 0.5 * (a - y) * (a - y);
        }
        costs.push(sum / 4.0);
        if sum / 4.0 < target {
            break;
        }
    }
    let out = |x0: f64, x1: f64| sigm(b + x0 * w[0] + x1 * w[1]);
    let outputs = [out(0.0, 0.0), out(0.0, 1.0), out(1.0, 0.0), out(1.0, 1.0)];
    let truth_table = outputs.map(|a| u8::from(a >= 0.5));
    Ok(AndNeuron {
        costs,
        w,
        b,
        outputs,
        truth_table,
    })
}

pub(super) fn run_and(o: &Options<'_>) -> Result<Report> {
    let mut r = Report::new("and-neuron");
    // Cell [25] printed the notebook's random start; we start from it.
    let (w0, b0) = ([-0.43758178, 0.52004418], -0.57089547);
    let run = and_neuron(w0, b0, 0.5, 1e-3, 20000)?;
    let cost = run.costs.last().copied().unwrap_or(f64::NAN);
    r.line(format!(
        "start (cell [25]): b = {b0}, W = [{}, {}]; lr 0.5, cost 1/2 (a - y)^2",
        w0[0], w0[1]
    ));
    r.line(format!(
        "trained in {} epochs to a mean cost {cost:.6} (< 1e-3)",
        run.costs.len()
    ));
    r.line("x1 x2 | output    | rounded");
    for (i, (a, t)) in run.outputs.iter().zip(run.truth_table).enumerate() {
        r.line(format!("{}  {}  | {a:.6}  | {t}", i >> 1, i & 1));
    }
    r.line("notebook (cell [34], inputs 11, 10, 01, 00): 0.942445291, 0.0482439876, 0.0483079036, 0.000157107087");
    r.set("epochs", json!(run.costs.len()));
    r.set("cost", json!(cost));
    r.set("w", json!(run.w));
    r.set("b", json!(run.b));
    r.set("inputs", json!([[0, 0], [0, 1], [1, 0], [1, 1]]));
    r.set("outputs", json!(run.outputs));
    r.set("truth_table", json!(run.truth_table));
    picture(&mut r, o, "", |path| {
        plot_axes(
            path,
            "The AND neuron: mean cost per epoch",
            &[Axes {
                y_log: true,
                ..Axes::linear(
                    "cost (cell [33])",
                    "epoch",
                    "mean cost",
                    vec![Line::new(
                        "cost",
                        0,
                        Mark::Line,
                        run.costs
                            .iter()
                            .enumerate()
                            .map(|(i, &c)| (i as f64 + 1.0, c))
                            .collect(),
                    )],
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
    fn centred_differences_of_a_parabola_follow_the_contraction_law() {
        let paths = descent_1d(&[-7.0, 9.5], 50, 0.01, 1e-3);
        for (p, s) in paths.iter().zip([-7.0, 9.5]) {
            let law = 1.0 + 0.98f64.powi(50) * (s - 1.0);
            assert!((p[50] - law).abs() < 1e-9, "{} vs {law}", p[50]);
        }
    }

    #[test]
    fn and_neuron_learns_and() {
        let run = and_neuron([-0.43758178, 0.52004418], -0.57089547, 0.5, 1e-3, 20000).unwrap();
        assert_eq!(run.truth_table, [0, 0, 0, 1]);
        assert!(*run.costs.last().unwrap() < 1e-3);
    }
}
