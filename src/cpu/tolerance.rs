//! The one tolerance check used by every GPU-vs-CPU test.
//!
//! An element passes when `|actual − expected| ≤ atol + rtol·|expected|`.
//! NaN never passes (so an output poisoned with NaN that a kernel forgot to
//! write fails), and a failure reports how many elements failed, the worst
//! one's index and both values.

use ndarray::{ArrayBase, Data, Dimension};
use std::fmt;

/// Absolute and relative tolerance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    pub atol: f32,
    pub rtol: f32,
}

impl Tolerance {
    pub const fn new(atol: f32, rtol: f32) -> Self {
        Tolerance { atol, rtol }
    }

    /// Whether one element passes.
    pub fn accepts(&self, actual: f32, expected: f32) -> bool {
        // NaN on either side fails both tests; equal infinities pass.
        (actual - expected).abs() <= self.atol + self.rtol * expected.abs() || actual == expected
    }
}

/// Why a comparison failed.
#[derive(Clone, Debug, PartialEq)]
pub struct Mismatch {
    pub shape: Vec<usize>,
    /// Elements outside the tolerance (or the shapes differ: then `total` is 0).
    pub bad: usize,
    pub total: usize,
    /// Multi-index of the worst element (NaN counts as worst).
    pub worst_index: Vec<usize>,
    pub actual: f32,
    pub expected: f32,
    pub tolerance: Tolerance,
    pub shape_mismatch: Option<(Vec<usize>, Vec<usize>)>,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((a, e)) = &self.shape_mismatch {
            return write!(f, "shape mismatch: actual {a:?}, expected {e:?}");
        }
        write!(
            f,
            "{} of {} elements outside |actual − expected| ≤ {} + {}·|expected|; worst at {:?}: actual {} expected {} (diff {:e})",
            self.bad,
            self.total,
            self.tolerance.atol,
            self.tolerance.rtol,
            self.worst_index,
            self.actual,
            self.expected,
            (self.actual - self.expected).abs()
        )
    }
}

impl std::error::Error for Mismatch {}

fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for (i, &d) in shape.iter().enumerate().rev() {
        idx[i] = flat % d.max(1);
        flat /= d.max(1);
    }
    idx
}

/// Compares element by element; `Ok` when every element passes.
pub fn compare<S1, S2, D1, D2>(
    actual: &ArrayBase<S1, D1>,
    expected: &ArrayBase<S2, D2>,
    tolerance: Tolerance,
) -> Result<(), Box<Mismatch>>
where
    S1: Data<Elem = f32>,
    S2: Data<Elem = f32>,
    D1: Dimension,
    D2: Dimension,
{
    let shape = expected.shape().to_vec();
    if actual.shape() != expected.shape() {
        return Err(Box::new(Mismatch {
            shape: shape.clone(),
            bad: 0,
            total: 0,
            worst_index: vec![],
            actual: f32::NAN,
            expected: f32::NAN,
            tolerance,
            shape_mismatch: Some((actual.shape().to_vec(), shape)),
        }));
    }
    let mut bad = 0;
    let mut worst: Option<(usize, f32, f32, f32)> = None; // (flat, excess, actual, expected)
    for (i, (&x, &y)) in actual.iter().zip(expected.iter()).enumerate() {
        if tolerance.accepts(x, y) {
            continue;
        }
        bad += 1;
        let excess = (x - y).abs() - (tolerance.atol + tolerance.rtol * y.abs());
        let excess = if excess.is_nan() {
            f32::INFINITY
        } else {
            excess
        };
        if worst.is_none_or(|(_, e, _, _)| excess > e) {
            worst = Some((i, excess, x, y));
        }
    }
    match worst {
        None => Ok(()),
        Some((i, _, x, y)) => Err(Box::new(Mismatch {
            worst_index: unravel(i, &shape),
            shape,
            bad,
            total: expected.len(),
            actual: x,
            expected: y,
            tolerance,
            shape_mismatch: None,
        })),
    }
}

/// [`compare`] for tests: panics with the report, prefixed by `what`.
#[track_caller]
pub fn assert_close<S1, S2, D1, D2>(
    what: &str,
    actual: &ArrayBase<S1, D1>,
    expected: &ArrayBase<S2, D2>,
    tolerance: Tolerance,
) where
    S1: Data<Elem = f32>,
    S2: Data<Elem = f32>,
    D1: Dimension,
    D2: Dimension,
{
    if let Err(m) = compare(actual, expected, tolerance) {
        panic!("{what}: {m}");
    }
}
