//! Softmax cross-entropy v3 with the batch totals: against the CPU twin,
//! and the same bits as v1 followed by the loss/correct sum.

use crate::common::{bits, gpu, random_labels, random_scaled};
use ndarray::Array1;
use proptest::prelude::*;
use wgpu_train::cpu::{self, Tolerance};
use wgpu_train::kernels::{LossCorrectSum, SoftmaxXent};
use wgpu_train::{GpuLabels, GpuTensor};

// ---------------------------------------------------- softmax with totals

/// v3 against the twin: per-row outputs and dlogits in NaN-poisoned views,
/// totals that start from an earlier batch's (accumulation).
fn check_softmax_totals(n: usize, c: usize, scale: f32, with_grad: bool) {
    let g = gpu();
    let logits = random_scaled(&[n, c], (n * 7 + c) as u64, scale);
    let labels = random_labels(n, c, (n + c) as u64);
    let mut loss = Array1::<f32>::zeros(n);
    let mut correct = vec![0u32; n];
    let mut dlogits = ndarray::Array2::<f32>::zeros((n, c));
    let (mut total, mut count) = (12.5f32, 3u32);
    cpu::softmax_xent_totals_into(
        &logits,
        &labels,
        loss.view_mut(),
        &mut correct,
        with_grad.then(|| dlogits.view_mut()),
        &mut total,
        &mut count,
    )
    .unwrap();

    let gl = GpuTensor::from_array(g, &logits).unwrap();
    let glabels = GpuLabels::new(g, &labels, c).unwrap();
    let out = GpuTensor::<f32>::zeros(g, &[2 + n + 1 + n * c]).unwrap();
    out.fill(g, f32::NAN).unwrap();
    let gloss = out.view(2, &[n]).unwrap();
    let gd = out.view(3 + n, &[n, c]).unwrap();
    let flags = GpuTensor::<u32>::zeros(g, &[n + 1]).unwrap();
    flags.fill(g, u32::MAX).unwrap();
    let gcorrect = flags.view(1, &[n]).unwrap();
    let totals = GpuTensor::<f32>::from_slice(g, &[3], &[f32::NAN, 12.5, f32::NAN]).unwrap();
    let counts = GpuTensor::<u32>::from_slice(g, &[2], &[3, u32::MAX]).unwrap();
    let (gtotal, gcount) = (totals.view(1, &[1]).unwrap(), counts.view(0, &[1]).unwrap());
    SoftmaxXent::with_totals(
        g,
        &gl,
        &glabels,
        &gloss,
        &gcorrect,
        with_grad.then_some(&gd),
        &gtotal,
        &gcount,
    )
    .unwrap()
    .run(g, 1)
    .unwrap();
    let what = format!("{n}×{c} scale {scale} grad {with_grad}");
    cpu::assert_close(
        &format!("{what}: loss"),
        &gloss.to_array(g).unwrap(),
        &loss.into_dyn(),
        Tolerance::new(1e-5, 1e-5),
    );
    assert_eq!(gcorrect.read(g).unwrap(), correct, "{what}: correct");
    if with_grad {
        cpu::assert_close(
            &format!("{what}: dlogits"),
            &gd.to_array(g).unwrap(),
            &dlogits.into_dyn(),
            Tolerance::new(1e-6, 1e-4),
        );
    } else {
        assert!(gd.read(g).unwrap().iter().all(|x| x.is_nan()), "{what}");
    }
    let t = totals.read(g).unwrap();
    cpu::assert_close(
        &format!("{what}: total"),
        &ndarray::arr1(&[t[1]]),
        &ndarray::arr1(&[total]),
        Tolerance::new(1e-6 * n as f32, 1e-5),
    );
    assert!(t[0].is_nan() && t[2].is_nan(), "{what}: {t:?}");
    assert_eq!(counts.read(g).unwrap(), vec![count, u32::MAX], "{what}");
    let raw = out.read(g).unwrap();
    assert!(raw[..2].iter().all(|x| x.is_nan()) && raw[2 + n].is_nan());
    assert_eq!(flags.read(g).unwrap()[0], u32::MAX);
}

#[test]
fn softmax_totals_matches_cpu() {
    for (n, c) in [
        (1, 1),
        (1, 10),
        (7, 7),
        (128, 10),
        (255, 10),
        (256, 10),
        (257, 3),
        (1000, 10),
        (3073, 2),
        (784, 100),
    ] {
        check_softmax_totals(n, c, 5.0, true);
        check_softmax_totals(n, c, 5.0, false);
    }
}

#[test]
fn softmax_totals_extreme_logits_stay_finite() {
    check_softmax_totals(33, 10, 1e4, true);
}

/// v3 is v1 and the loss/correct sum in one dispatch, in the same order.
#[test]
fn softmax_totals_is_v1_and_the_totals_bit_for_bit() {
    let g = gpu();
    for (n, c) in [(128, 10), (1000, 10), (300, 17)] {
        let logits = GpuTensor::from_array(g, &random_scaled(&[n, c], 9, 4.0)).unwrap();
        let labels = GpuLabels::new(g, &random_labels(n, c, 10), c).unwrap();
        let run = |fused: bool| {
            let loss = GpuTensor::<f32>::zeros(g, &[n]).unwrap();
            let correct = GpuTensor::<u32>::zeros(g, &[n]).unwrap();
            let d = GpuTensor::<f32>::zeros(g, &[n, c]).unwrap();
            let total = GpuTensor::<f32>::from_slice(g, &[1], &[0.75]).unwrap();
            let count = GpuTensor::<u32>::from_slice(g, &[1], &[2]).unwrap();
            if fused {
                SoftmaxXent::with_totals(
                    g,
                    &logits,
                    &labels,
                    &loss,
                    &correct,
                    Some(&d),
                    &total,
                    &count,
                )
                .unwrap()
                .run(g, 2)
                .unwrap();
            } else {
                let sm = SoftmaxXent::new(
                    g,
                    &logits,
                    &labels,
                    &loss,
                    &correct,
                    Some(&d),
                    wgpu_train::SoftmaxXentKernel::V1Row,
                )
                .unwrap();
                let sum = LossCorrectSum::new(g, &loss, &correct, &total, &count, true).unwrap();
                for _ in 0..2 {
                    sm.run(g, 1).unwrap();
                    sum.run(g, 1).unwrap();
                }
            }
            (
                bits(&loss.read(g).unwrap()),
                bits(&d.read(g).unwrap()),
                bits(&total.read(g).unwrap()),
                count.read(g).unwrap(),
            )
        };
        assert_eq!(run(true), run(false), "{n}×{c}");
    }
}

proptest! {
    #![proptest_config(crate::common::proptest_config(16))]
    #[test]
    fn softmax_totals_matches_cpu_for_any_shape(
        n in 1usize..=600,
        c in 1usize..=40,
        with_grad: bool,
    ) {
        check_softmax_totals(n, c, 3.0, with_grad);
    }
}
