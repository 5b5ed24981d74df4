//! Every input goes to all three in-memory parsers (IDX images, IDX labels,
//! CIFAR-10 batch), raw and — since the IDX readers tell gzip by its magic
//! bytes — gzip alike. A parser may return `Err`; it must never panic, abort
//! on allocation, or return an `Ok` whose sizes disagree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wgpu_train::data::{cifar, idx};

fuzz_target!(|bytes: &[u8]| {
    if let Ok(img) = idx::parse_images(bytes) {
        assert!(img.count > 0 && img.rows > 0 && img.cols > 0);
        assert_eq!(img.pixels.len(), img.count * img.rows * img.cols);
    }
    if let Ok(labels) = idx::parse_labels(bytes) {
        assert!(!labels.is_empty());
    }
    if let Ok(ds) = cifar::parse_batch(bytes) {
        assert!(!ds.is_empty());
        assert_eq!(
            ds.images.len(),
            ds.len() * cifar::RECORD_BYTES.saturating_sub(1)
        );
        assert!(ds.labels.iter().all(|&l| (l as usize) < cifar::CLASSES));
        assert_eq!(ds.len() * cifar::RECORD_BYTES, bytes.len());
    }
});
