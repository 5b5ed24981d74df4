//! Launcher for `shaders/weight_step.wgsl`: every layer's weight and bias
//! gradients (`[dW | db] = dzᵀ·[h | 1]`) in one dispatch whose workgroups
//! are tiles across the layers, and the batch's loss and correct totals;
//! with an [`Update`], the optimizer's update of each element
//! too (`shaders/weight_step_update.wgsl`), the step's last dispatch.

use super::optim::{FusedUpdate, GpuOptimizer, STEP_BYTES};
use super::{Dispatch, Operand, check_operands, fold, uniform};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuTensor, PipelineKey};

use crate::gpu::{Binding, Shader};

/// The bindings both modules share (binding i of group 0 is `[i]`).
macro_rules! weight_step_bindings {
    ($($more:expr),*) => {
        &[
            Binding::Uniform,          // params
            Binding::StorageRead,      // x: the first layer's input rows
            Binding::StorageRead,      // arena: the other inputs and every delta
            Binding::StorageReadWrite, // grads
            Binding::StorageRead,      // loss
            Binding::StorageRead,      // correct
            Binding::StorageReadWrite, // loss_total
            Binding::StorageReadWrite, // correct_total
            $($more),*
        ]
    };
}

// The gradients alone: nothing after a tile.
pub static WEIGHT_STEP: Shader = Shader {
    name: "weight_step",
    source: concat!(
        include_str!("../../shaders/weight_step.wgsl"),
        "\nfn after_tile(a: vec4<u32>, b: vec4<u32>, r0: u32, c0: u32, lid: u32) {}\n"
    ),
    bindings: weight_step_bindings!(),
    // The totals' 256 lanes.
    workgroup_memory: &[("weight_step", 2048)],
    // Not argued for in the table of src/kernels/mod.rs yet: checked.
    trusted: false,
};

// The gradients and the optimizer's update (optim.wgsl's formulas).
pub static WEIGHT_STEP_UPDATE: Shader = Shader {
    name: "weight_step_update",
    source: concat!(
        include_str!("../../shaders/weight_step.wgsl"),
        include_str!("../../shaders/weight_step_update.wgsl"),
        include_str!("../../shaders/shared/optim_rules.wgsl")
    ),
    bindings: weight_step_bindings!(
        Binding::Uniform,                 // h: the optimizer's hyperparameters
        Binding::StorageSlot(STEP_BYTES), // st: step scalars, at the step's offset
        Binding::StorageReadWrite,        // params
        Binding::StorageReadWrite,        // s1
        Binding::StorageReadWrite,        // s2
        Binding::StorageReadWrite         // s3
    ),
    workgroup_memory: &[("weight_step", 2048)],
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

fn update_key(constants: Vec<(&'static str, f64)>) -> PipelineKey {
    PipelineKey {
        shader: &WEIGHT_STEP_UPDATE,
        entry: "weight_step",
        constants,
    }
}

/// Every pipeline this launcher can build (validated by `tests/shaders.rs`):
/// the plain one, and one with each update rule `optim.wgsl` specialises.
pub fn specialisations() -> Vec<PipelineKey> {
    let mut keys = vec![key()];
    // Every update specialisation (planned steps have no `advance`).
    keys.extend(
        super::optim::specialisations()
            .into_iter()
            .filter_map(super::optim::fused_constants)
            .map(update_key),
    );
    keys
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

/// The optimizer whose update the weight tiles apply ([`WeightStep::new`]),
/// over its parameters.
pub struct Update<'a> {
    pub params: &'a GpuTensor<f32>,
    pub optimizer: &'a GpuOptimizer,
}

/// Every layer's gradients and the batch totals, ready to record; with
/// the update, the step slots' stride and how many there are.
pub struct WeightStep {
    dispatch: Dispatch,
    update: Option<(u64, usize)>,
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
    ///
    /// With `update`, each gradient element is then updated in place by
    /// its optimizer (which must plan its steps:
    /// [`GpuOptimizer::with_planned_steps`]) over its `params`, whose
    /// gradients the layers' `dw` and `db` must cover exactly: the
    /// optimizer's own dispatch is then not recorded at all. Record step `s`
    /// of an epoch with [`WeightStep::record_step`] after
    /// [`GpuOptimizer::plan`]; the bits are those of the separate update.
    /// Only where [`WeightStep::fuses_update`].
    pub fn new(
        gpu: &Gpu,
        layers: &[WeightGradLayer<'_>],
        loss: &GpuTensor<f32>,
        correct: &GpuTensor<u32>,
        loss_total: &GpuTensor<f32>,
        correct_total: &GpuTensor<u32>,
        update: Option<Update<'_>>,
    ) -> Result<Self> {
        let update = match update {
            None => None,
            Some(u) => match u.optimizer.fused_update() {
                Some(f) => Some((u.params, f)),
                None => {
                    return Err(bad(
                        "the update needs an optimizer with planned steps (GpuOptimizer::with_planned_steps)",
                    ));
                }
            },
        };
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
        if let Some((params, u)) = &update {
            check_covers(layers, params, u)?;
            writes.push(Operand::of("params", params));
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
        let uniform = uniform(gpu, "weight_step params", &params)?;
        let mut resources: Vec<wgpu::BindingResource<'_>> = [
            &*uniform,
            x,
            arena,
            first.dw.buffer(),
            loss.buffer(),
            correct.buffer(),
            loss_total.buffer(),
            correct_total.buffer(),
        ]
        .iter()
        .map(|b| b.as_entire_binding())
        .collect();
        let (pipeline, slots) = match update {
            None => (gpu.pipeline(&key())?, None),
            Some((params, u)) => {
                // Past the device's storage buffers, Gpu::pipeline below
                // refuses it as TooLarge naming the limit.
                resources.push(u.uniform.as_entire_binding());
                resources.push(wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: u.slots,
                    offset: 0,
                    size: wgpu::BufferSize::new(STEP_BYTES),
                }));
                resources.push(params.buffer().as_entire_binding());
                for s in u.state {
                    // Unused slots: bind_group_with gives each a placeholder.
                    resources.push(s.map_or(gpu.placeholder_rw(), |b| b).as_entire_binding());
                }
                (
                    gpu.pipeline(&update_key(u.constants))?,
                    Some((u.stride, u.capacity)),
                )
            }
        };
        let bind_group = gpu.bind_group_with(&pipeline, resources)?;
        Ok(WeightStep {
            dispatch: Dispatch::new(OP, pipeline, bind_group, workgroups),
            update: slots,
        })
    }

    /// Whether `gpu` can bind what the weight tiles with the update bind:
    /// [`WEIGHT_STEP_UPDATE`]'s 12 storage buffers in one stage, more than
    /// WebGPU's default 8. Where it cannot, the engine records the
    /// optimizer's own dispatch instead.
    pub fn fuses_update(gpu: &Gpu) -> bool {
        gpu.limits().max_storage_buffers_per_shader_stage >= WEIGHT_STEP_UPDATE.storage_buffers()
    }

    /// Whether the optimizer's update is part of this dispatch.
    pub fn updates(&self) -> bool {
        self.update.is_some()
    }

    /// Records the dispatch into an open compute pass (without the update:
    /// see [`WeightStep::record_step`]).
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        self.dispatch.record(pass);
    }

    /// Records step `step` of the epoch: with the update, it reads that
    /// step's planned slot.
    pub fn record_step(&self, pass: &mut wgpu::ComputePass<'_>, step: usize) -> Result<()> {
        match self.update {
            None => self.dispatch.record(pass),
            Some((stride, capacity)) => {
                if step >= capacity {
                    return Err(Error::InvalidArgument {
                        name: "step",
                        msg: format!("step {step} has no slot ({capacity} were made)"),
                    });
                }
                // The optimizer keeps capacity · stride within u32.
                self.dispatch
                    .record_with_offsets(pass, &[(step as u64 * stride) as u32]);
            }
        }
        Ok(())
    }

    /// Records `repeats` dispatches in one pass and submits them.
    pub fn run(&self, gpu: &Gpu, repeats: usize) -> Result<()> {
        self.dispatch.run(gpu, repeats)
    }
}

/// Checks that the layers' `dw` and `db` tile the optimizer's gradients
/// exactly (each element updated once, none left out) and that `params`
/// is the optimizer's.
fn check_covers(
    layers: &[WeightGradLayer<'_>],
    params: &GpuTensor<f32>,
    u: &FusedUpdate<'_>,
) -> Result<()> {
    if params.offset() != u.param_offset || params.len() != u.n {
        return Err(bad(format!(
            "params (offset {}, {} elements) are not the optimizer's (offset {}, {})",
            params.offset(),
            params.len(),
            u.param_offset,
            u.n
        )));
    }
    let mut ranges: Vec<(usize, usize)> = layers
        .iter()
        .flat_map(|l| [l.dw, l.db])
        .map(|t| (t.offset(), t.offset() + t.len()))
        .collect();
    ranges.sort_unstable();
    let mut next = u.grad_offset;
    for (start, end) in ranges {
        if start != next {
            return Err(bad(format!(
                "the layers' gradients must cover the optimizer's {} exactly: element {next} is {}",
                u.n,
                if start > next {
                    "left out"
                } else {
                    "covered twice"
                }
            )));
        }
        next = end;
    }
    if next != u.grad_offset + u.n {
        return Err(bad(format!(
            "the layers' gradients cover {} of the optimizer's {} elements",
            next - u.grad_offset,
            u.n
        )));
    }
    Ok(())
}

#[cfg(test)]
mod layout {
    use crate::kernels::mirror::check_mirror;

    #[test]
    fn params_mirrors_the_wgsl_struct() {
        check_mirror!(super::Params, &super::WEIGHT_STEP, "Params"; rows, layers, tiles, loss_offset, correct_offset, total_offset, count_offset, _pad0, layer);
    }
}
