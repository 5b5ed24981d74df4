//! Real Fashion-MNIST, from `$FASHION_MNIST_DIR` or Debian's
//! `/usr/share/datasets/fashion-mnist` (`bash scripts/test.sh` installs the
//! `dataset-fashion-mnist` package). These tests never skip: without the data
//! they fail with the message that says how to get it.

use std::path::{Path, PathBuf};
use wgpu_train::data::{self, Format, source};
use wgpu_train::lab::download::{Remote, sha256_hex};

fn fashion_dir() -> PathBuf {
    std::env::var_os(source::ENV_DIR)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(source::SYSTEM_DIR))
}

#[test]
fn fashion_mnist_loads_with_known_shapes_and_balanced_classes() {
    let splits = data::load(Some(&fashion_dir())).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(splits.format, Format::Idx);
    let (train, test) = (&splits.train, &splits.test);
    assert_eq!(train.len(), 60_000);
    assert_eq!(test.len(), 10_000);
    assert_eq!(train.image_shape, [1, 28, 28]);
    assert_eq!(test.image_shape, [1, 28, 28]);
    assert_eq!(train.images.len(), 60_000 * 784);
    assert_eq!(train.classes, 10);
    assert_eq!(train.class_counts(), vec![6_000; 10]);
    assert_eq!(test.class_counts(), vec![1_000; 10]);
    // Not all black, not all white: real pixels.
    let mean = train.images.iter().map(|&p| p as f64).sum::<f64>() / train.images.len() as f64;
    assert!((60.0..90.0).contains(&mean), "mean pixel {mean}");
}

/// Debian's files are Zalando's deflate streams re-wrapped without the gzip
/// header's file name. Restoring the name and the original mtime rebuilds the
/// published files byte for byte, which checks the SHA-256 values that
/// `--download` pins against data on this machine rather than taking them on
/// trust.
#[test]
fn pinned_fashion_mnist_checksums_match_the_debian_files() {
    let dir = fashion_dir();
    if dir != Path::new(source::SYSTEM_DIR) {
        eprintln!("checking the pinned checksums against {}", dir.display());
    }
    // (file, mtime of the published gzip header)
    let mtimes = [
        ("train-images-idx3-ubyte", 1_504_176_606u32),
        ("train-labels-idx1-ubyte", 1_504_176_606),
        ("t10k-images-idx3-ubyte", 1_504_176_627),
        ("t10k-labels-idx1-ubyte", 1_504_176_627),
    ];
    for f in Remote::FashionMnist.files() {
        let path = dir.join(&f.name);
        let local = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e}\n{}", path.display(), data::source::HOW_TO_GET));
        if sha256_hex(&local) == f.sha256 {
            continue; // already the published file (a --download copy)
        }
        let stem = f.name.trim_end_matches(".gz");
        let mtime = mtimes
            .iter()
            .find(|(n, _)| *n == stem)
            .expect("known file")
            .1;
        assert_eq!(
            &local[..4],
            &[0x1f, 0x8b, 8, 0],
            "{}: unexpected gzip header",
            f.name
        );
        let mut rebuilt = vec![0x1f, 0x8b, 8, 0x08]; // FLG.FNAME
        rebuilt.extend_from_slice(&mtime.to_le_bytes());
        rebuilt.extend_from_slice(&[0, 3]); // XFL, OS = Unix
        rebuilt.extend_from_slice(stem.as_bytes());
        rebuilt.push(0);
        rebuilt.extend_from_slice(&local[10..]);
        assert_eq!(rebuilt.len() as u64, f.size, "{}", f.name);
        assert_eq!(sha256_hex(&rebuilt), f.sha256, "{}", f.name);
    }
}
