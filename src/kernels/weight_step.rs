//! Launcher for `shaders/weight_step.wgsl`: every layer's weight and bias
//! gradients (`[dW | db] = dzᵀ·[h | 1]`) in one dispatch whose workgroups
//! are tiles across the layers, and the batch's loss and correct totals.

use super::{Dispatch, Operand, check_operands, fold, uniform};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuTensor, PipelineKey};

use crate::gpu::{Binding, Shader};

// The shader file of this kernel family and its bind-group layout
// (binding i of group 0 is `bindings[i]`).
pub static WEIGHT_STEP: Shader = Shader {
    name: "weight_step",
    source: include_str!("../../shaders/weight_step.wgsl"),
    bindings: &[
        Binding::Uniform,          // params
        Binding::StorageRead,      // x: the first layer's input rows
        Binding::StorageRead,      // arena: the other inputs and every delta
        Binding::StorageReadWrite, // grads
        Binding::StorageRead,      // loss
        Binding::StorageRead,      // correct
        Binding::StorageReadWrite, // loss_total
        Binding::StorageReadWrite, // correct_total
    ],
    // The totals' 256 lanes.
    workgroup_memory: &[("weight_step", 2048)],
    // Not argued for in the table of src/kernels/mod.rs yet: checked.
    trusted: false,
};

/// Layers one dispatch covers.
pub const MAX_LAYERS: usize = 7;
/// Outputs a side of one workgroup's tile.
const TILE: usize = 32;

/// The uniform block of `weight_step.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    layers: u32,
    tiles: u32,
    loss_offset: u32,
    correct_offset: u32,
    total_offset: u32,
    count_offset: u32,
    _pad0: u32,
    layer: [[u32; 4]; 2 * MAX_LAYERS],
}

fn key() -> PipelineKey {
    PipelineKey {
        shader: &WEIGHT_STEP,
        entry: "weight_step",
        constants: vec![],
    }
}

/// Every pipeline this launcher can build (validated by `tests/shaders.rs`).
pub fn specialisations() -> Vec<PipelineKey> {
    vec![key()]
}

/// One layer's operands: its delta `dz` (`[rows, outs]`), what it read `h`
/// (`[rows, ins]`), and its gradients `dw` (`[outs, ins]`) and `db`
/// (`[outs]`), views of one gradient buffer.
pub struct WeightGradLayer<'a> {
    pub dz: &'a GpuTensor<f32>,
    pub h: &'a GpuTensor<f32>,
    pub dw: &'a GpuTensor<f32>,
    pub db: &'a GpuTensor<f32>,
}

/// Every layer's gradients and the batch totals, ready to record.
pub struct WeightStep {
    dispatch: Dispatch,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::shape("weight_step", msg.into())
}

impl WeightStep {
    /// Prepares the gradients of `layers` (the first layer's `h` is the
    /// minibatch rows, in a buffer of its own; every other `h` and every
    /// `dz` are views of one buffer, the row block's arena) and the
    /// addition of the per-row `loss` and `correct` flags to the epoch's
    /// `loss_total` and `correct_total`.
    pub fn new(
        gpu: &Gpu,
        layers: &[WeightGradLayer<'_>],
        loss: &GpuTensor<f32>,
        correct: &GpuTensor<u32>,
        loss_total: &GpuTensor<f32>,
        correct_total: &GpuTensor<u32>,
    ) -> Result<Self> {
        const OP: &str = "weight_step";
        let Some(first) = layers.first() else {
            return Err(bad("no layers"));
        };
        if layers.len() > MAX_LAYERS {
            return Err(bad(format!(
                "{} layers, at most {MAX_LAYERS}",
                layers.len()
            )));
        }
        let rows = first.dz.shape().first().copied().unwrap_or(0);
        let (x, arena) = (first.h.buffer(), first.dz.buffer());
        if x == arena {
            return Err(bad(
                "the first layer's h must lie outside the arena of the deltas",
            ));
        }
        let mut layer = [[0u32; 4]; 2 * MAX_LAYERS];
        let mut tiles = 0usize;
        let mut reads = vec![Operand::of("loss", loss), Operand::of("correct", correct)];
        let mut writes = vec![
            Operand::of("loss_total", loss_total),
            Operand::of("correct_total", correct_total),
        ];
        for (i, l) in layers.iter().enumerate() {
            let (Some(&outs), Some(&ins)) = (l.dz.shape().get(1), l.h.shape().get(1)) else {
                return Err(bad(format!("layer {i}: dz and h must be 2-D")));
            };
            if rows == 0 || ins == 0 || outs == 0 {
                return Err(bad("every size must be at least 1"));
            }
            let want = |name: &str, t: &GpuTensor<f32>, shape: &[usize]| -> Result<()> {
                if t.shape() != shape {
                    return Err(bad(format!(
                        "layer {i}: {name} must have shape {shape:?}, got {:?}",
                        t.shape()
                    )));
                }
                Ok(())
            };
            want("dz", l.dz, &[rows, outs])?;
            want("h", l.h, &[rows, ins])?;
            want("dw", l.dw, &[outs, ins])?;
            want("db", l.db, &[outs])?;
            if l.dz.buffer() != arena || (l.h.buffer() != arena && l.h.buffer() != x) {
                return Err(bad(format!(
                    "layer {i}: every dz, and every h but the first layer's, must be a view of one buffer (the arena)"
                )));
            }
            if l.dw.buffer() != first.dw.buffer() || l.db.buffer() != first.dw.buffer() {
                return Err(bad("every dw and db must be a view of one gradient buffer"));
            }
            reads.push(Operand::of("dz", l.dz));
            reads.push(Operand::of("h", l.h));
            writes.push(Operand::of("dw", l.dw));
            writes.push(Operand::of("db", l.db));
            let u = |v: usize| v as u32;
            layer[2 * i] = [
                u(ins),
                u(outs),
                u32::from(l.h.buffer() == x),
                u(l.h.offset()),
            ];
            layer[2 * i + 1] = [
                u(l.dz.offset()),
                u(l.dw.offset()),
                u(l.db.offset()),
                u(tiles),
            ];
            tiles += (ins + 1).div_ceil(TILE) * outs.div_ceil(TILE);
        }
        if loss.shape() != [rows] || correct.shape() != [rows] {
            return Err(bad(format!(
                "loss and correct must have shape [{rows}], got {:?} and {:?}",
                loss.shape(),
                correct.shape()
            )));
        }
        if loss_total.len() != 1 || correct_total.len() != 1 {
            return Err(bad("the totals are one value each"));
        }
        check_operands(gpu, OP, &reads, &writes)?;
        let params = Params {
            rows: rows as u32,
            layers: layers.len() as u32,
            tiles: tiles as u32,
            loss_offset: loss.offset() as u32,
            correct_offset: correct.offset() as u32,
            total_offset: loss_total.offset() as u32,
            count_offset: correct_total.offset() as u32,
            _pad0: 0,
            layer,
        };
        let workgroups = fold(gpu, OP, tiles as u64 + 1)?;
        let pipeline = gpu.pipeline(&key())?;
        let uniform = uniform(gpu, "weight_step params", &params)?;
        let bind_group = gpu.bind_group(
            &pipeline,
            &[
                &uniform,
                x,
                arena,
                first.dw.buffer(),
                loss.buffer(),
                correct.buffer(),
                loss_total.buffer(),
                correct_total.buffer(),
            ],
        )?;
        Ok(WeightStep {
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
        check_mirror!(super::Params, &super::WEIGHT_STEP, "Params"; rows, layers, tiles, loss_offset, correct_offset, total_offset, count_offset, _pad0, layer);
    }
}
