//! `shaders/layer_backward.wgsl`: a hidden layer's whole backward in one
//! dispatch, against its CPU twin and against the two fused products it
//! replaces, bit for bit.

use crate::common::{bits, gpu, product_tolerance as tolerance, random, random_scaled};
use ndarray::{Array1, Ix2};
use proptest::prelude::*;
use wgpu_train::cpu::{self};
use wgpu_train::kernels::{LayerBackward, Matmul, MatmulEpilogue};
use wgpu_train::{Activation, GpuTensor, MatmulKernel, MatmulOptions};

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

mod shapes {
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
