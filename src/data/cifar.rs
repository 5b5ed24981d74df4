//! CIFAR-10 binary batches (`data_batch_1.bin` … `data_batch_5.bin`,
//! `test_batch.bin`), as shipped in `cifar-10-binary.tar.gz`.
//!
//! Each file is a run of 3,073-byte records: one label byte (0–9), then a
//! 32×32 image as 1,024 red, 1,024 green and 1,024 blue bytes (CHW, rows
//! top to bottom). There is no header, so the checks are on the length (a
//! non-empty multiple of 3,073) and on every label. The record size also
//! tells CIFAR-100 (3,074 bytes: coarse and fine label) apart in most files.

use super::{Dataset, idx::open_error};
use crate::error::{Error, Result};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Bytes per record: one label byte, then 3,072 pixel bytes.
pub const RECORD_BYTES: usize = 1 + 3 * 32 * 32;
/// (channels, height, width) of every image.
pub const IMAGE_SHAPE: [usize; 3] = [3, 32, 32];
/// Number of classes; every label is below it.
pub const CLASSES: usize = 10;
/// The training batches, in the order they are concatenated.
pub const TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
/// The test batch.
pub const TEST_FILE: &str = "test_batch.bin";
/// The subdirectory the official archive extracts to.
pub const BATCHES_DIR: &str = "cifar-10-batches-bin";
/// The largest batch file accepted (a real one is 30,730,000 bytes).
pub const MAX_BYTES: u64 = 1 << 32;

const IN_MEMORY: &str = "<in-memory CIFAR-10 bytes>";

/// Parses one CIFAR-10 batch held in memory, with every check
/// [`read_batch`] makes. Errors name the input `<in-memory CIFAR-10 bytes>`.
pub fn parse_batch(bytes: &[u8]) -> Result<Dataset> {
    let mut images = Vec::new();
    let mut labels = Vec::new();
    append_records(bytes, &mut images, &mut labels).map_err(|m| Error::data(IN_MEMORY, m))?;
    Dataset::new(images, labels, IMAGE_SHAPE, CLASSES)
}

/// Reads one CIFAR-10 batch file.
pub fn read_batch(path: &Path) -> Result<Dataset> {
    read_batches(&[path])
}

/// Reads several batch files into one [`Dataset`], in the order given.
pub fn read_batches<P: AsRef<Path>>(paths: &[P]) -> Result<Dataset> {
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for path in paths {
        let path = path.as_ref();
        let bytes = read_bounded(path)?;
        append_records(&bytes, &mut images, &mut labels).map_err(|m| Error::data(path, m))?;
    }
    Dataset::new(images, labels, IMAGE_SHAPE, CLASSES)
}

/// The directory holding the six batch files: `dir` itself or
/// `dir/cifar-10-batches-bin`. `Ok(None)` when neither holds any of them; an
/// error naming the missing files when only some are there.
pub fn find_batches(dir: &Path) -> Result<Option<PathBuf>> {
    for candidate in [dir.to_path_buf(), dir.join(BATCHES_DIR)] {
        let all: Vec<&str> = TRAIN_FILES.iter().copied().chain([TEST_FILE]).collect();
        let missing: Vec<&str> = all
            .iter()
            .copied()
            .filter(|f| !candidate.join(f).is_file())
            .collect();
        if missing.is_empty() {
            return Ok(Some(candidate));
        }
        if missing.len() < all.len() {
            return Err(Error::data(
                &candidate,
                format!(
                    "holds some CIFAR-10 batches but not {}; a CIFAR-10 directory needs all of {}",
                    missing.join(", "),
                    all.join(", ")
                ),
            ));
        }
    }
    Ok(None)
}

/// Reads the five training batches and the test batch from `dir` (the
/// directory [`find_batches`] returns): `(train, test)`.
pub fn read_dir(dir: &Path) -> Result<(Dataset, Dataset)> {
    let train: Vec<PathBuf> = TRAIN_FILES.iter().map(|f| dir.join(f)).collect();
    Ok((read_batches(&train)?, read_batch(&dir.join(TEST_FILE))?))
}

/// The whole file, after checking its real length against [`MAX_BYTES`].
fn read_bounded(path: &Path) -> Result<Vec<u8>> {
    let file = File::open(path).map_err(|e| Error::data(path, open_error(&e)))?;
    let len = file
        .metadata()
        .map_err(|e| Error::data(path, format!("cannot read its metadata: {e}")))?
        .len();
    if len > MAX_BYTES {
        return Err(Error::data(
            path,
            format!("{len} bytes is larger than any CIFAR-10 batch ({MAX_BYTES} bytes at most)"),
        ));
    }
    let mut bytes = Vec::new();
    bytes
        .try_reserve_exact(len as usize)
        .map_err(|_| Error::data(path, format!("cannot allocate {len} bytes to read it")))?;
    file.take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::data(path, format!("read error: {e}")))?;
    Ok(bytes)
}

fn append_records(
    bytes: &[u8],
    images: &mut Vec<u8>,
    labels: &mut Vec<u8>,
) -> std::result::Result<(), String> {
    if bytes.is_empty() {
        return Err(format!(
            "empty file: a CIFAR-10 batch holds at least one {RECORD_BYTES}-byte record"
        ));
    }
    if bytes.starts_with(&[0x1f, 0x8b]) {
        return Err("gzip-compressed data, not a CIFAR-10 batch: extract \
                    cifar-10-binary.tar.gz first (the batches inside are raw .bin files)"
            .to_string());
    }
    let (records, rest) = (bytes.len() / RECORD_BYTES, bytes.len() % RECORD_BYTES);
    if rest != 0 {
        return Err(format!(
            "length {} is not a multiple of the {RECORD_BYTES}-byte record (1 label byte + \
             3072 pixel bytes): {records} whole records and {rest} bytes over — truncated, \
             or not a CIFAR-10 binary batch (CIFAR-100 records are 3074 bytes)",
            bytes.len()
        ));
    }
    if let Some(i) = bytes
        .chunks_exact(RECORD_BYTES)
        .position(|r| r[0] as usize >= CLASSES)
    {
        return Err(format!(
            "record {i} (byte offset {}) has label {}; CIFAR-10 labels are 0 to {}",
            i * RECORD_BYTES,
            bytes[i * RECORD_BYTES],
            CLASSES - 1
        ));
    }
    images.reserve(records * (RECORD_BYTES - 1));
    labels.reserve(records);
    for record in bytes.chunks_exact(RECORD_BYTES) {
        labels.push(record[0]);
        images.extend_from_slice(&record[1..]);
    }
    Ok(())
}
