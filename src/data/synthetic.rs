//! Synthetic data for throughput runs: [`gaussian`] features as in the course
//! notebook (X from a standard normal, labels uniform over the classes), or
//! [`images`] of random pixel bytes shaped like a real dataset. Nothing in
//! them can be learned; they exist so that timing does not depend on a
//! download. [`learnable`] images can be: the tests' and the browser's
//! training runs, where the loss must move.
//!
//! The notebook stores X as D×N (examples in columns); here, as everywhere
//! in this crate, examples are rows: X is N×D.

use super::Dataset;
use crate::error::{Error, Result};
use ndarray::Array2;
use rand::{RngExt, SeedableRng, rngs::StdRng};
use rand_distr::StandardNormal;

/// Gaussian features with uniform labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Synthetic {
    /// N×D, each entry from N(0, 1).
    pub x: Array2<f32>,
    /// N labels, uniform in `0..classes`.
    pub labels: Vec<u8>,
    pub classes: usize,
}

/// `n` examples of `dim` standard-normal f32 values, labels uniform in
/// `0..classes` (at most 256, as labels are bytes like [`super::Dataset`]'s),
/// from `seed`. The same arguments give the same data with the same `rand`
/// release; this is for timing, not for results that must reproduce across
/// dependency updates.
pub fn gaussian(n: usize, dim: usize, classes: usize, seed: u64) -> Result<Synthetic> {
    let invalid = |msg: String| Error::InvalidArgument {
        name: "synthetic data",
        msg,
    };
    if n == 0 || dim == 0 {
        return Err(invalid(format!(
            "n={n} and dim={dim} must both be non-zero"
        )));
    }
    if !(1..=256).contains(&classes) {
        return Err(invalid(format!(
            "classes={classes} must be between 1 and 256"
        )));
    }
    let len = n
        .checked_mul(dim)
        .filter(|&l| l <= isize::MAX as usize / 4)
        .ok_or_else(|| invalid(format!("{n}×{dim} f32 values do not fit in memory")))?;
    let mut values = Vec::new();
    values
        .try_reserve_exact(len)
        .map_err(|_| invalid(format!("cannot allocate {n}×{dim} f32 values")))?;
    let mut rng = StdRng::seed_from_u64(seed);
    values.extend((0..len).map(|_| rng.sample::<f32, _>(StandardNormal)));
    let labels = (0..n).map(|_| rng.random_range(0..classes) as u8).collect();
    let x = Array2::from_shape_vec((n, dim), values)
        .map_err(|e| invalid(format!("shape {n}×{dim}: {e}")))?;
    Ok(Synthetic { x, labels, classes })
}

/// `n` images of `shape` with random pixel bytes and labels uniform in
/// `0..classes` (at most 256), from `seed`: a [`Dataset`] shaped like MNIST
/// (`[1, 28, 28]`) or CIFAR-10 (`[3, 32, 32]`) for throughput runs
/// (`train_linear --synthetic`, the benchmarks). A fixed xorshift64*
/// generator, so the same arguments give the same bytes on every platform
/// and `rand` release.
pub fn images(n: usize, shape: [usize; 3], classes: usize, seed: u64) -> Result<Dataset> {
    let invalid = |msg: String| Error::InvalidArgument {
        name: "synthetic data",
        msg,
    };
    if !(1..=256).contains(&classes) {
        return Err(invalid(format!(
            "classes={classes} must be between 1 and 256"
        )));
    }
    let len = shape
        .iter()
        .try_fold(n, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| invalid(format!("{n} images of {shape:?} overflow usize")))?;
    let mut pixels = Vec::new();
    pixels
        .try_reserve_exact(len)
        .map_err(|_| invalid(format!("cannot allocate {n} images of {shape:?}")))?;
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        // xorshift64*: fast, and good enough for pixels nobody learns from.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    pixels.extend((0..len).map(|_| (next() >> 56) as u8));
    let labels = (0..n).map(|_| (next() % classes as u64) as u8).collect();
    Dataset::new(pixels, labels, shape, classes)
}

/// `n` images of `shape` with 10 classes whose label can be learned: the
/// pixels whose index is the label modulo 10 are bright (128..=255), the
/// others dark (0..128), all from `seed`. For training runs that must show
/// the loss falling without a download (the GPU tests, the browser tests).
pub fn learnable(n: usize, shape: [usize; 3], seed: u64) -> Result<Dataset> {
    let mut rng = StdRng::seed_from_u64(seed);
    let dim: usize = shape.iter().product();
    let mut images = vec![0u8; n * dim];
    let mut labels = vec![0u8; n];
    for i in 0..n {
        let label = rng.random_range(0..10u8);
        labels[i] = label;
        for (j, px) in images[i * dim..(i + 1) * dim].iter_mut().enumerate() {
            *px = if j % 10 == label as usize {
                rng.random_range(128..=255)
            } else {
                rng.random_range(0..128)
            };
        }
    }
    Dataset::new(images, labels, shape, 10)
}
