//! The finite-difference gradient check (f64) of the CPU twins, on the two
//! models the project trains: the CIFAR-10 linear softmax classifier (W
//! 10×3073 with the bias column) and the MNIST MLP 784-128-128-10 with
//! sigmoid and with ReLU. Relative error ≤ 1e-6 on every checked coordinate.

use crate::common::random;
use ndarray::{Array2, ArrayD, Ix1, Ix2};
use wgpu_train::Activation;
use wgpu_train::cpu::gradcheck::{
    Evaluation, GradCheckOptions, MlpParams, Parameter, check_gradients, check_linear_softmax,
    check_mlp, mlp_loss,
};

const MAX_REL_ERROR: f64 = 1e-6;

fn random64(shape: &[usize], seed: u64, scale: f64) -> ArrayD<f64> {
    random(shape, seed).mapv(|v| f64::from(v) * scale)
}

fn matrix(shape: [usize; 2], seed: u64, scale: f64) -> Array2<f64> {
    random64(&shape, seed, scale)
        .into_dimensionality::<Ix2>()
        .unwrap()
}

fn labels(n: usize, classes: u32, seed: u32) -> Vec<u32> {
    (0..n as u32).map(|i| (i * 7 + seed) % classes).collect()
}

/// nn.Linear's default initialisation: U(−1/√fan_in, 1/√fan_in).
fn mlp_params(sizes: &[usize], seed: u64) -> MlpParams<f64> {
    let mut weights = Vec::new();
    let mut biases = Vec::new();
    for (l, pair) in sizes.windows(2).enumerate() {
        let bound = 1.0 / (pair[0] as f64).sqrt();
        weights.push(matrix([pair[1], pair[0]], seed + 2 * l as u64, bound));
        biases.push(
            random64(&[pair[1]], seed + 2 * l as u64 + 1, bound)
                .into_dimensionality::<Ix1>()
                .unwrap(),
        );
    }
    MlpParams { weights, biases }
}

/// MNIST-like inputs: pixel intensities in [0, 1).
fn mnist_like(n: usize, seed: u64) -> Array2<f64> {
    matrix([n, 784], seed, 1.0).mapv(|v| 0.5 * (v + 1.0))
}

#[test]
fn linear_softmax_10x3073_with_bias_column() {
    let w = matrix([10, 3073], 1, 1e-2);
    let x = matrix([8, 3072], 2, 1.0); // normalised CIFAR-like pixels
    let report =
        check_linear_softmax(&w, &x, &labels(8, 10, 3), &GradCheckOptions::default()).unwrap();
    eprintln!("{report}");
    assert_eq!(
        report.tensors[1].checked, 10,
        "every bias coordinate checked"
    );
    assert!(
        report.max_rel_error() <= MAX_REL_ERROR,
        "linear softmax gradient check failed:\n{report}"
    );
}

fn check_mlp_784_128_128_10(activation: Activation) {
    let params = mlp_params(&[784, 128, 128, 10], 10);
    let x = mnist_like(4, 11);
    let report = check_mlp(
        &params,
        &x,
        &labels(4, 10, 5),
        activation,
        &GradCheckOptions::default(),
    )
    .unwrap();
    eprintln!("{activation:?}:\n{report}");
    assert_eq!(report.tensors.len(), 6);
    for t in &report.tensors {
        assert!(
            t.checked >= 10,
            "{}: only {} coordinates checked",
            t.name,
            t.checked
        );
    }
    assert!(
        report.max_rel_error() <= MAX_REL_ERROR,
        "MLP ({activation:?}) gradient check failed:\n{report}"
    );
}

#[test]
fn mlp_784_128_128_10_sigmoid() {
    check_mlp_784_128_128_10(Activation::Sigmoid);
}

#[test]
fn mlp_784_128_128_10_relu() {
    check_mlp_784_128_128_10(Activation::Relu);
}

/// The check itself must notice an analytic gradient off by 0.01%.
#[test]
fn a_gradient_off_by_one_part_in_ten_thousand_is_caught() {
    let params = mlp_params(&[20, 8, 3], 20);
    let x = matrix([5, 20], 21, 1.0);
    let y = labels(5, 3, 1);
    let pass = mlp_loss(&params, x.view(), &y, Activation::Sigmoid).unwrap();
    let w1 = Parameter {
        name: "W1".into(),
        value: params.weights[0].clone().into_dyn(),
        grad: (&pass.weight_grads[0] * 1.0001).into_dyn(),
    };
    let report = check_gradients(
        &[w1],
        |v| {
            let mut p = params.clone();
            p.weights[0] = v[0].clone().into_dimensionality::<Ix2>().unwrap();
            let loss = mlp_loss(&p, x.view(), &y, Activation::Sigmoid)?.loss;
            Ok(Evaluation {
                loss,
                kinks: vec![],
            })
        },
        &GradCheckOptions::default(),
    )
    .unwrap();
    assert!(
        report.max_rel_error() > 5e-5,
        "a 1e-4 relative error went unnoticed:\n{report}"
    );
}

/// Exactly-zero gradients (a dead ReLU unit, an input that is always 0)
/// compare as equal, not as 0/0.
#[test]
fn exactly_zero_gradients_pass() {
    let mut params = mlp_params(&[6, 4, 3], 30);
    // Unit 0 of the hidden layer is dead for every input.
    params.weights[0].row_mut(0).fill(0.0);
    params.biases[0][0] = -1.0;
    let mut x = matrix([3, 6], 31, 1.0);
    x.column_mut(2).fill(0.0);
    let report = check_mlp(
        &params,
        &x,
        &labels(3, 3, 0),
        Activation::Relu,
        &GradCheckOptions {
            samples_per_tensor: 100,
            ..GradCheckOptions::default()
        },
    )
    .unwrap();
    eprintln!("{report}");
    assert!(report.max_rel_error() <= MAX_REL_ERROR, "{report}");
}
