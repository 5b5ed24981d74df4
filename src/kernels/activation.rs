//! Launcher for `shaders/activation.wgsl`: `dZ = dH ⊙ act'(z)` from the
//! stored activations. When the layer has a bias, prefer
//! [`super::activation_bias_backward`], which also sums the bias gradient in
//! the same pass.

use super::{Dispatch, Operand, check_operands, check_shape, fold, uniform};
use crate::error::Result;
use crate::gpu::{Gpu, GpuTensor, PipelineKey};
use crate::shapes::{Activation, check_same_shape};

use crate::gpu::{Binding, Shader};

// The shader file of this kernel family and its bind-group layout
// (binding i of group 0 is `bindings[i]`).
pub static ACTIVATION: Shader = Shader {
    name: "activation",
    source: concat!(
        include_str!("../../shaders/activation.wgsl"),
        include_str!("../../shaders/shared/activation_grad.wgsl")
    ),
    bindings: &[
        Binding::Uniform,          // params
        Binding::StorageRead,      // dh
        Binding::StorageRead,      // h
        Binding::StorageReadWrite, // dz
    ],
    workgroup_memory: &[],
};

const PER_GROUP: usize = 256;

/// The uniform block of `activation.wgsl` (16 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    len: u32,
    dh_offset: u32,
    h_offset: u32,
    dz_offset: u32,
}

fn key(activation: Activation) -> PipelineKey {
    PipelineKey {
        shader: &ACTIVATION,
        entry: "activation_backward",
        constants: vec![("ACTIVATION", activation.shader_code())],
    }
}

/// Every pipeline this launcher can build (validated by `tests/cpu/shaders.rs`).
pub fn specialisations() -> Vec<PipelineKey> {
    [Activation::Identity, Activation::Sigmoid, Activation::Relu]
        .into_iter()
        .map(key)
        .collect()
}

/// One activation backward, ready to record.
pub struct ActivationBackward {
    dispatch: Dispatch,
    len: usize,
}

impl ActivationBackward {
    /// Prepares `dz = dh ⊙ act'(z)` from `h = act(z)`: sigmoid `dh·h(1 − h)`,
    /// ReLU `dh·[h > 0]`. All three tensors have one shape; `dz` must not
    /// share a buffer with `dh` or `h`.
    pub fn new(
        gpu: &Gpu,
        dh: &GpuTensor<f32>,
        h: &GpuTensor<f32>,
        dz: &GpuTensor<f32>,
        activation: Activation,
    ) -> Result<Self> {
        const OP: &str = "activation_backward";
        check_same_shape(OP, "dH", dh.shape(), "h", h.shape())?;
        check_shape(OP, "dZ", dz, dh.shape())?;
        check_operands(
            gpu,
            OP,
            &[Operand::of("dH", dh), Operand::of("h", h)],
            &[Operand::of("dZ", dz)],
        )?;
        let workgroups = fold(gpu, OP, dh.len().div_ceil(PER_GROUP) as u64)?;
        let params = Params {
            len: dh.len() as u32,
            dh_offset: dh.offset() as u32,
            h_offset: h.offset() as u32,
            dz_offset: dz.offset() as u32,
        };
        let pipeline = gpu.pipeline(&key(activation))?;
        let uniform = uniform(gpu, "activation params", &params)?;
        let bind_group =
            gpu.bind_group(&pipeline, &[&uniform, dh.buffer(), h.buffer(), dz.buffer()])?;
        Ok(ActivationBackward {
            dispatch: Dispatch::new(OP, pipeline, bind_group, workgroups),
            len: dh.len(),
        })
    }

    /// Records the dispatch into an open compute pass.
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        self.dispatch.record(pass);
    }

    /// Records `repeats` dispatches in one pass and submits them.
    pub fn run(&self, gpu: &Gpu, repeats: usize) -> Result<()> {
        self.dispatch.run(gpu, repeats)
    }

    /// Bytes one dispatch moves: dH and h in, dZ out.
    pub fn bytes(&self) -> u64 {
        12 * self.len as u64
    }
}

/// `dz` into a new tensor. The GPU twin of [`crate::cpu::activation_backward`].
pub fn activation_backward(
    gpu: &Gpu,
    dh: &GpuTensor<f32>,
    h: &GpuTensor<f32>,
    activation: Activation,
) -> Result<GpuTensor<f32>> {
    check_same_shape("activation_backward", "dH", dh.shape(), "h", h.shape())?;
    let dz = GpuTensor::zeros(gpu, dh.shape())?;
    ActivationBackward::new(gpu, dh, h, &dz, activation)?.run(gpu, 1)?;
    Ok(dz)
}

#[cfg(test)]
mod layout {
    use crate::kernels::mirror::check_mirror;

    #[test]
    fn params_mirrors_the_wgsl_struct() {
        check_mirror!(super::Params, &super::ACTIVATION, "Params"; len, dh_offset, h_offset, dz_offset);
    }
}
