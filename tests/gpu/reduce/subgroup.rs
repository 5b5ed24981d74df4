//! v3, the subgroup column sum, where the device has subgroups: the CPU twin
//! at awkward shapes with poisoned outputs, plain and fused with the
//! activation backward, a sweep's batches, the same bits run after run, and
//! the exact bits of the documented order (lanes of 4, shuffle-xor 1 then
//! 2), which does not depend on the subgroup size. And, on every pass, a
//! device made without the feature: no subgroup version offered, tuned or
//! replayed.

use super::*;
use std::collections::BTreeMap;
use wgpu_train::tune::TuneMode;
use wgpu_train::{Activation, Gpu, GpuLabels, GpuOptions, SoftmaxXentKernel};

const V3: ColumnSumKernel = ColumnSumKernel::V3Subgroup;

/// True where v3 can run; where it cannot, checks that it is neither
/// offered nor built.
fn has_subgroups() -> bool {
    let g = gpu();
    if g.subgroup_sizes().is_some() {
        assert!(ColumnSumKernel::available(g).contains(&V3));
        return true;
    }
    assert_absent(g);
    eprintln!(
        "{}: no subgroups; checked that v3 is refused",
        g.summary().name
    );
    false
}

/// The subgroup versions are not offered on `g`, and asking for one is an
/// error that says why.
fn assert_absent(g: &Gpu) {
    assert_eq!(g.subgroup_sizes(), None);
    assert_eq!(ColumnSumKernel::available(g), ColumnSumKernel::ALL.to_vec());
    assert_eq!(
        SoftmaxXentKernel::available(g),
        SoftmaxXentKernel::ALL.to_vec()
    );
    let x = GpuTensor::from_slice(g, &[2, 2], &[1.0, 2.0, 3.0, 4.0]).unwrap();
    let sums = GpuTensor::<f32>::zeros(g, &[2]).unwrap();
    let err = ColumnSum::new(g, &x, &sums, V3).err().expect("v3 refused");
    assert!(
        matches!(err, Error::InvalidArgument { .. }) && err.to_string().contains("subgroups"),
        "{err}"
    );
}

/// Columns 1, 10, 17, 784 and 3073 (one, the MLP's classes, not a multiple
/// of a workgroup's 16, an MNIST image, a CIFAR image plus bias), rows 1,
/// 3 (fewer than the 4 lanes), 7, 128 and 129.
#[test]
fn v3_matches_the_cpu_twin_at_awkward_shapes() {
    if !has_subgroups() {
        return;
    }
    for n in [1, 3, 7, 128, 129] {
        for c in [1, 10, 17, 784, 3073] {
            check_column_sum(n, c, V3);
        }
    }
}

/// The fused activation backward (dZ written, db summed) against the twin.
#[test]
fn v3_fused_activation_backward_matches_the_twin() {
    if !has_subgroups() {
        return;
    }
    let g = gpu();
    for act in [Activation::Identity, Activation::Sigmoid, Activation::Relu] {
        for (n, c) in [(1, 1), (7, 10), (129, 10), (128, 128), (3, 784)] {
            let dh = random(&[n, c], 31);
            let h = random(&[n, c], 32).mapv(|v| 0.5 + 0.4 * v);
            let (want_dz, want_db) = cpu::activation_bias_backward(&dh, &h, act).unwrap();
            let gdh = GpuTensor::from_array(g, &dh).unwrap();
            let gh = GpuTensor::from_array(g, &h).unwrap();
            let dz = GpuTensor::<f32>::zeros(g, &[n, c]).unwrap();
            let db = GpuTensor::<f32>::zeros(g, &[c]).unwrap();
            dz.fill(g, f32::NAN).unwrap();
            db.fill(g, f32::NAN).unwrap();
            ColumnSum::with_activation(g, &gdh, &gh, &dz, &db, act, V3)
                .unwrap()
                .run(g, 1)
                .unwrap();
            let what = format!("{n}×{c} {act:?}");
            cpu::assert_close(
                &format!("dz {what}"),
                &dz.to_array(g).unwrap(),
                &want_dz,
                Tolerance::new(1e-6, 1e-5),
            );
            cpu::assert_close(
                &format!("db {what}"),
                &db.to_array(g).unwrap(),
                &want_db,
                sum_tolerance(n),
            );
        }
    }
}

#[test]
fn v3_batched_models_match_the_twin_and_the_model_alone() {
    if !has_subgroups() {
        return;
    }
    batched::check_column_sums(129, 17, 3, V3);
    batched::check_column_sums(1, 10, 2, V3);
}

/// The order the shader documents, on the CPU: lane l adds rows l, l + 4,
/// … in order, then (a0 + a1) + (a2 + a3). Sums are additions only, so the
/// GPU must give exactly these bits; another order (e.g. a tree over the
/// subgroup's size, or subgroupAdd) differs in the last bits for most of
/// these columns.
fn quad_order_sums(x: &ndarray::ArrayD<f32>) -> Vec<f32> {
    let (n, c) = (x.shape()[0], x.shape()[1]);
    (0..c)
        .map(|col| {
            let lane = |l: usize| (l..n).step_by(4).fold(0.0f32, |acc, r| acc + x[[r, col]]);
            (lane(0) + lane(1)) + (lane(2) + lane(3))
        })
        .collect()
}

#[test]
fn v3_gives_the_bits_of_its_documented_order_and_the_same_bits_twice() {
    if !has_subgroups() {
        return;
    }
    let g = gpu();
    for (n, c) in [(128, 784), (129, 10), (3073, 3), (7, 3073)] {
        // Values of mixed magnitude, so that the order shows in the bits.
        let x = random(&[n, c], (n + c) as u64).mapv(|v| v * (1.0 + 1e3 * v * v));
        let gx = GpuTensor::from_array(g, &x).unwrap();
        let run = || {
            let sums = GpuTensor::<f32>::zeros(g, &[c]).unwrap();
            sums.fill(g, f32::NAN).unwrap();
            ColumnSum::new(g, &gx, &sums, V3)
                .unwrap()
                .run(g, 1)
                .unwrap();
            sums.read(g)
                .unwrap()
                .iter()
                .map(|v| v.to_bits())
                .collect::<Vec<u32>>()
        };
        let (a, b) = (run(), run());
        assert_eq!(a, b, "{n}×{c}: two runs differ");
        let want: Vec<u32> = quad_order_sums(&x).iter().map(|v| v.to_bits()).collect();
        let wrong = a.iter().zip(&want).filter(|(x, y)| x != y).count();
        assert_eq!(
            wrong, 0,
            "{n}×{c}: {wrong} of {c} sums are not the bits of the quad order"
        );
    }
}

/// A device made without the feature (as on GL, in a browser, or under
/// WGPU_TRAIN_LIMITS) offers no subgroup version, the tuner does not time
/// one, and a recorded subgroup choice is decided again (issue 28), not run.
#[test]
fn without_the_feature_no_subgroup_version_is_offered_tuned_or_replayed() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("tune-no-subgroups");
    let _ = std::fs::remove_dir_all(&dir);
    let g = Gpu::with_options(GpuOptions {
        subgroups: false,
        autotune: Some(TuneMode::Refresh),
        autotune_dir: Some(dir),
        ..GpuOptions::default()
    })
    .expect("GPU tests need an adapter");
    assert_absent(&g);

    // Tuned: only the versions every device has are timed and chosen.
    let sum_kernel = |g: &Gpu| {
        let x = GpuTensor::from_array(g, &random(&[37, 10], 8)).unwrap();
        let sums = GpuTensor::<f32>::zeros(g, &[10]).unwrap();
        let kernel = wgpu_train::tune::column_sum_for(g, &x, None, ColumnSumKernel::Auto);
        ColumnSum::new(g, &x, &sums, kernel).map(|k| k.kernel())
    };
    let xent_kernel = |g: &Gpu| {
        let logits = GpuTensor::from_array(g, &random(&[33, 10], 9)).unwrap();
        let labels = GpuLabels::new(g, &random_labels(33, 10, 10), 10).unwrap();
        let loss = GpuTensor::<f32>::zeros(g, &[33]).unwrap();
        let correct = GpuTensor::<u32>::zeros(g, &[33]).unwrap();
        wgpu_train::kernels::SoftmaxXent::new(
            g,
            &logits,
            &labels,
            &loss,
            &correct,
            None,
            wgpu_train::tune::softmax_xent_for(g, &logits, false, SoftmaxXentKernel::Auto),
        )
        .map(|k| k.kernel())
    };
    let chosen = sum_kernel(&g).unwrap();
    assert!(ColumnSumKernel::ALL.contains(&chosen), "{chosen:?}");
    let xent = xent_kernel(&g).unwrap();
    assert!(SoftmaxXentKernel::ALL.contains(&xent), "{xent:?}");
    assert_eq!(g.tune_record().tuned().0, 2);

    // Replayed: a run recorded on a device with subgroups.
    let recorded: BTreeMap<String, String> = [
        ("column_sum 37x10".to_string(), "v3_subgroup".to_string()),
        ("softmax_xent 33x10".to_string(), "v4_subgroup".to_string()),
    ]
    .into_iter()
    .collect();
    wgpu_train::tune::check_choices(&recorded).expect("names this build has");
    let off = Gpu::with_options(GpuOptions {
        subgroups: false,
        ..GpuOptions::default()
    })
    .unwrap();
    off.tune_record().pin(&recorded);
    // Issue 28, class 7: a choice this device cannot run is decided again
    // (with a warning that says the bits may change), never fatal.
    let sum = sum_kernel(&off).expect("a recorded v3 is decided again");
    assert!(ColumnSumKernel::ALL.contains(&sum), "{sum:?}");
    let xent = xent_kernel(&off).expect("a recorded v4 is decided again");
    assert!(SoftmaxXentKernel::ALL.contains(&xent), "{xent:?}");
}

/// Where the adapter offers subgroups and no WGPU_TRAIN_LIMITS cap stands
/// for a smaller device, the `Gpu` has requested them (so the tests above
/// ran the subgroup versions rather than the checks of their absence), with
/// the adapter's sizes.
#[test]
fn subgroups_are_requested_where_the_adapter_has_them() {
    let g = gpu();
    let offered = g.adapter().features().contains(wgpu::Features::SUBGROUP);
    let capped = wgpu_train::gpu::limits_from_env().unwrap().is_some();
    let info = g.adapter().get_info();
    let want = (offered && !capped && info.subgroup_min_size >= 4)
        .then_some((info.subgroup_min_size, info.subgroup_max_size));
    assert_eq!(g.subgroup_sizes(), want, "{}", g.summary());
    eprintln!("{}: subgroup sizes {:?}", g.summary(), g.subgroup_sizes());
}

/// A cache written by a device with subgroups (which may choose their
/// versions) is not read by the same adapter without them (e.g. under
/// WGPU_TRAIN_LIMITS): that tunes afresh instead of failing on a version it
/// cannot run.
#[test]
fn a_cache_written_with_subgroups_is_not_read_without_them() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("tune-subgroup-cache");
    let _ = std::fs::remove_dir_all(&dir);
    let tuned = |subgroups: bool| {
        Gpu::with_options(GpuOptions {
            subgroups,
            autotune: Some(TuneMode::On),
            autotune_dir: Some(dir.clone()),
            ..GpuOptions::default()
        })
        .expect("GPU tests need an adapter")
    };
    let build = |g: &Gpu| {
        let x = GpuTensor::from_array(g, &random(&[37, 10], 8)).unwrap();
        let sums = GpuTensor::<f32>::zeros(g, &[10]).unwrap();
        let kernel = wgpu_train::tune::column_sum_for(g, &x, None, ColumnSumKernel::Auto);
        ColumnSum::new(g, &x, &sums, kernel).unwrap().kernel()
    };
    let with = tuned(true);
    build(&with);
    assert_eq!(with.tune_record().tuned().0, 1);
    let without = tuned(false);
    assert!(ColumnSumKernel::ALL.contains(&build(&without)));
    let files = |g: &Gpu| g.tune_record().file().unwrap().to_path_buf();
    if with.subgroup_sizes().is_some() {
        assert_ne!(files(&with), files(&without), "one cache file each");
        assert_eq!(without.tune_record().tuned().0, 1, "tuned afresh");
    } else {
        // No subgroups on this pass (GL, WGPU_TRAIN_LIMITS): one device, one file.
        assert_eq!(files(&with), files(&without));
        assert_eq!(without.tune_record().tuned().0, 0, "the cache is used");
    }
}
