//! Shared by the data tests: scratch directories and generated IDX / CIFAR-10
//! files, so that every reader test runs on bytes it made itself.
#![allow(dead_code)]

use flate2::{Compression, write::GzEncoder};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A fresh empty directory under the system temp dir, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "wgpu-train-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `bytes` to `name` inside the directory and returns its path.
    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create parent");
        }
        std::fs::write(&p, bytes).expect("write test file");
        p
    }

    /// Every entry in the directory (recursively), as relative paths, sorted.
    pub fn listing(&self) -> Vec<String> {
        fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
                let p = e.path();
                out.push(p.strip_prefix(base).unwrap_or(&p).display().to_string());
                if p.is_dir() {
                    walk(base, &p, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.0, &self.0, &mut out);
        out.sort();
        out
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Deterministic pixel bytes: example `i` pixel `p`.
pub fn pixel(i: usize, p: usize) -> u8 {
    ((i * 31 + p * 7) % 251) as u8
}

/// A raw IDX images file with the header `(count, rows, cols)` and, unless
/// `pixels` is given, `count*rows*cols` generated pixels.
pub fn idx_images(count: u32, rows: u32, cols: u32) -> Vec<u8> {
    let mut v = idx_header(0x0803, &[count, rows, cols]);
    let d = (rows * cols) as usize;
    for i in 0..count as usize {
        v.extend((0..d).map(|p| pixel(i, p)));
    }
    v
}

/// A raw IDX labels file.
pub fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut v = idx_header(0x0801, &[labels.len() as u32]);
    v.extend_from_slice(labels);
    v
}

pub fn idx_header(magic: u32, dims: &[u32]) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).expect("gzip");
    e.finish().expect("gzip")
}

/// Labels 0,1,…,9,0,1,… for `n` examples.
pub fn cyclic_labels(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 10) as u8).collect()
}

/// Writes the four standard IDX files (gzip) for `train` and `test` examples
/// of 28×28 into `dir`, with the given names for the train images file.
pub fn write_idx_set(s: &Scratch, train: u32, test: u32) {
    s.write(
        "train-images-idx3-ubyte.gz",
        &gzip(&idx_images(train, 28, 28)),
    );
    s.write(
        "train-labels-idx1-ubyte.gz",
        &gzip(&idx_labels(&cyclic_labels(train as usize))),
    );
    s.write(
        "t10k-images-idx3-ubyte.gz",
        &gzip(&idx_images(test, 28, 28)),
    );
    s.write(
        "t10k-labels-idx1-ubyte.gz",
        &gzip(&idx_labels(&cyclic_labels(test as usize))),
    );
}

/// A CIFAR-10 batch of `labels.len()` records with generated pixels.
pub fn cifar_batch(labels: &[u8], first_example: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(labels.len() * 3073);
    for (k, &l) in labels.iter().enumerate() {
        v.push(l);
        v.extend((0..3072).map(|p| pixel(first_example + k, p)));
    }
    v
}

/// The six CIFAR-10 files with `per_batch` records each, under `subdir`
/// (e.g. "" or "cifar-10-batches-bin/"): `(name, bytes)` pairs.
pub fn cifar_files(per_batch: usize) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for b in 0..5 {
        out.push((
            format!("data_batch_{}.bin", b + 1),
            cifar_batch(&cyclic_labels(per_batch), b * per_batch),
        ));
    }
    out.push((
        "test_batch.bin".to_string(),
        cifar_batch(&cyclic_labels(per_batch), 1000),
    ));
    out
}
