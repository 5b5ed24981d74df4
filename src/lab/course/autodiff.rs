//! Automatic differentiation as notebook 004 teaches it (section 4), on its
//! neuron f = 1/(1 + e^(−(w·x + b))): forward mode with dual numbers (one
//! sweep per input, carrying value and derivative together) and reverse
//! mode with a small tape (one forward sweep recording each operation, one
//! backward sweep giving every partial at once). A teaching module, in f64:
//! the crate's training engines use hand-written backward kernels, which
//! these are checked against, as they are against centred differences.

use std::ops::{Add, Mul, Neg};

use serde_json::json;

use super::{Options, Report};
use crate::error::Result;

/// A dual number v + d·ε with ε² = 0: d carries the derivative along.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dual {
    pub v: f64,
    pub d: f64,
}

impl Dual {
    /// A constant (derivative 0).
    pub fn constant(v: f64) -> Self {
        Self { v, d: 0.0 }
    }

    /// The variable we differentiate by (derivative 1).
    pub fn variable(v: f64) -> Self {
        Self { v, d: 1.0 }
    }

    /// e^self: (e^v, e^v·d).
    pub fn exp(self) -> Self {
        let e = self.v.exp();
        Self {
            v: e,
            d: e * self.d,
        }
    }

    /// 1/self: (1/v, −d/v²).
    pub fn recip(self) -> Self {
        Self {
            v: 1.0 / self.v,
            d: -self.d / (self.v * self.v),
        }
    }
}

impl Add for Dual {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Self {
            v: self.v + o.v,
            d: self.d + o.d,
        }
    }
}

impl Mul for Dual {
    type Output = Self;
    fn mul(self, o: Self) -> Self {
        Self {
            v: self.v * o.v,
            d: self.d * o.v + self.v * o.d,
        }
    }
}

impl Neg for Dual {
    type Output = Self;
    fn neg(self) -> Self {
        Self {
            v: -self.v,
            d: -self.d,
        }
    }
}

/// The neuron in the notebook's primitive steps f1 … f5, on dual numbers.
pub fn neuron_dual(x: Dual, w: Dual, b: Dual) -> Dual {
    let f1 = w * x;
    let f2 = f1 + b;
    let f3 = -f2;
    let f4 = f3.exp();
    let f5 = Dual::constant(1.0) + f4;
    f5.recip()
}

/// Forward mode: (f, ∂f/∂x, ∂f/∂w, ∂f/∂b), one sweep per input.
pub fn forward_mode(x: f64, w: f64, b: f64) -> [f64; 4] {
    let c = Dual::constant;
    let dx = neuron_dual(Dual::variable(x), c(w), c(b));
    let dw = neuron_dual(c(x), Dual::variable(w), c(b));
    let db = neuron_dual(c(x), c(w), Dual::variable(b));
    [dx.v, dx.d, dw.d, db.d]
}

/// One recorded operation: its inputs (tape indices) and the local partial
/// derivative of its output by each.
#[derive(Clone, Debug)]
struct Node {
    parents: Vec<(usize, f64)>,
}

/// A tape of operations, for reverse mode.
#[derive(Clone, Debug, Default)]
pub struct Tape {
    nodes: Vec<Node>,
    values: Vec<f64>,
}

/// A value on a [`Tape`]: its index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Var(usize);

impl Tape {
    /// An empty tape.
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, v: f64, parents: Vec<(usize, f64)>) -> Var {
        self.nodes.push(Node { parents });
        self.values.push(v);
        Var(self.values.len() - 1)
    }

    /// An input.
    pub fn input(&mut self, v: f64) -> Var {
        self.push(v, Vec::new())
    }

    /// A variable's value.
    pub fn value(&self, a: Var) -> f64 {
        self.values[a.0]
    }

    /// a + b.
    pub fn add(&mut self, a: Var, b: Var) -> Var {
        let v = self.value(a) + self.value(b);
        self.push(v, vec![(a.0, 1.0), (b.0, 1.0)])
    }

    /// a + c for a constant c.
    pub fn add_const(&mut self, a: Var, c: f64) -> Var {
        let v = self.value(a) + c;
        self.push(v, vec![(a.0, 1.0)])
    }

    /// a·b.
    pub fn mul(&mut self, a: Var, b: Var) -> Var {
        let (va, vb) = (self.value(a), self.value(b));
        self.push(va * vb, vec![(a.0, vb), (b.0, va)])
    }

    /// −a.
    pub fn neg(&mut self, a: Var) -> Var {
        let v = -self.value(a);
        self.push(v, vec![(a.0, -1.0)])
    }

    /// e^a.
    pub fn exp(&mut self, a: Var) -> Var {
        let e = self.value(a).exp();
        self.push(e, vec![(a.0, e)])
    }

    /// 1/a.
    pub fn recip(&mut self, a: Var) -> Var {
        let v = self.value(a);
        self.push(1.0 / v, vec![(a.0, -1.0 / (v * v))])
    }

    /// The backward sweep from `out`: ∂out/∂(every variable), by walking the
    /// tape once in reverse and accumulating each node's adjoint into its
    /// parents (the chain rule, summed over paths).
    pub fn gradient(&self, out: Var) -> Vec<f64> {
        let mut adjoint = vec![0.0; self.nodes.len()];
        adjoint[out.0] = 1.0;
        for i in (0..=out.0).rev() {
            let a = adjoint[i];
            for &(p, local) in &self.nodes[i].parents {
                adjoint[p] += a * local;
            }
        }
        adjoint
    }
}

/// Reverse mode: (f, ∂f/∂x, ∂f/∂w, ∂f/∂b) from one forward and one
/// backward sweep over a tape.
pub fn reverse_mode(x: f64, w: f64, b: f64) -> [f64; 4] {
    let mut t = Tape::new();
    let (vx, vw, vb) = (t.input(x), t.input(w), t.input(b));
    let f1 = t.mul(vw, vx);
    let f2 = t.add(f1, vb);
    let f3 = t.neg(f2);
    let f4 = t.exp(f3);
    let f5 = t.add_const(f4, 1.0);
    let f = t.recip(f5);
    let g = t.gradient(f);
    [t.value(f), g[vx.0], g[vw.0], g[vb.0]]
}

/// The hand-written backward: with s = σ(w·x + b), ∂s/∂z = s(1 − s), so
/// (s, w·s(1−s), x·s(1−s), s(1−s)).
pub fn hand_backward(x: f64, w: f64, b: f64) -> [f64; 4] {
    let s = 1.0 / (1.0 + (-(w * x + b)).exp());
    let ds = s * (1.0 - s);
    [s, w * ds, x * ds, ds]
}

/// Centred differences in f64 with step `h`: (f, ∂x, ∂w, ∂b).
pub fn centred_differences(x: f64, w: f64, b: f64, h: f64) -> [f64; 4] {
    let f = |x: f64, w: f64, b: f64| hand_backward(x, w, b)[0];
    [
        f(x, w, b),
        (f(x + h, w, b) - f(x - h, w, b)) / (2.0 * h),
        (f(x, w + h, b) - f(x, w - h, b)) / (2.0 * h),
        (f(x, w, b + h) - f(x, w, b - h)) / (2.0 * h),
    ]
}

/// The largest relative difference between two gradient tuples (value
/// included), with `floor` as the smallest denominator.
pub fn max_rel_diff(a: &[f64; 4], b: &[f64; 4], floor: f64) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / x.abs().max(y.abs()).max(floor))
        .fold(0.0, f64::max)
}

/// The AND neuron's cost ½(σ(w₁x₁ + w₂x₂ + b) − y)² on a tape: its gradient
/// by (w₁, w₂, b), against the hand-written delta of notebook 003.
pub fn and_cost_gradients(w: [f64; 2], b: f64, x: [f64; 2], y: f64) -> ([f64; 3], [f64; 3]) {
    let mut t = Tape::new();
    let (w1, w2, vb) = (t.input(w[0]), t.input(w[1]), t.input(b));
    let (x1, x2) = (t.input(x[0]), t.input(x[1]));
    let p1 = t.mul(w1, x1);
    let p2 = t.mul(w2, x2);
    let s = t.add(p1, p2);
    let z = t.add(s, vb);
    let nz = t.neg(z);
    let e = t.exp(nz);
    let d = t.add_const(e, 1.0);
    let a = t.recip(d);
    let err = t.add_const(a, -y);
    let sq = t.mul(err, err);
    let half = t.input(0.5);
    let c = t.mul(sq, half);
    let g = t.gradient(c);
    let av = t.value(a);
    let delta = (av - y) * av * (1.0 - av);
    (
        [g[w1.0], g[w2.0], g[vb.0]],
        [delta * x[0], delta * x[1], delta],
    )
}

pub(super) fn run(_o: &Options<'_>) -> Result<Report> {
    let mut r = Report::new("autodiff");
    // Cell [12]: the point (x, w, b) = (3, 2, 1).
    let (x, w, b) = (3.0, 2.0, 1.0);
    let fwd = forward_mode(x, w, b);
    let rev = reverse_mode(x, w, b);
    let hand = hand_backward(x, w, b);
    let fd = centred_differences(x, w, b, 1e-5);
    r.line(format!(
        "f = sigmoid(w x + b) at (x, w, b) = (3, 2, 1): {:.16}   (notebook: 0.9990889488055992)",
        fwd[0]
    ));
    r.line(format!(
        "{:>22} {:>22} {:>22} {:>22}",
        "", "df/dx", "df/dw", "df/db"
    ));
    for (name, g) in [
        ("forward (dual numbers)", fwd),
        ("reverse (tape)", rev),
        ("hand backward", hand),
        ("centred differences", fd),
    ] {
        r.line(format!(
            "{name:>22} {:>22.16e} {:>22.16e} {:>22.16e}",
            g[1], g[2], g[3]
        ));
    }
    r.line("notebook df/dx: forward 0.0018204423602438651, reverse 0.0018204423602438348, forward difference 0.0018204242002717306");
    let fwd_hand = max_rel_diff(&fwd, &hand, 1e-300);
    let rev_hand = max_rel_diff(&rev, &hand, 1e-300);
    let fd_hand = max_rel_diff(&fd, &hand, 1e-300);
    r.line(format!(
        "largest relative difference from the hand backward: forward {fwd_hand:.1e}, reverse {rev_hand:.1e}, centred differences (h 1e-5) {fd_hand:.1e}"
    ));
    // The AND neuron of notebook 003 at its printed start, input 11.
    let (tape, delta) = and_cost_gradients([-0.43758178, 0.52004418], -0.57089547, [1.0, 1.0], 1.0);
    let and_diff = tape
        .iter()
        .zip(&delta)
        .map(|(a, b)| (a - b).abs() / a.abs().max(b.abs()))
        .fold(0.0, f64::max);
    r.line(format!(
        "AND neuron cost 1/2 (a - y)^2, input 11: tape gradient (w1, w2, b) = ({:.12}, {:.12}, {:.12}); notebook 003's delta gives the same to {and_diff:.1e}",
        tape[0], tape[1], tape[2]
    ));
    r.set("point", json!([x, w, b]));
    r.set("forward", json!(fwd));
    r.set("reverse", json!(rev));
    r.set("hand", json!(hand));
    r.set("centred", json!(fd));
    r.set("max_rel_diff", json!({ "forward_vs_hand": fwd_hand, "reverse_vs_hand": rev_hand, "centred_vs_hand": fd_hand, "and_tape_vs_delta": and_diff }));
    r.set("notebook_dfdx", json!(0.0018204423602438651));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_modes_equal_the_hand_backward() {
        for (x, w, b) in [(3.0, 2.0, 1.0), (-1.5, 0.3, -2.0), (0.0, -4.0, 0.7)] {
            let hand = hand_backward(x, w, b);
            assert!(max_rel_diff(&forward_mode(x, w, b), &hand, 1e-300) < 1e-12);
            assert!(max_rel_diff(&reverse_mode(x, w, b), &hand, 1e-300) < 1e-12);
            assert!(max_rel_diff(&centred_differences(x, w, b, 1e-5), &hand, 1e-6) < 1e-7);
        }
    }
}
