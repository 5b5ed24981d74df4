//! The matmul's fused epilogues (issue 13) against their CPU twins, every
//! version, on fresh random inputs with NaN-poisoned outputs:
//!
//! - `ones_column::*`: the virtual column of ones (weight and bias gradient
//!   in one product); its sums are the same bits as the serial column sum
//!   they replace.
//! - `activation_grad::*`: the `⊙ act'(H)` epilogue (input gradient through
//!   the activation); the same bits as the product followed by the
//!   activation backward kernel.

use crate::common::{bits, gpu, product_tolerance as tolerance, random, random_scaled};
use ndarray::Ix2;
use proptest::prelude::*;
use wgpu_train::cpu::{self};
use wgpu_train::kernels::{ActivationBackward, ColumnSum, Matmul, MatmulEpilogue, V7Tile};
use wgpu_train::{Activation, ColumnSumKernel, GpuTensor, MatmulKernel, MatmulOptions};

fn stored(rows: usize, cols: usize, trans: bool) -> [usize; 2] {
    if trans { [cols, rows] } else { [rows, cols] }
}

// ------------------------------------------------------------ ones column

/// `C = op(A)·op(B)` (M×N) and the sums of op(A)'s rows, written by one
/// product into one NaN-poisoned buffer: C at offset 3, the sums after a gap
/// of 2, so a write past either shows up.
fn check_ones_column(m: usize, n: usize, k: usize, opts: MatmulOptions, kernel: MatmulKernel) {
    let g = gpu();
    if super::refused_here(g, kernel) {
        return;
    }
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
            mod v6_vec4 { use super::*; $(#[test] fn $name() { check_ones_column($m, $n, $k, $opts, MatmulKernel::V6Vec4) })* }
            mod v7_128x128_8x8_k16 { use super::*; $(#[test] fn $name() { check_ones_column($m, $n, $k, $opts, MatmulKernel::V7(V7Tile::T128_K16)) })* }
            mod v7_128x128_8x8_k8 { use super::*; $(#[test] fn $name() { check_ones_column($m, $n, $k, $opts, MatmulKernel::V7(V7Tile::T128_K8)) })* }
            mod v7_64x64_4x4_k16 { use super::*; $(#[test] fn $name() { check_ones_column($m, $n, $k, $opts, MatmulKernel::V7(V7Tile::T64_K16)) })* }
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
        // v6's vec4 loads: the ones column is the vec4 just past B (nn, tn)
        // or a column of its own (nt, tt).
        tn_ones_column_past_a_vec4_b_8x128x12: 8, 128, 12, O::tn();
        nt_vec4_a_and_b_9x3x72: 9, 3, 72, O::nt();
        tt_vec4_a_and_b_68x33x20: 68, 33, 20, O::tt();
        nn_vec4_a_and_b_7x132x16: 7, 132, 16, O::nn();
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
    for kernel in MatmulKernel::available(g)
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
    if super::refused_here(g, kernel) {
        return;
    }
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
            mod v6_vec4 { use super::*; $(#[test] fn $name() { check_activation_grad($m, $n, $k, $opts, $act, MatmulKernel::V6Vec4) })* }
            mod v7_128x128_8x8_k16 { use super::*; $(#[test] fn $name() { check_activation_grad($m, $n, $k, $opts, $act, MatmulKernel::V7(V7Tile::T128_K16)) })* }
            mod v7_128x128_8x8_k8 { use super::*; $(#[test] fn $name() { check_activation_grad($m, $n, $k, $opts, $act, MatmulKernel::V7(V7Tile::T128_K8)) })* }
            mod v7_64x64_4x4_k16 { use super::*; $(#[test] fn $name() { check_activation_grad($m, $n, $k, $opts, $act, MatmulKernel::V7(V7Tile::T64_K16)) })* }
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
        // v6's vec4 loads on both operands, and on one.
        tt_68x36x20_vec4_relu: 68, 36, 20, O::tt(), A::Relu;
        nt_36x130x12_vec4_sigmoid: 36, 130, 12, O::nt(), A::Sigmoid;
        tn_12x65x9_vec4_a_only_relu: 12, 65, 9, O::tn(), A::Relu;
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
        for kernel in MatmulKernel::available(g) {
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
