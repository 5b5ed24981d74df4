//! Shared by `cpu::model_gradient` and `gpu::model_gradient`: each model's
//! training program on a fresh random batch against the f64 reference
//! gradient of `cpu::gradcheck` (`mlp_loss`, `linear_softmax_loss`), which is
//! written without the program and proved right by finite differences in
//! `cpu::gradcheck`. The whole flat gradient buffer is compared, tensor by
//! tensor, after the runner poisoned it with NaN: a transposed operand, a
//! gradient written to the wrong offset or a missing bias term fails here,
//! while GPU-vs-CPU parity (both runners execute the same program) cannot
//! see it.

use super::{random, random_labels};
use ndarray::ArrayView2;
use ndarray::{Array2, ArrayView1, Ix2, s};
use wgpu_train::Activation;
use wgpu_train::Result;
use wgpu_train::cpu::Tolerance;
use wgpu_train::cpu::gradcheck::{MlpParams, linear_softmax_loss, linear_svm_loss, mlp_loss};
use wgpu_train::model::{LinearLoss, LinearSoftmax, Mlp, Model};
use wgpu_train::train::Gradient;

const BATCHES: [usize; 3] = [1, 7, 128];

/// The model and how to compute its reference.
enum Case {
    Mlp(Mlp, Activation),
    Linear(LinearSoftmax),
}

impl Case {
    fn model(&self) -> &dyn Model {
        match self {
            Case::Mlp(m, _) => m,
            Case::Linear(m) => m,
        }
    }

    /// Mean loss and flat gradient in f64, laid out as the model's parameters.
    fn reference(&self, x: &Array2<f32>, labels: &[u32], params: &[f32]) -> (f64, Vec<f64>) {
        let specs = self.model().parameters();
        let tensor = |i: usize| -> Vec<f64> {
            let p = &specs[i];
            params[p.offset..p.offset + p.len()]
                .iter()
                .map(|&v| f64::from(v))
                .collect()
        };
        let x64 = x.mapv(f64::from);
        let mut flat = vec![f64::NAN; params.len()];
        match self {
            Case::Mlp(_, activation) => {
                let layers = specs.len() / 2;
                let mut mp = MlpParams {
                    weights: Vec::new(),
                    biases: Vec::new(),
                };
                for l in 0..layers {
                    let w = &specs[2 * l];
                    mp.weights.push(
                        Array2::from_shape_vec((w.shape[0], w.shape[1]), tensor(2 * l)).unwrap(),
                    );
                    mp.biases.push(tensor(2 * l + 1).into());
                }
                let pass = mlp_loss(&mp, x64.view(), labels, *activation).unwrap();
                let grads = pass.weight_grads.iter().zip(&pass.bias_grads);
                for (l, (dw, db)) in grads.enumerate() {
                    let (w, b) = (&specs[2 * l], &specs[2 * l + 1]);
                    flat[w.offset..w.offset + w.len()].copy_from_slice(dw.as_slice().unwrap());
                    flat[b.offset..b.offset + b.len()].copy_from_slice(db.as_slice().unwrap());
                }
                (pass.loss, flat)
            }
            Case::Linear(m) => {
                let w = &specs[0];
                let w64 = Array2::from_shape_vec((w.shape[0], w.shape[1]), tensor(0)).unwrap();
                // The reference folds the bias in itself: x without its 1.
                let pixels = x.ncols() - 1;
                let x = x64.slice(s![.., ..pixels]);
                // The f64 reference of the model's own loss.
                let reference = match m.loss() {
                    LinearLoss::Softmax => linear_softmax_loss,
                    LinearLoss::Svm => linear_svm_loss,
                };
                let (loss, dw) = reference(w64.view(), x, labels).unwrap();
                flat.copy_from_slice(dw.as_slice().unwrap());
                (loss, flat)
            }
        }
    }

    /// A random batch of `rows` (inputs in [0, 1), the bias column's 1 where
    /// the model wants it), labels, and parameters with non-zero biases.
    fn batch(&self, rows: usize, seed: u64) -> (Array2<f32>, Vec<u32>, Vec<f32>) {
        let m = self.model();
        let pixels = m.input_dim() - usize::from(m.appends_one());
        let mut x = Array2::<f32>::ones((rows, m.input_dim()));
        let pix = random(&[rows, pixels], seed).mapv(|v| 0.5 * (v + 1.0));
        x.slice_mut(s![.., ..pixels])
            .assign(&pix.into_dimensionality::<Ix2>().unwrap());
        let labels = random_labels(rows, m.classes(), seed + 1);
        let specs = m.parameters();
        let mut params = Vec::new();
        for (i, p) in specs.iter().enumerate() {
            // nn.Linear's U(−1/√fan_in, 1/√fan_in), biases (which follow
            // their weight) included, so a misplaced bias shows.
            let fan_in = match p.shape[..] {
                [_, fan_in] => fan_in,
                _ => specs[i - 1].shape[1],
            };
            let bound = 1.0 / (fan_in as f32).sqrt();
            params.extend(
                random(&[p.len()], seed + 10 + i as u64)
                    .iter()
                    .map(|v| v * bound),
            );
        }
        (x, labels, params)
    }
}

fn cases() -> Vec<(&'static str, Case)> {
    let mlp = |sizes: &[usize], a| Case::Mlp(Mlp::new(sizes, a).unwrap(), a);
    vec![
        (
            "mlp-784-128-128-10-sigmoid",
            mlp(&[784, 128, 128, 10], Activation::Sigmoid),
        ),
        (
            "mlp-784-128-128-10-relu",
            mlp(&[784, 128, 128, 10], Activation::Relu),
        ),
        // Non-square, no power of two: a transposed weight cannot fit by chance.
        (
            "mlp-29-13-7-5-sigmoid",
            mlp(&[29, 13, 7, 5], Activation::Sigmoid),
        ),
        ("mlp-29-13-7-5-relu", mlp(&[29, 13, 7, 5], Activation::Relu)),
        (
            "linear-10x785",
            Case::Linear(LinearSoftmax::new(784, 10).unwrap()),
        ),
        (
            "linear-7x3073",
            Case::Linear(LinearSoftmax::new(3072, 7).unwrap()),
        ),
        (
            "linear-svm-10x785",
            Case::Linear(LinearSoftmax::with_loss(784, 10, LinearLoss::Svm).unwrap()),
        ),
        (
            "linear-svm-7x3073",
            Case::Linear(LinearSoftmax::with_loss(3072, 7, LinearLoss::Svm).unwrap()),
        ),
    ]
}

/// Every parameter tensor of the flat gradient against the reference, with
/// an absolute tolerance scaled to the tensor (the first layer's gradients
/// are orders of magnitude below the last's), and the loss.
fn assert_matches(what: &str, case: &Case, rows: usize, got: &Gradient, want: &(f64, Vec<f64>)) {
    let specs = case.model().parameters();
    let covered: usize = specs.iter().map(|p| p.len()).sum();
    assert_eq!(got.grads.len(), covered, "{what}: gradient buffer length");
    for p in &specs {
        let range = p.offset..p.offset + p.len();
        let expected: Vec<f32> = want.1[range.clone()].iter().map(|&v| v as f32).collect();
        let scale = expected.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(
            scale > 0.0,
            "{what} {}: reference gradient is all zeros",
            p.name
        );
        wgpu_train::cpu::assert_close(
            &format!("{what}, {} rows, {}", rows, p.name),
            &ArrayView1::from(&got.grads[range]),
            &ArrayView1::from(&expected[..]),
            Tolerance::new(1e-5 * scale, 1e-4),
        );
    }
    let loss = f64::from(got.loss_sum) / rows as f64;
    assert!(
        (loss - want.0).abs() <= 1e-5 * want.0.abs().max(1.0),
        "{what}, {rows} rows: mean loss {loss}, reference {}",
        want.0
    );
}

pub fn check_all(device: &str, run: impl Fn(&dyn Model, &Array2<f32>, &[u32], &[f32]) -> Gradient) {
    for (name, case) in cases() {
        for (i, &rows) in BATCHES.iter().enumerate() {
            let (x, labels, params) = case.batch(rows, 1000 * i as u64 + 7);
            let want = case.reference(&x, &labels, &params);
            let got = run(case.model(), &x, &labels, &params);
            assert_matches(&format!("{device} {name}"), &case, rows, &got, &want);
        }
    }
}

/// `run` (either runner) refuses a batch whose rows, width, labels or
/// parameter count do not fit the model.
pub fn assert_rejects_bad_batches(
    run: impl Fn(&dyn Model, ArrayView2<'_, f32>, &[u32], &[f32]) -> Result<Gradient>,
) {
    let model = Mlp::new(&[5, 3, 2], Activation::Relu).unwrap();
    let x = Array2::<f32>::ones((4, 5));
    let params = vec![0.5; 3 * 5 + 3 + 2 * 3 + 2];
    assert!(run(&model, x.view(), &[0, 1, 0, 1], &params).is_ok());
    for bad in [
        run(&model, x.view(), &[0, 1, 0], &params),
        run(&model, x.view(), &[0, 1, 0, 1], &params[1..]),
        run(&model, x.slice(s![.., ..4]), &[0, 1, 0, 1], &params),
        run(&model, x.view(), &[0, 1, 2, 1], &params),
    ] {
        assert!(bad.is_err(), "accepted a bad batch: {bad:?}");
    }
}
