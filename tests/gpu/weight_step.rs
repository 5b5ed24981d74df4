//! `shaders/weight_step.wgsl`: every layer's weight and bias gradients and
//! the batch's loss totals in one dispatch, against its CPU twin, with the
//! gradients poisoned with NaN (and gaps between them that must stay NaN),
//! and bit for bit against the per-layer ones-column products it replaces.

use crate::common::{bits, gpu, product_tolerance as tolerance, random, random_labels};
use ndarray::{Array1, Array2, Ix2};
use wgpu_train::cpu::weight_step::{WeightGradRows, weight_step_into};
use wgpu_train::cpu::{self};
use wgpu_train::kernels::weight_step::WeightGradLayer;
use wgpu_train::kernels::{Matmul, MatmulEpilogue, WeightStep};
use wgpu_train::{GpuTensor, MatmulKernel, MatmulOptions};

fn two(a: ndarray::ArrayD<f32>) -> Array2<f32> {
    a.into_dimensionality::<Ix2>().unwrap()
}

/// `widths` = [input, w1, …, classes]: layer l reads width l, writes l + 1.
fn check_weight_step(rows: usize, widths: &[usize]) {
    let g = gpu();
    let n = widths.len() - 1;
    let seed = (rows * 131 + widths.iter().sum::<usize>() * 17 + n) as u64;
    let hs: Vec<Array2<f32>> = (0..n)
        .map(|l| two(random(&[rows, widths[l]], seed + l as u64)))
        .collect();
    let dzs: Vec<Array2<f32>> = (0..n)
        .map(|l| two(random(&[rows, widths[l + 1]], seed + 20 + l as u64)))
        .collect();
    let loss: Vec<f32> = random(&[rows], seed + 40).iter().map(|v| v.abs()).collect();
    let correct: Vec<u32> = random_labels(rows, 2, seed + 41);

    let mut want_dw: Vec<Array2<f32>> = (0..n)
        .map(|l| Array2::zeros((widths[l + 1], widths[l])))
        .collect();
    let mut want_db: Vec<Array1<f32>> = (0..n).map(|l| Array1::zeros(widths[l + 1])).collect();
    let (mut total, mut count) = (1.5f32, 3u32);
    weight_step_into(
        want_dw
            .iter_mut()
            .zip(want_db.iter_mut())
            .enumerate()
            .map(|(l, (dw, db))| WeightGradRows {
                dz: dzs[l].view(),
                h: hs[l].view(),
                dw: dw.view_mut(),
                db: db.view_mut(),
            })
            .collect(),
        &loss,
        &correct,
        &mut total,
        &mut count,
    )
    .unwrap();

    // x alone; every other h and every dz in one arena, after gaps.
    let x = GpuTensor::from_array(g, &hs[0]).unwrap();
    let sizes: Vec<usize> = hs[1..]
        .iter()
        .map(|h| h.len())
        .chain(dzs.iter().map(|d| d.len()))
        .collect();
    let arena =
        GpuTensor::<f32>::zeros(g, &[sizes.iter().map(|s| s + 1).sum::<usize>() + 1]).unwrap();
    arena.fill(g, f32::NAN).unwrap();
    let mut views = Vec::new();
    let mut off = 1;
    for (a, shape) in hs[1..]
        .iter()
        .chain(&dzs)
        .map(|a| (a, [a.nrows(), a.ncols()]))
    {
        let v = arena.view(off, &shape).unwrap();
        v.write(g, a.as_slice().unwrap()).unwrap();
        views.push(v);
        off += a.len() + 1;
    }
    let (gh, gdz) = views.split_at(n - 1);
    let mut grad_len = 1;
    let mut at = Vec::new();
    for l in 0..n {
        at.push((grad_len, grad_len + widths[l] * widths[l + 1] + 1));
        grad_len += widths[l] * widths[l + 1] + widths[l + 1] + 2;
    }
    let grads = GpuTensor::<f32>::zeros(g, &[grad_len]).unwrap();
    grads.fill(g, f32::NAN).unwrap();
    let dw: Vec<_> = (0..n)
        .map(|l| grads.view(at[l].0, &[widths[l + 1], widths[l]]).unwrap())
        .collect();
    let db: Vec<_> = (0..n)
        .map(|l| grads.view(at[l].1, &[widths[l + 1]]).unwrap())
        .collect();
    let gloss = GpuTensor::from_slice(g, &[rows], &loss).unwrap();
    let gcorrect = GpuTensor::from_slice(g, &[rows], &correct).unwrap();
    let lt = GpuTensor::from_slice(g, &[1], &[1.5f32]).unwrap();
    let ct = GpuTensor::from_slice(g, &[1], &[3u32]).unwrap();
    let layers: Vec<WeightGradLayer> = (0..n)
        .map(|l| WeightGradLayer {
            dz: &gdz[l],
            h: if l == 0 { &x } else { &gh[l - 1] },
            dw: &dw[l],
            db: &db[l],
        })
        .collect();
    WeightStep::new(g, &layers, &gloss, &gcorrect, &lt, &ct)
        .unwrap()
        .run(g, 1)
        .unwrap();

    let what = format!("rows {rows} widths {widths:?}");
    for l in 0..n {
        cpu::assert_close(
            &format!("{what}: dw{}", l + 1),
            &dw[l].to_array(g).unwrap(),
            &want_dw[l].clone().into_dyn(),
            tolerance(rows),
        );
        cpu::assert_close(
            &format!("{what}: db{}", l + 1),
            &db[l].to_array(g).unwrap(),
            &want_db[l].clone().into_dyn(),
            tolerance(rows),
        );
    }
    let raw = grads.read(g).unwrap();
    let written: usize = (0..n).map(|l| widths[l + 1] * (widths[l] + 1)).sum();
    assert_eq!(
        raw.iter().filter(|v| v.is_nan()).count(),
        raw.len() - written,
        "{what}: wrote outside dw and db"
    );
    let tol = tolerance(rows);
    let got = lt.read(g).unwrap()[0];
    assert!(
        tol.accepts(got, total),
        "{what}: loss total {got} vs {total}"
    );
    assert_eq!(ct.read(g).unwrap()[0], count, "{what}: correct total");

    // The per-layer ones-column products it replaces, bit for bit.
    let before: Vec<_> = (0..n)
        .map(|l| (bits(&dw[l].read(g).unwrap()), bits(&db[l].read(g).unwrap())))
        .collect();
    for l in 0..n {
        Matmul::fused(
            g,
            &gdz[l],
            layers[l].h,
            &dw[l],
            MatmulOptions::tn(),
            MatmulEpilogue::OnesColumn { sums: &db[l] },
            MatmulKernel::V2Blocked,
        )
        .unwrap()
        .run(g, 1)
        .unwrap();
        assert_eq!(
            bits(&dw[l].read(g).unwrap()),
            before[l].0,
            "{what}: dw{} bits",
            l + 1
        );
        assert_eq!(
            bits(&db[l].read(g).unwrap()),
            before[l].1,
            "{what}: db{} bits",
            l + 1
        );
    }
}

mod shapes {
    use super::*;

    macro_rules! cases {
        ($($name:ident: $rows:expr, $widths:expr;)*) => {
            $(#[test] fn $name() { check_weight_step($rows, &$widths) })*
        };
    }

    cases! {
        batch_1_mnist: 1, [784, 128, 128, 10];
        batch_7_mnist: 7, [784, 128, 128, 10];
        batch_128_mnist: 128, [784, 128, 128, 10];
        batch_129_widths_7_three_classes: 129, [29, 7, 7, 3];
        widths_1: 7, [1, 1, 1, 3];
        one_layer: 9, [33, 10];
        five_layers_odd: 44, [65, 64, 33, 17, 10, 3];
        batch_300_totals_wrap_256_lanes: 300, [5, 4, 3];
    }
}

#[test]
fn weight_step_shape_errors() {
    let g = gpu();
    let x = GpuTensor::<f32>::zeros(g, &[2, 4]).unwrap();
    let arena = GpuTensor::<f32>::zeros(g, &[2 * 3]).unwrap();
    let dz = arena.view(0, &[2, 3]).unwrap();
    let grads = GpuTensor::<f32>::zeros(g, &[3 * 4 + 3]).unwrap();
    let (dw, db) = (
        grads.view(0, &[3, 4]).unwrap(),
        grads.view(12, &[3]).unwrap(),
    );
    let loss = GpuTensor::<f32>::zeros(g, &[2]).unwrap();
    let correct = GpuTensor::<u32>::zeros(g, &[2]).unwrap();
    let (lt, ct) = (
        GpuTensor::<f32>::zeros(g, &[1]).unwrap(),
        GpuTensor::<u32>::zeros(g, &[1]).unwrap(),
    );
    let layer = |h, dz, dw, db| WeightGradLayer { dz, h, dw, db };
    let ok = WeightStep::new(g, &[layer(&x, &dz, &dw, &db)], &loss, &correct, &lt, &ct);
    assert!(ok.is_ok(), "{:?}", ok.err());
    let wrong = grads.view(0, &[4, 3]).unwrap();
    let e = WeightStep::new(g, &[layer(&x, &dz, &wrong, &db)], &loss, &correct, &lt, &ct)
        .err()
        .expect("an error")
        .to_string();
    assert!(e.contains("dw must have shape [3, 4]"), "{e}");
    let overlap = grads.view(10, &[3]).unwrap();
    let e = WeightStep::new(
        g,
        &[layer(&x, &dz, &dw, &overlap)],
        &loss,
        &correct,
        &lt,
        &ct,
    )
    .err()
    .expect("an error")
    .to_string();
    assert!(e.contains("overlap"), "{e}");
    let e = WeightStep::new(g, &[], &loss, &correct, &lt, &ct)
        .err()
        .expect("an error")
        .to_string();
    assert!(e.contains("no layers"), "{e}");
}
