//! The course notebooks' experiments, one runnable entry each
//! (`wgpu-train course`, `examples/course/`): gradient descent on functions and the AND neuron
//! (notebook 003), first- and second-order methods on small problems and
//! linear regression (001), losses, finite differences, step-size policies
//! and automatic differentiation (004), and CS231n's checks on the linear
//! classifier (000).
//!
//! Each experiment returns a [`Report`]: the lines it prints (the notebook's
//! own figure beside ours where the notebook printed one), the key numbers
//! as JSON, and the pictures it drew when asked to. The notebooks' fixed
//! data and constants are written into the code, each beside the name of
//! the notebook cell it comes from; where a notebook drew random data after
//! `np.random.seed(s)`, [`NumpyRng`] draws the same numbers, and where it
//! drew unseeded data the experiment uses a stated seed (`--seed`).

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::gpu::Gpu;

pub mod autodiff;
mod cs231n;
mod descent;
mod first_order;
mod numerics;
mod numpy_rng;
mod second;

pub use descent::{AndNeuron, and_neuron, descent_1d, descent_2d_path, f2, grad_f2_centred};
pub use first_order::{least_squares_line, optimizers_1d, sgd_on_data};
pub use numerics::{FiniteDifferences, finite_differences, fit_slope};
pub use numpy_rng::NumpyRng;

/// What an experiment printed, measured and drew.
#[derive(Clone, Debug)]
pub struct Report {
    /// The experiment's name.
    pub name: &'static str,
    /// Human-readable lines, in order.
    pub lines: Vec<String>,
    /// The key numbers (one JSON object; `--json` prints it on one line).
    pub json: Value,
    /// The pictures written.
    pub pictures: Vec<PathBuf>,
}

impl Report {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            lines: Vec::new(),
            json: json!({ "experiment": name }),
            pictures: Vec::new(),
        }
    }

    fn line(&mut self, s: impl Into<String>) {
        self.lines.push(s.into());
    }

    fn set(&mut self, key: &str, value: Value) {
        if let Value::Object(map) = &mut self.json {
            map.insert(key.to_string(), value);
        }
    }
}

/// How an experiment runs.
pub struct Options<'g> {
    /// The seed of any random draw the notebook did not seed itself.
    pub seed: u32,
    /// Where pictures go (an existing directory), if anywhere.
    pub plot_dir: Option<PathBuf>,
    /// SVG pictures instead of PNG.
    pub svg: bool,
    /// The GPU, for the experiments that run a tensor computation on it;
    /// without one they run their CPU twin only and say so.
    pub gpu: Option<&'g Gpu>,
}

impl Options<'_> {
    /// The path of picture `what` of experiment `name`, when plotting.
    fn picture(&self, name: &str, what: &str) -> Option<PathBuf> {
        let ext = if self.svg { "svg" } else { "png" };
        let file = if what.is_empty() {
            format!("{name}.{ext}")
        } else {
            format!("{name}-{what}.{ext}")
        };
        self.plot_dir.as_ref().map(|d| d.join(file))
    }
}

/// One experiment of the course.
pub struct Experiment {
    pub name: &'static str,
    /// Which notebook (000–004) and section it comes from.
    pub notebook: &'static str,
    /// One line on what it does.
    pub about: &'static str,
    run: fn(&Options<'_>) -> Result<Report>,
}

impl Experiment {
    /// Runs the experiment.
    pub fn run(&self, options: &Options<'_>) -> Result<Report> {
        (self.run)(options)
    }
}

/// Every experiment, in the order of `--list`.
pub const EXPERIMENTS: &[Experiment] = &[
    Experiment {
        name: "descent-1d",
        notebook: "003: gradient descent on (x-1)^2",
        about: "gradient descent on (x-1)^2 from 50 random starts (centred differences)",
        run: descent::run_1d,
    },
    Experiment {
        name: "descent-2d",
        notebook: "003: the 2-D case",
        about: "gradient descent on x^4+y^4-2(x-y)^2: 4 random starts and a grid of starts, contour and paths",
        run: descent::run_2d,
    },
    Experiment {
        name: "and-neuron",
        notebook: "003: a neuron trained as an AND gate",
        about: "one sigmoid neuron, MSE, trained until the cost is below 1e-3; its truth table",
        run: descent::run_and,
    },
    Experiment {
        name: "optimizers-1d",
        notebook: "001: first-order methods on (w-3)^2",
        about: "GD, SGD, minibatch, momentum, NAG, RMSprop and Adam on (w-3)^2 and the data [2.5, 3, 3.5, 4]",
        run: first_order::run_optimizers,
    },
    Experiment {
        name: "bfgs-quadratic",
        notebook: "001: quasi-Newton (BFGS)",
        about: "BFGS on (x-1)^2+(y-2)^2 with its contour and path",
        run: second::run_bfgs,
    },
    Experiment {
        name: "levenberg-marquardt",
        notebook: "001: Levenberg-Marquardt",
        about: "Levenberg-Marquardt fitting y = a t + b to 50 noisy points (sigma 1, np.random.seed(42))",
        run: second::run_lm,
    },
    Experiment {
        name: "linear-regression",
        notebook: "001: guided activity (GD vs SGD)",
        about: "linear regression with MSE: GD against SGD, cost and parameter trajectories",
        run: first_order::run_regression,
    },
    Experiment {
        name: "losses",
        notebook: "004: 2.2-2.5 loss functions",
        about: "square, hinge, logistic and softmax cross-entropy losses against the margin y f(x)",
        run: numerics::run_losses,
    },
    Experiment {
        name: "finite-differences",
        notebook: "004: 3.1 numerical derivatives",
        about: "forward against centred differences: error against h, slopes O(h) and O(h^2)",
        run: numerics::run_finite_differences,
    },
    Experiment {
        name: "step-size",
        notebook: "004: step-size policies, 2.5 batch and 2.6 stochastic descent",
        about: "constant, decreasing and line-search steps, and SGD whose step is cut to 95%",
        run: first_order::run_step_size,
    },
    Experiment {
        name: "autodiff",
        notebook: "004: 4 automatic differentiation",
        about: "forward mode (dual numbers) and reverse mode (a tape) on sigmoid(w x + b)",
        run: autodiff::run,
    },
    Experiment {
        name: "cs231n-check",
        notebook: "000: strategy 3 and minibatch gradient descent (CS231n)",
        about: "full-coordinate forward differences on a batch of 1000, the step-size sweep, minibatch GD at lr 1e-7 for 1000 iterations",
        run: cs231n::run,
    },
];

/// The experiment called `name`, or an error that lists them all.
pub fn find(name: &str) -> Result<&'static Experiment> {
    EXPERIMENTS
        .iter()
        .find(|e| e.name == name)
        .ok_or_else(|| Error::InvalidArgument {
            name: "experiment",
            msg: format!(
                "no experiment '{name}'; the experiments are: {}",
                EXPERIMENTS
                    .iter()
                    .map(|e| e.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
}

/// Checks that `dir` is an existing directory we can write pictures into,
/// before any work is done.
pub fn check_plot_dir(dir: &Path) -> Result<()> {
    let err = |msg: String| Error::Plot {
        file: dir.to_path_buf(),
        msg,
    };
    let meta =
        std::fs::metadata(dir).map_err(|e| err(format!("cannot use as a directory: {e}")))?;
    if !meta.is_dir() {
        return Err(err("is not a directory".to_string()));
    }
    if meta.permissions().readonly() {
        return Err(err("is read-only".to_string()));
    }
    Ok(())
}

/// `[lo, hi]` in `n` evenly spaced points, as `np.linspace`.
pub fn linspace(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    match n {
        0 => Vec::new(),
        1 => vec![lo],
        _ => (0..n)
            .map(|i| lo + (hi - lo) * i as f64 / (n - 1) as f64)
            .collect(),
    }
}

/// Writes a picture through `draw` when plotting, and records it.
fn picture(
    report: &mut Report,
    options: &Options<'_>,
    what: &str,
    draw: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    if let Some(path) = options.picture(report.name, what) {
        draw(&path)?;
        report.pictures.push(path);
    }
    Ok(())
}
