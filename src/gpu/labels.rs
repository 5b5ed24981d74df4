//! Class labels on the GPU, checked on the CPU whenever they are written.
//!
//! The softmax cross-entropy kernel indexes each row's logits by its label.
//! Rather than trust whatever u32s a buffer holds, its launcher only accepts
//! [`GpuLabels`], which can only be filled through a check that every label
//! is below the class count: a bad label is an [`Error::Label`](crate::Error)
//! before anything is dispatched.

use super::{Gpu, GpuTensor};
use crate::error::{Error, Result};
use crate::options::class_labels;
use std::fmt;

/// One u32 class index per example, each known to be below [`classes`](GpuLabels::classes).
#[derive(Clone, Debug)]
pub struct GpuLabels {
    tensor: GpuTensor<u32>,
    classes: usize,
}

impl GpuLabels {
    /// Checks `labels` (any integer type: datasets store `u8`) against
    /// `classes` and uploads them as u32.
    pub fn new<L>(gpu: &Gpu, labels: &[L], classes: usize) -> Result<Self>
    where
        L: Copy + TryInto<u32> + fmt::Display,
    {
        let checked = class_labels(labels, classes)?;
        let tensor = GpuTensor::from_slice(gpu, &[checked.len()], &checked)?;
        Ok(GpuLabels { tensor, classes })
    }

    /// Wraps a tensor that a kernel filled from labels already checked
    /// against `classes` (the minibatch gather copies them out of a checked
    /// dataset). Crate-private, so code outside the crate cannot skip the check.
    #[allow(dead_code)] // first caller: the minibatch gather (kernels::gather)
    pub(crate) fn from_checked(tensor: GpuTensor<u32>, classes: usize) -> Self {
        GpuLabels { tensor, classes }
    }

    /// Replaces the labels with as many new ones (the next minibatch),
    /// checked the same way.
    pub fn write<L>(&self, gpu: &Gpu, labels: &[L]) -> Result<()>
    where
        L: Copy + TryInto<u32> + fmt::Display,
    {
        if labels.len() != self.len() {
            return Err(Error::shape(
                "GpuLabels::write",
                format!("holds {} labels, {} given", self.len(), labels.len()),
            ));
        }
        self.tensor.write(gpu, &class_labels(labels, self.classes)?)
    }

    /// `len` labels starting `offset` into these: a minibatch of a dataset's
    /// labels, sharing the buffer.
    pub fn view(&self, offset: usize, len: usize) -> Result<Self> {
        Ok(GpuLabels {
            tensor: self.tensor.view(offset, &[len])?,
            classes: self.classes,
        })
    }

    /// The labels as a u32 tensor of shape `[len]`.
    pub fn tensor(&self) -> &GpuTensor<u32> {
        &self.tensor
    }

    /// The bound every label was checked against.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.tensor.len()
    }

    /// Always false: there is at least one label.
    pub fn is_empty(&self) -> bool {
        self.tensor.is_empty()
    }

    /// Copies the labels back to the host, awaiting the GPU.
    pub async fn read_async(&self, gpu: &Gpu) -> Result<Vec<u32>> {
        self.tensor.read_async(gpu).await
    }

    /// Copies the labels back to the host (blocking; native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read(&self, gpu: &Gpu) -> Result<Vec<u32>> {
        self.tensor.read(gpu)
    }
}
