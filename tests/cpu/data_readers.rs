//! The IDX and CIFAR-10 readers on files made here: good files of any size,
//! raw or gzip whatever their names, and every kind of bad file, each of
//! which must be an `Err` whose message names the file and the problem.
//! Also dataset discovery, split/shuffle determinism and synthetic data.

use crate::data_util::*;
use std::path::{Path, PathBuf};
use wgpu_train::data::{self, Format, Layout, cifar, idx, shuffle, synthetic};
use wgpu_train::{Dataset, Error};

/// The error's message, after checking it names `file`.
fn err_for(result: Result<impl std::fmt::Debug, Error>, file: &Path) -> String {
    let e = result.expect_err("expected an error");
    let msg = e.to_string();
    assert!(
        msg.contains(&file.display().to_string()),
        "message does not name {}: {msg}",
        file.display()
    );
    msg
}

fn assert_contains(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "expected {p:?} in: {msg}");
    }
}

// ---------------------------------------------------------------- IDX: good

#[test]
fn idx_raw_and_gzip_give_the_same_images() {
    let s = Scratch::new("idx-same");
    let raw = idx_images(3, 2, 5);
    let a = idx::read_images(&s.write("raw", &raw)).unwrap();
    let b = idx::read_images(&s.write("compressed.gz", &gzip(&raw))).unwrap();
    assert_eq!(a, b);
    assert_eq!((a.count, a.rows, a.cols), (3, 2, 5));
    assert_eq!(a.pixels, raw[16..]);
}

#[test]
fn idx_compression_is_told_by_contents_not_name() {
    let s = Scratch::new("idx-names");
    let raw = idx_labels(&[1, 2, 3]);
    // gzip data without .gz, raw data with .gz: both read.
    assert_eq!(
        idx::read_labels(&s.write("labels", &gzip(&raw))).unwrap(),
        [1, 2, 3]
    );
    assert_eq!(
        idx::read_labels(&s.write("labels.gz", &raw)).unwrap(),
        [1, 2, 3]
    );
}

#[test]
fn idx_any_number_of_examples() {
    let s = Scratch::new("idx-any");
    for n in [1u32, 7, 1000] {
        let ds = idx::read_dataset(
            &s.write("i.gz", &gzip(&idx_images(n, 28, 28))),
            &s.write("l", &idx_labels(&cyclic_labels(n as usize))),
            10,
        )
        .unwrap();
        assert_eq!(ds.len(), n as usize);
        assert_eq!(ds.image_shape, [1, 28, 28]);
        assert_eq!(ds.image(n as usize - 1)[5], pixel(n as usize - 1, 5));
    }
}

#[test]
fn idx_in_memory_parsers_match_file_readers() {
    let raw = idx_images(4, 3, 3);
    let a = idx::parse_images(&raw).unwrap();
    assert_eq!(a, idx::parse_images(&gzip(&raw)).unwrap());
    assert_eq!(idx::parse_labels(&idx_labels(&[9, 0])).unwrap(), [9, 0]);
    let e = idx::parse_images(&raw[..20]).unwrap_err().to_string();
    assert_contains(&e, &["<in-memory IDX bytes>", "truncated"]);
}

/// What the browser page parses: fetched bytes, named by their URLs in errors.
#[test]
fn idx_parse_dataset_on_bytes_names_the_inputs() {
    let images = gzip(&idx_images(7, 28, 28));
    let labels = idx_labels(&cyclic_labels(7));
    let ds = idx::parse_dataset(("data/i.gz", &images), ("data/l.gz", &labels), 10).unwrap();
    assert_eq!((ds.len(), ds.image_shape), (7, [1, 28, 28]));
    assert_eq!(ds.image(6)[5], pixel(6, 5));
    let e = idx::parse_dataset(("data/i.gz", &images[..40]), ("data/l.gz", &labels), 10)
        .unwrap_err()
        .to_string();
    assert_contains(&e, &["data/i.gz"]);
    let e = idx::parse_dataset(("data/i.gz", &images), ("data/l.gz", &idx_labels(&[1])), 10)
        .unwrap_err()
        .to_string();
    assert_contains(&e, &["data/l.gz", "1 labels", "7 images"]);
    let e = idx::parse_dataset(("data/i.gz", &labels), ("data/l.gz", &labels), 10)
        .unwrap_err()
        .to_string();
    assert_contains(&e, &["data/i.gz", "magic"]);
    let e = idx::parse_dataset(("data/i.gz", &images), ("data/l.gz", &labels), 3)
        .unwrap_err()
        .to_string();
    assert_contains(&e, &["data/l.gz", "label"]);
    // An HTML error page served in place of the file.
    let e = idx::parse_dataset(
        ("data/i.gz", b"<!DOCTYPE html>"),
        ("data/l.gz", &labels),
        10,
    )
    .unwrap_err()
    .to_string();
    assert_contains(&e, &["data/i.gz"]);
}

// ---------------------------------------------------------------- IDX: bad

#[test]
fn idx_truncated_raw() {
    let s = Scratch::new("idx-trunc");
    let mut raw = idx_images(5, 4, 4);
    raw.truncate(raw.len() - 3);
    let p = s.write("train-images-idx3-ubyte", &raw);
    let msg = err_for(idx::read_images(&p), &p);
    assert_contains(&msg, &["truncated", "5 images of 4×4", "has only 77"]);
}

#[test]
fn idx_truncated_gzip_stream() {
    let s = Scratch::new("idx-trunc-gz");
    let gz = gzip(&idx_images(50, 28, 28));
    let p = s.write("train-images-idx3-ubyte.gz", &gz[..gz.len() / 2]);
    let msg = err_for(idx::read_images(&p), &p);
    assert!(
        msg.contains("gzip stream") || msg.contains("truncated"),
        "{msg}"
    );
}

#[test]
fn idx_truncated_header() {
    let s = Scratch::new("idx-header");
    for bytes in [&[][..], &[0, 0][..], &[0, 0, 8, 3, 0, 0, 0, 1][..]] {
        let p = s.write("imgs", bytes);
        let msg = err_for(idx::read_images(&p), &p);
        assert_contains(&msg, &["truncated", "16-byte IDX images header"]);
    }
}

#[test]
fn idx_trailing_garbage_raw_and_gzip() {
    let s = Scratch::new("idx-trailing");
    let mut raw = idx_images(2, 3, 3);
    raw.extend_from_slice(b"junk");
    let p = s.write("a", &raw);
    let msg = err_for(idx::read_images(&p), &p);
    assert_contains(&msg, &["4 bytes of trailing data", "2 images of 3×3"]);
    let p = s.write("b.gz", &gzip(&raw));
    let msg = err_for(idx::read_images(&p), &p);
    assert_contains(&msg, &["trailing data", "decompressed data"]);
}

#[test]
fn idx_wrong_magic() {
    let s = Scratch::new("idx-magic");
    // A labels file where images are expected: the message says so.
    let p = s.write("train-images-idx3-ubyte", &idx_labels(&[1, 2]));
    let msg = err_for(idx::read_images(&p), &p);
    assert_contains(
        &msg,
        &["wrong magic number 0x00000801", "0x00000803", "swapped"],
    );
    // Not IDX at all.
    let p = s.write("photo.png", b"\x89PNG\r\n\x1a\n0000000000000000");
    let msg = err_for(idx::read_labels(&p), &p);
    assert_contains(&msg, &["wrong magic number", "not an IDX file"]);
    // IDX, but 32-bit floats.
    let mut f = idx_header(0x0d01, &[1]);
    f.extend_from_slice(&[0; 4]);
    let p = s.write("floats", &f);
    let msg = err_for(idx::read_labels(&p), &p);
    assert_contains(&msg, &["element type 0x0d"]);
}

#[test]
fn idx_mismatched_counts() {
    let s = Scratch::new("idx-counts");
    let i = s.write("train-images-idx3-ubyte.gz", &gzip(&idx_images(5, 28, 28)));
    let l = s.write(
        "train-labels-idx1-ubyte.gz",
        &gzip(&idx_labels(&[0, 1, 2, 3])),
    );
    let msg = err_for(idx::read_dataset(&i, &l, 10), &l);
    assert_contains(
        &msg,
        &["4 labels", "5 images", "train-images-idx3-ubyte.gz"],
    );
}

#[test]
fn idx_absurd_claimed_size_is_an_error_not_an_allocation() {
    let s = Scratch::new("idx-absurd");
    // 4 billion images of 28×28: 3.1 TB claimed by a 16-byte file.
    let header = idx_header(0x0803, &[4_000_000_000, 28, 28]);
    for (name, bytes) in [("raw", header.clone()), ("gz", gzip(&header))] {
        let p = s.write(name, &bytes);
        let msg = err_for(idx::read_images(&p), &p);
        assert_contains(&msg, &["4000000000 images of 28×28", "more than"]);
    }
    // Under the absolute cap but far more than a tiny gzip file can hold.
    let mut small = idx_header(0x0803, &[1_000_000, 28, 28]);
    small.extend_from_slice(&[0; 100]);
    let p = s.write("liar.gz", &gzip(&small));
    let msg = err_for(idx::read_images(&p), &p);
    assert_contains(&msg, &["can decompress to", "1000000 images"]);
    // Labels: u32::MAX of them.
    let p = s.write("labels", &idx_header(0x0801, &[u32::MAX]));
    let msg = err_for(idx::read_labels(&p), &p);
    assert_contains(&msg, &["truncated", "4294967295 labels"]);
}

#[test]
fn idx_zero_sized_dimensions() {
    let s = Scratch::new("idx-zero");
    let p = s.write("i", &idx_header(0x0803, &[0, 28, 28]));
    let msg = err_for(idx::read_images(&p), &p);
    assert_contains(&msg, &["0 images", "at least one"]);
}

#[test]
fn idx_labels_out_of_range() {
    let s = Scratch::new("idx-labels");
    let i = s.write("i", &idx_images(3, 2, 2));
    let l = s.write("train-labels-idx1-ubyte", &idx_labels(&[0, 10, 3]));
    let msg = err_for(idx::read_dataset(&i, &l, 10), &l);
    assert_contains(&msg, &["label 10 at example 1", "10 classes"]);
}

#[test]
fn idx_not_gzip_at_all() {
    let s = Scratch::new("idx-notgz");
    // A .gz name with garbage contents.
    let p = s.write("train-images-idx3-ubyte.gz", b"<html>404 Not Found</html>");
    let msg = err_for(idx::read_images(&p), &p);
    assert_contains(&msg, &["wrong magic number", "name ends in .gz", "1f 8b"]);
}

#[test]
fn idx_corrupt_gzip_stream() {
    let s = Scratch::new("idx-corrupt-gz");
    let mut gz = gzip(&idx_images(20, 28, 28));
    // Keep the gzip header (so it is detected as gzip), wreck the deflate data.
    let n = gz.len();
    for b in &mut gz[12..n - 8] {
        *b ^= 0x5a;
    }
    let p = s.write("t10k-images-idx3-ubyte.gz", &gz);
    let msg = err_for(idx::read_images(&p), &p);
    assert_contains(&msg, &["gzip stream"]);
    // A valid deflate stream with a wrong CRC in the trailer.
    let mut gz = gzip(&idx_labels(&[1, 2, 3]));
    let n = gz.len();
    gz[n - 8] ^= 0xff;
    let p = s.write("t10k-labels-idx1-ubyte.gz", &gz);
    let msg = err_for(idx::read_labels(&p), &p);
    assert_contains(&msg, &["gzip stream"]);
}

#[test]
fn idx_missing_file() {
    let p = PathBuf::from("/nonexistent/train-images-idx3-ubyte.gz");
    let msg = err_for(idx::read_images(&p), &p);
    assert_contains(&msg, &["no such file"]);
}

// ---------------------------------------------------------------- CIFAR-10

#[test]
fn cifar_reads_records_in_chw_order() {
    let s = Scratch::new("cifar-good");
    let p = s.write("data_batch_1.bin", &cifar_batch(&[3, 9, 0], 0));
    let ds = cifar::read_batch(&p).unwrap();
    assert_eq!(ds.len(), 3);
    assert_eq!(ds.labels, [3, 9, 0]);
    assert_eq!(ds.image_shape, [3, 32, 32]);
    assert_eq!(ds.dim(), 3072);
    // Pixel p of example 2 is the p-th byte after its label byte.
    assert_eq!(ds.image(2)[1024], pixel(2, 1024));
    assert_eq!(ds, cifar::parse_batch(&cifar_batch(&[3, 9, 0], 0)).unwrap());
}

#[test]
fn cifar_bad_lengths() {
    let s = Scratch::new("cifar-len");
    let good = cifar_batch(&[1, 2], 0);
    let p = s.write("data_batch_1.bin", &good[..good.len() - 100]);
    let msg = err_for(cifar::read_batch(&p), &p);
    assert_contains(
        &msg,
        &[
            "not a multiple of the 3073-byte record",
            "1 whole records and 2973 bytes over",
        ],
    );
    let mut long = good.clone();
    long.push(0);
    let p = s.write("data_batch_2.bin", &long);
    let msg = err_for(cifar::read_batch(&p), &p);
    assert_contains(&msg, &["2 whole records and 1 bytes over"]);
    let p = s.write("test_batch.bin", b"");
    let msg = err_for(cifar::read_batch(&p), &p);
    assert_contains(&msg, &["empty file"]);
}

#[test]
fn cifar_label_out_of_range() {
    let s = Scratch::new("cifar-label");
    let p = s.write("data_batch_3.bin", &cifar_batch(&[0, 1, 10], 0));
    let msg = err_for(cifar::read_batch(&p), &p);
    assert_contains(
        &msg,
        &["record 2 (byte offset 6146) has label 10", "0 to 9"],
    );
}

#[test]
fn cifar_gzip_compressed_batch() {
    let s = Scratch::new("cifar-gz");
    let p = s.write("data_batch_4.bin", &gzip(&cifar_batch(&[1], 0)));
    let msg = err_for(cifar::read_batch(&p), &p);
    assert_contains(&msg, &["gzip-compressed", "extract"]);
}

// ---------------------------------------------------------------- finding data

#[test]
fn locate_accepts_both_idx_spellings() {
    let s = Scratch::new("locate-idx");
    s.write("train-images.idx3-ubyte", &idx_images(20, 28, 28));
    s.write("train-labels.idx1-ubyte", &idx_labels(&cyclic_labels(20)));
    s.write("t10k-images-idx3-ubyte.gz", &gzip(&idx_images(5, 28, 28)));
    s.write("t10k-labels-idx1-ubyte", &idx_labels(&cyclic_labels(5)));
    let splits = data::load(Some(s.path())).unwrap();
    assert_eq!(splits.format, Format::Idx);
    assert_eq!((splits.train.len(), splits.test.len()), (20, 5));
    assert_eq!(splits.dir, s.path());
}

#[test]
fn locate_finds_cifar_in_its_subdirectory() {
    let s = Scratch::new("locate-cifar");
    for (name, bytes) in cifar_files(4) {
        s.write(&format!("cifar-10-batches-bin/{name}"), &bytes);
    }
    let layout = data::locate(Some(s.path())).unwrap();
    assert_eq!(
        layout,
        Layout::Cifar10 {
            dir: s.path().join("cifar-10-batches-bin")
        }
    );
    let splits = data::load(Some(s.path())).unwrap();
    assert_eq!((splits.train.len(), splits.test.len()), (20, 4));
    assert_eq!(splits.name, "CIFAR-10");
    // Batches concatenate in order: example 4 is the first of data_batch_2.
    assert_eq!(splits.train.image(4)[7], pixel(4, 7));
}

#[test]
fn locate_names_missing_files() {
    let s = Scratch::new("locate-partial");
    s.write("train-images-idx3-ubyte.gz", &gzip(&idx_images(2, 28, 28)));
    s.write("train-labels-idx1-ubyte.gz", &gzip(&idx_labels(&[0, 1])));
    let msg = err_for(data::load(Some(s.path())), s.path());
    assert_contains(
        &msg,
        &[
            "t10k-images-idx3-ubyte",
            "t10k-labels-idx1-ubyte",
            "all four",
        ],
    );

    let c = Scratch::new("locate-partial-cifar");
    c.write("data_batch_1.bin", &cifar_batch(&[1], 0));
    let msg = err_for(data::load(Some(c.path())), c.path());
    assert_contains(&msg, &["data_batch_2.bin", "test_batch.bin"]);
}

#[test]
fn not_found_says_how_to_get_data() {
    let s = Scratch::new("locate-empty");
    let msg = err_for(data::load(Some(s.path())), s.path());
    assert_contains(
        &msg,
        &[
            "holds neither",
            "apt-get install dataset-fashion-mnist",
            "--download",
        ],
    );

    let missing = s.path().join("nope");
    let msg = err_for(data::load(Some(&missing)), &missing);
    assert_contains(
        &msg,
        &["does not exist", "apt-get install dataset-fashion-mnist"],
    );

    let msg = data::locate_first(&[missing.clone(), s.path().to_path_buf()])
        .unwrap_err()
        .to_string();
    assert_contains(
        &msg,
        &[
            "no dataset found",
            "nope: not found",
            "no dataset files in it",
            "apt-get install dataset-fashion-mnist",
            "--download",
            "fashion-mnist.s3-website.eu-central-1.amazonaws.com",
        ],
    );
}

// ---------------------------------------------------------------- Dataset

fn toy(n: usize) -> Dataset {
    let images = (0..n * 4).map(|i| (i / 4) as u8).collect();
    Dataset::new(images, cyclic_labels(n), [1, 2, 2], 10).unwrap()
}

#[test]
fn epoch_permutations_are_seeded_and_deterministic() {
    let ds = toy(1000);
    let p = ds.epoch_permutation(42, 0).unwrap();
    assert_eq!(p, ds.epoch_permutation(42, 0).unwrap());
    let mut sorted = p.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..1000).collect::<Vec<u32>>());
    assert_ne!(p, ds.epoch_permutation(42, 1).unwrap());
    assert_ne!(p, ds.epoch_permutation(43, 0).unwrap());
    // Pinned: a change here changes every published run's minibatches.
    assert_eq!(shuffle::permutation(10, 0, 0), PINNED_0_0);
    assert_eq!(shuffle::permutation(10, 7, 3), PINNED_7_3);
}

const PINNED_0_0: [u32; 10] = [5, 6, 1, 8, 0, 4, 3, 2, 7, 9];
const PINNED_7_3: [u32; 10] = [6, 7, 3, 8, 5, 0, 2, 1, 9, 4];

#[test]
fn split_is_deterministic_disjoint_and_complete() {
    let ds = toy(100);
    let (train, val) = ds.split(20, 5).unwrap();
    assert_eq!((train.len(), val.len()), (80, 20));
    assert_eq!(ds.split(20, 5).unwrap(), (train.clone(), val.clone()));
    assert_ne!(ds.split(20, 6).unwrap().1, val);
    // Example i's pixels are all i: recover the indices.
    let ids = |d: &Dataset| (0..d.len()).map(|k| d.image(k)[0]).collect::<Vec<u8>>();
    let (t, v) = (ids(&train), ids(&val));
    assert!(t.windows(2).all(|w| w[0] < w[1]) && v.windows(2).all(|w| w[0] < w[1]));
    let mut all = [t, v].concat();
    all.sort_unstable();
    assert_eq!(all, (0..100).map(|i| i as u8).collect::<Vec<_>>());
    // Labels travel with their images.
    assert!((0..val.len()).all(|k| val.labels[k] == val.image(k)[0] % 10));
    assert!(ds.split(101, 0).is_err());
    assert_eq!(ds.split(0, 0).unwrap().0, ds);
}

#[test]
fn subset_first_and_class_counts() {
    let ds = toy(25);
    let sub = ds.subset(&[3, 3, 24]).unwrap();
    assert_eq!(sub.labels, [3, 3, 4]);
    assert_eq!(sub.image(2), ds.image(24));
    let msg = ds.subset(&[25]).unwrap_err().to_string();
    assert_contains(&msg, &["index 25 is out of range for 25 examples"]);
    assert_eq!(ds.first(5).len(), 5);
    assert_eq!(ds.first(500), ds);
    assert_eq!(ds.class_counts(), [3, 3, 3, 3, 3, 2, 2, 2, 2, 2]);
}

#[test]
fn synthetic_gaussian_is_seeded_and_standard_normal() {
    let a = synthetic::gaussian(2000, 50, 10, 1).unwrap();
    assert_eq!(a, synthetic::gaussian(2000, 50, 10, 1).unwrap());
    assert_ne!(a.x, synthetic::gaussian(2000, 50, 10, 2).unwrap().x);
    assert_eq!(a.x.dim(), (2000, 50));
    let n = a.x.len() as f64;
    let mean = a.x.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = a.x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    assert!(
        mean.abs() < 0.02 && (var - 1.0).abs() < 0.03,
        "mean {mean}, var {var}"
    );
    let mut counts = [0usize; 10];
    for &l in &a.labels {
        counts[l as usize] += 1;
    }
    assert!(
        counts.iter().all(|&c| (140..260).contains(&c)),
        "{counts:?}"
    );
    assert!(synthetic::gaussian(0, 5, 10, 0).is_err());
    assert!(synthetic::gaussian(5, 5, 0, 0).is_err());
    assert!(synthetic::gaussian(usize::MAX, 2, 10, 0).is_err());
}
