//! Notebooks 001 and 004: first-order methods on (w − 3)², linear
//! regression with the mean squared error (GD against SGD), and the
//! step-size policies. Scalars and a hundred points: f64 on the CPU, in the
//! notebooks' own update formulas.

use serde_json::json;

use super::{NumpyRng, Options, Report, linspace, picture};
use crate::error::Result;
use crate::lab::plot::{Axes, Line, Mark, plot_axes};

/// f(w) = (w − 3)² and its derivative (notebook 001).
fn f(w: f64) -> f64 {
    (w - 3.0) * (w - 3.0)
}
fn grad(w: f64) -> f64 {
    2.0 * (w - 3.0)
}

/// One method's iterates on (w − 3)², the start first.
#[derive(Clone, Debug, PartialEq)]
pub struct Trajectory {
    pub name: &'static str,
    pub w: Vec<f64>,
}

/// GD (lr 0.1, 20 steps), momentum and NAG (lr 0.1, μ 0.9, 20 steps),
/// RMSprop (lr 0.1, decay 0.9, ε 1e-8, 50 steps) and Adam (lr 0.1, β 0.9 and
/// 0.999, ε 1e-8, 50 steps) from `w0`, in notebook 001's formulas.
pub fn optimizers_1d(w0: f64) -> Vec<Trajectory> {
    let (lr, mu, eps) = (0.1, 0.9, 1e-8);
    let run = |name, steps: usize, mut step: Box<dyn FnMut(f64, usize) -> f64>| {
        let mut w = vec![w0];
        for t in 1..=steps {
            let next = step(w[w.len() - 1], t);
            w.push(next);
        }
        Trajectory { name, w }
    };
    let mut v_m = 0.0;
    let mut v_n = 0.0;
    let mut v_r = 0.0;
    let (mut m_a, mut v_a) = (0.0, 0.0);
    vec![
        run("GD", 20, Box::new(move |w, _| w - lr * grad(w))),
        run(
            "momentum",
            20,
            Box::new(move |w, _| {
                v_m = mu * v_m + lr * grad(w);
                w - v_m
            }),
        ),
        run(
            "NAG",
            20,
            Box::new(move |w, _| {
                v_n = mu * v_n + lr * grad(w - mu * v_n);
                w - v_n
            }),
        ),
        run(
            "RMSprop",
            50,
            Box::new(move |w, _| {
                let g = grad(w);
                v_r = 0.9 * v_r + 0.1 * g * g;
                w - lr * g / (v_r.sqrt() + eps)
            }),
        ),
        run(
            "Adam",
            50,
            Box::new(move |w, t| {
                let g = grad(w);
                m_a = 0.9 * m_a + 0.1 * g;
                v_a = 0.999 * v_a + 0.001 * g * g;
                let m_hat = m_a / (1.0 - 0.9f64.powi(t as i32));
                let v_hat = v_a / (1.0 - 0.999f64.powi(t as i32));
                w - lr * m_hat / (v_hat.sqrt() + eps)
            }),
        ),
    ]
}

/// SGD (`batch` = 1) or minibatch descent on the mean of (w − dᵢ)² over
/// `data`: `epochs` passes with learning rate `lr`, the data shuffled by
/// `rng` before each pass when given (minibatch), else in order (the
/// notebook's SGD). The value after each epoch, `w0` first.
pub fn sgd_on_data(
    data: &[f64],
    w0: f64,
    lr: f64,
    epochs: usize,
    batch: usize,
    mut rng: Option<&mut NumpyRng>,
) -> Vec<f64> {
    let mut d = data.to_vec();
    let mut w = w0;
    let mut out = vec![w];
    for _ in 0..epochs {
        if let Some(r) = rng.as_deref_mut() {
            r.shuffle(&mut d);
        }
        for chunk in d.chunks(batch.max(1)) {
            let g = chunk.iter().map(|&s| 2.0 * (w - s)).sum::<f64>() / chunk.len() as f64;
            w -= lr * g;
        }
        out.push(w);
    }
    out
}

pub(super) fn run_optimizers(o: &Options<'_>) -> Result<Report> {
    let mut r = Report::new("optimizers-1d");
    // The notebook's start is an unseeded np.random.randn(): ours is the
    // first draw after np.random.seed(seed), the same for every method.
    let mut rng = NumpyRng::new(o.seed);
    let w0 = rng.randn();
    let runs = optimizers_1d(w0);
    r.line(format!(
        "f(w) = (w-3)^2 from w0 = {w0:.6} (np.random.seed({}))",
        o.seed
    ));
    let notebook = [
        ("momentum", "4.272399707652392"),
        ("NAG", "3.1347532709782477"),
        ("Adam", "3.1972222401861825"),
    ];
    let mut finals = serde_json::Map::new();
    for t in &runs {
        let last = t.w[t.w.len() - 1];
        let theirs = notebook
            .iter()
            .find(|(n, _)| *n == t.name)
            .map_or(String::new(), |(_, v)| {
                format!("   (notebook, its own w0: {v})")
            });
        r.line(format!(
            "{:9} {:2} steps: w = {last:.10}, f = {:.3e}{theirs}",
            t.name,
            t.w.len() - 1,
            f(last)
        ));
        finals.insert(t.name.to_string(), json!(last));
    }
    // SGD on the data: each epoch is the same affine map of w, so after 100
    // epochs w is its fixed point whatever w0 was: the notebook's figure.
    let data = [2.5, 3.0, 3.5, 4.0];
    let sgd = sgd_on_data(&data, w0, 0.1, 100, 1, None);
    let mut shuffle = NumpyRng::new(o.seed);
    let mini = sgd_on_data(&data, w0, 0.1, 100, 2, Some(&mut shuffle));
    let (sgd_w, mini_w) = (sgd[100], mini[100]);
    r.line(format!(
        "SGD on [2.5, 3, 3.5, 4], lr 0.1, 100 epochs in order: w = {sgd_w:.15}   (notebook: 3.387533875338753)"
    ));
    r.line(format!(
        "minibatch (2, shuffled), 100 epochs: w = {mini_w:.10}   (notebook, its own shuffles: 3.2542883593983194)"
    ));
    finals.insert("SGD".to_string(), json!(sgd_w));
    finals.insert("minibatch".to_string(), json!(mini_w));
    r.set("seed", json!(o.seed));
    r.set("w0", json!(w0));
    r.set("final_w", serde_json::Value::Object(finals));
    r.set("notebook_sgd", json!(3.387533875338753));
    picture(&mut r, o, "cost", |path| {
        let lines: Vec<Line> = runs
            .iter()
            .enumerate()
            .map(|(i, t)| {
                Line::new(
                    t.name,
                    i,
                    Mark::LineDots,
                    t.w.iter()
                        .enumerate()
                        .map(|(k, &w)| (k as f64, f(w)))
                        .collect(),
                )
            })
            .collect();
        let mean = |w: f64| data.iter().map(|d| (w - d) * (w - d)).sum::<f64>() / 4.0;
        let floor = mean(3.25);
        let data_lines = vec![
            Line::new(
                "SGD",
                5,
                Mark::LineDots,
                sgd.iter()
                    .enumerate()
                    .map(|(k, &w)| (k as f64, mean(w) - floor))
                    .collect(),
            ),
            Line::new(
                "minibatch",
                6,
                Mark::LineDots,
                mini.iter()
                    .enumerate()
                    .map(|(k, &w)| (k as f64, mean(w) - floor))
                    .collect(),
            ),
        ];
        plot_axes(
            path,
            "First-order methods: cost per step",
            &[
                Axes {
                    y_log: true,
                    ..Axes::linear("(w-3)^2", "iteration", "cost", lines)
                },
                Axes {
                    y_log: true,
                    ..Axes::linear(
                        "data [2.5, 3, 3.5, 4]",
                        "epoch",
                        "mean cost above its minimum",
                        data_lines,
                    )
                },
            ],
        )
    })?;
    picture(&mut r, o, "trajectory", |path| {
        let grid = linspace(-2.0, 8.0, 100);
        let mut on_curve = vec![Line::new(
            "f(w)",
            7,
            Mark::Line,
            grid.iter().map(|&w| (w, f(w))).collect(),
        )];
        on_curve.extend(runs.iter().take(3).enumerate().map(|(i, t)| {
            Line::new(
                t.name,
                i,
                Mark::LineDots,
                t.w.iter().map(|&w| (w, f(w))).collect(),
            )
        }));
        let lines = runs
            .iter()
            .enumerate()
            .map(|(i, t)| {
                Line::new(
                    t.name,
                    i,
                    Mark::LineDots,
                    t.w.iter()
                        .enumerate()
                        .map(|(k, &w)| (k as f64, w))
                        .collect(),
                )
            })
            .collect();
        plot_axes(
            path,
            "First-order methods on (w-3)^2: trajectories",
            &[
                Axes::linear("w against iteration", "iteration", "w", lines),
                Axes::linear("on the cost curve", "w", "cost", on_curve),
            ],
        )
    })?;
    Ok(r)
}

/// The least-squares line `y ≈ w·x + b` in closed form: `(w, b)`.
pub fn least_squares_line(x: &[f64], y: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let sxx: f64 = x.iter().map(|a| (a - mx) * (a - mx)).sum();
    let w = sxy / sxx;
    (w, my - w * mx)
}

fn mse(w: f64, b: f64, x: &[f64], y: &[f64]) -> f64 {
    x.iter()
        .zip(y)
        .map(|(a, t)| (t - (w * a + b)).powi(2))
        .sum::<f64>()
        / x.len() as f64
}

/// Notebook 001's guided activity: the data (`np.random.seed(42)`, 100
/// points on [0, 10], y = 2.5x + 1 + N(0, 1)).
pub fn regression_data() -> (Vec<f64>, Vec<f64>) {
    let x = linspace(0.0, 10.0, 100);
    let noise = NumpyRng::new(42).normal(0.0, 1.0, 100);
    let y = x
        .iter()
        .zip(&noise)
        .map(|(a, e)| 2.5 * a + 1.0 + e)
        .collect();
    (x, y)
}

/// Batch GD on the MSE from (0, 0): `(w, b, cost)` after each iteration.
pub fn regression_gd(x: &[f64], y: &[f64], lr: f64, iters: usize) -> Vec<(f64, f64, f64)> {
    let n = x.len() as f64;
    let (mut w, mut b) = (0.0, 0.0);
    let mut out = Vec::with_capacity(iters);
    for _ in 0..iters {
        let (mut gw, mut gb) = (0.0, 0.0);
        for (a, t) in x.iter().zip(y) {
            let e = t - (w * a + b);
            gw += -2.0 * a * e;
            gb += -2.0 * e;
        }
        w -= lr * gw / n;
        b -= lr * gb / n;
        out.push((w, b, mse(w, b, x, y)));
    }
    out
}

pub(super) fn run_regression(o: &Options<'_>) -> Result<Report> {
    let mut r = Report::new("linear-regression");
    let (x, y) = regression_data();
    let gd = regression_gd(&x, &y, 0.01, 200);
    // The notebook's SGD cell is missing (only its description survives):
    // one sample per update, shuffled each epoch with np.random.seed(seed),
    // lr 0.001 (0.01 diverges on single samples with x up to 10), 50 epochs.
    let (lr_sgd, epochs) = (0.001, 50);
    let mut rng = NumpyRng::new(o.seed);
    let mut order: Vec<usize> = (0..x.len()).collect();
    let (mut w, mut b) = (0.0, 0.0);
    let mut sgd = Vec::with_capacity(epochs);
    for _ in 0..epochs {
        rng.shuffle(&mut order);
        for &i in &order {
            let e = y[i] - (w * x[i] + b);
            w -= lr_sgd * (-2.0 * x[i] * e);
            b -= lr_sgd * (-2.0 * e);
        }
        sgd.push((w, b, mse(w, b, &x, &y)));
    }
    let (lw, lb) = least_squares_line(&x, &y);
    let (gw, gb, gc) = gd[gd.len() - 1];
    let (sw, sb, sc) = sgd[sgd.len() - 1];
    r.line("data: 100 points, y = 2.5 x + 1 + N(0, 1), np.random.seed(42) (the notebook's)");
    r.line(format!(
        "GD  lr 0.01, 200 iterations: w = {gw:.15}, b = {gb:.15}, MSE {gc:.6}"
    ));
    r.line("    (notebook: w = 2.538207099748425, b = 0.664818146793009)");
    r.line(format!(
        "SGD lr {lr_sgd}, {epochs} epochs of single samples (seed {}): w = {sw:.6}, b = {sb:.6}, MSE {sc:.6}",
        o.seed
    ));
    r.line("    (notebook, its own unstated SGD settings: w = 2.5936604063100246, b = 0.8652473163377001)");
    r.line(format!(
        "least squares: w = {lw:.6}, b = {lb:.6}, MSE {:.6}",
        mse(lw, lb, &x, &y)
    ));
    r.set(
        "gd",
        json!({ "w": gw, "b": gb, "mse": gc, "iterations": 200, "lr": 0.01 }),
    );
    r.set(
        "sgd",
        json!({ "w": sw, "b": sb, "mse": sc, "epochs": epochs, "lr": lr_sgd, "seed": o.seed }),
    );
    r.set(
        "least_squares",
        json!({ "w": lw, "b": lb, "mse": mse(lw, lb, &x, &y) }),
    );
    r.set(
        "notebook_gd",
        json!({ "w": 2.538207099748425, "b": 0.664818146793009 }),
    );
    picture(&mut r, o, "", |path| {
        let idx = |v: &[(f64, f64, f64)], k: fn(&(f64, f64, f64)) -> f64| -> Vec<(f64, f64)> {
            v.iter()
                .enumerate()
                .map(|(i, p)| (i as f64 + 1.0, k(p)))
                .collect()
        };
        plot_axes(
            path,
            "Linear regression with MSE: GD against SGD",
            &[
                Axes {
                    y_log: true,
                    ..Axes::linear(
                        "cost",
                        "iteration (GD) / epoch (SGD)",
                        "MSE",
                        vec![
                            Line::new("GD", 0, Mark::Line, idx(&gd, |p| p.2)),
                            Line::new("SGD", 1, Mark::Line, idx(&sgd, |p| p.2)),
                        ],
                    )
                },
                Axes::linear(
                    "parameters",
                    "iteration (GD) / epoch (SGD)",
                    "value",
                    vec![
                        Line::new("w (GD)", 0, Mark::Line, idx(&gd, |p| p.0)),
                        Line::new("b (GD)", 2, Mark::Line, idx(&gd, |p| p.1)),
                        Line::new("w (SGD)", 1, Mark::LineDots, idx(&sgd, |p| p.0)),
                        Line::new("b (SGD)", 3, Mark::LineDots, idx(&sgd, |p| p.1)),
                    ],
                ),
                Axes::linear(
                    "fit",
                    "x",
                    "y",
                    vec![
                        Line::new(
                            "data",
                            0,
                            Mark::Dots,
                            x.iter().copied().zip(y.iter().copied()).collect(),
                        ),
                        Line::new("GD", 3, Mark::Line, vec![(0.0, gb), (10.0, 10.0 * gw + gb)]),
                    ],
                ),
            ],
        )
    })?;
    Ok(r)
}

/// One step-size policy's run on f(x) = x² − 6x + 5 from 15.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub name: String,
    pub xs: Vec<f64>,
}

/// Notebook 004's cost, minimum −4 at 3.
fn cost(x: f64) -> f64 {
    x * x - 6.0 * x + 5.0
}

/// Minimises φ(α) = cost(x − α·g) over α ∈ [0, 1] by golden-section search:
/// the "optimal step" policy. Comparing values near the minimum limits it
/// to about √ε relative in α, so it lands within ~1e-7 of x = 3.
fn line_search(x: f64, g: f64) -> f64 {
    let phi = |a: f64| cost(x - a * g);
    let r = (5f64.sqrt() - 1.0) / 2.0;
    let (mut lo, mut hi) = (0.0, 1.0);
    while hi - lo > 1e-12 {
        let (a, b) = (hi - r * (hi - lo), lo + r * (hi - lo));
        if phi(a) < phi(b) {
            hi = b;
        } else {
            lo = a;
        }
    }
    (lo + hi) / 2.0
}

/// The step-size policies of notebook 004 from x = 15, each until a step
/// moves x by at most `precision` (cell [4]'s rule) or 10 000 steps.
pub fn step_policies(precision: f64) -> Vec<Policy> {
    let run = |name: String, step: &dyn Fn(usize, f64, f64) -> f64| {
        let mut xs = vec![15.0];
        for k in 0..10_000 {
            let x = xs[xs.len() - 1];
            let g = 2.0 * x - 6.0;
            let next = x - step(k, x, g) * g;
            xs.push(next);
            if (next - x).abs() <= precision {
                break;
            }
        }
        Policy { name, xs }
    };
    vec![
        run("constant 0.01".into(), &|_, _, _| 0.01),
        run("constant 0.1".into(), &|_, _, _| 0.1),
        run("decreasing 0.4/sqrt(k+1)".into(), &|k, _, _| {
            0.4 / ((k + 1) as f64).sqrt()
        }),
        run("optimal (line search)".into(), &|_, x, g| line_search(x, g)),
    ]
}

/// Cell [11]: SGD on the points (i, 2i), i = 0..9, for the cost
/// (1/n)Σ(y − wx)², whose step is cut to 95% after every epoch without an
/// improvement larger than `toler` and reset to `alpha0` after one;
/// `(best w, epochs run)`.
pub fn sgd_cut_to_95(
    w0: f64,
    alpha0: f64,
    toler: f64,
    epochs: usize,
    rng: &mut NumpyRng,
) -> (f64, usize) {
    let x: Vec<f64> = (0..10).map(f64::from).collect();
    let y: Vec<f64> = x.iter().map(|v| 2.0 * v).collect();
    let target = |w: f64| {
        x.iter()
            .zip(&y)
            .map(|(a, t)| (t - a * w).powi(2))
            .sum::<f64>()
            / 10.0
    };
    let (mut w, mut alpha) = (w0, alpha0);
    let (mut min_w, mut min_val) = (f64::INFINITY, f64::INFINITY);
    let (mut epoch, mut no_increase) = (0, 0);
    let mut order: Vec<usize> = (0..10).collect();
    while epoch < epochs && no_increase < 100 {
        let val = target(w);
        if min_val - val > toler {
            (min_w, min_val) = (w, val);
            alpha = alpha0;
            no_increase = 0;
        } else {
            no_increase += 1;
            alpha *= 0.95;
        }
        rng.shuffle(&mut order);
        for &i in &order {
            // The notebook's gradient_f on one sample: 2·(2w·x² − 2x·y).
            let g = 2.0 * (2.0 * w * x[i] * x[i] - 2.0 * x[i] * y[i]);
            w -= alpha * g;
        }
        epoch += 1;
    }
    (min_w, epoch)
}

pub(super) fn run_step_size(o: &Options<'_>) -> Result<Report> {
    let mut r = Report::new("step-size");
    r.line("f(x) = x^2 - 6x + 5 from x = 15, until a step moves x by at most 0.01 (cell [4])");
    let policies = step_policies(0.01);
    let mut rows = Vec::new();
    for p in &policies {
        let last = p.xs[p.xs.len() - 1];
        let note = if p.name == "constant 0.01" {
            "   (notebook: 3.48)"
        } else {
            ""
        };
        r.line(format!(
            "  {:26} {:4} steps, x = {last:.6}{note}",
            p.name,
            p.xs.len() - 1
        ));
        rows.push(json!({ "policy": p.name, "steps": p.xs.len() - 1, "x": last }));
    }
    let mut rng = NumpyRng::new(o.seed);
    let w0 = rng.next_f64();
    let (w, epochs) = sgd_cut_to_95(w0, 0.01, 1e-6, 100, &mut rng);
    r.line(format!(
        "SGD on (i, 2i), step cut to 95% without improvement (cell [11], w0 = {w0:.6}, seed {}): w = {w:.6} after {epochs} epochs   (notebook: w: 2.000000)",
        o.seed
    ));
    r.set("policies", json!(rows));
    r.set(
        "sgd_cut_95",
        json!({ "w": w, "epochs": epochs, "w0": w0, "seed": o.seed }),
    );
    picture(&mut r, o, "", |path| {
        let lines: Vec<Line> = policies
            .iter()
            .enumerate()
            .map(|(i, p)| {
                // The line search lands on the minimum in one step: a cost
                // within rounding of 0 falls off a log axis, so the label says so.
                let label = if i == 3 {
                    format!("{}: about 0 after one step", p.name)
                } else {
                    p.name.clone()
                };
                Line::new(
                    label,
                    i,
                    Mark::LineDots,
                    p.xs.iter()
                        .enumerate()
                        .map(|(k, &x)| (k as f64, cost(x) + 4.0))
                        .collect(),
                )
            })
            .collect();
        plot_axes(
            path,
            "Step-size policies on x^2 - 6x + 5",
            &[Axes {
                y_log: true,
                ..Axes::linear("distance to the minimum cost", "step", "f(x) - f(3)", lines)
            }],
        )
    })?;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sgd_on_the_data_lands_on_the_notebooks_fixed_point() {
        let w = sgd_on_data(&[2.5, 3.0, 3.5, 4.0], 0.3, 0.1, 100, 1, None)[100];
        assert!((w - 3.387533875338753).abs() < 1e-12, "{w}");
    }

    #[test]
    fn gd_on_the_notebooks_data_prints_its_figures() {
        let (x, y) = regression_data();
        let (w, b, _) = regression_gd(&x, &y, 0.01, 200)[199];
        assert!((w - 2.538207099748425).abs() < 1e-9, "{w}");
        assert!((b - 0.664818146793009).abs() < 1e-9, "{b}");
    }

    #[test]
    fn constant_step_stops_where_the_notebook_did() {
        let p = &step_policies(0.01)[0];
        let x = p.xs[p.xs.len() - 1];
        assert_eq!(format!("{:.2}", x), "3.48");
        let opt = &step_policies(0.01)[3];
        assert!((opt.xs[1] - 3.0).abs() < 1e-6, "{:?}", opt.xs);
    }
}
