//! Shared by the two test binaries (`tests/gpu`, `tests/cpu`): one GPU
//! context per binary, seeded random inputs, and the model-gradient check
//! both runners go through.
#![allow(dead_code)]

pub mod data_util;

pub mod model_gradient;

use ndarray::{ArrayD, IxDyn};
use rand::{RngExt, SeedableRng, rngs::StdRng};
use std::sync::OnceLock;
use wgpu_train::Gpu;

/// The GPU every test uses. There is no skip: a machine without an adapter
/// fails here, with the message that says how to install one.
pub fn gpu() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| match Gpu::new() {
        Ok(g) => {
            eprintln!("GPU tests run on: {}", g.summary());
            g
        }
        Err(e) => panic!("GPU tests need an adapter: {e}"),
    })
}

/// Uniform values in [-1, 1), never all zeros, from a fixed seed per call site.
pub fn random(shape: &[usize], seed: u64) -> ArrayD<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let n = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    ArrayD::from_shape_vec(IxDyn(shape), v).expect("shape matches")
}

/// Uniform values in [-scale, scale).
pub fn random_scaled(shape: &[usize], seed: u64, scale: f32) -> ArrayD<f32> {
    random(shape, seed).mapv(|x| x * scale)
}

/// Uniform class labels in 0..classes, from a fixed seed.
pub fn random_labels(n: usize, classes: usize, seed: u64) -> Vec<u32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| rng.random_range(0..classes as u32))
        .collect()
}

/// proptest's settings for `cases` cases, with failures kept beside the test
/// file (`tests/gpu/X.proptest-regressions`); the default would put them
/// under `tests/proptest-regressions/`, since `tests/gpu` has a `main.rs`.
pub fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    proptest::test_runner::Config {
        cases,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
        )),
        ..proptest::test_runner::Config::default()
    }
}

/// The bit patterns of `v`, for comparisons of two kernels that must agree
/// exactly, with −0 counted as +0: WGSL lets an implementation ignore the
/// sign of zero, and lavapipe's compiler folds `0.0 + x` to `x` in one
/// kernel and not in another (a dead ReLU column gave +0 fused and −0
/// unfused in `layer_backward`).
pub fn bits(v: &[f32]) -> Vec<u32> {
    v.iter()
        .map(|&x| if x == 0.0 { 0 } else { x.to_bits() })
        .collect()
}

/// A product's tolerance: rounding grows with K; an indexing bug is off by
/// O(1).
pub fn product_tolerance(k: usize) -> wgpu_train::cpu::Tolerance {
    wgpu_train::cpu::Tolerance::new(1e-5 + 1e-6 * k as f32, 1e-4)
}
