//! IDX files (MNIST, Fashion-MNIST): images (u8, 3-D) and labels (u8, 1-D),
//! raw or gzip-compressed.
//!
//! The format, all big-endian: a magic number `00 00 08 nd` (`08` = unsigned
//! bytes, `nd` = number of dimensions), then `nd` u32 sizes, then the data,
//! row-major. Images are `0x00000803` (count, rows, cols), labels
//! `0x00000801` (count).
//!
//! Compression is told by the gzip magic bytes `1f 8b`, never by the name:
//! Debian ships `.gz` files, some mirrors ship them decompressed under either
//! name, and a browser may have decompressed a `.gz` without renaming it.
//!
//! A header is never trusted to size an allocation. The bytes it claims are
//! checked first against [`MAX_BYTES`] and against what the input can hold —
//! the file length for a raw file, the compressed length times deflate's
//! largest expansion for gzip — and gzip data is read through
//! `Read::take(claimed + 1)` into a growing `Vec`. A lying header therefore
//! costs at most what the file really decompresses to, and the one extra byte
//! is how trailing data is caught.

use super::Dataset;
use crate::error::{Error, Result};
use flate2::read::MultiGzDecoder;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

/// Magic number of an IDX images file: unsigned bytes, 3 dimensions.
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX labels file: unsigned bytes, 1 dimension.
pub const LABELS_MAGIC: u32 = 0x0000_0801;
/// The most data bytes one IDX file may declare: 4 GiB, 90× MNIST's training
/// images. Anything larger is a corrupt header, not a dataset for this crate.
pub const MAX_BYTES: u64 = 1 << 32;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// Deflate expands at most ~1032:1 (a 258-byte match per 2-bit code); the
/// slack covers the gzip header and trailer of tiny files.
const DEFLATE_MAX_RATIO: u64 = 1032;
const DEFLATE_SLACK: u64 = 1 << 16;
const IN_MEMORY: &str = "<in-memory IDX bytes>";

/// The images of an IDX file: `count` images of `rows × cols` bytes, row-major.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxImages {
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
    /// `count * rows * cols` bytes.
    pub pixels: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Images,
    Labels,
}

impl Kind {
    fn magic(self) -> u32 {
        match self {
            Kind::Images => IMAGES_MAGIC,
            Kind::Labels => LABELS_MAGIC,
        }
    }
    fn ndims(self) -> usize {
        match self {
            Kind::Images => 3,
            Kind::Labels => 1,
        }
    }
    fn what(self) -> &'static str {
        match self {
            Kind::Images => "images",
            Kind::Labels => "labels",
        }
    }
    fn other(self) -> Kind {
        match self {
            Kind::Images => Kind::Labels,
            Kind::Labels => Kind::Images,
        }
    }
}

/// Parses an IDX images file held in memory (raw or gzip), with every check
/// [`read_images`] makes. Errors name the input `<in-memory IDX bytes>`.
pub fn parse_images(bytes: &[u8]) -> Result<IdxImages> {
    parse_bytes(bytes, Kind::Images)
        .and_then(images_from)
        .map_err(|msg| Error::data(IN_MEMORY, msg))
}

/// Parses an IDX labels file held in memory (raw or gzip).
pub fn parse_labels(bytes: &[u8]) -> Result<Vec<u8>> {
    parse_bytes(bytes, Kind::Labels)
        .map(|(_, data)| data)
        .map_err(|msg| Error::data(IN_MEMORY, msg))
}

/// [`read_dataset`] on bytes held in memory (a browser's fetched files):
/// `images` and `labels` are `(name, bytes)`, the names being what errors
/// call the inputs (e.g. the URL they came from).
pub fn parse_dataset(
    images: (&str, &[u8]),
    labels: (&str, &[u8]),
    classes: usize,
) -> Result<Dataset> {
    let img = parse_bytes(images.1, Kind::Images)
        .and_then(images_from)
        .map_err(|m| Error::data(images.0, m))?;
    let lab = parse_bytes(labels.1, Kind::Labels)
        .map(|(_, data)| data)
        .map_err(|m| Error::data(labels.0, m))?;
    if img.count != lab.len() {
        return Err(Error::data(
            labels.0,
            format!(
                "holds {} labels but {} holds {} images; the counts must agree",
                lab.len(),
                images.0,
                img.count
            ),
        ));
    }
    check_labels(&lab, classes).map_err(|m| Error::data(labels.0, m))?;
    Dataset::new(img.pixels, lab, [1, img.rows, img.cols], classes)
}

/// Reads an IDX images file (raw or gzip, told by its contents).
pub fn read_images(path: &Path) -> Result<IdxImages> {
    read_file(path, Kind::Images)
        .and_then(|parsed| images_from(parsed).map_err(|m| Error::data(path, m)))
}

/// Reads an IDX labels file (raw or gzip, told by its contents).
pub fn read_labels(path: &Path) -> Result<Vec<u8>> {
    read_file(path, Kind::Labels).map(|(_, data)| data)
}

/// Reads an images file and its labels file into a [`Dataset`] of
/// `(1, rows, cols)` images, checking that the counts agree and that every
/// label is below `classes`.
pub fn read_dataset(images: &Path, labels: &Path, classes: usize) -> Result<Dataset> {
    let img = read_images(images)?;
    let lab = read_labels(labels)?;
    if img.count != lab.len() {
        return Err(Error::data(
            labels,
            format!(
                "holds {} labels but {} holds {} images; the counts must agree",
                lab.len(),
                images.display(),
                img.count
            ),
        ));
    }
    check_labels(&lab, classes).map_err(|m| Error::data(labels, m))?;
    Dataset::new(img.pixels, lab, [1, img.rows, img.cols], classes)
}

/// The first label not below `classes`, as a message.
pub(crate) fn check_labels(labels: &[u8], classes: usize) -> std::result::Result<(), String> {
    match labels
        .iter()
        .enumerate()
        .find(|&(_, &l)| l as usize >= classes)
    {
        Some((i, &l)) => Err(format!(
            "label {l} at example {i} is out of range: there are {classes} classes (0 to {})",
            classes.saturating_sub(1)
        )),
        None => Ok(()),
    }
}

fn images_from((dims, pixels): (Vec<usize>, Vec<u8>)) -> std::result::Result<IdxImages, String> {
    match dims[..] {
        [count, rows, cols] => Ok(IdxImages {
            count,
            rows,
            cols,
            pixels,
        }),
        _ => Err(format!("expected 3 dimensions, found {}", dims.len())),
    }
}

fn read_file(path: &Path, kind: Kind) -> Result<(Vec<usize>, Vec<u8>)> {
    let file = File::open(path).map_err(|e| Error::data(path, open_error(&e)))?;
    let len = file
        .metadata()
        .map_err(|e| Error::data(path, format!("cannot read its metadata: {e}")))?
        .len();
    let mut reader = BufReader::new(file);
    let mut magic = [0u8; 2];
    let n = read_full(&mut reader, &mut magic)
        .map_err(|e| Error::data(path, format!("read error: {e}")))?;
    let gzip = n == 2 && magic == GZIP_MAGIC;
    let stream = (&magic[..n]).chain(reader);
    parse(stream, len, gzip, kind).map_err(|msg| {
        let named_gz = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
        let hint = if named_gz && !gzip {
            " (the name ends in .gz, but the file does not start with the gzip magic bytes 1f 8b, \
             so it was read as raw IDX)"
        } else {
            ""
        };
        Error::data(path, format!("{msg}{hint}"))
    })
}

pub(crate) fn open_error(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file".to_string(),
        io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => format!("cannot open: {e}"),
    }
}

fn parse_bytes(bytes: &[u8], kind: Kind) -> std::result::Result<(Vec<usize>, Vec<u8>), String> {
    let gzip = bytes.starts_with(&GZIP_MAGIC);
    parse(bytes, bytes.len() as u64, gzip, kind)
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn read_error(e: io::Error, gzip: bool) -> String {
    if gzip {
        format!("corrupt or truncated gzip stream ({e})")
    } else {
        format!("read error: {e}")
    }
}

/// `source_len` is the number of bytes the source holds: the file length (raw)
/// or the compressed length (gzip). It bounds what a header may claim.
fn parse<R: Read>(
    source: R,
    source_len: u64,
    gzip: bool,
    kind: Kind,
) -> std::result::Result<(Vec<usize>, Vec<u8>), String> {
    if gzip {
        parse_stream(MultiGzDecoder::new(source), source_len, true, kind)
    } else {
        parse_stream(source, source_len, false, kind)
    }
}

fn parse_stream<R: Read>(
    mut r: R,
    source_len: u64,
    gzip: bool,
    kind: Kind,
) -> std::result::Result<(Vec<usize>, Vec<u8>), String> {
    let header_len = 4 + 4 * kind.ndims();
    let data_kind = if gzip { "decompressed data" } else { "file" };

    let mut magic = [0u8; 4];
    let got = read_full(&mut r, &mut magic).map_err(|e| read_error(e, gzip))?;
    if got < 4 {
        return Err(format!(
            "truncated: the {data_kind} has only {got} bytes, shorter than the \
             {header_len}-byte IDX {} header",
            kind.what()
        ));
    }
    let found = u32::from_be_bytes(magic);
    if found != kind.magic() {
        let hint = if found == kind.other().magic() {
            format!(
                " — this is an IDX {} file; are the images and labels swapped?",
                kind.other().what()
            )
        } else if magic[0..2] != [0, 0] {
            " — not an IDX file".to_string()
        } else if magic[2] != 0x08 {
            format!(
                " — IDX element type 0x{:02x} is not unsigned bytes (0x08)",
                magic[2]
            )
        } else {
            format!(" — {} dimensions instead of {}", magic[3], kind.ndims())
        };
        return Err(format!(
            "wrong magic number 0x{found:08x}, expected 0x{:08x} (IDX {}: unsigned bytes, \
             {} dimension{}){hint}",
            kind.magic(),
            kind.what(),
            kind.ndims(),
            if kind.ndims() == 1 { "" } else { "s" }
        ));
    }

    let mut raw_dims = [0u8; 12];
    let raw_dims = &mut raw_dims[..4 * kind.ndims()];
    let got = read_full(&mut r, raw_dims).map_err(|e| read_error(e, gzip))?;
    if got < raw_dims.len() {
        return Err(format!(
            "truncated: the {data_kind} ends inside the {header_len}-byte IDX {} header",
            kind.what()
        ));
    }
    let dims: Vec<u32> = raw_dims
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let what = describe(kind, &dims);
    if dims.contains(&0) {
        return Err(format!(
            "the header declares {what}: an IDX {} file must hold at least one non-empty item",
            kind.what()
        ));
    }

    // u32 × u32 × u32 overflows u64 only for absurd headers; those fail here too.
    let claimed = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(u64::from(d)))
        .filter(|&c| c <= MAX_BYTES)
        .ok_or_else(|| {
            format!(
                "the header declares {what}, more than the {MAX_BYTES} bytes this reader \
                 accepts: a corrupt header, not a dataset"
            )
        })?;
    let available = source_len.saturating_sub(header_len as u64);
    if gzip {
        let bound = source_len
            .saturating_mul(DEFLATE_MAX_RATIO)
            .saturating_add(DEFLATE_SLACK);
        if claimed > bound {
            return Err(format!(
                "the header declares {what} ({claimed} bytes), more than a {source_len}-byte \
                 gzip file can decompress to: a corrupt header or a truncated file"
            ));
        }
    } else if claimed > available {
        return Err(format!(
            "truncated: the header declares {what} ({claimed} bytes after the \
             {header_len}-byte header) but the file has only {available}"
        ));
    } else if claimed < available {
        return Err(format!(
            "{} bytes of trailing data after the {what} the header declares \
             (wrong dimensions, or two files joined?)",
            available - claimed
        ));
    }
    let claimed_usize = usize::try_from(claimed)
        .map_err(|_| format!("the header declares {what}, more than this platform can address"))?;

    let mut data = Vec::new();
    if !gzip {
        // The raw file was just checked to hold exactly `claimed` more bytes.
        data.try_reserve_exact(claimed_usize)
            .map_err(|_| format!("cannot allocate {claimed} bytes for {what}"))?;
    }
    r.take(claimed + 1)
        .read_to_end(&mut data)
        .map_err(|e| read_error(e, gzip))?;
    if data.len() < claimed_usize {
        return Err(format!(
            "truncated: the header declares {what} ({claimed} bytes) but the {data_kind} \
             holds only {} after the header",
            data.len()
        ));
    }
    if data.len() > claimed_usize {
        return Err(format!(
            "trailing data after the {what} the header declares: the {data_kind} is longer \
             (wrong dimensions, or two files joined?)"
        ));
    }
    Ok((dims.iter().map(|&d| d as usize).collect(), data))
}

fn describe(kind: Kind, dims: &[u32]) -> String {
    match (kind, dims) {
        (Kind::Images, [n, r, c]) => format!("{n} images of {r}×{c}"),
        (_, [n]) => format!("{n} labels"),
        _ => format!("dimensions {dims:?}"),
    }
}
