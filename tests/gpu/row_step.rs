//! `shaders/row_step.wgsl`: an MLP's row block (forward after the first
//! layer, softmax cross-entropy, every delta down to dz1) in one dispatch,
//! against its CPU twin, with every output poisoned with NaN first and the
//! views laid out with gaps that must stay NaN.

use crate::common::{gpu, product_tolerance as tolerance, random_labels, random_scaled};
use ndarray::{Array1, Array2, Ix1, Ix2};
use wgpu_train::cpu::{self};
use wgpu_train::kernels::RowStep;
use wgpu_train::kernels::row_step::fits;
use wgpu_train::{Activation, GpuLabels, GpuTensor};

fn refs(v: &[GpuTensor<f32>]) -> Vec<&GpuTensor<f32>> {
    v.iter().collect()
}

fn two(a: ndarray::ArrayD<f32>) -> Array2<f32> {
    a.into_dimensionality::<Ix2>().unwrap()
}

/// `widths` = [w0 (h1's), w1, …, classes].
fn check_row_step(rows: usize, widths: &[usize], activation: Activation) {
    let g = gpu();
    let n = widths.len() - 1;
    let seed = (rows * 7919 + widths.iter().sum::<usize>() * 31 + n) as u64;
    let h = two(random_scaled(&[rows, widths[0]], seed, 3.0).mapv(|z| activation.apply(z)));
    let mut weights = Vec::new();
    let mut biases = Vec::new();
    for i in 0..n {
        let bound = 2.0 / (widths[i] as f32).sqrt();
        weights.push(two(random_scaled(
            &[widths[i + 1], widths[i]],
            seed + 1 + i as u64,
            bound,
        )));
        biases.push(
            random_scaled(&[widths[i + 1]], seed + 50 + i as u64, 0.5)
                .into_dimensionality::<Ix1>()
                .unwrap(),
        );
    }
    let labels = random_labels(rows, widths[n], seed + 99);

    let mut want_hidden: Vec<Array2<f32>> =
        (1..n).map(|i| Array2::zeros((rows, widths[i]))).collect();
    let mut want_dz: Vec<Array2<f32>> = (0..=n).map(|i| Array2::zeros((rows, widths[i]))).collect();
    let mut want_loss = Array1::<f32>::zeros(rows);
    let mut want_correct = vec![0u32; rows];
    cpu::row_step_into(
        h.view(),
        &weights.iter().map(|w| w.view()).collect::<Vec<_>>(),
        &biases.iter().map(|b| b.view()).collect::<Vec<_>>(),
        &labels,
        activation,
        want_hidden.iter_mut().map(|a| a.view_mut()).collect(),
        want_dz.iter_mut().map(|a| a.view_mut()).collect(),
        want_loss.view_mut(),
        &mut want_correct,
    )
    .unwrap();

    // The parameters: every weight and bias one element after a NaN gap.
    let mut flat = vec![f32::NAN];
    let mut at = Vec::new();
    for i in 0..n {
        at.push((flat.len(), flat.len() + weights[i].len() + 1));
        flat.extend(weights[i].iter());
        flat.push(f32::NAN);
        flat.extend(biases[i].iter());
        flat.push(f32::NAN);
    }
    let params = GpuTensor::from_slice(g, &[flat.len()], &flat).unwrap();
    let gw: Vec<_> = (0..n)
        .map(|i| params.view(at[i].0, &[widths[i + 1], widths[i]]).unwrap())
        .collect();
    let gb: Vec<_> = (0..n)
        .map(|i| params.view(at[i].1, &[widths[i + 1]]).unwrap())
        .collect();

    // The arena: h, the hidden outputs and the deltas, each after a gap.
    let mut shapes = vec![widths[0]];
    shapes.extend(&widths[1..n]);
    shapes.extend(&widths[..=n]);
    let total: usize = shapes.iter().map(|w| rows * w + 1).sum::<usize>() + 1;
    let arena = GpuTensor::<f32>::zeros(g, &[total]).unwrap();
    arena.fill(g, f32::NAN).unwrap();
    let mut views = Vec::new();
    let mut off = 1;
    for w in &shapes {
        views.push(arena.view(off, &[rows, *w]).unwrap());
        off += rows * w + 1;
    }
    views[0].write(g, h.as_slice().unwrap()).unwrap();
    let loss = GpuTensor::<f32>::zeros(g, &[rows + 2]).unwrap();
    loss.fill(g, f32::NAN).unwrap();
    let lv = loss.view(1, &[rows]).unwrap();
    let correct = GpuTensor::<u32>::zeros(g, &[rows]).unwrap();
    correct.fill(g, 7).unwrap();
    let gl = GpuLabels::new(g, &labels, widths[n]).unwrap();
    RowStep::new(
        g,
        &views[0],
        &refs(&gw),
        &refs(&gb),
        &gl,
        &refs(&views[1..n]),
        &refs(&views[n..]),
        &lv,
        &correct,
        activation,
    )
    .unwrap()
    .run(g, 1)
    .unwrap();

    let what = format!("rows {rows} widths {widths:?} {activation:?}");
    for (i, want) in want_hidden.iter().enumerate() {
        cpu::assert_close(
            &format!("{what}: h{}", i + 2),
            &views[1 + i].to_array(g).unwrap(),
            &want.clone().into_dyn(),
            tolerance(widths[i]),
        );
    }
    for (i, want) in want_dz.iter().enumerate() {
        cpu::assert_close(
            &format!("{what}: dz{}", i + 1),
            &views[n + i].to_array(g).unwrap(),
            &want.clone().into_dyn(),
            tolerance(widths.iter().sum()),
        );
    }
    cpu::assert_close(
        &format!("{what}: loss"),
        &lv.to_array(g).unwrap(),
        &want_loss.into_dyn(),
        tolerance(widths.iter().sum()),
    );
    assert_eq!(correct.read(g).unwrap(), want_correct, "{what}: correct");
    let raw = arena.read(g).unwrap();
    let mut gap = 0;
    for w in &shapes {
        assert!(raw[gap].is_nan(), "{what}: wrote into the gap at {gap}");
        gap += rows * w + 1;
    }
    assert!(
        raw[gap].is_nan(),
        "{what}: wrote past the arena's last view"
    );
    let raw = loss.read(g).unwrap();
    assert!(
        raw[0].is_nan() && raw[rows + 1].is_nan(),
        "{what}: loss gaps"
    );
}

mod shapes {
    use super::*;
    use Activation as A;

    macro_rules! cases {
        ($($name:ident: $rows:expr, $widths:expr, $act:expr;)*) => {
            $(#[test] fn $name() { check_row_step($rows, &$widths, $act) })*
        };
    }

    cases! {
        batch_1_mnist_sigmoid: 1, [128, 128, 10], A::Sigmoid;
        batch_7_mnist_relu: 7, [128, 128, 10], A::Relu;
        batch_128_mnist_sigmoid: 128, [128, 128, 10], A::Sigmoid;
        batch_129_mnist_relu: 129, [128, 128, 10], A::Relu;
        widths_1_three_classes_sigmoid: 7, [1, 1, 3], A::Sigmoid;
        widths_7_three_classes_relu: 129, [7, 7, 3], A::Relu;
        one_layer_block_relu: 9, [33, 10], A::Relu;
        four_layers_64_33_17_10_relu: 44, [64, 33, 17, 10], A::Relu;
        widest_256_sigmoid: 5, [256, 200, 10], A::Sigmoid;
    }
}

#[test]
fn row_step_fits_the_mnist_mlp_and_refuses_wide_layers() {
    assert!(fits(&[784, 128, 128, 10]));
    assert!(fits(&[784, 64, 33, 17, 10]));
    assert!(!fits(&[784, 10]), "no layer after the first");
    assert!(!fits(&[784, 512, 10]), "wider than 256");
    assert!(
        !fits(&[784, 256, 256, 256, 10]),
        "over the workgroup memory"
    );
}

#[test]
fn row_step_shape_errors() {
    let g = gpu();
    let params = GpuTensor::<f32>::zeros(g, &[4 * 3 + 3]).unwrap();
    let (w, b) = (
        params.view(0, &[3, 4]).unwrap(),
        params.view(12, &[3]).unwrap(),
    );
    let arena = GpuTensor::<f32>::zeros(g, &[2 * 4 + 2 * 4 + 2 * 3]).unwrap();
    let h = arena.view(0, &[2, 4]).unwrap();
    let dz1 = arena.view(8, &[2, 4]).unwrap();
    let dz2 = arena.view(16, &[2, 3]).unwrap();
    let loss = GpuTensor::<f32>::zeros(g, &[2]).unwrap();
    let correct = GpuTensor::<u32>::zeros(g, &[2]).unwrap();
    let labels = GpuLabels::new(g, &[0u32, 2], 3).unwrap();
    let a = Activation::Relu;
    let ok = RowStep::new(
        g,
        &h,
        &[&w],
        &[&b],
        &labels,
        &[],
        &[&dz1, &dz2],
        &loss,
        &correct,
        a,
    );
    assert!(ok.is_ok(), "{:?}", ok.err());
    let elsewhere = GpuTensor::<f32>::zeros(g, &[2, 3]).unwrap();
    let e = RowStep::new(
        g,
        &h,
        &[&w],
        &[&b],
        &labels,
        &[],
        &[&dz1, &elsewhere],
        &loss,
        &correct,
        a,
    )
    .err()
    .expect("an error")
    .to_string();
    assert!(e.contains("arena"), "{e}");
    let overlap = arena.view(6, &[2, 4]).unwrap();
    let e = RowStep::new(
        g,
        &h,
        &[&w],
        &[&b],
        &labels,
        &[],
        &[&overlap, &dz2],
        &loss,
        &correct,
        a,
    )
    .err()
    .expect("an error")
    .to_string();
    assert!(e.contains("overlap"), "{e}");
    let e = RowStep::new(
        g,
        &h,
        &[&w],
        &[&b],
        &labels,
        &[],
        &[&dz1, &dz2],
        &loss,
        &correct,
        Activation::Identity,
    )
    .err()
    .expect("an error")
    .to_string();
    assert!(e.contains("sigmoid or ReLU"), "{e}");
    let four = GpuLabels::new(g, &[0u32, 3], 4).unwrap();
    let e = RowStep::new(
        g,
        &h,
        &[&w],
        &[&b],
        &four,
        &[],
        &[&dz1, &dz2],
        &loss,
        &correct,
        a,
    )
    .err()
    .expect("an error")
    .to_string();
    assert!(e.contains("classes"), "{e}");
}
