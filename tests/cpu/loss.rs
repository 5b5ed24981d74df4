//! The CPU twins of `shaders/loss.wgsl` (`cpu::loss`: mse, the multiclass
//! SVM hinge, logistic) proved right: their gradients against f64 centred
//! finite differences (Richardson-extrapolated, `cpu::gradcheck`) on fresh
//! random inputs, the hinge's kinks stepped around; the linear SVM
//! classifier 10×3073 checked like the softmax one; known values (CS231n's
//! worked example, torch's formulas); bad input refused with an error.

use crate::common::{random, random_labels};
use ndarray::{Array2, ArrayD, Ix2};
use wgpu_train::Error;
use wgpu_train::cpu::gradcheck::{
    Evaluation, GradCheckOptions, Parameter, check_gradients, check_linear_svm, hinge_pattern,
};
use wgpu_train::cpu::loss::{self, LossOutput};

const MAX_REL_ERROR: f64 = 1e-6;

fn random64(shape: &[usize], seed: u64, scale: f64) -> ArrayD<f64> {
    random(shape, seed).mapv(|v| f64::from(v) * scale)
}

/// The mean loss over the batch, as the trainer reports it.
fn mean(out: &LossOutput<f64>) -> f64 {
    out.loss.sum() / out.loss.len() as f64
}

/// Checks `grad` (the twin's gradient of the mean loss at `x`) against
/// centred differences of `eval` (the mean loss and its kink pattern).
fn check_input_gradient(
    what: &str,
    x: &ArrayD<f64>,
    grad: ArrayD<f64>,
    eval: impl Fn(&Array2<f64>) -> Evaluation,
) {
    let param = Parameter {
        name: what.into(),
        value: x.clone(),
        grad,
    };
    let opts = GradCheckOptions {
        samples_per_tensor: 200,
        ..GradCheckOptions::default()
    };
    let report = check_gradients(
        &[param],
        |v| {
            Ok(eval(
                &v[0].view().into_dimensionality::<Ix2>().unwrap().to_owned(),
            ))
        },
        &opts,
    )
    .unwrap();
    eprintln!("{what}:\n{report}");
    assert!(
        report.checked() >= 50,
        "{what}: too few coordinates\n{report}"
    );
    assert!(
        report.max_rel_error() <= MAX_REL_ERROR,
        "{what} gradient check failed:\n{report}"
    );
}

fn smooth(loss: f64) -> Evaluation {
    Evaluation {
        loss,
        kinks: Vec::new(),
    }
}

#[test]
fn mse_gradient_7x13_matches_finite_differences() {
    let x = random64(&[7, 13], 1, 2.0);
    let t = random64(&[7, 13], 2, 2.0);
    let out = loss::mse(&x, &t, true).unwrap();
    check_input_gradient("mse 7×13", &x, out.grad.unwrap().into_dyn(), |v| {
        smooth(mean(&loss::mse(v, &t, false).unwrap()))
    });
}

#[test]
fn logistic_gradient_7x13_matches_finite_differences() {
    let x = random64(&[7, 13], 3, 4.0);
    let t = random64(&[7, 13], 4, 1.0).mapv(|v| 0.5 * (v + 1.0));
    let out = loss::logistic(&x, &t, true).unwrap();
    check_input_gradient("logistic 7×13", &x, out.grad.unwrap().into_dyn(), |v| {
        smooth(mean(&loss::logistic(v, &t, false).unwrap()))
    });
}

#[test]
fn hinge_gradient_9x10_matches_finite_differences() {
    let x = random64(&[9, 10], 5, 2.0);
    let labels = random_labels(9, 10, 6);
    let out = loss::hinge(&x, &labels, true).unwrap();
    // Both sides of the kink occur: some margins on, some off.
    let pattern = hinge_pattern(&x.clone().into_dimensionality().unwrap(), &labels);
    assert!(pattern.iter().any(|&on| on) && pattern.iter().any(|&on| !on));
    check_input_gradient("hinge 9×10", &x, out.grad.unwrap().into_dyn(), |v| {
        Evaluation {
            loss: mean(&loss::hinge(v, &labels, false).unwrap()),
            kinks: hinge_pattern(v, &labels),
        }
    });
}

#[test]
fn linear_svm_10x3073_with_bias_column() {
    let w = random64(&[10, 3073], 7, 1e-2)
        .into_dimensionality::<Ix2>()
        .unwrap();
    let x = random64(&[8, 3072], 8, 1.0)
        .into_dimensionality::<Ix2>()
        .unwrap();
    let labels: Vec<u32> = (0..8).map(|i| (i * 7 + 3) % 10).collect();
    let report = check_linear_svm(&w, &x, &labels, &GradCheckOptions::default()).unwrap();
    eprintln!("{report}");
    assert_eq!(
        report.tensors[1].checked, 10,
        "every bias coordinate checked"
    );
    assert!(
        report.max_rel_error() <= MAX_REL_ERROR,
        "linear SVM gradient check failed:\n{report}"
    );
}

/// CS231n's worked example (lecture 3): three images' scores over cat, car,
/// frog give losses 2.9, 0 and 12.9, mean 5.27.
#[test]
fn hinge_reproduces_cs231n_worked_example() {
    let s = ndarray::array![[3.2f64, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]];
    let out = loss::hinge(&s, &[0, 1, 2], true).unwrap();
    for (a, b) in out.loss.iter().zip([2.9, 0.0, 12.9]) {
        assert!((a - b).abs() < 1e-12, "{} vs {b}", out.loss);
    }
    assert!((mean(&out) - 5.266_666_666_666_667).abs() < 1e-12);
    assert_eq!(out.correct.unwrap().to_vec(), vec![0, 1, 0]);
    // Row 0: only the car margin is on.
    let g = out.grad.unwrap();
    assert_eq!(g.row(0).to_vec(), vec![-1.0 / 3.0, 1.0 / 3.0, 0.0]);
}

/// torch.nn.MSELoss and BCEWithLogitsLoss on hand-computed values.
#[test]
fn mse_and_logistic_known_values() {
    let p = ndarray::array![[1.5f64, 0.0], [-1.0, 2.0]];
    let t = ndarray::array![[1.0f64, 0.0], [1.0, 1.0]];
    let m = loss::mse(&p, &t, true).unwrap();
    assert_eq!(m.loss.to_vec(), vec![0.125, 2.5]);
    assert_eq!(m.grad.unwrap()[[1, 0]], 2.0 * -2.0 / 4.0);
    let l = loss::logistic(&p, &t, true).unwrap();
    let bce = |z: f64, t: f64| {
        -(t * (1.0 / (1.0 + (-z).exp())).ln() + (1.0 - t) * (1.0 / (1.0 + z.exp())).ln())
    };
    let want0 = (bce(1.5, 1.0) + bce(0.0, 0.0)) / 2.0;
    assert!(
        (l.loss[0] - want0).abs() < 1e-15,
        "{} vs {want0}",
        l.loss[0]
    );
    // z = 0 predicts class 0, so row 0 (targets 1, 0) is right and row 1
    // (z = −1 against 1) is not.
    assert_eq!(l.correct.unwrap().to_vec(), vec![1, 0]);
}

#[test]
fn bad_input_is_an_error() {
    let x = Array2::<f32>::zeros((3, 4));
    let t_bad = Array2::<f32>::zeros((3, 5));
    assert!(matches!(
        loss::mse(&x, &t_bad, true),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        loss::hinge(&x, &[0, 4, 1], true),
        Err(Error::Label { row: 1, .. })
    ));
    assert!(matches!(
        loss::hinge(&x, &[0, 1], true),
        Err(Error::Shape { .. })
    ));
    let mut t = Array2::<f32>::zeros((3, 4));
    t[[2, 1]] = 1.5;
    let e = loss::logistic(&x, &t, true).unwrap_err();
    assert!(e.to_string().contains("row 2, column 1"), "{e}");
    t[[2, 1]] = f32::NAN;
    assert!(loss::logistic(&x, &t, true).is_err());
    let empty = Array2::<f32>::zeros((0, 4));
    assert!(loss::mse(&empty, &empty, false).is_err());
    let one_d = ndarray::Array1::<f32>::zeros(4);
    assert!(loss::mse(&one_d, &one_d, false).is_err());
}

/// `train_linear --loss`: an unknown loss and the SVM with a second-order
/// optimizer are refused with a message, before any data is read.
#[test]
fn train_linear_loss_flag_rejects_what_it_cannot_train() {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let path = dir.join("examples").join("train_linear");
    assert!(path.exists(), "{} was not built", path.display());
    for (args, needle) in [
        (&["--loss", "hinge"][..], "invalid value 'hinge'"),
        (
            &["--loss", "svm", "--optimizer", "lbfgs", "--synthetic"][..],
            "softmax loss only",
        ),
    ] {
        let out = std::process::Command::new(&path)
            .args(args)
            .env("RUST_BACKTRACE", "0")
            .output()
            .expect("the example runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(!stderr.contains("panicked"), "{args:?}:\n{stderr}");
        assert!(
            stderr.contains(needle),
            "{args:?}: no {needle:?} in\n{stderr}"
        );
    }
    let help = std::process::Command::new(&path)
        .arg("--help")
        .output()
        .expect("the example runs");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("--loss <LOSS>") && help.contains("svm"),
        "{help}"
    );
}

/// The SVM classifier's programs carry the hinge op and no softmax, in
/// training (with the gradient) and evaluation (without), fused or not: a
/// swap here would leave GPU-vs-CPU parity intact (both runners execute the
/// same program), so it is checked on the program itself. The softmax
/// classifier keeps its name and ops.
#[test]
fn svm_programs_use_the_hinge_op_and_softmax_keeps_its_own() {
    use wgpu_train::model::{LinearLoss, LinearSoftmax, Model, Op};
    let svm = LinearSoftmax::with_loss(784, 10, LinearLoss::Svm).unwrap();
    let softmax = LinearSoftmax::new(784, 10).unwrap();
    assert_eq!(svm.name(), "linear-svm-10x785");
    assert_eq!(softmax.name(), "linear-10x785");
    assert_eq!(softmax.loss(), LinearLoss::Softmax);
    let hinge = |p: &wgpu_train::model::Program| {
        p.ops.iter().find_map(|op| match op {
            Op::Hinge { dscores, .. } => Some(dscores.is_some()),
            _ => None,
        })
    };
    let has_softmax = |p: &wgpu_train::model::Program| {
        p.ops.iter().any(|op| matches!(op, Op::SoftmaxXent { .. }))
    };
    for (p, grad) in [
        (svm.train_program(7), true),
        (svm.fused_train_program(7), true),
        (svm.eval_program(7), false),
        (svm.fused_eval_program(7), false),
    ] {
        assert_eq!(hinge(&p), Some(grad), "{p:?}");
        assert!(!has_softmax(&p), "{p:?}");
    }
    for p in [softmax.train_program(7), softmax.eval_program(7)] {
        assert_eq!(hinge(&p), None);
        assert!(has_softmax(&p));
    }
}
