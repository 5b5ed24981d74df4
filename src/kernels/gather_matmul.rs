//! Launcher for `shaders/gather_matmul.wgsl`: the minibatch gather fused into
//! the first layer's forward product. Built from a [`Gather`] (its dataset,
//! order, per-step slots and output buffers) and the layer's weights, it
//! records step `s` as one dispatch that computes `c = act(x·wᵀ + bias)`
//! from the packed bytes and writes `x` and the labels `y` exactly as the
//! gather would, for the backward pass.

use super::gather::{Gather, PARAMS_SIZE};
use super::{MatmulKernel, Operand, check_operands, groups};
use crate::error::{Error, Result};
use crate::gpu::{Deferred, Gpu, GpuTensor, KernelPipeline, PipelineKey};
use crate::shapes::Activation;
use std::sync::Arc;

use crate::gpu::{Binding, Shader};

// The shader file of this kernel family and its bind-group layout
// (binding i of group 0 is `bindings[i]`).
pub static GATHER_MATMUL: Shader = Shader {
    name: "gather_matmul",
    source: include_str!("../../shaders/gather_matmul.wgsl"),
    bindings: &[
        Binding::UniformSlot(crate::kernels::gather::PARAMS_SIZE), // g: the gather's per-step params
        Binding::Uniform,                                          // p: the product's params
        Binding::StorageRead,                                      // order
        Binding::StorageRead,                                      // images (the one chunk)
        Binding::StorageRead,                                      // labels
        Binding::StorageRead,                                      // w
        Binding::StorageRead,                                      // bias
        Binding::StorageReadWrite,                                 // c
        Binding::StorageReadWrite,                                 // x
        Binding::StorageReadWrite,                                 // y
    ],
    workgroup_memory: &[],
};

/// Storage buffers the shader binds: order, images, labels, w, bias, c, x, y.
const STORAGE_BUFFERS: u32 = 8;

/// The uniform block of `gather_matmul.wgsl` (32 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    m: u32,
    n: u32,
    k: u32,
    w_offset: u32,
    bias_offset: u32,
    c_offset: u32,
    _pad0: u32,
    _pad1: u32,
}

fn key(has_bias: bool, activation: Activation, n: usize) -> PipelineKey {
    let (x, y) = MatmulKernel::V2Blocked.workgroup(n);
    PipelineKey {
        shader: &GATHER_MATMUL,
        entry: "gather_matmul",
        constants: vec![
            ("HAS_BIAS", if has_bias { 1.0 } else { 0.0 }),
            ("ACTIVATION", activation.shader_code()),
            ("WG_X", x as f64),
            ("WG_Y", y as f64),
        ],
    }
}

/// Every pipeline this launcher can build (validated by `tests/shaders.rs`).
pub fn specialisations() -> Vec<PipelineKey> {
    let mut keys = Vec::new();
    for has_bias in [false, true] {
        for activation in [Activation::Identity, Activation::Sigmoid, Activation::Relu] {
            for n in [4, 8, 16, 32] {
                keys.push(key(has_bias, activation, n));
            }
        }
    }
    keys
}

/// One fused gather and first product for a batch of `rows`, ready to record.
pub struct GatherMatmul {
    pipeline: Arc<KernelPipeline>,
    bind_group: Deferred<wgpu::BindGroup>,
    step_stride: u64,
    rows: usize,
    workgroups: [u32; 3],
}

impl GatherMatmul {
    /// Prepares `c = act(x·wᵀ + bias)` for the steps of `gather` that have
    /// `rows` examples, `x` being those rows of the gather's output
    /// (`[rows, K]`, K the input width with any bias column) and `w` the
    /// layer's weights (`[N, K]`, out × in), `c` `[rows, N]`. The gather's
    /// dataset must be in one chunk (one binding); larger ones keep the
    /// separate gather.
    pub fn new(
        gpu: &Gpu,
        gather: &Gather,
        rows: usize,
        w: &GpuTensor<f32>,
        bias: Option<&GpuTensor<f32>>,
        c: &GpuTensor<f32>,
        activation: Activation,
    ) -> Result<Self> {
        const OP: &str = "gather_matmul";
        let src = &gather.source;
        let Some((images, 0)) = src.data.chunk(0).filter(|_| src.data.chunk_count() == 1) else {
            return Err(Error::shape(
                OP,
                format!(
                    "the dataset is split into {} chunks; the fused gather binds one",
                    src.data.chunk_count()
                ),
            ));
        };
        let k = src.x.shape()[1];
        let [n, wk] = *w.shape() else {
            return Err(Error::shape(
                OP,
                format!("w must be 2-D, got {:?}", w.shape()),
            ));
        };
        if wk != k || rows == 0 || rows > src.x.shape()[0] {
            return Err(Error::shape(
                OP,
                format!(
                    "w {:?} must be [N, {k}] and rows {rows} within the batch of {}",
                    w.shape(),
                    src.x.shape()[0]
                ),
            ));
        }
        if c.shape() != [rows, n] {
            return Err(Error::shape(
                OP,
                format!("c must have shape [{rows}, {n}], got {:?}", c.shape()),
            ));
        }
        if let Some(b) = bias
            && b.shape() != [n]
        {
            return Err(Error::shape(
                OP,
                format!("bias must have shape [{n}], got {:?}", b.shape()),
            ));
        }
        let mut reads = vec![
            Operand::of("order", &src.order),
            Operand::of("images", images),
            Operand::of("labels", src.data.labels()),
            Operand::of("w", w),
        ];
        reads.extend(bias.map(|b| Operand::of("bias", b)));
        check_operands(
            gpu,
            OP,
            &reads,
            &[
                Operand::of("c", c),
                Operand::of("x", &src.x),
                Operand::of("y", &src.y),
            ],
        )?;
        let (wg_x, wg_y) = MatmulKernel::V2Blocked.workgroup(n);
        let workgroups = [groups(n, wg_x * 4), groups(rows, wg_y * 4), 1];
        gpu.check_dispatch(OP, workgroups)?;
        let params = Params {
            m: rows as u32,
            n: n as u32,
            k: k as u32,
            w_offset: w.offset() as u32,
            bias_offset: bias.map_or(0, |b| b.offset() as u32),
            c_offset: c.offset() as u32,
            _pad0: 0,
            _pad1: 0,
        };
        let pipeline = gpu.pipeline(&key(bias.is_some(), activation, n))?;
        let uniform = super::uniform(gpu, "gather_matmul params", &params)?;
        let bind_group = gpu.bind_group_with(
            &pipeline,
            vec![
                wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &src.slots,
                    offset: 0,
                    size: wgpu::BufferSize::new(PARAMS_SIZE),
                }),
                uniform.as_entire_binding(),
                src.order.buffer().as_entire_binding(),
                images.buffer().as_entire_binding(),
                src.data.labels().buffer().as_entire_binding(),
                w.buffer().as_entire_binding(),
                bias.map_or(gpu.placeholder(), |b| b.buffer())
                    .as_entire_binding(),
                c.buffer().as_entire_binding(),
                src.x.buffer().as_entire_binding(),
                src.y.buffer().as_entire_binding(),
            ],
        )?;
        Ok(GatherMatmul {
            pipeline,
            bind_group,
            step_stride: gather.step_stride(),
            rows,
            workgroups,
        })
    }

    fn check_step(&self, gather: &Gather, step: usize) -> Result<()> {
        if step >= gather.steps() || gather.rows(step) != self.rows {
            return Err(Error::InvalidArgument {
                name: "step",
                msg: format!(
                    "step {step} of {} does not have the {} rows this product was built for",
                    gather.steps(),
                    self.rows
                ),
            });
        }
        Ok(())
    }

    /// Whether `gpu` can bind what the kernel reads and writes: eight
    /// storage buffers in one stage (WebGPU's default limit, which some
    /// downlevel adapters do not reach). The engine keeps the separate
    /// gather where it cannot.
    pub fn fits(gpu: &Gpu) -> bool {
        gpu.limits().max_storage_buffers_per_shader_stage >= STORAGE_BUFFERS
    }

    /// Records step `step` of `gather` (which must have `rows` examples).
    pub fn record(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        gather: &Gather,
        step: usize,
    ) -> Result<()> {
        self.check_step(gather, step)?;
        let [x, y, z] = self.workgroups;
        pass.set_pipeline(&self.pipeline.pipeline);
        pass.set_bind_group(
            0,
            &*self.bind_group,
            &[(step as u64 * self.step_stride) as u32],
        );
        pass.dispatch_workgroups(x, y, z);
        Ok(())
    }

    /// Records and submits step `step` (no wait, no readback).
    pub fn run(&self, gpu: &Gpu, gather: &Gather, step: usize) -> Result<()> {
        self.check_step(gather, step)?;
        super::run_repeated(gpu, "gather_matmul", 1, |pass| {
            // Checked above: recording cannot fail.
            let _ = self.record(pass, gather, step);
        })
    }
}

#[cfg(test)]
mod layout {
    use crate::kernels::mirror::check_mirror;

    #[test]
    fn params_mirrors_the_wgsl_struct() {
        check_mirror!(super::Params, &super::GATHER_MATMUL, "Params"; m, n, k, w_offset, bias_offset, c_offset, _pad0, _pad1);
    }
}
