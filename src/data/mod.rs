//! Datasets: u8 images with u8 labels, as MNIST, Fashion-MNIST and CIFAR-10
//! ship them, plus the GPU-resident copy that training gathers from.

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
}
