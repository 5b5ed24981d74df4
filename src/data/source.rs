//! Where the data comes from: `--data DIR`, else `$FASHION_MNIST_DIR`, else
//! Debian's `/usr/share/datasets/fashion-mnist`, else `./data/…`.
//!
//! A directory is recognised by what it holds, not by its name: the four
//! standard IDX files (MNIST or Fashion-MNIST, either spelling, raw or .gz) or
//! the six CIFAR-10 batches (possibly inside `cifar-10-batches-bin/`). A
//! directory the user named that holds neither is an error, never a silent
//! fallback to another dataset; so is a directory with only some of the
//! files.

use super::{Dataset, cifar, idx};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Environment variable naming a data directory when `--data` is not given.
pub const ENV_DIR: &str = "FASHION_MNIST_DIR";
/// Where Debian's `dataset-fashion-mnist` package installs the four .gz files.
pub const SYSTEM_DIR: &str = "/usr/share/datasets/fashion-mnist";
/// Searched last, relative to the working directory; `--download` writes to
/// the first three (see `lab::download::Remote::default_dir`).
pub const LOCAL_DIRS: [&str; 4] = ["data/fashion-mnist", "data/mnist", "data/cifar-10", "data"];

/// Classes in MNIST and Fashion-MNIST.
pub const IDX_CLASSES: usize = 10;

/// How to get data, appended to every "not found" error.
pub const HOW_TO_GET: &str = "To get Fashion-MNIST, do one of:
  sudo apt-get install dataset-fashion-mnist   (Debian/Ubuntu: installs /usr/share/datasets/fashion-mnist)
  run with --download                           (fetches it into ./data/fashion-mnist, SHA-256 checked;
                                                a build with the default `download` feature)
  download train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and
  t10k-labels-idx1-ubyte.gz from http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/
  into a directory and pass --data DIR (or set FASHION_MNIST_DIR=DIR).
MNIST's IDX files and CIFAR-10's binary batches (cifar-10-binary.tar.gz, extracted) work the same way.";

/// The file format of a dataset directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Four IDX files: MNIST, Fashion-MNIST or anything shaped like them.
    Idx,
    /// CIFAR-10 binary batches.
    Cifar10,
}

/// The files a dataset directory was found to hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layout {
    Idx {
        train_images: PathBuf,
        train_labels: PathBuf,
        test_images: PathBuf,
        test_labels: PathBuf,
    },
    /// The directory holding the six batch files.
    Cifar10 { dir: PathBuf },
}

impl Layout {
    pub fn format(&self) -> Format {
        match self {
            Layout::Idx { .. } => Format::Idx,
            Layout::Cifar10 { .. } => Format::Cifar10,
        }
    }

    /// The directory the files are in.
    pub fn dir(&self) -> &Path {
        match self {
            Layout::Idx { train_images, .. } => train_images.parent().unwrap_or(Path::new(".")),
            Layout::Cifar10 { dir } => dir,
        }
    }
}

/// A dataset's training and test sets.
#[derive(Clone, Debug, PartialEq)]
pub struct Splits {
    pub train: Dataset,
    pub test: Dataset,
    pub format: Format,
    /// A display name: "Fashion-MNIST", "MNIST" or "IDX" (guessed from the
    /// directory's path, since the files themselves do not say), or "CIFAR-10".
    pub name: String,
    /// The directory the files were read from.
    pub dir: PathBuf,
}

/// Finds and reads a dataset: `source` (the `--data` argument) when given,
/// else the first of `$FASHION_MNIST_DIR`, [`SYSTEM_DIR`] and [`LOCAL_DIRS`]
/// that holds one. When none does, the error lists where it looked and says
/// how to get Fashion-MNIST.
pub fn load(source: Option<&Path>) -> Result<Splits> {
    load_layout(&locate(source)?)
}

/// Reads the dataset in one directory (like `load(Some(dir))`).
pub fn load_dir(dir: &Path) -> Result<Splits> {
    load(Some(dir))
}

/// Reads the files of a [`Layout`].
pub fn load_layout(layout: &Layout) -> Result<Splits> {
    let dir = layout.dir().to_path_buf();
    let (train, test) = match layout {
        Layout::Idx {
            train_images,
            train_labels,
            test_images,
            test_labels,
        } => (
            idx::read_dataset(train_images, train_labels, IDX_CLASSES)?,
            idx::read_dataset(test_images, test_labels, IDX_CLASSES)?,
        ),
        Layout::Cifar10 { dir } => cifar::read_dir(dir)?,
    };
    if train.image_shape != test.image_shape {
        return Err(Error::data(
            &dir,
            format!(
                "training images are {:?} but test images are {:?}",
                train.image_shape, test.image_shape
            ),
        ));
    }
    Ok(Splits {
        name: display_name(layout),
        format: layout.format(),
        train,
        test,
        dir,
    })
}

/// The directory [`load`] would read, without reading it.
pub fn locate(source: Option<&Path>) -> Result<Layout> {
    if let Some(dir) = source {
        return locate_named(dir, "--data");
    }
    if let Some(dir) = std::env::var_os(ENV_DIR).filter(|d| !d.is_empty()) {
        return locate_named(Path::new(&dir), &format!("${ENV_DIR}"));
    }
    let dirs: Vec<PathBuf> = std::iter::once(SYSTEM_DIR)
        .chain(LOCAL_DIRS)
        .map(PathBuf::from)
        .collect();
    locate_first(&dirs).map_err(|e| match e {
        Error::NoData(msg) => Error::NoData(msg.replacen(
            "Looked at:\n",
            &format!("Looked at:\n  --data DIR: not given\n  ${ENV_DIR}: not set\n"),
            1,
        )),
        e => e,
    })
}

/// The first of `dirs` that holds a dataset. Directories that do not exist
/// or hold no dataset files are skipped; one with only some of the files is
/// an error. When none has one: [`Error::NoData`], listing where it looked
/// and saying how to get Fashion-MNIST.
pub fn locate_first(dirs: &[PathBuf]) -> Result<Layout> {
    let mut looked = Vec::new();
    for dir in dirs {
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => {
                if let Some(layout) = detect(dir)? {
                    return Ok(layout);
                }
                looked.push(format!("{}: no dataset files in it", dir.display()));
            }
            Ok(_) => looked.push(format!("{}: not a directory", dir.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                looked.push(format!("{}: not found", dir.display()))
            }
            Err(e) => looked.push(format!("{}: {}", dir.display(), unreadable(&e))),
        }
    }
    Err(Error::NoData(format!(
        "no dataset found. Looked at:\n  {}\n{HOW_TO_GET}",
        looked.join("\n  ")
    )))
}

/// Why a path that exists (or may) cannot be used: permission, a loop of
/// symbolic links, or whatever the system says.
fn unreadable(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::PermissionDenied => format!(
            "cannot be read: permission denied ({e}); check the permissions of it and of the \
             directories above it"
        ),
        _ => format!("cannot be read: {e}"),
    }
}

fn locate_named(dir: &Path, given_by: &str) -> Result<Layout> {
    // `exists()` and `is_dir()` say false for any error; a directory that
    // is there but unreadable, or a symlink loop, must not read as missing.
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(Error::data(
                dir,
                format!("is not a directory ({given_by} names the directory that holds the files)"),
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::data(
                dir,
                format!("does not exist (given by {given_by}).\n{HOW_TO_GET}"),
            ));
        }
        Err(e) => {
            return Err(Error::data(
                dir,
                format!("{} (given by {given_by})", unreadable(&e)),
            ));
        }
    }
    // Listing it proves it readable: otherwise every file would look absent.
    std::fs::read_dir(dir)
        .map_err(|e| Error::data(dir, format!("{} (given by {given_by})", unreadable(&e))))?;
    detect(dir)?.ok_or_else(|| {
        Error::data(
            dir,
            format!(
                "holds neither the four IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, \
                 t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte; raw or .gz; '-idx3' or '.idx3') \
                 nor the CIFAR-10 batches (data_batch_1.bin … data_batch_5.bin, test_batch.bin, \
                 here or in {}/) (given by {given_by}).\n{HOW_TO_GET}",
                cifar::BATCHES_DIR
            ),
        )
    })
}

/// What `dir` holds: `Ok(None)` for no dataset files at all, an error naming
/// the missing ones when only some are there.
pub fn detect(dir: &Path) -> Result<Option<Layout>> {
    let stems = [
        ("train", "images", 3),
        ("train", "labels", 1),
        ("t10k", "images", 3),
        ("t10k", "labels", 1),
    ];
    let found: Vec<Option<PathBuf>> = stems
        .iter()
        .map(|&(set, kind, nd)| find_idx_file(dir, set, kind, nd))
        .collect::<Result<_>>()?;
    let present = found.iter().filter(|f| f.is_some()).count();
    if present == stems.len() {
        let mut it = found.into_iter().flatten();
        let mut next = || it.next().unwrap_or_default();
        return Ok(Some(Layout::Idx {
            train_images: next(),
            train_labels: next(),
            test_images: next(),
            test_labels: next(),
        }));
    }
    if present > 0 {
        let missing: Vec<String> = stems
            .iter()
            .zip(&found)
            .filter(|(_, f)| f.is_none())
            .map(|(&(set, kind, nd), _)| format!("{set}-{kind}-idx{nd}-ubyte[.gz]"))
            .collect();
        return Err(Error::data(
            dir,
            format!(
                "holds some IDX files but not {}; a dataset needs all four.\n{HOW_TO_GET}",
                missing.join(", ")
            ),
        ));
    }
    Ok(cifar::find_batches(dir)?.map(|dir| Layout::Cifar10 { dir }))
}

/// Both spellings seen in the wild (`train-images-idx3-ubyte` from the
/// original site, `train-images.idx3-ubyte` from some re-packagings), raw or
/// .gz. A name that is there but cannot be looked at (no permission, a
/// symlink loop) is an error naming it, not a missing file.
fn find_idx_file(dir: &Path, set: &str, kind: &str, nd: u32) -> Result<Option<PathBuf>> {
    for name in [
        format!("{set}-{kind}-idx{nd}-ubyte.gz"),
        format!("{set}-{kind}-idx{nd}-ubyte"),
        format!("{set}-{kind}.idx{nd}-ubyte.gz"),
        format!("{set}-{kind}.idx{nd}-ubyte"),
    ] {
        let path = dir.join(name);
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => return Ok(Some(path)),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::data(&path, unreadable(&e))),
        }
    }
    Ok(None)
}

fn display_name(layout: &Layout) -> String {
    match layout {
        Layout::Cifar10 { .. } => "CIFAR-10".to_string(),
        Layout::Idx { .. } => {
            let path = std::path::absolute(layout.dir())
                .unwrap_or_else(|_| layout.dir().to_path_buf())
                .to_string_lossy()
                .to_lowercase();
            if path.contains("fashion") {
                "Fashion-MNIST".to_string()
            } else if path.contains("mnist") {
                "MNIST".to_string()
            } else {
                "IDX".to_string()
            }
        }
    }
}
