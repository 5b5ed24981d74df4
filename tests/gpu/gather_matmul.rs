//! `shaders/gather_matmul.wgsl`: the first layer's product reading its rows
//! straight from the resident dataset, against the gather followed by the
//! product (CPU twin and GPU pair), and its fallback on chunked datasets.

use crate::common::{bits, gpu, product_tolerance as tolerance, random};
use crate::fused::{config, run};
use ndarray::{Ix1, Ix2};
use wgpu_train::cpu::{self, Tolerance};
use wgpu_train::kernels::{Gather, GatherMatmul, GatherOptions, GpuDataset, Matmul};
use wgpu_train::model::Mlp;
use wgpu_train::optim::OptimizerConfig;
use wgpu_train::train::{Engine, GpuEngine, TrainConfig, TrainData};
use wgpu_train::{Activation, Dataset, GpuTensor, MatmulKernel, MatmulOptions};

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

mod shapes {
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

/// The order buffer is a public tensor, so an order can reach the shader
/// without `write_order`'s check; the module is built without wgpu's bounds
/// checks (issue 23), so the shader clamps each example into the bound
/// chunk itself: an example past the dataset reads the last one, for the
/// product, X and y alike.
#[test]
fn an_order_past_the_dataset_reads_the_last_example() {
    let g = gpu();
    let (examples, shape, batch, n) = (9, [1, 3, 5], 4, 6);
    let data = dataset(examples, shape, 91);
    let opts = GatherOptions {
        append_one: true,
        ..GatherOptions::default()
    };
    let gdata = GpuDataset::upload(g, &data).unwrap();
    let gorder = gdata.order_buffer(g, batch).unwrap();
    // Written past the check: two examples that do not exist.
    let bad = [2u32, 9, 4_000_000_000, 5];
    gorder.write(g, &bad).unwrap();
    let k = data.dim() + 1;
    let x = GpuTensor::<f32>::zeros(g, &[batch, k]).unwrap();
    let y = GpuTensor::<u32>::zeros(g, &[batch]).unwrap();
    let gather = Gather::new(g, &gdata, &gorder, &x, &y, batch, opts).unwrap();
    let w = random(&[n, k], 92).into_dimensionality::<Ix2>().unwrap();
    let gw = GpuTensor::from_array(g, &w).unwrap();
    let c = GpuTensor::<f32>::zeros(g, &[batch, n]).unwrap();
    let fused = GatherMatmul::new(g, &gather, batch, &gw, None, &c, Activation::Identity).unwrap();
    c.fill(g, f32::NAN).unwrap();
    x.fill(g, f32::NAN).unwrap();
    y.fill(g, u32::MAX).unwrap();
    fused.run(g, &gather, 0).unwrap();
    let clamped: Vec<u32> = bad.iter().map(|&e| e.min(examples as u32 - 1)).collect();
    let (want_c, want_x, want_y) = cpu::gather_matmul(
        &data,
        &clamped,
        0,
        batch,
        opts,
        w.view(),
        None,
        Activation::Identity,
    )
    .unwrap();
    cpu::assert_close(
        "c",
        &c.to_array(g).unwrap(),
        &want_c.into_dyn(),
        tolerance(k),
    );
    cpu::assert_close(
        "x",
        &x.to_array(g).unwrap(),
        &want_x.into_dyn(),
        Tolerance::new(1e-6, 1e-6),
    );
    assert_eq!(y.read(g).unwrap(), want_y);
}
