//! The GPU minibatch gather against its CPU twin: random datasets and
//! permutations, every step of an epoch including the short last one, the
//! bias column, mean/std normalisation, the chunked path (a device with a
//! small binding limit), and a batch large enough to need a 2-D dispatch.

use crate::common::gpu;
use rand::{RngExt, SeedableRng, rngs::StdRng, seq::SliceRandom};
use wgpu_train::cpu::{self, Tolerance};
use wgpu_train::kernels::{Gather, GatherOptions, GpuDataset};
use wgpu_train::{Dataset, Error, Gpu, GpuOptions, GpuTensor};

fn dataset(n: usize, shape: [usize; 3], seed: u64) -> Dataset {
    let mut rng = StdRng::seed_from_u64(seed);
    let dim: usize = shape.iter().product();
    let images = (0..n * dim).map(|_| rng.random::<u8>()).collect();
    let labels = (0..n).map(|_| rng.random_range(0..10u8)).collect();
    Dataset::new(images, labels, shape, 10).unwrap()
}

fn permutation(n: usize, seed: u64) -> Vec<u32> {
    let mut v: Vec<u32> = (0..n as u32).collect();
    v.shuffle(&mut StdRng::seed_from_u64(seed));
    v
}

/// Gathers every step of one epoch on both sides and compares them.
fn check_epoch(g: &Gpu, data: &Dataset, order: &[u32], batch: usize, opts: GatherOptions) -> usize {
    let gdata = GpuDataset::upload(g, data).unwrap();
    let gorder = gdata.order_buffer(g, order.len()).unwrap();
    gdata.write_order(g, &gorder, order).unwrap();
    let width = data.dim() + usize::from(opts.append_one);
    let x = GpuTensor::<f32>::zeros(g, &[batch, width]).unwrap();
    let y = GpuTensor::<u32>::zeros(g, &[batch]).unwrap();
    let gather = Gather::new(g, &gdata, &gorder, &x, &y, batch, opts).unwrap();
    assert_eq!(gather.steps(), order.len().div_ceil(batch));
    for step in 0..gather.steps() {
        x.fill(g, f32::NAN).unwrap();
        y.fill(g, u32::MAX).unwrap();
        gather.run(g, step).unwrap();
        let rows = gather.rows(step);
        let (want_x, want_y) = cpu::gather(data, order, step * batch, rows, opts).unwrap();
        let got_x = x.to_array(g).unwrap();
        let got_y = y.read(g).unwrap();
        let got_rows = got_x.slice(ndarray::s![..rows, ..]).to_owned();
        cpu::assert_close(
            &format!("step {step}"),
            &got_rows,
            &want_x,
            Tolerance::new(1e-6, 1e-6),
        );
        assert_eq!(&got_y[..rows], &want_y[..], "labels at step {step}");
        // Rows past a short last batch are left alone.
        assert!(
            got_x
                .slice(ndarray::s![rows.., ..])
                .iter()
                .all(|v| v.is_nan())
        );
    }
    gdata.chunk_count()
}

#[test]
fn mnist_shaped_epoch_with_short_last_batch_matches_cpu() {
    let data = dataset(300, [1, 28, 28], 1);
    let chunks = check_epoch(
        gpu(),
        &data,
        &permutation(300, 2),
        128,
        GatherOptions::default(),
    );
    assert_eq!(chunks, 1);
}

#[test]
fn odd_pixel_count_bias_column_and_mean_std() {
    // 7 pixels: the last word of each example is padding.
    let data = dataset(50, [1, 1, 7], 3);
    let opts = GatherOptions {
        mean: 0.2860,
        std: 0.3530,
        append_one: true,
    };
    check_epoch(gpu(), &data, &permutation(50, 4), 8, opts);
}

#[test]
fn batch_of_one_and_a_subset_order() {
    let data = dataset(40, [3, 2, 2], 5);
    // A validation-style subset: only some examples, in some order.
    let order: Vec<u32> = permutation(40, 6).into_iter().take(13).collect();
    check_epoch(gpu(), &data, &order, 1, GatherOptions::default());
    check_epoch(gpu(), &data, &order, 13, GatherOptions::default());
}

#[test]
fn dataset_past_the_binding_limit_is_chunked_and_still_gathers_correctly() {
    // A device whose storage bindings stop at 256 KiB, and a 3072-pixel
    // (CIFAR-shaped) dataset of 300 examples (900 KiB): 4 chunks.
    let small = Gpu::with_options(GpuOptions {
        max_storage_buffer_binding_size: Some(256 << 10),
        ..GpuOptions::default()
    })
    .unwrap();
    let data = dataset(150, [3, 32, 32], 7);
    let opts = GatherOptions {
        append_one: true,
        ..GatherOptions::default()
    };
    let chunks = check_epoch(&small, &data, &permutation(150, 8), 16, opts);
    assert!(chunks > 1, "expected the chunked path, got {chunks} chunk");
}

#[test]
fn batch_needing_more_than_65535_workgroups_is_folded_into_2d() {
    // 22,000 rows × 196 words = 4.3 M threads = 67,375 workgroups of 64.
    let n = 22_000;
    let data = dataset(n, [1, 28, 28], 9);
    check_epoch(
        gpu(),
        &data,
        &permutation(n, 10),
        n,
        GatherOptions::default(),
    );
}

#[test]
fn out_of_range_order_and_bad_options_are_errors() {
    let g = gpu();
    let data = dataset(10, [1, 2, 2], 11);
    let gdata = GpuDataset::upload(g, &data).unwrap();
    let order = gdata.order_buffer(g, 3).unwrap();
    match gdata.write_order(g, &order, &[1, 2, 10]) {
        Err(e @ Error::InvalidArgument { .. }) => {
            assert!(e.to_string().contains("example 10"), "{e}")
        }
        other => panic!("expected an error, got {other:?}"),
    }
    let x = GpuTensor::<f32>::zeros(g, &[2, 4]).unwrap();
    let y = GpuTensor::<u32>::zeros(g, &[2]).unwrap();
    let bad_std = GatherOptions {
        std: 0.0,
        ..GatherOptions::default()
    };
    assert!(matches!(
        Gather::new(g, &gdata, &order, &x, &y, 2, bad_std),
        Err(Error::InvalidArgument { name: "std", .. })
    ));
    let nan_mean = GatherOptions {
        mean: f32::NAN,
        ..GatherOptions::default()
    };
    assert!(matches!(
        Gather::new(g, &gdata, &order, &x, &y, 2, nan_mean),
        Err(Error::InvalidArgument { name: "mean", .. })
    ));
    assert!(matches!(
        Gather::new(g, &gdata, &order, &x, &y, 3, GatherOptions::default()),
        Err(Error::Shape { .. })
    ));
    let with_bias = GatherOptions {
        append_one: true,
        ..GatherOptions::default()
    };
    assert!(matches!(
        Gather::new(g, &gdata, &order, &x, &y, 2, with_bias),
        Err(Error::Shape { .. })
    ));
    let ok = Gather::new(g, &gdata, &order, &x, &y, 2, GatherOptions::default()).unwrap();
    assert_eq!(ok.steps(), 2);
    let mut enc = g.encoder("t");
    let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
        label: None,
        timestamp_writes: None,
    });
    assert!(matches!(
        ok.record(&mut pass, 2),
        Err(Error::InvalidArgument { name: "step", .. })
    ));
}

#[test]
fn labels_at_or_above_the_class_count_are_rejected() {
    match Dataset::new(vec![0; 8], vec![3, 10], [1, 2, 2], 10) {
        Err(e) => assert!(e.to_string().contains("label 10"), "{e}"),
        Ok(_) => panic!("label 10 of 10 classes accepted"),
    }
}
