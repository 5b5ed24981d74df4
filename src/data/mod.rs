//! Datasets: u8 images with u8 labels, as MNIST, Fashion-MNIST and CIFAR-10
//! ship them, plus the GPU-resident copy that training gathers from.
//!
//! - [`load`] finds and reads a dataset (`--data DIR`, `$FASHION_MNIST_DIR`,
//!   Debian's `/usr/share/datasets/fashion-mnist`, `./data/…`) into
//!   [`Splits`]. Fetching one (`--download NAME`, checksummed) is the lab's
//!   (`lab::download`).
//! - [`idx`] and [`cifar`] are the readers, callable on files or on bytes
//!   (the fuzz targets use the latter). Every malformed file is an
//!   [`Error::Data`] that names the file and the problem.
//! - [`Dataset::split`], [`Dataset::epoch_permutation`] and
//!   [`Dataset::subset`]: seeded, deterministic (see [`shuffle`]).
//! - [`synthetic::images`] (random pixel bytes shaped like a real dataset)
//!   and [`synthetic::gaussian`]: random data for throughput runs.

pub mod cifar;
pub mod idx;
pub mod shuffle;
pub mod source;
pub mod synthetic;

pub use source::{Format, Layout, Splits, load, load_dir, locate, locate_first};

use crate::error::{Error, Result};

/// Images (u8 pixels) and their labels, example after example.
///
/// Images are kept as bytes — a quarter of the f32 size — on the host and on
/// the GPU; minibatches are normalised to f32 only when gathered.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// `len() × dim()` pixel bytes, row-major: example `i` is
    /// `images[i*dim .. (i+1)*dim]`, channel-major within an example (CHW).
    pub images: Vec<u8>,
    /// One label per example, each `< classes`.
    pub labels: Vec<u8>,
    /// (channels, height, width): (1, 28, 28) for MNIST, (3, 32, 32) for CIFAR-10.
    pub image_shape: [usize; 3],
    /// Number of classes; every label is below it.
    pub classes: usize,
}

impl Dataset {
    /// Checks that the sizes agree and every label is `< classes`.
    pub fn new(
        images: Vec<u8>,
        labels: Vec<u8>,
        image_shape: [usize; 3],
        classes: usize,
    ) -> Result<Self> {
        let dim = image_shape.iter().product::<usize>();
        if dim == 0 || classes == 0 {
            return Err(Error::shape(
                "Dataset::new",
                format!("image shape {image_shape:?} and classes {classes} must be non-zero"),
            ));
        }
        if images.len() != labels.len() * dim {
            return Err(Error::shape(
                "Dataset::new",
                format!(
                    "{} labels need {} image bytes of {dim} each, got {}",
                    labels.len(),
                    labels.len() * dim,
                    images.len()
                ),
            ));
        }
        if let Some((i, &l)) = labels
            .iter()
            .enumerate()
            .find(|&(_, &l)| l as usize >= classes)
        {
            return Err(Error::InvalidArgument {
                name: "label",
                msg: format!("example {i} has label {l}, but there are only {classes} classes"),
            });
        }
        Ok(Dataset {
            images,
            labels,
            image_shape,
            classes,
        })
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no examples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Values per example (784 for MNIST, 3072 for CIFAR-10).
    pub fn dim(&self) -> usize {
        self.image_shape.iter().product()
    }

    /// Pixels of example `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let d = self.dim();
        &self.images[i * d..(i + 1) * d]
    }

    /// Examples `indices` (in that order; repeats allowed), as a new dataset.
    pub fn subset(&self, indices: &[u32]) -> Result<Dataset> {
        let d = self.dim();
        if let Some(&bad) = indices.iter().find(|&&i| i as usize >= self.len()) {
            return Err(Error::InvalidArgument {
                name: "subset index",
                msg: format!("index {bad} is out of range for {} examples", self.len()),
            });
        }
        let mut images = Vec::with_capacity(indices.len() * d);
        for &i in indices {
            images.extend_from_slice(self.image(i as usize));
        }
        let labels = indices.iter().map(|&i| self.labels[i as usize]).collect();
        Ok(Dataset {
            images,
            labels,
            image_shape: self.image_shape,
            classes: self.classes,
        })
    }

    /// The first `n` examples (all of them when there are fewer): for quick runs.
    pub fn first(&self, n: usize) -> Dataset {
        let n = n.min(self.len());
        Dataset {
            images: self.images[..n * self.dim()].to_vec(),
            labels: self.labels[..n].to_vec(),
            image_shape: self.image_shape,
            classes: self.classes,
        }
    }

    /// Splits off `validation` examples chosen at random by `seed`:
    /// `(train, validation)`, each keeping the original order of its
    /// examples. The same `(len, validation, seed)` always picks the same
    /// examples, and the choice does not depend on any epoch's shuffle.
    ///
    /// For a fraction `f`, pass `(f * len as f64).round() as usize`.
    pub fn split(&self, validation: usize, seed: u64) -> Result<(Dataset, Dataset)> {
        let n = self.len_u32()?;
        if validation > self.len() {
            return Err(Error::InvalidArgument {
                name: "validation size",
                msg: format!(
                    "{validation} is more than the {} examples there are",
                    self.len()
                ),
            });
        }
        let order = shuffle::permutation_in(n, seed, shuffle::DOMAIN_SPLIT, 0);
        let mut val: Vec<u32> = order[..validation].to_vec();
        let mut train: Vec<u32> = order[validation..].to_vec();
        val.sort_unstable();
        train.sort_unstable();
        Ok((self.subset(&train)?, self.subset(&val)?))
    }

    /// The order in which epoch `epoch` visits the examples: a permutation of
    /// `0..len()` that depends only on `(len(), seed, epoch)` (see
    /// [`shuffle::permutation`]). This is what the GPU gather consumes.
    pub fn epoch_permutation(&self, seed: u64, epoch: u64) -> Result<Vec<u32>> {
        Ok(shuffle::permutation(self.len_u32()?, seed, epoch))
    }

    /// How many examples each class has.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes];
        for &l in &self.labels {
            // Dataset::new checked every label against `classes`.
            if let Some(c) = counts.get_mut(l as usize) {
                *c += 1;
            }
        }
        counts
    }

    fn len_u32(&self) -> Result<u32> {
        u32::try_from(self.len()).map_err(|_| Error::InvalidArgument {
            name: "dataset size",
            msg: format!(
                "{} examples; indices are u32, so at most {} are supported",
                self.len(),
                u32::MAX
            ),
        })
    }
}
