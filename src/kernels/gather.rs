//! Launcher for `shaders/gather.wgsl`: the dataset resident on the GPU and the
//! minibatch gather that feeds every training step.
//!
//! The images go up once, as packed bytes split into chunks that each fit a
//! storage binding; each epoch only a permutation of example indices is
//! written ([`GpuDataset::write_order`]). A [`Gather`] is built once for a
//! batch size and records step `s` of an epoch without any CPU round trip.

use super::fold;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::gpu::{Deferred, Gpu, GpuTensor, KernelPipeline, PipelineKey};
use std::sync::Arc;

use crate::gpu::{Binding, Shader};

// The shader file of this kernel family and its bind-group layout
// (binding i of group 0 is `bindings[i]`).
pub static GATHER: Shader = Shader {
    name: "gather",
    source: include_str!("../../shaders/gather.wgsl"),
    bindings: &[
        Binding::UniformSlot(PARAMS_SIZE), // per-step params
        Binding::StorageRead,              // order
        Binding::StorageRead,              // images (one chunk)
        Binding::StorageRead,              // labels
        Binding::StorageReadWrite,         // x
        Binding::StorageReadWrite,         // y
    ],
    workgroup_memory: &[],
};

/// Size in bytes of the shader's `Params` block.
pub const PARAMS_SIZE: u64 = std::mem::size_of::<Params>() as u64;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    start: u32,
    rows: u32,
    dim: u32,
    stride_words: u32,
    chunk_first: u32,
    chunk_len: u32,
    out_stride: u32,
    append_one: u32,
    x_offset: u32,
    y_offset: u32,
    scale: f32,
    shift: f32,
    _pad: [u32; 4],
}

/// How pixels become inputs: `x = (byte / 255 − mean) / std`, optionally with
/// a trailing 1 per row for the bias trick (the linear model's W is C×(D+1)).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GatherOptions {
    pub mean: f32,
    pub std: f32,
    pub append_one: bool,
}

impl Default for GatherOptions {
    fn default() -> Self {
        GatherOptions {
            mean: 0.0,
            std: 1.0,
            append_one: false,
        }
    }
}

impl GatherOptions {
    /// `(scale, shift)` with `x = byte · scale + shift`; both sides use this.
    pub fn affine(&self) -> Result<(f32, f32)> {
        if !self.mean.is_finite() {
            return Err(Error::InvalidArgument {
                name: "mean",
                msg: format!("must be finite, got {}", self.mean),
            });
        }
        if !(self.std.is_finite() && self.std > 0.0) {
            return Err(Error::InvalidArgument {
                name: "std",
                msg: format!("must be finite and > 0, got {}", self.std),
            });
        }
        Ok((1.0 / (255.0 * self.std), -self.mean / self.std))
    }
}

/// A [`Dataset`] resident on the GPU: packed pixels in one or more chunks,
/// labels as u32. Cloning shares the buffers.
#[derive(Clone)]
pub struct GpuDataset {
    chunks: Vec<GpuTensor<u32>>,
    chunk_examples: usize,
    labels: GpuTensor<u32>,
    len: usize,
    dim: usize,
    stride_words: usize,
    classes: usize,
}

impl GpuDataset {
    /// Uploads `data` once. Chunks are as large as the device's storage
    /// binding and buffer limits allow.
    pub fn upload(gpu: &Gpu, data: &Dataset) -> Result<Self> {
        let len = data.len();
        if len == 0 {
            return Err(Error::shape("GpuDataset::upload", "the dataset is empty"));
        }
        let dim = data.dim();
        let stride_words = dim.div_ceil(4);
        let example_bytes = (stride_words * 4) as u64;
        let limit = gpu
            .limits()
            .max_storage_buffer_binding_size
            .min(gpu.limits().max_buffer_size);
        let chunk_examples = (limit / example_bytes) as usize;
        if chunk_examples == 0 {
            return Err(Error::TooLarge {
                what: format!("one example of {dim} pixels"),
                needed: crate::error::bytes(example_bytes),
                limit: crate::error::bytes(limit),
                limit_name: "max_storage_buffer_binding_size",
            });
        }
        if len > u32::MAX as usize {
            return Err(Error::TooLarge {
                what: "the dataset".into(),
                needed: format!("{len} examples"),
                limit: u32::MAX.to_string(),
                limit_name: "u32 example index",
            });
        }
        let mut chunks = Vec::new();
        for first in (0..len).step_by(chunk_examples) {
            let n = chunk_examples.min(len - first);
            let mut words = vec![0u32; n * stride_words];
            for (i, out) in words.chunks_exact_mut(stride_words).enumerate() {
                for (w, px) in out.iter_mut().zip(data.image(first + i).chunks(4)) {
                    let mut b = [0u8; 4];
                    b[..px.len()].copy_from_slice(px);
                    *w = u32::from_le_bytes(b);
                }
            }
            chunks.push(GpuTensor::from_slice(gpu, &[n, stride_words], &words)?);
        }
        let labels: Vec<u32> = data.labels.iter().map(|&l| l as u32).collect();
        let labels = GpuTensor::from_slice(gpu, &[len], &labels)?;
        gpu.check_storage_binding("the labels", labels.size_bytes())?;
        Ok(GpuDataset {
            chunks,
            chunk_examples,
            labels,
            len,
            dim,
            stride_words,
            classes: data.classes,
        })
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: an empty dataset cannot be uploaded.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Pixels per example.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// The packed pixels of chunk `c` and the examples before it.
    pub(crate) fn chunk(&self, c: usize) -> Option<(&GpuTensor<u32>, usize)> {
        self.chunks.get(c).map(|t| (t, c * self.chunk_examples))
    }

    /// The labels, one u32 per example.
    pub(crate) fn labels(&self) -> &GpuTensor<u32> {
        &self.labels
    }

    /// How many buffers the pixels were split into.
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// A buffer for an epoch's order of `len` example indices.
    pub fn order_buffer(&self, gpu: &Gpu, len: usize) -> Result<GpuTensor<u32>> {
        GpuTensor::zeros(gpu, &[len])
    }

    /// Writes an epoch's order (indices into this dataset, e.g. a shuffled
    /// training subset). Every index is checked here, so the shader never
    /// reads past the data.
    pub fn write_order(&self, gpu: &Gpu, buffer: &GpuTensor<u32>, order: &[u32]) -> Result<()> {
        if let Some((i, &e)) = order
            .iter()
            .enumerate()
            .find(|&(_, &e)| e as usize >= self.len)
        {
            return Err(Error::InvalidArgument {
                name: "order",
                msg: format!(
                    "position {i} names example {e}, but the dataset holds {}",
                    self.len
                ),
            });
        }
        buffer.write(gpu, order)
    }
}

/// Every pipeline this launcher can build.
pub fn specialisations() -> Vec<PipelineKey> {
    vec![key()]
}

fn key() -> PipelineKey {
    PipelineKey {
        shader: &GATHER,
        entry: "gather",
        constants: vec![],
    }
}

/// The buffers one [`Gather`] reads and writes, shared with the kernels that
/// fuse it (clones share the GPU buffers).
#[derive(Clone)]
pub(crate) struct GatherSource {
    pub data: GpuDataset,
    pub order: GpuTensor<u32>,
    pub x: GpuTensor<f32>,
    pub y: GpuTensor<u32>,
    /// One [`PARAMS_SIZE`] slot per (step, chunk), `slot_stride` bytes apart.
    pub slots: Deferred<wgpu::Buffer>,
}

/// The minibatch gather for one batch size, built once: step `s` of an epoch
/// reads `order[s·batch ..]` and writes `x` (`[batch, dim]`, or
/// `[batch, dim + 1]` with the bias column) and `y` (`[batch]`).
pub struct Gather {
    pipeline: Arc<KernelPipeline>,
    bind_groups: Vec<Deferred<wgpu::BindGroup>>,
    /// What a fused consumer (`GatherMatmul`) binds in the gather's place.
    pub(crate) source: GatherSource,
    slot_stride: u64,
    chunks: usize,
    steps: usize,
    batch: usize,
    order_len: usize,
    workgroups: [u32; 3],
}

impl Gather {
    /// Checks shapes and limits, writes every step's parameters once, and
    /// builds one bind group per chunk.
    pub fn new(
        gpu: &Gpu,
        data: &GpuDataset,
        order: &GpuTensor<u32>,
        x: &GpuTensor<f32>,
        y: &GpuTensor<u32>,
        batch: usize,
        opts: GatherOptions,
    ) -> Result<Self> {
        let (scale, shift) = opts.affine()?;
        if batch == 0 {
            return Err(Error::InvalidArgument {
                name: "batch",
                msg: "must be at least 1".into(),
            });
        }
        let order_len = order.len();
        let out_stride = data.dim + usize::from(opts.append_one);
        if x.shape() != [batch, out_stride] {
            return Err(Error::shape(
                "gather",
                format!(
                    "x must have shape [{batch}, {out_stride}], got {:?}",
                    x.shape()
                ),
            ));
        }
        if y.shape() != [batch] {
            return Err(Error::shape(
                "gather",
                format!("y must have shape [{batch}], got {:?}", y.shape()),
            ));
        }
        for (what, bytes) in [
            ("the order", order.buffer().size()),
            ("x", x.buffer().size()),
            ("y", y.buffer().size()),
        ] {
            gpu.check_storage_binding(what, bytes)?;
        }
        let steps = order_len.div_ceil(batch);
        let chunks = data.chunks.len();
        let align = gpu.limits().min_uniform_buffer_offset_alignment as u64;
        let slot_stride = PARAMS_SIZE.div_ceil(align) * align;
        let mut slots = vec![0u8; (slot_stride as usize) * steps * chunks];
        for s in 0..steps {
            for (c, _) in data.chunks.iter().enumerate() {
                let first = c * data.chunk_examples;
                let p = Params {
                    start: (s * batch) as u32,
                    rows: batch.min(order_len - s * batch) as u32,
                    dim: data.dim as u32,
                    stride_words: data.stride_words as u32,
                    chunk_first: first as u32,
                    chunk_len: data.chunk_examples.min(data.len - first) as u32,
                    out_stride: out_stride as u32,
                    append_one: u32::from(opts.append_one),
                    x_offset: x.offset() as u32,
                    y_offset: y.offset() as u32,
                    scale,
                    shift,
                    _pad: [0; 4],
                };
                let at = (s * chunks + c) * slot_stride as usize;
                slots[at..at + PARAMS_SIZE as usize].copy_from_slice(bytemuck::bytes_of(&p));
            }
        }
        let slot_buffer = gpu.buffer_init("gather params", &slots, wgpu::BufferUsages::UNIFORM)?;
        let pipeline = gpu.pipeline(&key())?;
        let bind_groups = data
            .chunks
            .iter()
            .map(|chunk| {
                gpu.bind_group_with(
                    &pipeline,
                    vec![
                        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: &slot_buffer,
                            offset: 0,
                            size: wgpu::BufferSize::new(PARAMS_SIZE),
                        }),
                        order.buffer().as_entire_binding(),
                        chunk.buffer().as_entire_binding(),
                        data.labels.buffer().as_entire_binding(),
                        x.buffer().as_entire_binding(),
                        y.buffer().as_entire_binding(),
                    ],
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let threads = (batch * data.stride_words) as u64;
        let workgroups = fold(gpu, "gather", threads.div_ceil(64))?;
        Ok(Gather {
            pipeline,
            bind_groups,
            source: GatherSource {
                data: data.clone(),
                order: order.clone(),
                x: x.clone(),
                y: y.clone(),
                slots: slot_buffer,
            },
            slot_stride,
            chunks,
            steps,
            batch,
            order_len,
            workgroups,
        })
    }

    /// Bytes between step `s`'s and step `s + 1`'s slot of one chunk.
    pub(crate) fn step_stride(&self) -> u64 {
        self.slot_stride * self.chunks as u64
    }

    /// Dispatches one step records: one per chunk.
    pub fn dispatches(&self) -> usize {
        self.chunks
    }

    /// Steps per epoch: ⌈order length / batch⌉ (the last may be partial).
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Examples in step `step` (the batch size, or fewer in the last step).
    pub fn rows(&self, step: usize) -> usize {
        self.batch
            .min(self.order_len.saturating_sub(step * self.batch))
    }

    /// Records step `step`'s gather (one dispatch per chunk).
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>, step: usize) -> Result<()> {
        if step >= self.steps {
            return Err(self.past_end(step));
        }
        pass.set_pipeline(&self.pipeline.pipeline);
        let [gx, gy, gz] = self.workgroups;
        for (c, bg) in self.bind_groups.iter().enumerate() {
            let offset = (step * self.chunks + c) as u64 * self.slot_stride;
            pass.set_bind_group(0, &**bg, &[offset as u32]);
            pass.dispatch_workgroups(gx, gy, gz);
        }
        Ok(())
    }

    /// Records and submits one step (no wait, no readback).
    pub fn run(&self, gpu: &Gpu, step: usize) -> Result<()> {
        if step >= self.steps {
            return Err(self.past_end(step));
        }
        super::run_repeated(gpu, "gather", 1, |pass| {
            // Checked above: recording cannot fail.
            let _ = self.record(pass, step);
        })
    }

    fn past_end(&self, step: usize) -> Error {
        Error::InvalidArgument {
            name: "step",
            msg: format!("{step} is past the epoch's {} steps", self.steps),
        }
    }
}

#[cfg(test)]
mod layout {
    use crate::kernels::mirror::check_mirror;

    #[test]
    fn params_mirrors_the_wgsl_struct() {
        check_mirror!(super::Params, &super::GATHER, "Params"; start, rows, dim, stride_words, chunk_first, chunk_len, out_stride, append_one, x_offset, y_offset, scale, shift, _pad);
    }
}
