//! Typed GPU tensors: a storage buffer (or a window into one) with a shape.
//!
//! Uploads go through `queue.write_buffer`; downloads through a staging
//! buffer and an awaitable future (a futures-intrusive oneshot channel fed by
//! `map_async`), so the same code works on WebGPU where blocking is
//! impossible. [`GpuTensor::read`] is the blocking convenience. Nothing is
//! ever read back unless the caller asks.

use super::{Deferred, Gpu};
use crate::error::{Error, Result};
use ndarray::{ArrayBase, ArrayD, Data, Dimension, IxDyn};
use std::marker::PhantomData;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Element types a [`GpuTensor`] may hold (both are 4 bytes, as WGSL wants).
pub trait Element: bytemuck::Pod + std::fmt::Debug + Send + Sync + 'static {
    /// Name used in messages.
    const NAME: &'static str;
}
impl Element for f32 {
    const NAME: &'static str = "f32";
}
impl Element for u32 {
    const NAME: &'static str = "u32";
}

/// A row-major tensor living in a GPU storage buffer.
///
/// A tensor may be a *view* into a larger buffer (see [`GpuTensor::view`]):
/// kernels bind the whole buffer and receive the view's element offset in
/// their uniforms, which is how one flat parameter buffer holds many tensors.
#[derive(Clone)]
pub struct GpuTensor<T: Element> {
    /// Deferred: on GL the buffer is destroyed under the device lock.
    buffer: Deferred<wgpu::Buffer>,
    offset: usize,
    shape: Vec<usize>,
    len: usize,
    _elem: PhantomData<T>,
}

const ELEM: u64 = 4;

fn element_count(op: &'static str, shape: &[usize]) -> Result<usize> {
    let len = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::shape(op, format!("shape {shape:?} overflows usize")))?;
    if len == 0 {
        return Err(Error::shape(
            op,
            format!("shape {shape:?} has no elements; GPU tensors must hold at least one"),
        ));
    }
    Ok(len)
}

impl<T: Element> GpuTensor<T> {
    /// Allocates a zero-filled tensor of `shape` (wgpu zero-initialises buffers).
    pub fn zeros(gpu: &Gpu, shape: &[usize]) -> Result<Self> {
        let len = element_count("GpuTensor::zeros", shape)?;
        let bytes = (len as u64)
            .checked_mul(ELEM)
            .ok_or_else(|| Error::shape("GpuTensor::zeros", "byte size overflows u64"))?;
        let limit = gpu.limits().max_buffer_size;
        if bytes > limit {
            return Err(Error::TooLarge {
                what: format!("a {} tensor of shape {shape:?}", T::NAME),
                needed: crate::error::bytes(bytes),
                limit: crate::error::bytes(limit),
                limit_name: "max_buffer_size",
            });
        }
        // Kernels index with u32: keep every element addressable.
        if len > u32::MAX as usize {
            return Err(Error::TooLarge {
                what: format!("a tensor of shape {shape:?}"),
                needed: format!("{len} elements"),
                limit: u32::MAX.to_string(),
                limit_name: "u32 element index",
            });
        }
        let buffer = gpu.scoped("creating a buffer", || {
            gpu.device().create_buffer(&wgpu::BufferDescriptor {
                label: Some("GpuTensor"),
                size: bytes,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        })?;
        Ok(GpuTensor {
            buffer: gpu.defer(buffer),
            offset: 0,
            shape: shape.to_vec(),
            len,
            _elem: PhantomData,
        })
    }

    /// Uploads `data` (row-major) as a tensor of `shape`.
    pub fn from_slice(gpu: &Gpu, shape: &[usize], data: &[T]) -> Result<Self> {
        let len = element_count("GpuTensor::from_slice", shape)?;
        if len != data.len() {
            return Err(Error::shape(
                "GpuTensor::from_slice",
                format!(
                    "shape {shape:?} holds {len} elements but {} were given",
                    data.len()
                ),
            ));
        }
        let t = Self::zeros(gpu, shape)?;
        t.write(gpu, data)?;
        Ok(t)
    }

    /// Uploads an ndarray of any dimension (any memory layout).
    pub fn from_array<S: Data<Elem = T>, D: Dimension>(
        gpu: &Gpu,
        array: &ArrayBase<S, D>,
    ) -> Result<Self> {
        match array.as_slice() {
            Some(s) => Self::from_slice(gpu, array.shape(), s),
            None => {
                let v: Vec<T> = array.iter().copied().collect();
                Self::from_slice(gpu, array.shape(), &v)
            }
        }
    }

    /// Overwrites the tensor's elements with `data` (same length).
    pub fn write(&self, gpu: &Gpu, data: &[T]) -> Result<()> {
        if data.len() != self.len {
            return Err(Error::shape(
                "GpuTensor::write",
                format!("tensor holds {} elements, {} given", self.len, data.len()),
            ));
        }
        gpu.scoped("writing a buffer", || {
            gpu.queue()
                .write_buffer(&self.buffer, self.byte_offset(), bytemuck::cast_slice(data))
        })
    }

    /// Sets every element to `value` (tests poison outputs with NaN this way,
    /// so that "never written" cannot pass for "written correctly").
    pub fn fill(&self, gpu: &Gpu, value: T) -> Result<()> {
        self.write(gpu, &vec![value; self.len])
    }

    /// A tensor of `shape` starting `offset` elements into this tensor's
    /// storage, sharing its buffer.
    pub fn view(&self, offset: usize, shape: &[usize]) -> Result<Self> {
        let len = element_count("GpuTensor::view", shape)?;
        if offset.checked_add(len).is_none_or(|end| end > self.len) {
            return Err(Error::shape(
                "GpuTensor::view",
                format!(
                    "view of {len} elements at offset {offset} exceeds the {} elements of its tensor",
                    self.len
                ),
            ));
        }
        Ok(GpuTensor {
            buffer: self.buffer.clone(),
            offset: self.offset + offset,
            shape: shape.to_vec(),
            len,
            _elem: PhantomData,
        })
    }

    /// The same storage with another shape of the same element count.
    pub fn reshape(&self, shape: &[usize]) -> Result<Self> {
        let len = element_count("GpuTensor::reshape", shape)?;
        if len != self.len {
            return Err(Error::shape(
                "GpuTensor::reshape",
                format!("cannot reshape {:?} into {shape:?}", self.shape),
            ));
        }
        self.view(0, shape)
    }

    /// Shape, row-major.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: tensors hold at least one element.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Offset of the first element within [`GpuTensor::buffer`], in elements.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The underlying buffer (shared by all views of it).
    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }

    fn byte_offset(&self) -> u64 {
        self.offset as u64 * ELEM
    }

    /// Bytes this tensor's elements occupy.
    pub fn size_bytes(&self) -> u64 {
        self.len as u64 * ELEM
    }

    /// Copies the tensor back to the host. The future resolves once the GPU
    /// has finished the work submitted before it; on native it polls the
    /// device, on WebGPU the browser drives it.
    pub async fn read_async(&self, gpu: &Gpu) -> Result<Vec<T>> {
        let size = self.size_bytes();
        let staging = gpu.scoped("creating a staging buffer", || {
            gpu.device().create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback staging"),
                size,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        })?;
        let staging = gpu.defer(staging);
        let mut encoder = gpu.encoder("readback");
        encoder.copy_buffer_to_buffer(&self.buffer, self.byte_offset(), &staging, 0, size);
        gpu.submit(encoder)?;

        read_mapped(gpu, &staging, 0..size, "the staging buffer").await
    }

    /// Blocking [`GpuTensor::read_async`].
    pub fn read(&self, gpu: &Gpu) -> Result<Vec<T>> {
        pollster::block_on(self.read_async(gpu))
    }

    /// Blocking readback into an ndarray of the tensor's shape.
    pub fn to_array(&self, gpu: &Gpu) -> Result<ArrayD<T>> {
        let v = self.read(gpu)?;
        ArrayD::from_shape_vec(IxDyn(&self.shape), v)
            .map_err(|e| Error::shape("GpuTensor::to_array", e))
    }
}

impl<T: Element> std::fmt::Debug for GpuTensor<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "GpuTensor<{}>{:?} @ offset {}",
            T::NAME,
            self.shape,
            self.offset
        )
    }
}

/// Maps `range` of `buffer` (a `MAP_READ` buffer whose copy has been
/// submitted), copies the bytes out and unmaps it: the one readback path
/// of the crate (tensors, timestamps, the second-order scalars). `what`
/// names the buffer in errors.
pub(crate) async fn read_mapped<T: bytemuck::Pod>(
    gpu: &Gpu,
    buffer: &wgpu::Buffer,
    range: Range<u64>,
    what: &str,
) -> Result<Vec<T>> {
    let (sender, receiver) = futures_intrusive::channel::shared::oneshot_channel();
    let mapped = Arc::new(AtomicBool::new(false));
    let flag = mapped.clone();
    gpu.exclusive(|| {
        buffer.map_async(wgpu::MapMode::Read, range.clone(), move |r| {
            flag.store(true, Ordering::Release);
            // The receiver outlives this callback unless the future was
            // dropped, in which case nobody wants the result.
            let _ = sender.send(r);
        })
    });
    // Native backends run map callbacks inside a poll (WebGPU ignores
    // polls; the browser runs them). One wait is not always enough: on an
    // NVIDIA H200 the wait returned before this mapping's callback had run,
    // and awaiting the channel then would block for ever. Poll until it has,
    // a bounded number of times.
    let mut waits = 0;
    while !cfg!(target_arch = "wasm32") && !mapped.load(Ordering::Acquire) {
        if waits == MAX_MAP_WAITS {
            return Err(Error::Device(format!(
                "{what} was not mapped after {waits} waits"
            )));
        }
        gpu.wait()?;
        if waits > 0 {
            std::thread::yield_now();
        }
        waits += 1;
    }
    match receiver.receive().await {
        Some(Ok(())) => {}
        Some(Err(e)) => return Err(Error::Device(format!("mapping {what}: {e}"))),
        None => {
            return Err(Error::Device(format!(
                "the map callback for {what} was dropped"
            )));
        }
    }
    let data = {
        let view = buffer
            .slice(range)
            .get_mapped_range()
            .map_err(|e| Error::Device(format!("reading {what}: {e}")))?;
        // Mapped ranges are aligned for any element type.
        bytemuck::cast_slice::<u8, T>(&view).to_vec()
    };
    gpu.exclusive(|| buffer.unmap());
    Ok(data)
}

/// Polls a native device at most this many times for one mapping.
const MAX_MAP_WAITS: u32 = 1000;
