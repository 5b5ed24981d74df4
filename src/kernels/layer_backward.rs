//! Launcher for `shaders/layer_backward.wgsl`: a dense layer's weight and
//! bias gradients and the layer below's dZ (through its activation), the two
//! products that read the layer's dZ, in one dispatch.

use super::{Dispatch, MatmulKernel, Operand, check_operands, check_shape, fold, groups, uniform};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuTensor, PipelineKey};
use crate::shapes::Activation;

use crate::gpu::{Binding, Shader};

// The shader file of this kernel family and its bind-group layout
// (binding i of group 0 is `bindings[i]`).
pub static LAYER_BACKWARD: Shader = Shader {
    name: "layer_backward",
    source: concat!(
        include_str!("../../shaders/layer_backward.wgsl"),
        include_str!("../../shaders/shared/activation_grad.wgsl")
    ),
    bindings: &[
        Binding::Uniform,          // params
        Binding::StorageRead,      // dz
        Binding::StorageRead,      // h
        Binding::StorageRead,      // w
        Binding::StorageReadWrite, // grads (dw and db)
        Binding::StorageReadWrite, // dz_below
    ],
    workgroup_memory: &[],
};

/// The uniform block of `layer_backward.wgsl` (48 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    outs: u32,
    ins: u32,
    groups0_x: u32,
    groups0: u32,
    groups1_x: u32,
    dz_offset: u32,
    h_offset: u32,
    w_offset: u32,
    dw_offset: u32,
    db_offset: u32,
    dzb_offset: u32,
}

fn key(activation: Activation, ins: usize) -> PipelineKey {
    // Shaped as matmul's v2 for the wider job (ins + 1 columns).
    let (x, y) = MatmulKernel::V2Blocked.workgroup(ins + 1);
    PipelineKey {
        shader: &LAYER_BACKWARD,
        entry: "layer_backward",
        constants: vec![
            ("ACTIVATION", activation.shader_code()),
            ("WG_X", x as f64),
            ("WG_Y", y as f64),
        ],
    }
}

/// Every pipeline this launcher can build (validated by `tests/shaders.rs`).
pub fn specialisations() -> Vec<PipelineKey> {
    let mut keys = Vec::new();
    for activation in [Activation::Identity, Activation::Sigmoid, Activation::Relu] {
        // ins + 1 = 2, 5, 9, 17, 33 give every v2 workgroup width.
        for ins in [1, 4, 8, 16, 32] {
            keys.push(key(activation, ins));
        }
    }
    keys
}

/// One layer's backward, ready to record.
pub struct LayerBackward {
    dispatch: Dispatch,
}

impl LayerBackward {
    /// Prepares, for a layer `z = h·wᵀ + b` with output gradient `dz`
    /// (`[rows, outs]`), input `h = act(z_below)` (`[rows, ins]`) and
    /// weights `w` (`[outs, ins]`):
    ///
    /// - `dw = dzᵀ·h` (`[outs, ins]`) and `db = Σ_rows dz` (`[outs]`), both
    ///   views of one gradient buffer;
    /// - `dz_below = (dz·w) ⊙ act'(h)` (`[rows, ins]`).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        gpu: &Gpu,
        dz: &GpuTensor<f32>,
        h: &GpuTensor<f32>,
        w: &GpuTensor<f32>,
        dw: &GpuTensor<f32>,
        db: &GpuTensor<f32>,
        dz_below: &GpuTensor<f32>,
        activation: Activation,
    ) -> Result<Self> {
        const OP: &str = "layer_backward";
        let [rows, outs] = *dz.shape() else {
            return Err(Error::shape(
                OP,
                format!("dz must be 2-D, got {:?}", dz.shape()),
            ));
        };
        let ins = h.shape().get(1).copied().unwrap_or(0);
        if rows == 0 || outs == 0 || ins == 0 {
            return Err(Error::shape(OP, "every size must be at least 1"));
        }
        check_shape(OP, "h", h, &[rows, ins])?;
        check_shape(OP, "w", w, &[outs, ins])?;
        check_shape(OP, "dw", dw, &[outs, ins])?;
        check_shape(OP, "db", db, &[outs])?;
        check_shape(OP, "dz_below", dz_below, &[rows, ins])?;
        if db.buffer() != dw.buffer() {
            return Err(Error::shape(
                OP,
                "db must be a view into dw's buffer (the flat gradient buffer holds both)",
            ));
        }
        check_operands(
            gpu,
            OP,
            &[
                Operand::of("dz", dz),
                Operand::of("h", h),
                Operand::of("w", w),
            ],
            &[
                Operand::of("dw", dw),
                Operand::of("db", db),
                Operand::of("dz_below", dz_below),
            ],
        )?;
        let (wg_x, wg_y) = MatmulKernel::V2Blocked.workgroup(ins + 1);
        let (groups0_x, groups1_x) = (groups(ins + 1, 4 * wg_x), groups(ins, 4 * wg_x));
        let groups0 = groups0_x * groups(outs, 4 * wg_y);
        let groups1 = groups1_x * groups(rows, 4 * wg_y);
        let workgroups = fold(gpu, OP, u64::from(groups0) + u64::from(groups1))?;
        let params = Params {
            rows: rows as u32,
            outs: outs as u32,
            ins: ins as u32,
            groups0_x,
            groups0,
            groups1_x,
            dz_offset: dz.offset() as u32,
            h_offset: h.offset() as u32,
            w_offset: w.offset() as u32,
            dw_offset: dw.offset() as u32,
            db_offset: db.offset() as u32,
            dzb_offset: dz_below.offset() as u32,
        };
        let pipeline = gpu.pipeline(&key(activation, ins))?;
        let uniform = uniform(gpu, "layer_backward params", &params)?;
        let bind_group = gpu.bind_group(
            &pipeline,
            &[
                &uniform,
                dz.buffer(),
                h.buffer(),
                w.buffer(),
                dw.buffer(),
                dz_below.buffer(),
            ],
        )?;
        Ok(LayerBackward {
            dispatch: Dispatch::new(OP, pipeline, bind_group, workgroups),
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
}

#[cfg(test)]
mod layout {
    use crate::kernels::mirror::check_mirror;

    #[test]
    fn params_mirrors_the_wgsl_struct() {
        check_mirror!(super::Params, &super::LAYER_BACKWARD, "Params"; rows, outs, ins, groups0_x, groups0, groups1_x, dz_offset, h_offset, w_offset, dw_offset, db_offset, dzb_offset);
    }
}
