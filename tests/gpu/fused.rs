//! The fused kernels of the training step (issue 13) against their CPU
//! twins, and against the unfused kernels they replace, on fresh random
//! inputs with every output poisoned with NaN before each dispatch:
//!
//! - `ones_column::*`: the matmul's virtual column of ones (weight and bias
//!   gradient in one product), every version; its sums are the same bits as
//!   the serial column sum they replace.
//! - `activation_grad::*`: the matmul's `⊙ act'(H)` epilogue (input gradient
//!   through the activation), every version; the same bits as the product
//!   followed by the activation backward kernel.
//! - `softmax_totals_*`: softmax cross-entropy v3 with the batch totals; the
//!   same bits as v1 followed by the loss/correct sum.
//! - `planned_optimizer_*`: the optimizer v2 (host-planned step scalars, no
//!   `advance` dispatch) against the CPU twin and against v1.
//! - `programs_*`: the fused training programs against the reference ones,
//!   and the dispatch counts of both.

use crate::common::{gpu, random, random_labels, random_scaled};
use ndarray::{Array1, Ix1, Ix2};
use proptest::prelude::*;
use wgpu_train::cpu::{self, CpuOptimizer, Tolerance};
use wgpu_train::kernels::{
    ActivationBackward, ColumnSum, Gather, GatherMatmul, GatherOptions, GpuDataset, GpuOptimizer,
    LayerBackward, LossCorrectSum, Matmul, MatmulEpilogue, SoftmaxXent,
};
use wgpu_train::model::{LinearSoftmax, Mlp, Model};
use wgpu_train::optim::{Adam, OptimizerConfig, RmsProp, Schedule, Sgd};
use wgpu_train::train::{self, CpuEngine, Engine, GpuEngine, TrainConfig, TrainData};
use wgpu_train::{
    Activation, ColumnSumKernel, Dataset, GpuLabels, GpuTensor, MatmulKernel, MatmulOptions,
};

/// Rounding grows with K; an indexing bug is off by O(1).
fn tolerance(k: usize) -> Tolerance {
    Tolerance::new(1e-5 + 1e-6 * k as f32, 1e-4)
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn stored(rows: usize, cols: usize, trans: bool) -> [usize; 2] {
    if trans { [cols, rows] } else { [rows, cols] }
}

// ------------------------------------------------------------ ones column

/// `C = op(A)·op(B)` (M×N) and the sums of op(A)'s rows, written by one
/// product into one NaN-poisoned buffer: C at offset 3, the sums after a gap
/// of 2, so a write past either shows up.
fn check_ones_column(m: usize, n: usize, k: usize, opts: MatmulOptions, kernel: MatmulKernel) {
    let g = gpu();
    let seed = (m * 131 + n * 31 + k) as u64;
    let a = random(&stored(m, k, opts.trans_a), seed)
        .into_dimensionality::<Ix2>()
        .unwrap();
    let b = random(&stored(k, n, opts.trans_b), seed + 1)
        .into_dimensionality::<Ix2>()
        .unwrap();
    let (expected_c, expected_sums) = cpu::matmul_ones_column(&a, &b, opts).unwrap();

    let ga = GpuTensor::from_array(g, &a).unwrap();
    let gb = GpuTensor::from_array(g, &b).unwrap();
    let all = GpuTensor::<f32>::zeros(g, &[3 + m * n + 2 + m + 4]).unwrap();
    all.fill(g, f32::NAN).unwrap();
    let c = all.view(3, &[m, n]).unwrap();
    let sums = all.view(3 + m * n + 2, &[m]).unwrap();
    let mm = Matmul::fused(
        g,
        &ga,
        &gb,
        &c,
        opts,
        MatmulEpilogue::OnesColumn { sums: &sums },
        kernel,
    )
    .unwrap();
    mm.run(g, 1).unwrap();
    let what = format!("{m}×{n}×{k} {opts:?} with {:?}", mm.kernel());
    cpu::assert_close(
        &format!("{what}: C"),
        &c.to_array(g).unwrap(),
        &expected_c.into_dyn(),
        tolerance(k),
    );
    cpu::assert_close(
        &format!("{what}: sums"),
        &sums.to_array(g).unwrap(),
        &expected_sums.into_dyn(),
        tolerance(k),
    );
    let raw = all.read(g).unwrap();
    let outside = raw[..3]
        .iter()
        .chain(&raw[3 + m * n..3 + m * n + 2])
        .chain(&raw[3 + m * n + 2 + m..]);
    assert!(
        outside.into_iter().all(|x| x.is_nan()),
        "{what}: wrote outside C and the sums"
    );
}

mod ones_column {
    use super::*;
    use MatmulOptions as O;

    macro_rules! cases {
        ($($name:ident: $m:expr, $n:expr, $k:expr, $opts:expr;)*) => {
            mod v1_naive { use super::*; $(#[test] fn $name() { check_ones_column($m, $n, $k, $opts, MatmulKernel::V1Naive) })* }
            mod v2_blocked { use super::*; $(#[test] fn $name() { check_ones_column($m, $n, $k, $opts, MatmulKernel::V2Blocked) })* }
            mod v3_tiled { use super::*; $(#[test] fn $name() { check_ones_column($m, $n, $k, $opts, MatmulKernel::V3Tiled) })* }
            mod v4_tiled_8x8 { use super::*; $(#[test] fn $name() { check_ones_column($m, $n, $k, $opts, MatmulKernel::V4Tiled8x8) })* }
            mod v5_split_k { use super::*; $(#[test] fn $name() { check_ones_column($m, $n, $k, $opts, MatmulKernel::V5SplitK) })* }
            mod auto { use super::*; $(#[test] fn $name() { check_ones_column($m, $n, $k, $opts, MatmulKernel::Auto) })* }
        };
    }

    cases! {
        tn_1x1x1: 1, 1, 1, O::tn();
        tn_7x7x7: 7, 7, 7, O::tn();
        tn_batch_of_one_row_10x784x1: 10, 784, 1, O::tn();
        tn_mlp_layer1_128x784x128: 128, 784, 128, O::tn();
        tn_mlp_layer3_10x128x128: 10, 128, 128, O::tn();
        tn_cifar_linear_10x3073x7: 10, 3073, 7, O::tn();
        tn_n_is_a_tile_multiple_minus_one_5x63x9: 5, 63, 9, O::tn();
        tn_n_is_a_tile_multiple_5x64x9: 5, 64, 9, O::tn();
        nn_7x13x5: 7, 13, 5, O::nn();
        nt_9x3x70: 9, 3, 70, O::nt();
        tt_65x33x17: 65, 33, 17, O::tt();
    }
}

/// The ones column adds the rows of dZ in order from 0, exactly as the
/// serial column sum does: the bias gradient keeps its bits when fused.
/// Not v5: it adds chunks of rows, then the chunks (checked against the CPU
/// twin within the tolerance instead, above).
#[test]
fn ones_column_sums_are_the_serial_column_sum_bits() {
    let g = gpu();
    let (rows, out, inp) = (128, 130, 37);
    let dz = GpuTensor::from_array(g, &random(&[rows, out], 1)).unwrap();
    let h = GpuTensor::from_array(g, &random(&[rows, inp], 2)).unwrap();
    let reference = GpuTensor::<f32>::zeros(g, &[out]).unwrap();
    reference.fill(g, f32::NAN).unwrap();
    ColumnSum::new(g, &dz, &reference, ColumnSumKernel::V1Serial)
        .unwrap()
        .run(g, 1)
        .unwrap();
    let want = bits(&reference.read(g).unwrap());
    let all = GpuTensor::<f32>::zeros(g, &[out * inp + out]).unwrap();
    for kernel in MatmulKernel::ALL
        .into_iter()
        .filter(|k| k.sums_k_in_order())
    {
        all.fill(g, f32::NAN).unwrap();
        let dw = all.view(0, &[out, inp]).unwrap();
        let db = all.view(out * inp, &[out]).unwrap();
        Matmul::fused(
            g,
            &dz,
            &h,
            &dw,
            MatmulOptions::tn(),
            MatmulEpilogue::OnesColumn { sums: &db },
            kernel,
        )
        .unwrap()
        .run(g, 1)
        .unwrap();
        assert_eq!(bits(&db.read(g).unwrap()), want, "{kernel:?}");
    }
}

// -------------------------------------------------------- activation grad

fn check_activation_grad(
    m: usize,
    n: usize,
    k: usize,
    opts: MatmulOptions,
    activation: Activation,
    kernel: MatmulKernel,
) {
    let g = gpu();
    let seed = (m * 37 + n * 11 + k) as u64;
    let a = random(&stored(m, k, opts.trans_a), seed)
        .into_dimensionality::<Ix2>()
        .unwrap();
    let b = random(&stored(k, n, opts.trans_b), seed + 1)
        .into_dimensionality::<Ix2>()
        .unwrap();
    // h = act(z) for random z, so ReLU's zeros and sigmoid's (0, 1) appear.
    let h = random_scaled(&[m, n], seed + 2, 3.0)
        .mapv(|z| activation.apply(z))
        .into_dimensionality::<Ix2>()
        .unwrap();
    let expected = cpu::matmul_activation_grad(&a, &b, &h, activation, opts).unwrap();

    let ga = GpuTensor::from_array(g, &a).unwrap();
    let gb = GpuTensor::from_array(g, &b).unwrap();
    let gh = GpuTensor::from_array(g, &h).unwrap();
    let all = GpuTensor::<f32>::zeros(g, &[5 + m * n + 3]).unwrap();
    all.fill(g, f32::NAN).unwrap();
    let c = all.view(5, &[m, n]).unwrap();
    let mm = Matmul::fused(
        g,
        &ga,
        &gb,
        &c,
        opts,
        MatmulEpilogue::ActivationGrad { h: &gh, activation },
        kernel,
    )
    .unwrap();
    mm.run(g, 1).unwrap();
    let what = format!("{m}×{n}×{k} {opts:?} {activation:?} with {:?}", mm.kernel());
    cpu::assert_close(
        &what,
        &c.to_array(g).unwrap(),
        &expected.into_dyn(),
        tolerance(k),
    );
    let raw = all.read(g).unwrap();
    assert!(
        raw[..5].iter().chain(&raw[5 + m * n..]).all(|x| x.is_nan()),
        "{what}: wrote outside C"
    );
}

mod activation_grad {
    use super::*;
    use Activation as A;
    use MatmulOptions as O;

    macro_rules! cases {
        ($($name:ident: $m:expr, $n:expr, $k:expr, $opts:expr, $act:expr;)*) => {
            mod v1_naive { use super::*; $(#[test] fn $name() { check_activation_grad($m, $n, $k, $opts, $act, MatmulKernel::V1Naive) })* }
            mod v2_blocked { use super::*; $(#[test] fn $name() { check_activation_grad($m, $n, $k, $opts, $act, MatmulKernel::V2Blocked) })* }
            mod v3_tiled { use super::*; $(#[test] fn $name() { check_activation_grad($m, $n, $k, $opts, $act, MatmulKernel::V3Tiled) })* }
            mod v4_tiled_8x8 { use super::*; $(#[test] fn $name() { check_activation_grad($m, $n, $k, $opts, $act, MatmulKernel::V4Tiled8x8) })* }
            mod v5_split_k { use super::*; $(#[test] fn $name() { check_activation_grad($m, $n, $k, $opts, $act, MatmulKernel::V5SplitK) })* }
            mod auto { use super::*; $(#[test] fn $name() { check_activation_grad($m, $n, $k, $opts, $act, MatmulKernel::Auto) })* }
        };
    }

    cases! {
        nn_1x1x1_sigmoid: 1, 1, 1, O::nn(), A::Sigmoid;
        nn_7x7x7_relu: 7, 7, 7, O::nn(), A::Relu;
        nn_7x7x7_identity: 7, 7, 7, O::nn(), A::Identity;
        nn_mlp_hidden_128x128x10_sigmoid: 128, 128, 10, O::nn(), A::Sigmoid;
        nn_mlp_hidden_128x128x128_relu: 128, 128, 128, O::nn(), A::Relu;
        nn_batch_of_one_1x784x128_sigmoid: 1, 784, 128, O::nn(), A::Sigmoid;
        nn_65x33x17_not_dividing_tiles_relu: 65, 33, 17, O::nn(), A::Relu;
        nt_33x65x70_sigmoid: 33, 65, 70, O::nt(), A::Sigmoid;
        tn_67x129x5_relu: 67, 129, 5, O::tn(), A::Relu;
        tt_3x130x66_sigmoid: 3, 130, 66, O::tt(), A::Sigmoid;
    }
}

/// The product's accumulator goes through the epilogue unrounded by a
/// store: the same bits as the product followed by the activation backward.
#[test]
fn activation_grad_is_the_unfused_pair_bit_for_bit() {
    let g = gpu();
    let (rows, out, inp) = (128, 10, 128);
    let dz = GpuTensor::from_array(g, &random(&[rows, out], 3)).unwrap();
    let w = GpuTensor::from_array(g, &random(&[out, inp], 4)).unwrap();
    for activation in [Activation::Sigmoid, Activation::Relu] {
        let h = GpuTensor::from_array(
            g,
            &random_scaled(&[rows, inp], 5, 3.0).mapv(|z| activation.apply(z)),
        )
        .unwrap();
        for kernel in MatmulKernel::ALL {
            let dh = GpuTensor::<f32>::zeros(g, &[rows, inp]).unwrap();
            let unfused = GpuTensor::<f32>::zeros(g, &[rows, inp]).unwrap();
            let fused = GpuTensor::<f32>::zeros(g, &[rows, inp]).unwrap();
            fused.fill(g, f32::NAN).unwrap();
            Matmul::new(g, &dz, &w, None, &dh, MatmulOptions::nn(), kernel)
                .unwrap()
                .run(g, 1)
                .unwrap();
            ActivationBackward::new(g, &dh, &h, &unfused, activation)
                .unwrap()
                .run(g, 1)
                .unwrap();
            Matmul::fused(
                g,
                &dz,
                &w,
                &fused,
                MatmulOptions::nn(),
                MatmulEpilogue::ActivationGrad { h: &h, activation },
                kernel,
            )
            .unwrap()
            .run(g, 1)
            .unwrap();
            assert_eq!(
                bits(&fused.read(g).unwrap()),
                bits(&unfused.read(g).unwrap()),
                "{activation:?} {kernel:?}"
            );
        }
    }
}

#[test]
fn fused_epilogue_errors() {
    let g = gpu();
    let a = GpuTensor::from_array(g, &random(&[4, 3], 1)).unwrap();
    let b = GpuTensor::from_array(g, &random(&[4, 5], 2)).unwrap();
    let c = GpuTensor::<f32>::zeros(g, &[3, 5]).unwrap();
    let elsewhere = GpuTensor::<f32>::zeros(g, &[3]).unwrap();
    let msg = |r: wgpu_train::Result<Matmul>| r.err().expect("an error").to_string();
    let e = msg(Matmul::fused(
        g,
        &a,
        &b,
        &c,
        MatmulOptions::tn(),
        MatmulEpilogue::OnesColumn { sums: &elsewhere },
        MatmulKernel::Auto,
    ));
    assert!(e.contains("C's buffer"), "{e}");
    let all = GpuTensor::<f32>::zeros(g, &[15 + 4]).unwrap();
    let (c2, wrong) = (all.view(0, &[3, 5]).unwrap(), all.view(15, &[4]).unwrap());
    let e = msg(Matmul::fused(
        g,
        &a,
        &b,
        &c2,
        MatmulOptions::tn(),
        MatmulEpilogue::OnesColumn { sums: &wrong },
        MatmulKernel::Auto,
    ));
    assert!(e.contains("[3]"), "{e}");
    let overlapping = all.view(13, &[3]).unwrap();
    let e = msg(Matmul::fused(
        g,
        &a,
        &b,
        &c2,
        MatmulOptions::tn(),
        MatmulEpilogue::OnesColumn { sums: &overlapping },
        MatmulKernel::Auto,
    ));
    assert!(e.contains("overlap"), "{e}");
    let h = GpuTensor::<f32>::zeros(g, &[5, 3]).unwrap();
    let e = msg(Matmul::fused(
        g,
        &a,
        &b,
        &c,
        MatmulOptions::tn(),
        MatmulEpilogue::ActivationGrad {
            h: &h,
            activation: Activation::Relu,
        },
        MatmulKernel::Auto,
    ));
    assert!(e.contains("h must have"), "{e}");
    let e = msg(Matmul::fused(
        g,
        &a,
        &b,
        &c,
        MatmulOptions::tn().with_activation(Activation::Sigmoid),
        MatmulEpilogue::OnesColumn { sums: &elsewhere },
        MatmulKernel::Auto,
    ));
    assert!(e.contains("identity"), "{e}");
}

proptest! {
    #![proptest_config(crate::common::proptest_config(24))]
    #[test]
    fn ones_column_matches_cpu_for_any_shape(
        m in 1usize..=70,
        n in 1usize..=70,
        k in 1usize..=70,
        trans_a: bool,
        trans_b: bool,
        version in 0usize..3,
    ) {
        let opts = MatmulOptions { trans_a, trans_b, activation: Activation::Identity };
        check_ones_column(m, n, k, opts, MatmulKernel::ALL[version]);
    }

    #[test]
    fn activation_grad_matches_cpu_for_any_shape(
        m in 1usize..=70,
        n in 1usize..=70,
        k in 1usize..=70,
        trans_a: bool,
        trans_b: bool,
        relu: bool,
        version in 0usize..3,
    ) {
        let opts = MatmulOptions { trans_a, trans_b, activation: Activation::Identity };
        let act = if relu { Activation::Relu } else { Activation::Sigmoid };
        check_activation_grad(m, n, k, opts, act, MatmulKernel::ALL[version]);
    }
}

// --------------------------------------------------------- layer backward

/// A layer's backward in one dispatch against the twin: dW and db as views
/// of one NaN-poisoned gradient buffer (with gaps), dz_below poisoned too;
/// then the same bits as the two fused v2 products it pairs.
fn check_layer_backward(rows: usize, outs: usize, ins: usize, activation: Activation) {
    let g = gpu();
    let seed = (rows * 101 + outs * 13 + ins) as u64;
    let dz = random(&[rows, outs], seed)
        .into_dimensionality::<Ix2>()
        .unwrap();
    let w = random(&[outs, ins], seed + 1)
        .into_dimensionality::<Ix2>()
        .unwrap();
    let h = random_scaled(&[rows, ins], seed + 2, 3.0)
        .mapv(|z| activation.apply(z))
        .into_dimensionality::<Ix2>()
        .unwrap();
    let mut want_dw = ndarray::Array2::<f32>::zeros((outs, ins));
    let mut want_db = Array1::<f32>::zeros(outs);
    let mut want_dzb = ndarray::Array2::<f32>::zeros((rows, ins));
    cpu::layer_backward_into(
        dz.view(),
        h.view(),
        w.view(),
        activation,
        want_dw.view_mut(),
        want_db.view_mut(),
        want_dzb.view_mut(),
    )
    .unwrap();

    let (gdz, gh, gw) = (
        GpuTensor::from_array(g, &dz).unwrap(),
        GpuTensor::from_array(g, &h).unwrap(),
        GpuTensor::from_array(g, &w).unwrap(),
    );
    let grads = GpuTensor::<f32>::zeros(g, &[2 + outs * ins + 1 + outs + 3]).unwrap();
    grads.fill(g, f32::NAN).unwrap();
    let dw = grads.view(2, &[outs, ins]).unwrap();
    let db = grads.view(3 + outs * ins, &[outs]).unwrap();
    let below = GpuTensor::<f32>::zeros(g, &[rows * ins + 2]).unwrap();
    below.fill(g, f32::NAN).unwrap();
    let dzb = below.view(1, &[rows, ins]).unwrap();
    LayerBackward::new(g, &gdz, &gh, &gw, &dw, &db, &dzb, activation)
        .unwrap()
        .run(g, 1)
        .unwrap();
    let what = format!("rows {rows} outs {outs} ins {ins} {activation:?}");
    cpu::assert_close(
        &format!("{what}: dw"),
        &dw.to_array(g).unwrap(),
        &want_dw.into_dyn(),
        tolerance(rows),
    );
    cpu::assert_close(
        &format!("{what}: db"),
        &db.to_array(g).unwrap(),
        &want_db.into_dyn(),
        tolerance(rows),
    );
    cpu::assert_close(
        &format!("{what}: dz_below"),
        &dzb.to_array(g).unwrap(),
        &want_dzb.into_dyn(),
        tolerance(outs),
    );
    let raw = grads.read(g).unwrap();
    assert!(
        raw[..2]
            .iter()
            .chain(&raw[2 + outs * ins..3 + outs * ins])
            .chain(&raw[3 + outs * ins + outs..])
            .all(|x| x.is_nan()),
        "{what}: wrote outside dw and db"
    );
    let raw = below.read(g).unwrap();
    assert!(raw[0].is_nan() && raw[1 + rows * ins].is_nan(), "{what}");

    // The pair of fused v2 products it replaces, bit for bit.
    let (fw, fb, fz) = (
        bits(&dw.read(g).unwrap()),
        bits(&db.read(g).unwrap()),
        bits(&dzb.read(g).unwrap()),
    );
    Matmul::fused(
        g,
        &gdz,
        &gh,
        &dw,
        MatmulOptions::tn(),
        MatmulEpilogue::OnesColumn { sums: &db },
        MatmulKernel::V2Blocked,
    )
    .unwrap()
    .run(g, 1)
    .unwrap();
    Matmul::fused(
        g,
        &gdz,
        &gw,
        &dzb,
        MatmulOptions::nn(),
        MatmulEpilogue::ActivationGrad { h: &gh, activation },
        MatmulKernel::V2Blocked,
    )
    .unwrap()
    .run(g, 1)
    .unwrap();
    assert_eq!(bits(&dw.read(g).unwrap()), fw, "{what}: dw bits");
    assert_eq!(bits(&db.read(g).unwrap()), fb, "{what}: db bits");
    assert_eq!(bits(&dzb.read(g).unwrap()), fz, "{what}: dz_below bits");
}

mod layer_backward {
    use super::*;
    use Activation as A;

    macro_rules! cases {
        ($($name:ident: $rows:expr, $outs:expr, $ins:expr, $act:expr;)*) => {
            $(#[test] fn $name() { check_layer_backward($rows, $outs, $ins, $act) })*
        };
    }

    cases! {
        one_row_one_out_one_in: 1, 1, 1, A::Sigmoid;
        rows_7_outs_7_ins_7_relu: 7, 7, 7, A::Relu;
        mlp_layer3_128x10x128_sigmoid: 128, 10, 128, A::Sigmoid;
        mlp_layer2_128x128x128_relu: 128, 128, 128, A::Relu;
        short_batch_44x128x784_sigmoid: 44, 128, 784, A::Sigmoid;
        batch_of_one_1x10x3073_identity: 1, 10, 3073, A::Identity;
        odd_65x33x17_relu: 65, 33, 17, A::Relu;
        ins_3_outs_129_rows_9_sigmoid: 9, 129, 3, A::Sigmoid;
    }
}

#[test]
fn layer_backward_shape_errors() {
    let g = gpu();
    let dz = GpuTensor::<f32>::zeros(g, &[4, 3]).unwrap();
    let h = GpuTensor::<f32>::zeros(g, &[4, 5]).unwrap();
    let w = GpuTensor::<f32>::zeros(g, &[3, 5]).unwrap();
    let grads = GpuTensor::<f32>::zeros(g, &[18]).unwrap();
    let (dw, db) = (
        grads.view(0, &[3, 5]).unwrap(),
        grads.view(15, &[3]).unwrap(),
    );
    let dzb = GpuTensor::<f32>::zeros(g, &[4, 5]).unwrap();
    let a = Activation::Relu;
    assert!(LayerBackward::new(g, &dz, &h, &w, &dw, &db, &dzb, a).is_ok());
    let elsewhere = GpuTensor::<f32>::zeros(g, &[3]).unwrap();
    let e = LayerBackward::new(g, &dz, &h, &w, &dw, &elsewhere, &dzb, a)
        .err()
        .expect("an error")
        .to_string();
    assert!(e.contains("dw's buffer"), "{e}");
    let wt = GpuTensor::<f32>::zeros(g, &[5, 3]).unwrap();
    let e = LayerBackward::new(g, &dz, &h, &wt, &dw, &db, &dzb, a)
        .err()
        .expect("an error")
        .to_string();
    assert!(e.contains("w must have shape [3, 5]"), "{e}");
    let overlap = grads.view(13, &[3]).unwrap();
    let e = LayerBackward::new(g, &dz, &h, &w, &dw, &overlap, &dzb, a)
        .err()
        .expect("an error")
        .to_string();
    assert!(e.contains("overlap"), "{e}");
}

proptest! {
    #![proptest_config(crate::common::proptest_config(24))]
    #[test]
    fn layer_backward_matches_cpu_for_any_shape(
        rows in 1usize..=70,
        outs in 1usize..=70,
        ins in 1usize..=70,
        act in 0usize..3,
    ) {
        let activation = [Activation::Identity, Activation::Sigmoid, Activation::Relu][act];
        check_layer_backward(rows, outs, ins, activation);
    }
}

// ------------------------------------------------- gather in the product

fn dataset(n: usize, shape: [usize; 3], seed: u64) -> Dataset {
    use rand::{RngExt, SeedableRng, rngs::StdRng};
    let mut rng = StdRng::seed_from_u64(seed);
    let dim: usize = shape.iter().product();
    let images = (0..n * dim).map(|_| rng.random::<u8>()).collect();
    let labels = (0..n).map(|_| rng.random_range(0..10u8)).collect();
    Dataset::new(images, labels, shape, 10).unwrap()
}

fn permutation(n: usize, seed: u64) -> Vec<u32> {
    use rand::{SeedableRng, rngs::StdRng, seq::SliceRandom};
    let mut v: Vec<u32> = (0..n as u32).collect();
    v.shuffle(&mut StdRng::seed_from_u64(seed));
    v
}

/// Every step of an epoch of the fused gather and first product against
/// the twin (the gather, then the product): `c`, and the `x` and `y` it
/// writes for the backward pass, all NaN-poisoned first; then the same bits
/// as the separate gather followed by the v2 product.
fn check_gather_matmul(
    examples: usize,
    shape: [usize; 3],
    batch: usize,
    n: usize,
    opts: GatherOptions,
    bias: bool,
    activation: Activation,
) {
    let g = gpu();
    let data = dataset(examples, shape, (examples + n) as u64);
    let order = permutation(examples, 3);
    let gdata = GpuDataset::upload(g, &data).unwrap();
    let gorder = gdata.order_buffer(g, order.len()).unwrap();
    gdata.write_order(g, &gorder, &order).unwrap();
    let k = data.dim() + usize::from(opts.append_one);
    let x = GpuTensor::<f32>::zeros(g, &[batch, k]).unwrap();
    let y = GpuTensor::<u32>::zeros(g, &[batch]).unwrap();
    let gather = Gather::new(g, &gdata, &gorder, &x, &y, batch, opts).unwrap();
    let w = random(&[n, k], 7).into_dimensionality::<Ix2>().unwrap();
    let b = random(&[n], 8).into_dimensionality::<Ix1>().unwrap();
    let gw = GpuTensor::from_array(g, &w).unwrap();
    let gb = GpuTensor::from_array(g, &b).unwrap();
    for step in 0..gather.steps() {
        let rows = gather.rows(step);
        let c = GpuTensor::<f32>::zeros(g, &[rows, n]).unwrap();
        let fused =
            GatherMatmul::new(g, &gather, rows, &gw, bias.then_some(&gb), &c, activation).unwrap();
        c.fill(g, f32::NAN).unwrap();
        x.fill(g, f32::NAN).unwrap();
        y.fill(g, u32::MAX).unwrap();
        fused.run(g, &gather, step).unwrap();
        let (want_c, want_x, want_y) = cpu::gather_matmul(
            &data,
            &order,
            step * batch,
            rows,
            opts,
            w.view(),
            bias.then(|| b.view()),
            activation,
        )
        .unwrap();
        let what = format!("{examples}×{shape:?} batch {batch} N {n} step {step} {activation:?}");
        cpu::assert_close(
            &format!("{what}: c"),
            &c.to_array(g).unwrap(),
            &want_c.into_dyn(),
            tolerance(k),
        );
        let got_x = x.to_array(g).unwrap();
        cpu::assert_close(
            &format!("{what}: x"),
            &got_x.slice(ndarray::s![..rows, ..]).to_owned(),
            &want_x.into_dyn(),
            Tolerance::new(1e-6, 1e-6),
        );
        assert!(
            got_x
                .slice(ndarray::s![rows.., ..])
                .iter()
                .all(|v| v.is_nan()),
            "{what}: rows past the batch were written"
        );
        let got_y = y.read(g).unwrap();
        assert_eq!(&got_y[..rows], &want_y[..], "{what}: labels");
        assert!(got_y[rows..].iter().all(|&l| l == u32::MAX), "{what}");

        // The unfused pair, with the product's version pinned to v2.
        let (fc, fx) = (
            bits(&c.read(g).unwrap()),
            bits(&got_x.as_slice().unwrap()[..rows * k]),
        );
        gather.run(g, step).unwrap();
        let xr = x.view(0, &[rows, k]).unwrap();
        Matmul::new(
            g,
            &xr,
            &gw,
            bias.then_some(&gb),
            &c,
            MatmulOptions::nt().with_activation(activation),
            MatmulKernel::V2Blocked,
        )
        .unwrap()
        .run(g, 1)
        .unwrap();
        assert_eq!(bits(&xr.read(g).unwrap()), fx, "{what}: x bits");
        assert_eq!(bits(&c.read(g).unwrap()), fc, "{what}: c bits");
    }
}

mod gather_matmul {
    use super::*;
    use Activation as A;

    fn plain() -> GatherOptions {
        GatherOptions::default()
    }

    fn bias_column() -> GatherOptions {
        GatherOptions {
            mean: 0.2,
            std: 0.3,
            append_one: true,
        }
    }

    #[test]
    fn mnist_layer1_784_to_128_sigmoid_short_last_batch() {
        check_gather_matmul(300, [1, 28, 28], 128, 128, plain(), true, A::Sigmoid);
    }

    #[test]
    fn linear_785_to_10_bias_column_mean_std() {
        check_gather_matmul(70, [1, 28, 28], 32, 10, bias_column(), false, A::Identity);
    }

    #[test]
    fn cifar_3073_to_10() {
        check_gather_matmul(20, [3, 32, 32], 7, 10, bias_column(), false, A::Identity);
    }

    #[test]
    fn seven_pixels_batch_of_one_relu() {
        check_gather_matmul(5, [1, 1, 7], 1, 7, plain(), true, A::Relu);
    }

    #[test]
    fn odd_width_33_outputs_odd_pixels() {
        check_gather_matmul(40, [1, 3, 5], 13, 33, bias_column(), true, A::Relu);
    }

    #[test]
    fn one_output() {
        check_gather_matmul(9, [1, 4, 4], 4, 1, plain(), true, A::Sigmoid);
    }
}

/// A dataset split into chunks cannot be bound at once: the fused product
/// refuses it, and the engine keeps the separate gather (one more dispatch)
/// with the same results.
#[test]
fn gather_matmul_refuses_a_chunked_dataset_and_the_engine_falls_back() {
    let small = wgpu_train::Gpu::with_options(wgpu_train::GpuOptions {
        max_storage_buffer_binding_size: Some(64 << 10),
        ..wgpu_train::GpuOptions::default()
    })
    .unwrap();
    let data = dataset(200, [1, 28, 28], 5); // 156 KiB: 3 chunks
    let gdata = GpuDataset::upload(&small, &data).unwrap();
    assert!(gdata.chunk_count() > 1);
    let gorder = gdata.order_buffer(&small, 200).unwrap();
    let x = GpuTensor::<f32>::zeros(&small, &[16, 784]).unwrap();
    let y = GpuTensor::<u32>::zeros(&small, &[16]).unwrap();
    let gather = Gather::new(
        &small,
        &gdata,
        &gorder,
        &x,
        &y,
        16,
        GatherOptions::default(),
    )
    .unwrap();
    let w = GpuTensor::<f32>::zeros(&small, &[10, 784]).unwrap();
    let c = GpuTensor::<f32>::zeros(&small, &[16, 10]).unwrap();
    let e = GatherMatmul::new(&small, &gather, 16, &w, None, &c, Activation::Identity)
        .err()
        .expect("an error")
        .to_string();
    assert!(e.contains("chunks"), "{e}");

    // A model and batches that fit 4 KiB bindings; 12.8 KB of pixels: 4 chunks.
    let tiny = wgpu_train::Gpu::with_options(wgpu_train::GpuOptions {
        max_storage_buffer_binding_size: Some(4 << 10),
        ..wgpu_train::GpuOptions::default()
    })
    .unwrap();
    let d = TrainData::new(dataset(200, [1, 8, 8], 6), dataset(20, [1, 8, 8], 7), 0, 6).unwrap();
    let model = Mlp::new(&[64, 8, 10], Activation::Sigmoid).unwrap();
    let cfg = TrainConfig {
        batch: 16,
        eval_batch: 16,
        ..config(true, OptimizerConfig::adam())
    };
    let mut chunked = GpuEngine::new(&tiny, &model, &d, &cfg).unwrap();
    let mut whole = GpuEngine::new(gpu(), &model, &d, &cfg).unwrap();
    assert_eq!(
        chunked.dispatches_per_step().unwrap(),
        whole.dispatches_per_step().unwrap() + 4.0,
        "four gather dispatches instead of none"
    );
    let (lc, pc) = run(&mut chunked, &d, &cfg);
    let (lw, pw) = run(&mut whole, &d, &cfg);
    assert_eq!(lc, lw);
    assert_eq!(bits(&pc), bits(&pw));
}

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

// ------------------------------------------------------ planned optimizer

/// `steps` updates of `cfg` on random parameters and gradients, in chunks
/// of `chunk` (one plan and one submit each), on the GPU (v1 or v2) and on
/// the CPU twin; returns both sides' parameters and states.
fn planned_vs_cpu(cfg: OptimizerConfig, steps: usize, chunk: usize, planned: bool) {
    let g = gpu();
    let n = 1031;
    let p0 = random(&[n], 21).into_raw_vec_and_offset().0;
    let grads: Vec<Vec<f32>> = (0..steps)
        .map(|k| random(&[n], 200 + k as u64).into_raw_vec_and_offset().0)
        .collect();
    let params_buf = GpuTensor::<f32>::zeros(g, &[n + 9]).unwrap();
    params_buf.fill(g, f32::NAN).unwrap();
    let params = params_buf.view(4, &[n]).unwrap();
    params.write(g, &p0).unwrap();
    let grad = GpuTensor::<f32>::zeros(g, &[n]).unwrap();
    let bank: Vec<f32> = grads.iter().flatten().copied().collect();
    let bank = GpuTensor::from_slice(g, &[bank.len()], &bank).unwrap();
    let mut opt = if planned {
        GpuOptimizer::with_planned_steps(g, cfg, &params, &grad, chunk).unwrap()
    } else {
        GpuOptimizer::new(g, cfg, &params, &grad).unwrap()
    };
    assert_eq!(opt.dispatches(), if planned { 1 } else { 2 });
    let mut cpu_opt = CpuOptimizer::new(cfg, n).unwrap();
    let mut p = p0.clone();
    let mut done = 0;
    while done < steps {
        let len = chunk.min(steps - done);
        if planned {
            opt.plan(g, len).unwrap();
        }
        let mut enc = g.encoder("planned steps");
        for i in 0..len {
            enc.copy_buffer_to_buffer(
                bank.buffer(),
                ((done + i) * n * 4) as u64,
                grad.buffer(),
                0,
                (n * 4) as u64,
            );
            let mut pass = enc.begin_compute_pass(&Default::default());
            if planned {
                opt.record_planned(&mut pass, i).unwrap();
            } else {
                opt.record(&mut pass);
            }
        }
        g.submit(enc).unwrap();
        for gk in &grads[done..done + len] {
            cpu_opt.step(&mut p, gk).unwrap();
        }
        done += len;
        let what = format!("{} planned={planned} after {done} steps", cfg.name());
        let gp = params.read(g).unwrap();
        cpu::assert_close(
            &what,
            &ndarray::ArrayView1::from(&gp[..]),
            &ndarray::ArrayView1::from(&p[..]),
            Tolerance::new(2e-6, 2e-5),
        );
        for (s, e) in opt.state().iter().zip(cpu_opt.state()) {
            cpu::assert_close(
                &format!("{what}: state"),
                &ndarray::ArrayView1::from(&s.read(g).unwrap()[..]),
                &ndarray::ArrayView1::from(&e[..]),
                Tolerance::new(2e-6, 2e-5),
            );
        }
        assert_eq!(opt.step_scalars(g).unwrap().t as usize, done, "{what}");
        let moved = gp.iter().zip(&p0).filter(|(x, y)| x != y).count();
        assert!(moved > n / 2, "{what}: only {moved} parameters moved");
    }
    let all = params_buf.read(g).unwrap();
    assert!(all[..4].iter().chain(&all[4 + n..]).all(|x| x.is_nan()));
}

#[test]
fn planned_optimizer_matches_cpu_for_every_rule() {
    for cfg in [
        OptimizerConfig::sgd(0.1),
        OptimizerConfig::nesterov(0.05, 0.9),
        OptimizerConfig::new(
            0.05,
            Sgd {
                momentum: 0.9,
                dampening: 0.3,
                weight_decay: 0.01,
                nesterov: false,
            },
        ),
        OptimizerConfig::adagrad(),
        OptimizerConfig::new(
            0.01,
            RmsProp {
                centered: true,
                momentum: 0.5,
                ..RmsProp::default()
            },
        ),
        OptimizerConfig::new(
            0.01,
            Adam {
                amsgrad: true,
                ..Adam::default()
            },
        ),
        OptimizerConfig::adamw(),
        OptimizerConfig::momentum(0.1, 0.9).with_schedule(Schedule::StepDecay {
            step_size: 7,
            gamma: 0.5,
        }),
        OptimizerConfig::new(0.01, Adam::default()).with_schedule(Schedule::Cosine {
            t_max: 40,
            eta_min: 1e-3,
        }),
    ] {
        // 50 steps planned 16 at a time: plans continue one another.
        planned_vs_cpu(cfg, 50, 16, true);
    }
}

#[test]
fn unplanned_optimizer_still_matches_cpu() {
    planned_vs_cpu(OptimizerConfig::adam(), 20, 7, false);
}

/// v2 reads the scalars v1's `advance` would compute on the GPU; with the
/// same updates the parameters agree to the update's rounding (exactly,
/// where the adapter's division and square root are IEEE's, as lavapipe's).
#[test]
fn planned_optimizer_equals_advance_on_the_gpu() {
    let g = gpu();
    let n = 777;
    let p0 = random(&[n], 31).into_raw_vec_and_offset().0;
    let grads = GpuTensor::from_array(g, &random(&[n], 32)).unwrap();
    let cfg = OptimizerConfig::adam();
    let run = |planned: bool| {
        let params = GpuTensor::from_slice(g, &[n], &p0).unwrap();
        let mut opt = if planned {
            GpuOptimizer::with_planned_steps(g, cfg, &params, &grads, 30).unwrap()
        } else {
            GpuOptimizer::new(g, cfg, &params, &grads).unwrap()
        };
        if planned {
            opt.plan(g, 30).unwrap();
        }
        opt.run(g, 30).unwrap();
        (params.read(g).unwrap(), opt.step_scalars(g).unwrap())
    };
    let (pv, sv) = run(true);
    let (pa, sa) = run(false);
    assert_eq!(sv.t, sa.t);
    cpu::assert_close(
        "v2 vs v1 parameters",
        &ndarray::ArrayView1::from(&pv[..]),
        &ndarray::ArrayView1::from(&pa[..]),
        Tolerance::new(1e-6, 1e-5),
    );
}

#[test]
fn planned_optimizer_errors() {
    let g = gpu();
    let p = GpuTensor::<f32>::zeros(g, &[8]).unwrap();
    let gr = GpuTensor::<f32>::zeros(g, &[8]).unwrap();
    let cfg = OptimizerConfig::sgd(0.1);
    assert!(GpuOptimizer::with_planned_steps(g, cfg, &p, &gr, 0).is_err());
    let mut opt = GpuOptimizer::with_planned_steps(g, cfg, &p, &gr, 4).unwrap();
    let e = opt.plan(g, 5).unwrap_err().to_string();
    assert!(e.contains("do not fit"), "{e}");
    opt.plan(g, 2).unwrap();
    let mut enc = g.encoder("t");
    {
        let mut pass = enc.begin_compute_pass(&Default::default());
        let e = opt.record_planned(&mut pass, 2).unwrap_err().to_string();
        assert!(e.contains("not planned"), "{e}");
    }
    let mut v1 = GpuOptimizer::new(g, cfg, &p, &gr).unwrap();
    assert!(v1.plan(g, 1).is_err());
}

// --------------------------------------------------------------- programs

fn learnable(n: usize, seed: u64) -> Dataset {
    use rand::{RngExt, SeedableRng, rngs::StdRng};
    let mut rng = StdRng::seed_from_u64(seed);
    let dim = 784;
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
    Dataset::new(images, labels, [1, 28, 28], 10).unwrap()
}

fn data(n: usize) -> TrainData {
    TrainData::new(learnable(n, 41), learnable(60, 42), 0, 41).unwrap()
}

fn config(fused: bool, optimizer: OptimizerConfig) -> TrainConfig {
    TrainConfig {
        epochs: 3,
        batch: 64,
        optimizer,
        fused,
        ..TrainConfig::default()
    }
}

fn run(engine: &mut dyn Engine, data: &TrainData, config: &TrainConfig) -> (Vec<f64>, Vec<f32>) {
    let r = train::fit(engine, data, config, 0, &mut |_| {}).unwrap();
    let losses = r.history.epochs.iter().map(|e| e.train_loss).collect();
    (losses, engine.state().unwrap().params)
}

/// On the CPU the fused ops are the reference ops' twins composed, so the
/// two programs give the same bits; on the GPU the fused kernels keep the
/// reference order of operations, so they agree to rounding (and, on
/// lavapipe, whose column sums are serial, bit for bit).
fn check_programs(model: &dyn Model, optimizer: OptimizerConfig) {
    let d = data(300); // 4 full batches of 64 and one of 44
    let (fused, reference) = (config(true, optimizer), config(false, optimizer));
    let (cf, pf) = run(&mut CpuEngine::new(model, &d, &fused).unwrap(), &d, &fused);
    let (cr, pr) = run(
        &mut CpuEngine::new(model, &d, &reference).unwrap(),
        &d,
        &reference,
    );
    assert_eq!(cf, cr, "CPU losses, fused vs reference");
    assert_eq!(bits(&pf), bits(&pr), "CPU parameters, fused vs reference");

    let g = gpu();
    let (gf, gpf) = run(
        &mut GpuEngine::new(g, model, &d, &fused).unwrap(),
        &d,
        &fused,
    );
    let (gr, gpr) = run(
        &mut GpuEngine::new(g, model, &d, &reference).unwrap(),
        &d,
        &reference,
    );
    for (a, b) in gf.iter().zip(&gr) {
        assert!((a - b).abs() <= 1e-5 * b.abs(), "GPU loss {a} vs {b}");
    }
    if g.is_software() {
        // Serial column sums there (ColumnSumKernel::choose), as the ones
        // column adds: nothing left to differ.
        assert_eq!(gf, gr, "GPU losses on a software adapter");
        assert_eq!(
            bits(&gpf),
            bits(&gpr),
            "GPU parameters on a software adapter"
        );
    }
    let close = Tolerance::new(1e-5, 1e-4);
    let v = |p: &[f32]| ndarray::ArrayView1::from(p).to_owned();
    cpu::assert_close("GPU fused vs reference", &v(&gpf), &v(&gpr), close);
    cpu::assert_close(
        "fused GPU vs fused CPU",
        &v(&gpf),
        &v(&pf),
        Tolerance::new(1e-4, 1e-3),
    );
}

#[test]
fn programs_fused_and_reference_agree_mlp_sigmoid_adam() {
    check_programs(&Mlp::mnist(Activation::Sigmoid), OptimizerConfig::adam());
}

#[test]
fn programs_fused_and_reference_agree_mlp_relu_momentum_4_layers() {
    let model = Mlp::new(&[784, 64, 33, 17, 10], Activation::Relu).unwrap();
    check_programs(&model, OptimizerConfig::momentum(0.05, 0.9));
}

#[test]
fn programs_fused_and_reference_agree_linear_sgd() {
    check_programs(
        &LinearSoftmax::new(784, 10).unwrap(),
        OptimizerConfig::sgd(0.1),
    );
}

/// The counts the engine reports (and `--json` prints): the reference
/// program's, and the fused one's.
#[test]
fn programs_dispatch_counts() {
    let g = gpu();
    let d = data(256);
    let mlp = Mlp::mnist(Activation::Sigmoid);
    let linear = LinearSoftmax::new(784, 10).unwrap();
    let count = |model: &dyn Model, fused: bool| {
        GpuEngine::new(g, model, &d, &config(fused, OptimizerConfig::adam()))
            .unwrap()
            .dispatches_per_step()
            .unwrap()
    };
    assert_eq!(count(&mlp, false), 16.0);
    assert_eq!(count(&linear, false), 7.0);
    let (m, l) = (count(&mlp, true), count(&linear, true));
    eprintln!("fused: MLP {m} dispatches per step, linear {l}");
    // The targets: at most 9 and 4 (from 16 and 7).
    assert!(m <= 9.0, "MLP: {m}");
    assert!(l <= 4.0, "linear: {l}");
}
