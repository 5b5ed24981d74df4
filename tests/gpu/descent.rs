//! Many-starts gradient descent (`shaders/descent.wgsl`) against its CPU
//! twin: fresh random starts, awkward counts (1, 7, one workgroup ± 1,
//! 3073), paths poisoned with NaN before each dispatch, and bad input.

use crate::common::{gpu, random_scaled};
use ndarray::{ArrayD, IxDyn};
use wgpu_train::cpu::{self, Tolerance};
use wgpu_train::kernels::descent::{Descent, Surface, descent};
use wgpu_train::{Error, GpuTensor};

/// Differences come only from fused multiply-adds in f(x ± h): an ulp of
/// f (≈ 1e-5 for |x| ≤ 10) over 2h, times γ, per step, and each step
/// shrinks earlier ones by 1 − 2γ, so at most ~ulp(f)/(2h)·γ/(2γ) ≈ 2e-5
/// with h = 0.25, well under this.
fn tolerance() -> Tolerance {
    Tolerance::new(2e-4, 1e-5)
}

/// Runs `surface` from `starts` on the GPU into a NaN-poisoned path and
/// compares it with the twin.
fn check(surface: Surface, starts: &ArrayD<f32>, steps: usize, gamma: f32, h: f32, tol: Tolerance) {
    let g = gpu();
    let dims = surface.dims();
    let n = starts.len() / dims;
    let flat: Vec<f32> = starts.iter().copied().collect();
    let expected = cpu::descent::descent(surface, &flat, steps, gamma, h).unwrap();
    let start = GpuTensor::from_slice(g, &[n, dims], &flat).unwrap();
    let path = GpuTensor::<f32>::zeros(g, &[n, steps + 1, dims]).unwrap();
    path.fill(g, f32::NAN).unwrap();
    Descent::new(g, surface, &start, &path, steps, gamma, h)
        .unwrap()
        .run(g)
        .unwrap();
    let shape = IxDyn(&[n, steps + 1, dims]);
    cpu::assert_close(
        &format!("{surface:?} from {n} starts, {steps} steps"),
        &ArrayD::from_shape_vec(shape.clone(), path.read(g).unwrap()).unwrap(),
        &ArrayD::from_shape_vec(shape, expected).unwrap(),
        tol,
    );
}

#[test]
fn parabola_from_awkward_numbers_of_starts() {
    for n in [1, 7, 63, 64, 65, 3073] {
        let starts = random_scaled(&[n, 1], n as u64 + 11, 10.0);
        check(Surface::Parabola, &starts, 50, 0.01, 0.25, tolerance());
    }
}

#[test]
fn quartic_from_a_grid_and_random_starts() {
    let grid: Vec<f32> = (0..13)
        .flat_map(|i| (0..13).map(move |j| [-3.0 + 0.5 * i as f32, -3.0 + 0.5 * j as f32]))
        .flatten()
        .collect();
    let starts = ArrayD::from_shape_vec(IxDyn(&[169, 2]), grid).unwrap();
    check(Surface::Quartic, &starts, 100, 0.01, 0.25, tolerance());
    for n in [1, 7, 65] {
        let starts = random_scaled(&[n, 2], n as u64 + 5, 3.0);
        check(Surface::Quartic, &starts, 100, 0.01, 0.25, tolerance());
    }
}

/// The notebook's h = 1e-3 makes f32 centred differences noisy (an ulp of
/// f over 2e-3): the two devices still agree to the same bound scaled by
/// 0.25/1e-3, and every start reaches x = 1 within that noise.
#[test]
fn parabola_with_the_notebooks_h() {
    let starts = random_scaled(&[50, 1], 3, 10.0);
    check(
        Surface::Parabola,
        &starts,
        50,
        0.01,
        1e-3,
        Tolerance::new(5e-2, 1e-3),
    );
    let flat: Vec<f32> = starts.iter().copied().collect();
    let path = descent(gpu(), Surface::Parabola, &flat, 1000, 0.01, 1e-3).unwrap();
    for s in 0..50 {
        let x = path[s * 1001 + 1000];
        assert!((x - 1.0).abs() < 5e-2, "start {s} ended at {x}");
    }
}

#[test]
fn bad_input_is_an_error() {
    let g = gpu();
    let bad = |r: wgpu_train::Result<Vec<f32>>| {
        assert!(matches!(r, Err(Error::InvalidArgument { .. })), "{r:?}")
    };
    bad(descent(g, Surface::Parabola, &[1.0], 0, 0.01, 1e-3));
    bad(descent(g, Surface::Parabola, &[1.0], 5, f32::NAN, 1e-3));
    bad(descent(g, Surface::Parabola, &[1.0], 5, 0.01, 0.0));
    bad(descent(
        g,
        Surface::Quartic,
        &[1.0, 2.0, 3.0],
        5,
        0.01,
        1e-3,
    ));
    bad(descent(g, Surface::Parabola, &[], 5, 0.01, 1e-3));
    bad(cpu::descent::descent(
        Surface::Parabola,
        &[1.0],
        usize::MAX,
        0.01,
        1e-3,
    ));
}
