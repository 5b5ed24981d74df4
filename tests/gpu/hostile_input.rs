//! The library under hostile or careless input (issue 12): sizes from user
//! input, diverging runs, resume bookkeeping, misleading messages and
//! downloads. What the command line adds on top is in `hostile_cli.rs`.
//! Where a behaviour exists on both devices, the GPU and the CPU engine are
//! both checked.

use crate::common::gpu;
use crate::data_util::{Scratch, gzip, idx_images};
use std::path::Path;
use wgpu_train::checkpoint::{self, TensorData};
use wgpu_train::data;
use wgpu_train::lab::download::{self, RemoteFile, sha256_hex};
use wgpu_train::model::{Mlp, Model};
use wgpu_train::optim::OptimizerConfig;
use wgpu_train::train::{
    self, CpuEngine, Engine, Event, GpuEngine, Resume, TrainConfig, TrainData,
};
use wgpu_train::{Activation, Error};

fn small_data(train: usize, validation: usize) -> TrainData {
    TrainData::new(
        data::synthetic::images(train, [1, 28, 28], 10, 1).unwrap(),
        data::synthetic::images(40, [1, 28, 28], 10, 2).unwrap(),
        validation,
        0,
    )
    .unwrap()
}

fn config(optimizer: OptimizerConfig, epochs: usize, batch: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch,
        optimizer,
        mean: 0.5,
        std: 0.25,
        ..TrainConfig::default()
    }
}

/// Both engines for one model, data and config: `(device, engine)`.
fn engines<'a>(
    model: &dyn Model,
    data: &'a TrainData,
    config: &TrainConfig,
) -> Vec<(&'static str, Box<dyn Engine + 'a>)> {
    vec![
        (
            "gpu",
            Box::new(GpuEngine::new(gpu(), model, data, config).unwrap()),
        ),
        (
            "cpu",
            Box::new(CpuEngine::new(model, data, config).unwrap()),
        ),
    ]
}

// ------------------------------------------------------------ class 1: sizes
#[test]
fn a_batch_larger_than_the_set_is_one_full_batch_on_both_engines() {
    let data = small_data(100, 0);
    let model = Mlp::mnist(Activation::Sigmoid);
    let reference = config(OptimizerConfig::sgd(0.1), 2, 100);
    for batch in [101, 4_000_000_000, usize::MAX / 784 + 1, usize::MAX] {
        let cfg = config(OptimizerConfig::sgd(0.1), 2, batch);
        for ((device, mut huge), (_, mut exact)) in engines(&model, &data, &cfg)
            .into_iter()
            .zip(engines(&model, &data, &reference))
        {
            let a = train::fit(huge.as_mut(), &data, &cfg, 0, &mut |_| {})
                .unwrap_or_else(|e| panic!("{device} batch {batch}: {e}"));
            let b = train::fit(exact.as_mut(), &data, &reference, 0, &mut |_| {}).unwrap();
            assert_eq!(a.test_loss, b.test_loss, "{device} batch {batch}");
            assert_eq!(
                huge.state().unwrap().params,
                exact.state().unwrap().params,
                "{device} batch {batch}"
            );
        }
    }
}

#[test]
fn synthetic_images_of_overflowing_size_are_an_error() {
    let e = data::synthetic::images(usize::MAX, [3, 32, 32], 10, 0).unwrap_err();
    assert!(e.to_string().contains("overflow"), "{e}");
    assert!(data::synthetic::images(4, [1, 2, 2], 0, 0).is_err());
    assert!(data::synthetic::images(4, [1, 2, 2], 257, 0).is_err());
}

// ------------------------------------------------------------ class 2: divergence
#[test]
fn fit_stops_a_diverging_run_naming_device_epoch_and_loss() {
    let data = small_data(200, 0);
    let model = Mlp::mnist(Activation::Sigmoid);
    let cfg = config(OptimizerConfig::sgd(1e36), 5, 50);
    for (device, mut engine) in engines(&model, &data, &cfg) {
        let mut epochs_seen = Vec::new();
        let err = train::fit(engine.as_mut(), &data, &cfg, 0, &mut |e| {
            if let Event::Epoch(m) = e {
                epochs_seen.push((m.epoch, m.train_loss));
            }
        })
        .expect_err("a run at lr 1e36 diverges");
        let Error::Diverged {
            device: d,
            epoch,
            what,
            value,
            ..
        } = &err
        else {
            panic!("{device}: not a divergence: {err}");
        };
        assert_eq!(*d, device);
        assert_eq!(*what, "training loss");
        assert!(!value.is_finite());
        // Stopped at the epoch it happened in, whose line was still reported.
        assert!(*epoch < 5, "{device} trained on to epoch {epoch}");
        assert_eq!(epochs_seen.last().map(|e| e.0), Some(*epoch));
        let m = err.to_string();
        assert!(
            m.contains(&format!("[{device}] diverged"))
                && m.contains(&format!("in epoch {epoch}"))
                && m.contains("smaller learning rate"),
            "{m}"
        );
    }
}

#[test]
fn relu_divergence_with_validation_is_divergence_not_a_schedule_error() {
    let data = small_data(200, 40);
    let model = Mlp::mnist(Activation::Relu);
    let adam = OptimizerConfig::preset("adam", 1e30).unwrap();
    let cfg = TrainConfig {
        optimizer: adam.with_schedule(wgpu_train::Schedule::reduce_on_plateau()),
        ..config(adam, 3, 50)
    };
    for (device, mut engine) in engines(&model, &data, &cfg) {
        let err = train::fit(engine.as_mut(), &data, &cfg, 0, &mut |_| {}).unwrap_err();
        assert!(
            matches!(err, Error::Diverged { device: d, epoch: 1, .. } if d == device),
            "{device}: {err}"
        );
    }
}

// ------------------------------------------------------------ class 3: resume
#[test]
fn a_checkpoint_with_nan_or_inf_weights_is_refused_at_load_time() {
    let data = small_data(100, 0);
    let model = Mlp::mnist(Activation::Sigmoid);
    let cfg = config(OptimizerConfig::preset("adam", 1e-3).unwrap(), 1, 50);
    let s = Scratch::new("resume-nan");
    let path = s.path().join("ckpt.safetensors");
    let mut engine = CpuEngine::new(&model, &data, &cfg).unwrap();
    train::fit(&mut engine, &data, &cfg, 0, &mut |_| {}).unwrap();
    train::save_checkpoint(&path, &model, &cfg, &mut engine, 1).unwrap();
    Resume::read(&path, &model, &cfg).expect("an intact checkpoint resumes");

    for (tensor, index, bad) in [
        ("layer2.weight", 17, f32::NAN),
        ("layer1.bias", 0, f32::INFINITY),
        ("optimizer.exp_avg_sq", 5, f32::NEG_INFINITY),
    ] {
        let mut ck = checkpoint::load(&path).unwrap();
        let t = ck
            .tensors
            .iter_mut()
            .find(|t| t.name == tensor)
            .unwrap_or_else(|| panic!("no {tensor}"));
        match &mut t.data {
            TensorData::F32(v) => v[index] = bad,
            TensorData::U32(_) => unreachable!(),
        }
        let broken = s.path().join(format!("{tensor}.safetensors"));
        checkpoint::save(&broken, &ck).unwrap();
        for (device, mut engine) in engines(&model, &data, &cfg) {
            let e = train::load_checkpoint(&broken, &model, &cfg, engine.as_mut()).unwrap_err();
            let m = e.to_string();
            assert!(
                m.contains(tensor)
                    && m.contains(&format!("index {index}"))
                    && m.contains("diverged"),
                "{device}: {m}"
            );
        }
    }
}

#[test]
fn nothing_left_to_train_is_an_error_and_never_nan_statistics() {
    let data = small_data(100, 0);
    let model = Mlp::mnist(Activation::Sigmoid);
    let cfg = config(OptimizerConfig::sgd(0.1), 3, 50);
    for (device, mut engine) in engines(&model, &data, &cfg) {
        for first in [3, 4] {
            let e = train::fit(engine.as_mut(), &data, &cfg, first, &mut |_| {}).unwrap_err();
            let m = e.to_string();
            assert!(
                m.contains(&format!("already trained {first} epochs")) && m.contains("nothing"),
                "{device}: {m}"
            );
        }
    }
    let s = Scratch::new("resume-first");
    let path = s.path().join("ckpt.safetensors");
    let mut engine = CpuEngine::new(&model, &data, &cfg).unwrap();
    train::save_checkpoint(&path, &model, &cfg, &mut engine, 3).unwrap();
    let r = Resume::read(&path, &model, &cfg).unwrap();
    assert_eq!(r.first_epoch(4).unwrap(), 3);
    assert!(r.first_epoch(3).is_err());
    assert!(r.first_epoch(1).is_err());
}

// ------------------------------------------------------------ class 6: messages
#[test]
fn data_dir_that_is_a_symlink_loop_is_reported_as_unreadable_not_missing() {
    #[cfg(unix)]
    {
        let s = Scratch::new("data-loop");
        let a = s.path().join("a");
        std::os::unix::fs::symlink(&a, &a).unwrap();
        let m = data::load(Some(&a)).unwrap_err().to_string();
        assert!(
            m.contains("cannot be read") && !m.contains("does not exist"),
            "{m}"
        );
        // A file name that loops inside a real directory is named too.
        let d = Scratch::new("data-file-loop");
        let f = d.path().join("train-images-idx3-ubyte.gz");
        std::os::unix::fs::symlink(&f, &f).unwrap();
        let m = data::load(Some(d.path())).unwrap_err().to_string();
        assert!(
            m.contains("train-images-idx3-ubyte.gz") && m.contains("cannot be read"),
            "{m}"
        );
    }
}

#[test]
fn bench_filter_that_matches_nothing_is_an_error() {
    let mut opts = wgpu_train::lab::bench::Options::quick();
    opts.filter = Some("nonexistent".into());
    let m = opts.validate().unwrap_err().to_string();
    assert!(
        m.contains("matches no case") && m.contains("matmul/"),
        "{m}"
    );
    opts.filter = Some("train_step/mlp".into());
    opts.validate().unwrap();
}

// ------------------------------------------------------------ class 7: downloads
/// Debian's `dataset-fashion-mnist` files differ from Zalando's by their
/// gzip header: `--download fashion-mnist` keeps them, fetching nothing.
#[test]
fn debian_fashion_mnist_files_are_kept_without_a_download() {
    let system = Path::new(data::source::SYSTEM_DIR);
    let dir = std::env::var_os(data::source::ENV_DIR)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| system.to_path_buf());
    let s = Scratch::new("debian-fashion");
    for f in download::Remote::FashionMnist.files() {
        let src = dir.join(&f.name);
        assert!(
            src.is_file(),
            "{} is missing: bash scripts/test.sh installs dataset-fashion-mnist",
            src.display()
        );
        #[cfg(unix)]
        std::os::unix::fs::symlink(&src, s.path().join(&f.name)).unwrap();
    }
    // Port 9 on loopback refuses connections: any fetch would fail.
    let paths = download::fetch_files(
        "http://127.0.0.1:9/",
        s.path(),
        &download::Remote::FashionMnist.files(),
    )
    .unwrap_or_else(|e| panic!("Debian's files were not accepted: {e}"));
    assert_eq!(paths.len(), 4);
    let splits = data::load(Some(s.path())).unwrap();
    assert_eq!((splits.train.len(), splits.test.len()), (60_000, 10_000));
}

#[test]
fn a_file_with_the_pinned_content_is_kept_whatever_its_compression() {
    let content = idx_images(20, 28, 28);
    let published = gzip(&content);
    let f = RemoteFile::new(
        "train-images-idx3-ubyte.gz",
        published.len() as u64,
        &sha256_hex(&published),
    )
    .with_content(content.len() as u64, &sha256_hex(&content));
    // Another gzip wrapper (best compression, so other bytes), then none.
    let other = {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(&content).unwrap();
        e.finish().unwrap()
    };
    assert_ne!(other, published);
    let s = Scratch::new("content-gz");
    s.write(&f.name, &other);
    assert_eq!(download::existing(s.path(), &f), Ok(s.path().join(&f.name)));
    let raw = Scratch::new("content-raw");
    raw.write("train-images-idx3-ubyte", &content);
    assert_eq!(
        download::existing(raw.path(), &f),
        Ok(raw.path().join("train-images-idx3-ubyte"))
    );
    // Without a pinned content sum, only the published bytes are accepted.
    let strict = RemoteFile {
        content: None,
        ..f.clone()
    };
    assert!(download::existing(s.path(), &strict).is_err());
}

#[test]
fn a_file_with_other_content_is_refused_saying_precisely_why() {
    let content = idx_images(20, 28, 28);
    let published = gzip(&content);
    let f = RemoteFile::new(
        "train-images-idx3-ubyte.gz",
        published.len() as u64,
        &sha256_hex(&published),
    )
    .with_content(content.len() as u64, &sha256_hex(&content));
    let s = Scratch::new("content-bad");
    let mut changed = content.clone();
    changed[100] ^= 1;
    s.write(&f.name, &gzip(&changed));
    let why = download::existing(s.path(), &f)
        .unwrap_err()
        .expect("a reason");
    assert!(
        why.contains(&sha256_hex(&changed)) && why.contains("is not the pinned content"),
        "{why}"
    );
    let bad = Scratch::new("content-notgz");
    bad.write(&f.name, &[0x1f, 0x8b, 0, 1, 2, 3]);
    let why = download::existing(bad.path(), &f)
        .unwrap_err()
        .expect("a reason");
    assert!(why.contains("not valid gzip"), "{why}");
    // Nothing there: no reason, just missing.
    let empty = Scratch::new("content-none");
    assert_eq!(download::existing(empty.path(), &f), Err(None));
}

/// The checkpoint fuzz target's seeds are real checkpoints of its model, so
/// fuzzing starts from inputs that reach every check of a resume.
#[test]
fn fuzz_checkpoint_seeds_resume_for_the_fuzz_targets_model() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds-checkpoint");
    let model = Mlp::new(&[4, 3, 2], Activation::Relu).unwrap();
    for (seed, optimizer) in [
        ("mlp-sgd", OptimizerConfig::sgd(0.1)),
        ("mlp-adam", OptimizerConfig::preset("adam", 1e-3).unwrap()),
    ] {
        let cfg = TrainConfig {
            optimizer,
            ..TrainConfig::default()
        };
        let r =
            Resume::read(&seeds.join(seed), &model, &cfg).unwrap_or_else(|e| panic!("{seed}: {e}"));
        assert_eq!(r.epochs_done, 2);
        assert_eq!(r.state.step.t, 5);
    }
}

#[test]
fn a_checkpoint_whose_step_count_would_wrap_is_refused() {
    let data = small_data(100, 0);
    let model = Mlp::mnist(Activation::Sigmoid);
    let cfg = config(OptimizerConfig::sgd(0.1), 2, 50);
    let s = Scratch::new("resume-wrap");
    let path = s.path().join("ckpt.safetensors");
    let mut engine = CpuEngine::new(&model, &data, &cfg).unwrap();
    train::save_checkpoint(&path, &model, &cfg, &mut engine, 1).unwrap();
    let mut ck = checkpoint::load(&path).unwrap();
    for t in &mut ck.tensors {
        if let (true, TensorData::U32(words)) = (t.name == "optimizer.step", &mut t.data) {
            words[0] = u32::MAX;
        }
    }
    checkpoint::save(&path, &ck).unwrap();
    let m = Resume::read(&path, &model, &cfg).unwrap_err().to_string();
    assert!(
        m.contains("optimizer.step") && m.contains("4294967295"),
        "{m}"
    );
}

// ============================================================ round three
// Issue 28: the newer surface. The command-line cases are in
// `tests/cpu/hostile_newer.rs`; these need the library and a GPU.

/// A tuned GPU context caching in `dir`, with an optional limits cap and
/// subgroups on or off.
fn tuned_gpu(
    mode: wgpu_train::tune::TuneMode,
    dir: &Path,
    limits: Option<wgpu::Limits>,
    subgroups: bool,
) -> wgpu_train::Gpu {
    wgpu_train::Gpu::with_options(wgpu_train::GpuOptions {
        autotune: Some(mode),
        autotune_dir: Some(dir.to_path_buf()),
        limits,
        subgroups,
        ..wgpu_train::GpuOptions::default()
    })
    .expect("GPU tests need an adapter")
}

/// Builds an NT matmul (m×k by n×k) as an engine does, the tuner first
/// (`tune::matmul_for`), then an `Auto` launcher alone (which reads the
/// record), and returns the version that ran; both must agree.
fn auto_matmul(g: &wgpu_train::Gpu, m: usize, n: usize, k: usize) -> wgpu_train::MatmulKernel {
    use wgpu_train::{GpuTensor, MatmulKernel, MatmulOptions, kernels::Matmul};
    let a = GpuTensor::from_array(g, &crate::common::random(&[m, k], 1)).unwrap();
    let b = GpuTensor::from_array(g, &crate::common::random(&[n, k], 2)).unwrap();
    let c = GpuTensor::<f32>::zeros(g, &[m, n]).unwrap();
    let nt = MatmulOptions::nt();
    let launched = Matmul::new(g, &a, &b, None, &c, nt, MatmulKernel::Auto)
        .unwrap_or_else(|e| panic!("an Auto matmul {m}x{n}x{k}: {e}"))
        .kernel();
    let tuned = wgpu_train::tune::matmul_for(g, &a, &b, None, &nt, MatmulKernel::Auto);
    let built = Matmul::new(g, &a, &b, None, &c, nt, tuned)
        .unwrap_or_else(|e| panic!("the tuner's matmul {m}x{n}x{k}: {e}"))
        .kernel();
    let again = Matmul::new(g, &a, &b, None, &c, nt, MatmulKernel::Auto)
        .unwrap()
        .kernel();
    assert_eq!(again, built, "the launcher runs the recorded choice");
    let _ = launched;
    built
}

// ------------------------------------------------------------ class 2: the GPU sweep's batch
#[test]
fn a_gpu_sweep_batch_larger_than_the_set_is_one_full_batch() {
    use wgpu_train::train::sweep;
    let data = small_data(100, 20);
    let model = Mlp::new(&[784, 16, 10], Activation::Sigmoid).unwrap();
    let runs = sweep::runs_over_seeds(&[OptimizerConfig::sgd(0.1)], 2, 0).unwrap();
    let exact = config(OptimizerConfig::sgd(0.1), 2, 100);
    let want = sweep::sweep_gpu(gpu(), &model, &data, &exact, &runs, &mut |_| {}).unwrap();
    for batch in [101, 4_000_000_000, 1 << 57, usize::MAX] {
        let cfg = config(OptimizerConfig::sgd(0.1), 2, batch);
        let got = sweep::sweep_gpu(gpu(), &model, &data, &cfg, &runs, &mut |_| {})
            .unwrap_or_else(|e| panic!("batch {batch}: {e}"));
        for (g, w) in got.models.iter().zip(&want.models) {
            assert_eq!(g.params, w.params, "batch {batch}");
            assert_eq!(g.test, w.test, "batch {batch}");
        }
    }
}

// ------------------------------------------------------------ class 6: foreign files
#[test]
fn the_tuner_never_replaces_a_file_it_did_not_write_even_through_a_link() {
    use wgpu_train::tune::TuneMode;
    let s = Scratch::new("tune-foreign");
    let g = tuned_gpu(TuneMode::On, &s.path().join("cache"), None, true);
    let file = g.tune_record().file().unwrap().to_path_buf();
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let precious = s.write("precious.txt", b"someone else's data");
    #[cfg(unix)]
    std::os::unix::fs::symlink(&precious, &file).unwrap();
    auto_matmul(&g, 7, 10, 33);
    assert_eq!(g.tune_record().tuned().0, 1, "the shape is tuned in memory");
    assert_eq!(std::fs::read(&precious).unwrap(), b"someone else's data");
    assert!(
        std::fs::symlink_metadata(&file)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let report = g.tune_record().report().unwrap();
    assert!(
        !report.contains("cached in") && report.contains("not cached"),
        "{report}"
    );
    // A foreign regular file in the cache's place is kept as well, and a
    // cache file of ours beside it is still rewritten (the next test's
    // tuner, another shape).
    std::fs::remove_file(&file).unwrap();
    std::fs::write(&file, b"not ours").unwrap();
    let g = tuned_gpu(TuneMode::On, &s.path().join("cache"), None, true);
    auto_matmul(&g, 9, 10, 33);
    assert_eq!(std::fs::read(&file).unwrap(), b"not ours");
}

// ------------------------------------------------------------ class 7: choices that do not fit
#[test]
fn a_recorded_choice_this_device_cannot_run_is_decided_again_not_fatal() {
    use std::collections::BTreeMap;
    use wgpu_train::tune::{TuneMode, matmul_key, softmax_xent_key};
    use wgpu_train::{MatmulKernel, MatmulOptions, MatmulShape, SoftmaxXentShape};
    let s = Scratch::new("tune-fit");
    // The cache key covers a limits cap: a capped device keeps its own file.
    let full = tuned_gpu(TuneMode::On, s.path(), None, true);
    let capped = tuned_gpu(
        TuneMode::On,
        s.path(),
        Some(wgpu::Limits::downlevel_defaults()),
        true,
    );
    assert_ne!(full.tune_record().file(), capped.tune_record().file());

    // v6 binds A and B a second time as vec4s: 6 storage buffers, past
    // the downlevel cap's 4. Recorded on the full device, replayed capped.
    let (m, n, k) = (8, 12, 16);
    let shape = MatmulShape::resolve(&[m, k], &[n, k], None, &MatmulOptions::nt()).unwrap();
    let mm_key = matmul_key(&shape, &MatmulOptions::nt(), false);
    let record = BTreeMap::from([(mm_key.clone(), "v6_vec4".to_string())]);
    full.tune_record().pin(&record);
    assert_eq!(auto_matmul(&full, m, n, k), MatmulKernel::V6Vec4);
    for mode in [TuneMode::Off, TuneMode::On] {
        let g = tuned_gpu(
            mode,
            s.path(),
            Some(wgpu::Limits::downlevel_defaults()),
            true,
        );
        g.tune_record().pin(&record);
        let ran = auto_matmul(&g, m, n, k);
        assert_ne!(ran, MatmulKernel::V6Vec4, "{mode:?}");
        // The run's record says what ran instead.
        assert_eq!(g.tune_record().choices()[&mm_key], ran.name(), "{mode:?}");
    }

    // A subgroup version recorded where there are subgroups, resumed on a
    // device without them.
    let plain = tuned_gpu(TuneMode::Off, s.path(), None, false);
    let sx_key = softmax_xent_key(&SoftmaxXentShape { n: 8, c: 10 }, true);
    plain.tune_record().pin(&BTreeMap::from([(
        sx_key.clone(),
        "v4_subgroup".to_string(),
    )]));
    let logits =
        wgpu_train::GpuTensor::from_array(&plain, &crate::common::random(&[8, 10], 7)).unwrap();
    let labels: Vec<u32> = (0..8).map(|i| i % 10).collect();
    let labels = wgpu_train::GpuLabels::new(&plain, &labels, 10).unwrap();
    let loss = wgpu_train::GpuTensor::<f32>::zeros(&plain, &[8]).unwrap();
    let correct = wgpu_train::GpuTensor::<u32>::zeros(&plain, &[8]).unwrap();
    let d = wgpu_train::GpuTensor::<f32>::zeros(&plain, &[8, 10]).unwrap();
    let sx = wgpu_train::kernels::SoftmaxXent::new(
        &plain,
        &logits,
        &labels,
        &loss,
        &correct,
        Some(&d),
        wgpu_train::SoftmaxXentKernel::Auto,
    )
    .unwrap_or_else(|e| panic!("a recorded subgroup choice is fatal: {e}"));
    assert_ne!(sx.kernel(), wgpu_train::SoftmaxXentKernel::V4Subgroup);
    assert_eq!(plain.tune_record().choices()[&sx_key], sx.kernel().name());
}

// ------------------------------------------------------------ class 11: the cache's report
#[test]
fn the_tuner_reports_cached_only_when_it_wrote_the_cache() {
    use wgpu_train::tune::TuneMode;
    let s = Scratch::new("tune-unwritable");
    // The cache directory's place is taken by a file: nothing can be written.
    let dir = s.write("cache", b"a file, not a directory");
    let g = tuned_gpu(TuneMode::On, &dir, None, true);
    auto_matmul(&g, 7, 10, 33);
    let report = g.tune_record().report().unwrap();
    assert!(!report.contains("cached in"), "{report}");
    assert!(report.contains("not cached"), "{report}");
    // And where it can, it says where.
    let ok = tuned_gpu(TuneMode::On, &s.path().join("ok"), None, true);
    auto_matmul(&ok, 7, 10, 33);
    assert!(ok.tune_record().report().unwrap().contains("cached in"));
}
