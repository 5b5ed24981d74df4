//! Activation backward (sigmoid, ReLU, identity) against the CPU twin, alone
//! and fused with the bias-gradient column sum, with outputs poisoned before
//! each dispatch.

use crate::common::{gpu, random, random_scaled};
use ndarray::ArrayD;
use wgpu_train::cpu::{self, Tolerance};
use wgpu_train::kernels::{ActivationBackward, ColumnSum, activation_backward};
use wgpu_train::{Activation, ColumnSumKernel, Error, GpuTensor};

const ACTIVATIONS: [Activation; 3] = [Activation::Identity, Activation::Sigmoid, Activation::Relu];

/// The GPU evaluates the same one or two products as the twin; only a fused
/// multiply-add could make it differ, by an ulp.
fn tolerance() -> Tolerance {
    Tolerance::new(1e-7, 1e-6)
}

/// Stored activations h = act(z) for z in ±3, with some z exactly 0 so that
/// ReLU's h = 0 edge is covered.
fn activations(shape: &[usize], seed: u64, act: Activation) -> ArrayD<f32> {
    let mut z = random_scaled(shape, seed, 3.0);
    for (i, v) in z.iter_mut().enumerate() {
        if i % 11 == 3 {
            *v = 0.0;
        }
    }
    z.mapv(|v| act.apply(v))
}

fn check(shape: &[usize], act: Activation) {
    let g = gpu();
    let seed = shape.iter().product::<usize>() as u64;
    let dh = random(shape, seed);
    let h = activations(shape, seed + 1, act);
    let expected = cpu::activation_backward(&dh, &h, act).unwrap();
    let gdh = GpuTensor::from_array(g, &dh).unwrap();
    let gh = GpuTensor::from_array(g, &h).unwrap();
    let dz = GpuTensor::<f32>::zeros(g, shape).unwrap();
    dz.fill(g, f32::NAN).unwrap();
    ActivationBackward::new(g, &gdh, &gh, &dz, act)
        .unwrap()
        .run(g, 1)
        .unwrap();
    cpu::assert_close(
        &format!("{act:?} backward {shape:?}"),
        &dz.to_array(g).unwrap(),
        &expected,
        tolerance(),
    );
}

macro_rules! activation_cases {
    ($($name:ident: $shape:expr;)*) => {
        mod identity { use super::*; $(#[test] fn $name() { check(&$shape, Activation::Identity) })* }
        mod sigmoid { use super::*; $(#[test] fn $name() { check(&$shape, Activation::Sigmoid) })* }
        mod relu { use super::*; $(#[test] fn $name() { check(&$shape, Activation::Relu) })* }
    };
}

activation_cases! {
    one_element_1x1: [1, 1];
    n7_c13: [7, 13];
    n128_c128_mlp_hidden: [128, 128];
    n129_c1000_past_a_workgroup: [129, 1000];
    three_d_2x3x5_any_shape: [2, 3, 5];
}

#[test]
fn relu_gradient_is_zero_exactly_where_h_is_zero() {
    let g = gpu();
    let h = ArrayD::from_shape_vec(vec![1, 4], vec![0.0f32, 1e-30, 0.0, 2.0]).unwrap();
    let dh = ArrayD::from_shape_vec(vec![1, 4], vec![5.0f32, 5.0, -5.0, 5.0]).unwrap();
    let dz = activation_backward(
        g,
        &GpuTensor::from_array(g, &dh).unwrap(),
        &GpuTensor::from_array(g, &h).unwrap(),
        Activation::Relu,
    )
    .unwrap();
    assert_eq!(dz.read(g).unwrap(), vec![0.0, 5.0, 0.0, 5.0]);
}

#[test]
fn sigmoid_gradient_from_saturated_outputs_is_finite() {
    let g = gpu();
    let z = ArrayD::from_shape_vec(vec![1, 4], vec![-1e3f32, -20.0, 20.0, 1e3]).unwrap();
    let h = z.mapv(|v| Activation::Sigmoid.apply(v));
    let dh = ArrayD::from_elem(vec![1, 4], 1.0f32);
    let dz = activation_backward(
        g,
        &GpuTensor::from_array(g, &dh).unwrap(),
        &GpuTensor::from_array(g, &h).unwrap(),
        Activation::Sigmoid,
    )
    .unwrap()
    .to_array(g)
    .unwrap();
    let expected = cpu::activation_backward(&dh, &h, Activation::Sigmoid).unwrap();
    assert!(dz.iter().all(|v| v.is_finite() && *v >= 0.0), "{dz}");
    cpu::assert_close("saturated sigmoid", &dz, &expected, tolerance());
}

/// The fused kernel (activation backward inside the column sum) against
/// the twin, and against the two separate kernels: the same products summed
/// in the same order, so the same bits.
fn check_fused(n: usize, c: usize, act: Activation, kernel: ColumnSumKernel) {
    let g = gpu();
    let seed = (n * 31 + c) as u64;
    let dh = random(&[n, c], seed);
    let h = activations(&[n, c], seed + 1, act);
    let (expected_dz, expected_db) = cpu::activation_bias_backward(&dh, &h, act).unwrap();

    let gdh = GpuTensor::from_array(g, &dh).unwrap();
    let gh = GpuTensor::from_array(g, &h).unwrap();
    // dz and db as views into one gradient buffer, as a model will hold them.
    let grads = GpuTensor::<f32>::zeros(g, &[3 + n * c + 2 + c]).unwrap();
    grads.fill(g, f32::NAN).unwrap();
    let dz = grads.view(3, &[n, c]).unwrap();
    let db = grads.view(3 + n * c + 2, &[c]).unwrap();
    ColumnSum::with_activation(g, &gdh, &gh, &dz, &db, act, kernel)
        .unwrap()
        .run(g, 1)
        .unwrap();
    let what = format!("fused {act:?} backward {n}×{c} with {kernel:?}");
    let dz_fused = dz.to_array(g).unwrap();
    let db_fused = db.to_array(g).unwrap();
    cpu::assert_close(
        &format!("dz of {what}"),
        &dz_fused,
        &expected_dz,
        tolerance(),
    );
    cpu::assert_close(
        &format!("db of {what}"),
        &db_fused,
        &expected_db,
        Tolerance::new(1e-6 * n as f32, 1e-5),
    );
    let all = grads.read(g).unwrap();
    assert!(
        all[..3].iter().all(|v| v.is_nan()),
        "{what} wrote before dz"
    );
    assert!(
        all[3 + n * c..3 + n * c + 2].iter().all(|v| v.is_nan()),
        "{what} wrote between dz and db"
    );

    let dz_separate = activation_backward(g, &gdh, &gh, act).unwrap();
    let db_separate = GpuTensor::<f32>::zeros(g, &[c]).unwrap();
    ColumnSum::new(g, &dz_separate, &db_separate, kernel)
        .unwrap()
        .run(g, 1)
        .unwrap();
    let bits = |a: &ArrayD<f32>| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(
        bits(&dz_fused),
        bits(&dz_separate.to_array(g).unwrap()),
        "{what}: dz differs from activation_backward"
    );
    assert_eq!(
        bits(&db_fused),
        bits(&db_separate.to_array(g).unwrap()),
        "{what}: db differs from column_sum of activation_backward"
    );
}

#[test]
fn fused_bias_backward_matches_twin_and_separate_kernels() {
    for kernel in ColumnSumKernel::ALL {
        for act in ACTIVATIONS {
            for (n, c) in [(1, 1), (7, 10), (128, 128), (129, 10), (256, 1000), (3, 17)] {
                check_fused(n, c, act, kernel);
            }
        }
    }
}

const K: ColumnSumKernel = ColumnSumKernel::Auto;

#[test]
fn shape_errors() {
    let g = gpu();
    let a = GpuTensor::<f32>::zeros(g, &[4, 5]).unwrap();
    let b = GpuTensor::<f32>::zeros(g, &[5, 4]).unwrap();
    let out = GpuTensor::<f32>::zeros(g, &[4, 5]).unwrap();
    let db = GpuTensor::<f32>::zeros(g, &[5]).unwrap();
    let act = Activation::Sigmoid;
    assert!(matches!(
        ActivationBackward::new(g, &a, &b, &out, act),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        ActivationBackward::new(g, &a, &a, &b, act),
        Err(Error::Shape { .. })
    ));
    // dz written in place over dh is refused (bound for reading and writing).
    assert!(matches!(
        ActivationBackward::new(g, &a, &out, &a, act),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        ColumnSum::with_activation(g, &a, &a, &out, &b, act, K),
        Err(Error::Shape { .. })
    ));
    // dz and db overlapping in one buffer.
    let flat = GpuTensor::<f32>::zeros(g, &[30]).unwrap();
    let dz = flat.view(0, &[4, 5]).unwrap();
    let db_overlapping = flat.view(18, &[5]).unwrap();
    let db_after = flat.view(20, &[5]).unwrap();
    assert!(matches!(
        ColumnSum::with_activation(g, &a, &out, &dz, &db_overlapping, act, K),
        Err(Error::Shape { .. })
    ));
    ColumnSum::with_activation(g, &a, &out, &dz, &db_after, act, K).unwrap();
    let three_d = GpuTensor::<f32>::zeros(g, &[2, 2, 5]).unwrap();
    assert!(matches!(
        ColumnSum::with_activation(g, &three_d, &three_d, &out, &db, act, K),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        cpu::activation_backward(
            &ndarray::Array2::<f32>::zeros((2, 3)),
            &ndarray::Array2::<f32>::zeros((3, 2)),
            act
        ),
        Err(Error::Shape { .. })
    ));
}
