//! Launcher for `shaders/sweep_optim.wgsl`: the optimizer updates of K
//! models (a sweep, [`crate::train::sweep`]) in one dispatch per rule
//! variant present, each model with its own hyperparameters, learning rate
//! and step count.
//!
//! The K models' parameters lie one after another in one flat buffer
//! (`[K, P]`), their gradients likewise. Consecutive models whose rules
//! share a pipeline (rule and variant: [`super::optim`]'s override
//! constants) form a group: one dispatch, one set of state buffers
//! (`[models, P]` each), one buffer of hyperparameters (one `Hyper` per
//! model) and one of step slots (each slot one [`StepScalars`] per model,
//! planned by the host per epoch with [`StepScalars::advance`], as
//! [`super::GpuOptimizer`]'s v2). The formulas are `optim.wgsl`'s own text
//! (`shaders/shared/optim_rules.wgsl`), so model k's update has the bits of a
//! one-model planned update with its configuration. The CPU twin is
//! [`crate::cpu::sweep_optim::CpuSweepOptimizer`].

use super::optim::{DEFAULT_ELEMS_PER_THREAD, Hyper, STEP_BYTES, grid, update_key};
use crate::error::{Error, Result};
use crate::gpu::{Deferred, Gpu, GpuTensor, KernelPipeline, PipelineKey};
use crate::optim::{OptimizerConfig, Plateau, StepScalars};
use std::sync::Arc;

use crate::gpu::{Binding, Shader};

// The shader file of this kernel family and its bind-group layout
// (binding i of group 0 is `bindings[i]`).
pub static SWEEP_OPTIM: Shader = Shader {
    name: "sweep_optim",
    source: concat!(
        include_str!("../../shaders/sweep_optim.wgsl"),
        include_str!("../../shaders/shared/optim_rules.wgsl")
    ),
    bindings: &[
        Binding::Uniform,     // sw: the grid and the models' sizes
        Binding::StorageRead, // hypers: one Hyper per model
        // steps: this update's StepScalars, one per model, at a per-step offset
        Binding::StorageSlot(crate::kernels::optim::STEP_BYTES),
        Binding::StorageReadWrite, // params
        Binding::StorageRead,      // grads
        Binding::StorageReadWrite, // s1
        Binding::StorageReadWrite, // s2
        Binding::StorageReadWrite, // s3
    ],
    workgroup_memory: &[],
};

/// Threads per workgroup (`@workgroup_size(256)`).
const WORKGROUP: usize = 256;

/// The uniform block of `sweep_optim.wgsl` (16 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct Sweep {
    models: u32,
    per_model: u32,
    row: u32,
    threads: u32,
}

/// The pipeline of `config`'s rule and variant in `sweep_optim.wgsl`.
fn key(config: &OptimizerConfig) -> PipelineKey {
    PipelineKey {
        shader: &SWEEP_OPTIM,
        ..update_key(&config.rule)
    }
}

/// Every pipeline this launcher can build (validated by `tests/cpu/shaders.rs`):
/// the one-model optimizer's update variants, on this shader.
pub fn specialisations() -> Vec<PipelineKey> {
    super::optim::specialisations()
        .into_iter()
        .filter(|k| k.entry != "advance")
        .map(|k| PipelineKey {
            shader: &SWEEP_OPTIM,
            ..k
        })
        .collect()
}

/// Consecutive models sharing one pipeline: one dispatch.
struct Group {
    first: usize,
    models: usize,
    pipeline: Arc<KernelPipeline>,
    bind_group: Deferred<wgpu::BindGroup>,
    slots: wgpu::Buffer,
    /// Bytes between step slots (`models` scalars, aligned for dynamic offsets).
    stride: u64,
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    state: Vec<Option<GpuTensor<f32>>>,
    workgroups: [u32; 3],
}

/// The optimizers of K models over one `[K, P]` parameter buffer.
pub struct SweepOptimizer {
    configs: Vec<OptimizerConfig>,
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    per_model: usize,
    groups: Vec<Group>,
    /// Each model's scalars of its last planned update.
    last: Vec<StepScalars>,
    plateaus: Vec<Plateau>,
    capacity: usize,
    planned: usize,
}

impl SweepOptimizer {
    /// Validates every configuration and builds, for each run of
    /// consecutive models sharing a rule variant, its state, its
    /// hyperparameters and room for `capacity` planned updates (e.g. an
    /// epoch's steps). `params` and `grads` hold `configs.len()` models of
    /// equal size, one after another, in different buffers.
    pub fn new(
        gpu: &Gpu,
        configs: &[OptimizerConfig],
        params: &GpuTensor<f32>,
        grads: &GpuTensor<f32>,
        capacity: usize,
    ) -> Result<Self> {
        const OP: &str = "sweep optimizer";
        let k = configs.len();
        if k == 0 || capacity == 0 {
            return Err(Error::InvalidArgument {
                name: "sweep optimizer",
                msg: format!(
                    "needs at least one model and one planned update, got {k} and {capacity}"
                ),
            });
        }
        for c in configs {
            c.validate()?;
        }
        let n = params.len();
        if grads.len() != n || !n.is_multiple_of(k) {
            return Err(Error::shape(
                OP,
                format!(
                    "{k} models need parameters and gradients of equal length, a multiple of {k}; got {n} and {}",
                    grads.len()
                ),
            ));
        }
        if params.buffer() == grads.buffer() {
            return Err(Error::shape(
                OP,
                "parameters and gradients share a buffer; WebGPU forbids writing a buffer that is also bound for reading",
            ));
        }
        gpu.check_storage_binding("the sweep's parameters", params.buffer().size())?;
        gpu.check_storage_binding("the sweep's gradients", grads.buffer().size())?;
        let per_model = n / k;
        let align = u64::from(gpu.limits().min_storage_buffer_offset_alignment).max(1);
        let mut groups = Vec::new();
        let mut first = 0;
        while first < k {
            let models = configs[first..]
                .iter()
                .take_while(|c| key(c) == key(&configs[first]))
                .count();
            let members = &configs[first..first + models];
            let len = models * per_model;
            gpu.check_storage_binding("a sweep optimizer state buffer", len as u64 * 4)?;
            // Per model a grid as optim.wgsl's; the models along z.
            let (mut workgroups, row) = grid(
                per_model.div_ceil(DEFAULT_ELEMS_PER_THREAD as usize),
                WORKGROUP,
                gpu.limits().max_compute_workgroups_per_dimension,
            );
            workgroups[2] = models as u32;
            gpu.check_dispatch("the sweep's update", workgroups)?;
            let threads = row.saturating_mul(workgroups[1]);
            // Each state slot the rule uses, its models' initial values in
            // turn (Adagrad's initial accumulator may differ per model).
            let state = members[0]
                .state_slots()
                .map(|name| {
                    name.map(|_| {
                        let init: Vec<f32> = members
                            .iter()
                            .flat_map(|c| std::iter::repeat_n(c.initial_state(), per_model))
                            .collect();
                        GpuTensor::from_slice(gpu, &[len], &init)
                    })
                    .transpose()
                })
                .into_iter()
                .collect::<Result<Vec<_>>>()?;
            let start = first * per_model;
            let hypers: Vec<Hyper> = members
                .iter()
                .map(|c| {
                    Hyper::new(
                        c,
                        c.lr,
                        len,
                        (row, threads),
                        params.offset() + start,
                        grads.offset() + start,
                    )
                })
                .collect();
            let hyper_buffer = gpu.buffer_init(
                "sweep hyperparameters",
                bytemuck::cast_slice(&hypers),
                wgpu::BufferUsages::STORAGE,
            )?;
            let sweep = Sweep {
                models: models as u32,
                per_model: per_model as u32,
                row,
                threads,
            };
            let uniform = super::uniform(gpu, "sweep optimizer params", &sweep)?;
            let slot_bytes = STEP_BYTES * models as u64;
            let stride = slot_bytes.div_ceil(align) * align;
            let size = stride
                .checked_mul(capacity as u64)
                .filter(|&b| b <= gpu.limits().max_buffer_size && b <= u32::MAX as u64)
                .ok_or_else(|| Error::TooLarge {
                    what: format!("step slots for {capacity} planned updates of {models} models"),
                    needed: format!("{capacity} × {stride} bytes"),
                    limit: crate::error::bytes(gpu.limits().max_buffer_size),
                    limit_name: "max_buffer_size",
                })?;
            gpu.check_storage_binding("a sweep's step slot", slot_bytes)?;
            let slots = gpu.scoped("creating the sweep's step slots", || {
                gpu.device().create_buffer(&wgpu::BufferDescriptor {
                    label: Some("sweep step slots"),
                    size,
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            })?;
            let pipeline = gpu.pipeline(&key(&members[0]))?;
            let slot = |i: usize| {
                state[i]
                    .as_ref()
                    .map_or(gpu.placeholder_rw(), |t| t.buffer())
                    .as_entire_binding()
            };
            let bind_group = gpu.bind_group_with(
                &pipeline,
                vec![
                    uniform.as_entire_binding(),
                    hyper_buffer.as_entire_binding(),
                    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: &slots,
                        offset: 0,
                        size: wgpu::BufferSize::new(slot_bytes),
                    }),
                    params.buffer().as_entire_binding(),
                    grads.buffer().as_entire_binding(),
                    slot(0),
                    slot(1),
                    slot(2),
                ],
            )?;
            groups.push(Group {
                first,
                models,
                pipeline,
                bind_group,
                slots,
                stride,
                state,
                workgroups,
            });
            first += models;
        }
        Ok(SweepOptimizer {
            configs: configs.to_vec(),
            per_model,
            groups,
            last: vec![StepScalars::initial(); k],
            plateaus: configs.iter().map(|c| Plateau::new(&c.schedule)).collect(),
            capacity,
            planned: 0,
        })
    }

    /// Computes every model's step scalars of its next `steps` updates on
    /// the host (with its plateau schedule's current rate) and writes them
    /// into slots `0..steps`, taking effect at the next submit.
    pub fn plan(&mut self, gpu: &Gpu, steps: usize) -> Result<()> {
        if steps > self.capacity {
            return Err(Error::InvalidArgument {
                name: "steps",
                msg: format!(
                    "{steps} updates do not fit the {} planned slots",
                    self.capacity
                ),
            });
        }
        for g in &self.groups {
            let mut bytes = vec![0u8; g.stride as usize * steps];
            for m in g.first..g.first + g.models {
                let cfg = self.configs[m];
                let lr = cfg.lr * self.plateaus[m].scale();
                let mut s = self.last[m];
                let at = (m - g.first) * STEP_BYTES as usize;
                for slot in bytes.chunks_exact_mut(g.stride as usize) {
                    s.advance(&cfg, lr);
                    slot[at..at + STEP_BYTES as usize].copy_from_slice(bytemuck::bytes_of(&s));
                }
                self.last[m] = s;
            }
            if steps > 0 {
                gpu.scoped("writing the sweep's step scalars", || {
                    gpu.queue().write_buffer(&g.slots, 0, &bytes)
                })?;
            }
        }
        self.planned = steps;
        Ok(())
    }

    /// Records the updates of planned slot `slot`: one dispatch per group.
    pub fn record_planned(&self, pass: &mut wgpu::ComputePass<'_>, slot: usize) -> Result<()> {
        if slot >= self.planned {
            return Err(Error::InvalidArgument {
                name: "slot",
                msg: format!("slot {slot} was not planned ({} were)", self.planned),
            });
        }
        for g in &self.groups {
            // plan() keeps capacity · stride within u32.
            pass.set_bind_group(0, &*g.bind_group, &[(slot as u64 * g.stride) as u32]);
            pass.set_pipeline(&g.pipeline.pipeline);
            let [x, y, z] = g.workgroups;
            pass.dispatch_workgroups(x, y, z);
        }
        Ok(())
    }

    /// Lets model `model`'s plateau schedule see its epoch metric (lower is
    /// better); true when its rate was reduced.
    pub fn end_epoch(&mut self, model: usize, metric: f32) -> Result<bool> {
        let plateau = self
            .plateaus
            .get_mut(model)
            .ok_or_else(|| Error::InvalidArgument {
                name: "model",
                msg: format!("no model {model} in a sweep of {}", self.configs.len()),
            })?;
        plateau.observe(metric)
    }

    /// Model `model`'s state buffers (torch's names, in
    /// [`OptimizerConfig::state_names`] order), read back (blocking; native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn state_of(&self, gpu: &Gpu, model: usize) -> Result<Vec<Vec<f32>>> {
        let g = self
            .groups
            .iter()
            .find(|g| (g.first..g.first + g.models).contains(&model))
            .ok_or_else(|| Error::InvalidArgument {
                name: "model",
                msg: format!("no model {model} in a sweep of {}", self.configs.len()),
            })?;
        let at = (model - g.first) * self.per_model;
        g.state
            .iter()
            .flatten()
            .map(|t| Ok(t.read(gpu)?[at..at + self.per_model].to_vec()))
            .collect()
    }

    /// Dispatches one update of every model records: one per group.
    pub fn dispatches(&self) -> usize {
        self.groups.len()
    }

    /// Model `model`'s step scalars of its last planned update.
    pub fn step_scalars(&self, model: usize) -> Option<StepScalars> {
        self.last.get(model).copied()
    }
}

#[cfg(test)]
mod layout {
    use crate::kernels::mirror::check_mirror;

    #[test]
    fn sweep_mirrors_the_wgsl_struct() {
        check_mirror!(super::Sweep, &super::SWEEP_OPTIM, "Sweep"; models, per_model, row, threads);
    }
}
