//! Every softmax cross-entropy version against the CPU twin, forward and
//! backward and forward-only, with outputs poisoned before each dispatch.
//! Test names say the case: N×C and what is awkward about it.

mod batched;
mod subgroup;
mod totals;

use crate::common::{gpu, random_labels, random_scaled};
use ndarray::{Array2, ArrayD};
use proptest::prelude::*;
use wgpu_train::cpu::{self, Tolerance};
use wgpu_train::kernels::{SoftmaxXent, softmax_xent_with};
use wgpu_train::{Error, GpuLabels, GpuTensor, SoftmaxXentKernel};

/// exp and log differ by a few ulps between the GPU and the CPU, and the
/// sums run in different orders; a wrong index or formula is off by O(1).
fn loss_tolerance() -> Tolerance {
    Tolerance::new(1e-5, 1e-5)
}

/// dlogits are O(1/N), often much smaller: scale the absolute part.
fn dlogits_tolerance(n: usize) -> Tolerance {
    Tolerance::new(1e-6 / n as f32, 1e-4)
}

fn check_against_cpu(
    logits: &ArrayD<f32>,
    labels: &[u32],
    kernel: SoftmaxXentKernel,
    what: &str,
) -> Array2<f32> {
    let g = gpu();
    let (n, c) = (logits.shape()[0], logits.shape()[1]);
    let expected = cpu::softmax_xent(logits, labels).expect("cpu twin");
    let expected_dlogits = expected.dlogits.clone().expect("gradient");

    let gl = GpuTensor::from_array(g, logits).unwrap();
    let glabels = GpuLabels::new(g, labels, c).unwrap();
    let loss = GpuTensor::<f32>::zeros(g, &[n]).unwrap();
    let correct = GpuTensor::<u32>::zeros(g, &[n]).unwrap();
    let dlogits = GpuTensor::<f32>::zeros(g, &[n, c]).unwrap();
    for with_grad in [true, false] {
        loss.fill(g, f32::NAN).unwrap();
        correct.fill(g, u32::MAX).unwrap();
        dlogits.fill(g, f32::NAN).unwrap();
        let d = with_grad.then_some(&dlogits);
        let k = SoftmaxXent::new(g, &gl, &glabels, &loss, &correct, d, kernel).unwrap();
        k.run(g, 1).unwrap();
        let what = format!("{what} with {:?}, with_grad={with_grad}", k.kernel());
        cpu::assert_close(
            &format!("loss of {what}"),
            &loss.to_array(g).unwrap(),
            &expected.loss,
            loss_tolerance(),
        );
        assert_eq!(
            correct.read(g).unwrap(),
            expected.correct.to_vec(),
            "correct flags of {what}"
        );
        let d = dlogits.to_array(g).unwrap();
        if with_grad {
            cpu::assert_close(
                &format!("dlogits of {what}"),
                &d,
                &expected_dlogits,
                dlogits_tolerance(n),
            );
        } else {
            assert!(
                d.iter().all(|x| x.is_nan()),
                "the forward-only variant wrote dlogits ({what})"
            );
        }
    }
    expected_dlogits
}

fn check(n: usize, c: usize, scale: f32, kernel: SoftmaxXentKernel) {
    let seed = (n * 1000 + c) as u64;
    let logits = random_scaled(&[n, c], seed, scale);
    let labels = random_labels(n, c, seed + 1);
    check_against_cpu(&logits, &labels, kernel, &format!("{n}×{c}"));
}

macro_rules! xent_cases {
    ($($name:ident: $n:expr, $c:expr, $scale:expr;)*) => {
        mod v1_row { use super::*; $(#[test] fn $name() { check($n, $c, $scale, SoftmaxXentKernel::V1Row) })* }
        mod v2_workgroup { use super::*; $(#[test] fn $name() { check($n, $c, $scale, SoftmaxXentKernel::V2Workgroup) })* }
        mod auto { use super::*; $(#[test] fn $name() { check($n, $c, $scale, SoftmaxXentKernel::Auto) })* }
    };
}

xent_cases! {
    n1_c10_single_row: 1, 10, 3.0;
    n7_c10: 7, 10, 3.0;
    n128_c10_mnist_batch: 128, 10, 3.0;
    n129_c10_one_past_a_workgroup_of_rows: 129, 10, 3.0;
    n256_c10: 256, 10, 3.0;
    n1_c1000_single_row: 1, 1000, 3.0;
    n7_c1000: 7, 1000, 3.0;
    n129_c1000: 129, 1000, 3.0;
    n256_c1000: 256, 1000, 3.0;
    n5_c1_single_class: 5, 1, 3.0;
    n3_c63_just_under_a_workgroup_of_threads: 3, 63, 3.0;
    n3_c65_just_over_a_workgroup_of_threads: 3, 65, 3.0;
    n9_c10_logits_pm_1e4: 9, 10, 1e4;
    n9_c1000_logits_pm_1e4: 9, 1000, 1e4;
}

fn finite(a: &ArrayD<f32>) -> bool {
    a.iter().all(|x| x.is_finite())
}

/// Logits of ±1e4 overflow exp unless the row maximum is subtracted first.
fn check_extreme(kernel: SoftmaxXentKernel) {
    let g = gpu();
    for c in [10, 1000] {
        let n = 16;
        // Alternating ±1e4 with a little noise, plus one row of all −1e4 and
        // one with a single +1e4 among −1e4.
        let mut logits =
            random_scaled(&[n, c], 77, 1.0).mapv(|v| if v >= 0.0 { 1e4 - v } else { -1e4 - v });
        for r in 0..2 {
            for j in 0..c {
                logits[[r, j]] = -1e4;
            }
        }
        logits[[1, c / 2]] = 1e4;
        let labels = random_labels(n, c, 78);
        check_against_cpu(&logits, &labels, kernel, &format!("±1e4 logits, C={c}"));
        let out = softmax_xent_with(
            g,
            &GpuTensor::from_array(g, &logits).unwrap(),
            &GpuLabels::new(g, &labels, c).unwrap(),
            true,
            kernel,
        )
        .unwrap();
        let loss = out.loss.to_array(g).unwrap();
        let dlogits = out.dlogits.unwrap().to_array(g).unwrap();
        assert!(finite(&loss), "{kernel:?} C={c}: loss not finite: {loss}");
        assert!(finite(&dlogits), "{kernel:?} C={c}: dlogits not finite");
        // Row 1: one logit 2e4 above the rest.
        let expected_row1 = if labels[1] as usize == c / 2 {
            0.0
        } else {
            2e4
        };
        assert!(
            (loss[1] - expected_row1).abs() <= 1.0,
            "{kernel:?} C={c}: row with one dominant logit has loss {} (label {})",
            loss[1],
            labels[1]
        );
    }
}

/// All logits equal: loss ln C, softmax uniform, and the argmax tie goes to
/// index 0 on both sides.
fn check_all_equal(kernel: SoftmaxXentKernel) {
    let g = gpu();
    for (c, value) in [(10, 0.0f32), (1000, 1e4), (1000, -1e4), (7, 3.5)] {
        let n = 5;
        let logits = ArrayD::from_elem(vec![n, c], value);
        let labels: Vec<u32> = (0..n as u32).map(|i| i % 2).collect();
        check_against_cpu(&logits, &labels, kernel, &format!("all {value}, C={c}"));
        let out = softmax_xent_with(
            g,
            &GpuTensor::from_array(g, &logits).unwrap(),
            &GpuLabels::new(g, &labels, c).unwrap(),
            true,
            kernel,
        )
        .unwrap();
        let loss = out.loss.read(g).unwrap();
        let ln_c = (c as f32).ln();
        assert!(
            loss.iter().all(|l| (l - ln_c).abs() <= 1e-5 * ln_c),
            "{kernel:?}: all-equal logits give loss {loss:?}, expected ln {c} = {ln_c}"
        );
        assert_eq!(
            out.correct.read(g).unwrap(),
            vec![1, 0, 1, 0, 1],
            "{kernel:?}: ties must go to the lowest index (label 0 correct, label 1 not)"
        );
    }
}

#[test]
fn extreme_logits_pm_1e4_stay_finite_v1_row() {
    check_extreme(SoftmaxXentKernel::V1Row);
}

#[test]
fn extreme_logits_pm_1e4_stay_finite_v2_workgroup() {
    check_extreme(SoftmaxXentKernel::V2Workgroup);
}

#[test]
fn all_equal_logits_tie_to_lowest_index_v1_row() {
    check_all_equal(SoftmaxXentKernel::V1Row);
}

#[test]
fn all_equal_logits_tie_to_lowest_index_v2_workgroup() {
    check_all_equal(SoftmaxXentKernel::V2Workgroup);
}

/// Ties between two maxima that are not at index 0, and in different
/// threads' strides of the workgroup version (columns 70 and 6).
#[test]
fn tie_between_later_columns_goes_to_the_lower() {
    let g = gpu();
    let c = 100;
    let mut logits = random_scaled(&[2, c], 5, 1.0);
    for r in 0..2 {
        logits[[r, 6]] = 9.0;
        logits[[r, 70]] = 9.0;
    }
    let labels = vec![6, 70];
    for kernel in SoftmaxXentKernel::ALL {
        check_against_cpu(&logits, &labels, kernel, "tie at columns 6 and 70");
        let out = softmax_xent_with(
            g,
            &GpuTensor::from_array(g, &logits).unwrap(),
            &GpuLabels::new(g, &labels, c).unwrap(),
            false,
            kernel,
        )
        .unwrap();
        assert_eq!(out.correct.read(g).unwrap(), vec![1, 0], "{kernel:?}");
    }
}

/// Inputs and outputs as windows into larger buffers at odd offsets, as a
/// minibatch of a dataset's labels and a flat gradient buffer will be.
#[test]
fn views_at_odd_offsets() {
    let g = gpu();
    let (n, c) = (13, 37);
    let logits = random_scaled(&[n, c], 9, 4.0);
    let labels = random_labels(n, c, 10);
    let expected = cpu::softmax_xent(&logits, &labels).unwrap();

    let mut flat = vec![0.5f32; 5 + n * c];
    flat[5..].copy_from_slice(logits.as_slice().unwrap());
    let all = GpuTensor::from_slice(g, &[flat.len()], &flat).unwrap();
    let glogits = all.view(5, &[n, c]).unwrap();
    let mut all_labels = vec![0u32; 3];
    all_labels.extend(&labels);
    all_labels.push(1);
    let glabels = GpuLabels::new(g, &all_labels, c)
        .unwrap()
        .view(3, n)
        .unwrap();

    let out = GpuTensor::<f32>::zeros(g, &[11 + n + n * c]).unwrap();
    let correct_all = GpuTensor::<u32>::zeros(g, &[2 + n]).unwrap();
    for kernel in SoftmaxXentKernel::ALL {
        out.fill(g, f32::NAN).unwrap();
        correct_all.fill(g, u32::MAX).unwrap();
        let loss = out.view(11, &[n]).unwrap();
        let dlogits = out.view(11 + n, &[n, c]).unwrap();
        let correct = correct_all.view(2, &[n]).unwrap();
        SoftmaxXent::new(
            g,
            &glogits,
            &glabels,
            &loss,
            &correct,
            Some(&dlogits),
            kernel,
        )
        .unwrap()
        .run(g, 1)
        .unwrap();
        cpu::assert_close(
            kernel.name(),
            &loss.to_array(g).unwrap(),
            &expected.loss,
            loss_tolerance(),
        );
        cpu::assert_close(
            kernel.name(),
            &dlogits.to_array(g).unwrap(),
            expected.dlogits.as_ref().unwrap(),
            dlogits_tolerance(n),
        );
        assert_eq!(correct.read(g).unwrap(), expected.correct.to_vec());
        let head = out.read(g).unwrap();
        assert!(
            head[..11].iter().all(|x| x.is_nan()),
            "{kernel:?} wrote before its view"
        );
        assert_eq!(&correct_all.read(g).unwrap()[..2], &[u32::MAX, u32::MAX]);
    }
}

/// Two runs on the same inputs give the same bits (the workgroup version's
/// trees run in a fixed order).
#[test]
fn repeated_runs_give_identical_bits() {
    let g = gpu();
    let (n, c) = (129, 1000);
    let logits = GpuTensor::from_array(g, &random_scaled(&[n, c], 11, 5.0)).unwrap();
    let labels = GpuLabels::new(g, &random_labels(n, c, 12), c).unwrap();
    for kernel in SoftmaxXentKernel::ALL {
        let a = softmax_xent_with(g, &logits, &labels, true, kernel).unwrap();
        let b = softmax_xent_with(g, &logits, &labels, true, kernel).unwrap();
        let bits = |t: &GpuTensor<f32>| -> Vec<u32> {
            t.read(g).unwrap().iter().map(|x| x.to_bits()).collect()
        };
        assert_eq!(bits(&a.loss), bits(&b.loss), "{kernel:?} loss");
        assert_eq!(
            bits(a.dlogits.as_ref().unwrap()),
            bits(b.dlogits.as_ref().unwrap()),
            "{kernel:?} dlogits"
        );
    }
}

#[test]
fn label_equal_to_class_count_is_an_error_before_any_dispatch() {
    let g = gpu();
    let err = GpuLabels::new(g, &[0u32, 3, 10, 2], 10).unwrap_err();
    assert!(
        matches!(err, Error::Label { row: 2, ref label, classes: 10 } if label == "10"),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("row 2") && msg.contains("10"), "{msg}");

    let logits = Array2::<f32>::zeros((4, 10));
    let err = cpu::softmax_xent(&logits, &[0, 3, 10, 2]).unwrap_err();
    assert!(matches!(err, Error::Label { row: 2, .. }), "{err:?}");
    let err = cpu::softmax_xent_eval(&logits, &[0, 3, 2, u32::MAX]).unwrap_err();
    assert!(matches!(err, Error::Label { row: 3, .. }), "{err:?}");
}

#[test]
fn labels_that_do_not_fit_u32_are_errors() {
    let g = gpu();
    let err = GpuLabels::new(g, &[1i64, -1], 10).unwrap_err();
    assert!(
        matches!(err, Error::Label { row: 1, ref label, .. } if label == "-1"),
        "{err:?}"
    );
    let err = GpuLabels::new(g, &[1usize << 33], 10).unwrap_err();
    assert!(matches!(err, Error::Label { row: 0, .. }), "{err:?}");
    // u8 labels, as MNIST and CIFAR store them, convert.
    let ok = GpuLabels::new(g, &[9u8, 0, 3], 10).unwrap();
    assert_eq!(ok.read(g).unwrap(), vec![9, 0, 3]);
}

#[test]
fn writing_a_bad_minibatch_of_labels_fails_and_keeps_the_old_ones() {
    let g = gpu();
    let labels = GpuLabels::new(g, &[1u32, 2, 3], 10).unwrap();
    let err = labels.write(g, &[4u32, 11, 5]).unwrap_err();
    assert!(matches!(err, Error::Label { row: 1, .. }), "{err:?}");
    assert_eq!(labels.read(g).unwrap(), vec![1, 2, 3]);
    assert!(matches!(
        labels.write(g, &[1u32]).unwrap_err(),
        Error::Shape { .. }
    ));
}

#[test]
fn shape_errors() {
    let g = gpu();
    let logits = GpuTensor::<f32>::zeros(g, &[4, 10]).unwrap();
    let labels = GpuLabels::new(g, &[0u32; 4], 10).unwrap();
    let loss = GpuTensor::<f32>::zeros(g, &[4]).unwrap();
    let correct = GpuTensor::<u32>::zeros(g, &[4]).unwrap();
    let k = SoftmaxXentKernel::Auto;
    let shape_err = |r: wgpu_train::Result<SoftmaxXent>| match r {
        Err(Error::Shape { msg, .. }) => msg,
        Err(e) => panic!("expected a shape error, got {e:?}"),
        Ok(_) => panic!("expected a shape error"),
    };
    // Three labels for four rows.
    let three = GpuLabels::new(g, &[0u32; 3], 10).unwrap();
    shape_err(SoftmaxXent::new(
        g, &logits, &three, &loss, &correct, None, k,
    ));
    // Labels checked against another class count.
    let other = GpuLabels::new(g, &[0u32; 4], 1000).unwrap();
    let msg = shape_err(SoftmaxXent::new(
        g, &logits, &other, &loss, &correct, None, k,
    ));
    assert!(msg.contains("1000"), "{msg}");
    // 1-D logits.
    let flat = logits.reshape(&[40]).unwrap();
    shape_err(SoftmaxXent::new(
        g, &flat, &labels, &loss, &correct, None, k,
    ));
    // dlogits of the wrong shape.
    let bad = GpuTensor::<f32>::zeros(g, &[10, 4]).unwrap();
    shape_err(SoftmaxXent::new(
        g,
        &logits,
        &labels,
        &loss,
        &correct,
        Some(&bad),
        k,
    ));
    // dlogits in the logits' buffer.
    let msg = shape_err(SoftmaxXent::new(
        g,
        &logits,
        &labels,
        &loss,
        &correct,
        Some(&logits),
        k,
    ));
    assert!(msg.contains("shares a buffer"), "{msg}");
    // CPU twin: labels count.
    let err = cpu::softmax_xent(&Array2::<f32>::zeros((4, 10)), &[0, 1]).unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err:?}");
}

#[test]
fn auto_choice_is_v1_on_software_adapters() {
    let g = gpu();
    let shape = wgpu_train::SoftmaxXentShape::resolve(&[128, 1000], &[128]).unwrap();
    let chosen = SoftmaxXentKernel::choose(g, &shape);
    if g.is_software() {
        assert_eq!(chosen, SoftmaxXentKernel::V1Row);
    } else {
        assert_eq!(chosen, SoftmaxXentKernel::V2Workgroup);
    }
}

proptest! {
    #![proptest_config(crate::common::proptest_config(24))]
    #[test]
    fn matches_cpu_for_any_shape(
        n in 1usize..=40,
        c in 1usize..=300,
        scale in prop_oneof![Just(1.0f32), Just(30.0), Just(1e4)],
        version in 0usize..2,
    ) {
        check(n, c, scale, SoftmaxXentKernel::ALL[version]);
    }
}
