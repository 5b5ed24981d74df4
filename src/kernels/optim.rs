//! Launcher for `shaders/optim.wgsl`: one fused update of every parameter of
//! a model per step, for any rule of [`crate::optim`].
//!
//! A [`GpuOptimizer`] owns the rule's state buffers (momentum, accumulators,
//! Adam's moments) and the per-update scalars ([`StepScalars`]: t, the
//! scheduled lr, βᵗ, bias corrections), which come from one of two places:
//!
//! - v1 ([`GpuOptimizer::new`]): a 48-byte step buffer that the GPU itself
//!   advances, so a step records two dispatches — `advance` (one thread:
//!   t ← t + 1, scheduled lr, bias corrections) and the rule's update (one
//!   thread per parameter). Nothing is planned ahead: record as many steps
//!   as you like into one encoder.
//! - v2 ([`GpuOptimizer::with_planned_steps`]): the host, which knows every
//!   step's index when it records it, computes the scalars of the next
//!   updates with [`StepScalars::advance`] — the very code the CPU twin
//!   runs, so the scalars are the twin's bits — and writes them into
//!   per-step slots of one buffer ([`GpuOptimizer::plan`]); each update
//!   reads its slot at a dynamic offset. One dispatch per step, and the
//!   update kernels are the same.
//!
//! ```no_run
//! # use wgpu_train::{Gpu, GpuTensor, kernels::optim::GpuOptimizer, optim::OptimizerConfig};
//! # fn main() -> wgpu_train::Result<()> {
//! let gpu = Gpu::new()?;
//! let params = GpuTensor::from_slice(&gpu, &[4], &[1.0, 2.0, 3.0, 4.0])?;
//! let grads = GpuTensor::from_slice(&gpu, &[4], &[0.5, -0.5, 0.0, 1.0])?;
//! let opt = GpuOptimizer::new(&gpu, OptimizerConfig::adam(), &params, &grads)?;
//! opt.run(&gpu, 10)?; // ten Adam steps, one submit, no readback
//! println!("{:?} after t = {}", params.read(&gpu)?, opt.step_scalars(&gpu)?.t);
//! # Ok(()) }
//! ```

use crate::error::{Error, Result};
use crate::gpu::{Deferred, Gpu, GpuTensor, KernelPipeline, PipelineKey};
use crate::optim::{
    AdamVariant, OptimizerConfig, Plateau, RmsPropVariant, Rule, ScalarHyper, Schedule, StepScalars,
};
use std::sync::Arc;

use crate::gpu::{Binding, Shader};

// The shader file of this kernel family and its bind-group layout
// (binding i of group 0 is `bindings[i]`).
pub static OPTIM: Shader = Shader {
    name: "optim",
    source: concat!(
        include_str!("../../shaders/optim.wgsl"),
        include_str!("../../shaders/shared/optim_rules.wgsl")
    ),
    bindings: &[
        Binding::Uniform,                 // h: hyperparameters
        Binding::StorageSlot(STEP_BYTES), // st: step scalars, at a per-step offset
        Binding::StorageReadWrite,        // params
        Binding::StorageRead,             // grads
        Binding::StorageReadWrite,        // s1: first state buffer
        Binding::StorageReadWrite,        // s2
        Binding::StorageReadWrite,        // s3
    ],
    workgroup_memory: &[],
    trusted: true,
};

/// Threads per workgroup of the update kernels (`@workgroup_size(256)`).
const WORKGROUP: usize = 256;

/// Elements each thread of the update's grid-stride loop handles, by
/// default. On lavapipe 4 ran about twice as fast as 1 (fewer workgroups);
/// see BENCHMARKS.md.
pub const DEFAULT_ELEMS_PER_THREAD: u32 = 4;

/// The optimizer's elements per thread the tuner chooses between.
pub const OPTIMIZER_ELEMS: [u32; 5] = [1, 2, 4, 8, 16];

/// The tuner's key of one optimizer ([`crate::gpu::TuneRecord`]): the rule
/// and the parameter count.
pub fn tune_key(config: &OptimizerConfig, n: usize) -> String {
    format!("optimizer {} {n}", config.name())
}

/// The recorded name of an elements-per-thread choice.
pub fn elems_name(elems: u32) -> &'static str {
    match elems {
        1 => "elems_1",
        2 => "elems_2",
        4 => "elems_4",
        8 => "elems_8",
        16 => "elems_16",
        _ => "elems_other",
    }
}

/// The choice called `name` ([`elems_name`]), if any.
pub fn elems_named(name: &str) -> Option<u32> {
    OPTIMIZER_ELEMS.into_iter().find(|&e| elems_name(e) == name)
}

/// The elements per thread recorded for `config` over `n` parameters, else
/// [`DEFAULT_ELEMS_PER_THREAD`].
fn recorded_elems(gpu: &Gpu, config: &OptimizerConfig, n: usize) -> u32 {
    super::recorded(
        gpu,
        tune_key(config, n),
        DEFAULT_ELEMS_PER_THREAD,
        elems_name,
        elems_named,
        // Every size builds and gives the same bits.
        &|_| Ok(()),
    )
}

/// The uniform block of `optim.wgsl` (80 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Hyper {
    n: u32,
    row: u32,
    param_offset: u32,
    grad_offset: u32,
    lr: f32,
    weight_decay: f32,
    momentum: f32,
    dampening: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    lr_decay: f32,
    step_size: u32,
    gamma: f32,
    t_max: u32,
    eta_min: f32,
    alpha: f32,
    threads: u32,
    _pad: [u32; 2],
}

impl Hyper {
    pub(crate) fn new(
        cfg: &OptimizerConfig,
        lr: f32,
        n: usize,
        (row, threads): (u32, u32),
        params: usize,
        grads: usize,
    ) -> Self {
        let s = ScalarHyper::of(cfg, lr);
        let (momentum, dampening, alpha, eps) = match cfg.rule {
            Rule::Sgd(r) => (r.momentum, r.dampening, 0.0, 0.0),
            Rule::Adagrad(r) => (0.0, 0.0, 0.0, r.eps),
            Rule::RmsProp(r) => (r.momentum, 0.0, r.alpha, r.eps),
            Rule::Adam(r) => (0.0, 0.0, 0.0, r.eps),
        };
        // Tensors hold at most u32::MAX elements (GpuTensor::zeros checks).
        Hyper {
            n: n as u32,
            row,
            param_offset: params as u32,
            grad_offset: grads as u32,
            lr: s.lr,
            weight_decay: s.weight_decay,
            momentum,
            dampening,
            beta1: s.beta1,
            beta2: s.beta2,
            eps,
            lr_decay: s.lr_decay,
            step_size: s.step_size,
            gamma: s.gamma,
            t_max: s.t_max,
            eta_min: s.eta_min,
            alpha,
            threads,
            _pad: [0; 2],
        }
    }
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

fn schedule_code(s: &Schedule) -> f64 {
    match s {
        Schedule::Constant | Schedule::ReduceOnPlateau { .. } => 0.0,
        Schedule::StepDecay { .. } => 1.0,
        Schedule::Cosine { .. } => 2.0,
    }
}

fn advance_key(schedule: &Schedule) -> PipelineKey {
    PipelineKey {
        shader: &OPTIM,
        entry: "advance",
        constants: vec![("SCHEDULE", schedule_code(schedule))],
    }
}

pub(crate) fn update_key(rule: &Rule) -> PipelineKey {
    let (entry, constants) = match *rule {
        Rule::Sgd(r) => (
            "sgd",
            vec![
                ("MOMENTUM", flag(r.momentum > 0.0)),
                ("NESTEROV", flag(r.nesterov)),
            ],
        ),
        Rule::Adagrad(_) => ("adagrad", vec![]),
        Rule::RmsProp(r) => (
            "rmsprop",
            vec![
                ("MOMENTUM", flag(r.momentum > 0.0)),
                ("CENTERED", flag(r.centered)),
                ("KERAS", flag(r.variant == RmsPropVariant::Keras)),
            ],
        ),
        Rule::Adam(r) => (
            "adam",
            vec![
                ("AMSGRAD", flag(r.amsgrad)),
                ("DECOUPLED", flag(r.decoupled_weight_decay)),
                ("KERAS", flag(r.variant == AdamVariant::Keras)),
            ],
        ),
    };
    PipelineKey {
        shader: &OPTIM,
        entry,
        constants,
    }
}

/// An update kernel's override constants as a kernel that applies the
/// update itself takes them: the variant's, and `RULE`, the number
/// `weight_step_update.wgsl` dispatches on. `None` for `advance`.
pub(crate) fn fused_constants(key: PipelineKey) -> Option<Vec<(&'static str, f64)>> {
    let rule = match key.entry {
        "sgd" => 0.0,
        "adagrad" => 1.0,
        "rmsprop" => 2.0,
        "adam" => 3.0,
        _ => return None,
    };
    let mut constants = key.constants;
    constants.push(("RULE", rule));
    Some(constants)
}

/// Every pipeline this launcher can build (validated by `tests/cpu/shaders.rs`).
pub fn specialisations() -> Vec<PipelineKey> {
    let mut keys: Vec<PipelineKey> = [
        Schedule::Constant,
        Schedule::StepDecay {
            step_size: 1,
            gamma: 0.5,
        },
        Schedule::Cosine {
            t_max: 1,
            eta_min: 0.0,
        },
    ]
    .iter()
    .map(advance_key)
    .collect();
    let mut rules: Vec<Rule> = vec![
        crate::optim::Sgd::default().into(),
        crate::optim::Sgd::momentum(0.9).into(),
        crate::optim::Sgd::nesterov(0.9).into(),
        crate::optim::Adagrad::default().into(),
    ];
    for momentum in [0.0, 0.9] {
        for centered in [false, true] {
            for variant in [RmsPropVariant::Torch, RmsPropVariant::Keras] {
                rules.push(
                    crate::optim::RmsProp {
                        momentum,
                        centered,
                        variant,
                        ..Default::default()
                    }
                    .into(),
                );
            }
        }
    }
    for amsgrad in [false, true] {
        for decoupled_weight_decay in [false, true] {
            for variant in [AdamVariant::Torch, AdamVariant::Keras] {
                rules.push(
                    crate::optim::Adam {
                        amsgrad,
                        decoupled_weight_decay,
                        variant,
                        ..Default::default()
                    }
                    .into(),
                );
            }
        }
    }
    keys.extend(rules.iter().map(update_key));
    keys
}

/// Workgroup counts covering `n` threads, `per_group` per workgroup, with at
/// most `max` workgroups per dimension, and the threads per grid row
/// (`row`): thread (x, y) handles element `y·row + x`. A 1-D grid when it
/// fits, else as many rows as needed.
pub(crate) fn grid(n: usize, per_group: usize, max: u32) -> ([u32; 3], u32) {
    let groups = n.div_ceil(per_group).max(1);
    let max = max.max(1) as usize;
    let y = groups.div_ceil(max);
    let x = groups.div_ceil(y);
    ([x as u32, y as u32, 1], (x * per_group) as u32)
}

/// Where each update's [`StepScalars`] come from.
enum Steps {
    /// v1: one step buffer, rewritten on the GPU by `advance` each step.
    Advance(GpuTensor<u32>),
    /// v2: `capacity` slots `stride` bytes apart, written by [`GpuOptimizer::plan`];
    /// `last` holds the scalars of the last planned update, `planned` how many
    /// slots the last plan filled.
    Planned {
        slots: wgpu::Buffer,
        stride: u64,
        capacity: usize,
        planned: usize,
        last: StepScalars,
    },
}

/// A planned optimizer's update as another kernel binds it
/// ([`GpuOptimizer::fused_update`]): the rule's specialisation, the
/// hyperparameters' uniform, the step slots and the state buffers s1–s3.
pub(crate) struct FusedUpdate<'a> {
    /// `optim.wgsl`'s override constants for the rule, and `RULE`.
    pub constants: Vec<(&'static str, f64)>,
    pub uniform: &'a wgpu::Buffer,
    pub slots: &'a wgpu::Buffer,
    /// Bytes between two steps' slots (the dynamic offset of step `s` is `s · stride`).
    pub stride: u64,
    /// Slots in all: the steps an epoch can plan.
    pub capacity: usize,
    pub state: [Option<&'a wgpu::Buffer>; 3],
    /// Parameters updated, from `param_offset` of the parameters' buffer
    /// and `grad_offset` of the gradients'.
    pub n: usize,
    pub param_offset: usize,
    pub grad_offset: usize,
}

/// A fused optimizer over one flat parameter tensor and its gradient.
pub struct GpuOptimizer {
    config: OptimizerConfig,
    n: usize,
    advance: Arc<KernelPipeline>,
    update: Arc<KernelPipeline>,
    bind_group: Deferred<wgpu::BindGroup>,
    uniform: Deferred<wgpu::Buffer>,
    hyper: Hyper,
    steps: Steps,
    state: Vec<GpuTensor<f32>>,
    workgroups: [u32; 3],
    plateau: Plateau,
}

impl GpuOptimizer {
    /// Validates `config`, allocates the rule's state (zeros, or Adagrad's
    /// initial accumulator value) and builds pipelines and the bind group.
    /// Elements per thread: the choice recorded on this device
    /// ([`Gpu::tune_record`]: pinned, cached, or measured by
    /// [`crate::tune::optimizer`]; every choice gives the same bits), else
    /// [`DEFAULT_ELEMS_PER_THREAD`].
    /// `params` and `grads` may be views (e.g. one flat buffer per model)
    /// and must hold the same number of elements in different buffers.
    pub fn new(
        gpu: &Gpu,
        config: OptimizerConfig,
        params: &GpuTensor<f32>,
        grads: &GpuTensor<f32>,
    ) -> Result<Self> {
        let elems = recorded_elems(gpu, &config, params.len());
        Self::with_elems_per_thread(gpu, config, params, grads, elems)
    }

    /// [`GpuOptimizer::new`] with a grid sized for about `elems_per_thread`
    /// elements per thread (≥ 1; 1 is one element per thread). Every size
    /// computes the same bits; only the speed differs.
    pub fn with_elems_per_thread(
        gpu: &Gpu,
        config: OptimizerConfig,
        params: &GpuTensor<f32>,
        grads: &GpuTensor<f32>,
        elems_per_thread: u32,
    ) -> Result<Self> {
        Self::build(gpu, config, params, grads, elems_per_thread, None)
    }

    /// v2: an optimizer whose updates read host-planned step scalars, room
    /// for `capacity` updates per plan (e.g. the steps of an epoch). Record
    /// with [`GpuOptimizer::record_planned`] after [`GpuOptimizer::plan`].
    pub fn with_planned_steps(
        gpu: &Gpu,
        config: OptimizerConfig,
        params: &GpuTensor<f32>,
        grads: &GpuTensor<f32>,
        capacity: usize,
    ) -> Result<Self> {
        if capacity == 0 {
            return Err(Error::InvalidArgument {
                name: "capacity",
                msg: "must be at least 1, got 0".into(),
            });
        }
        let elems = recorded_elems(gpu, &config, params.len());
        Self::build(gpu, config, params, grads, elems, Some(capacity))
    }

    fn build(
        gpu: &Gpu,
        config: OptimizerConfig,
        params: &GpuTensor<f32>,
        grads: &GpuTensor<f32>,
        elems_per_thread: u32,
        planned: Option<usize>,
    ) -> Result<Self> {
        config.validate()?;
        if elems_per_thread == 0 {
            return Err(Error::InvalidArgument {
                name: "elems_per_thread",
                msg: "must be at least 1, got 0".into(),
            });
        }
        let n = params.len();
        if grads.len() != n {
            return Err(Error::shape(
                "optimizer",
                format!(
                    "gradients hold {} elements but parameters hold {n}",
                    grads.len()
                ),
            ));
        }
        if params.buffer() == grads.buffer() {
            return Err(Error::shape(
                "optimizer",
                "parameters and gradients share a buffer; WebGPU forbids writing a buffer that is also bound for reading",
            ));
        }
        gpu.check_storage_binding("the optimizer's parameters", params.buffer().size())?;
        gpu.check_storage_binding("the optimizer's gradients", grads.buffer().size())?;
        gpu.check_storage_binding("an optimizer state buffer", n as u64 * 4)?;
        let (workgroups, row) = grid(
            n.div_ceil(elems_per_thread as usize),
            WORKGROUP,
            gpu.limits().max_compute_workgroups_per_dimension,
        );
        gpu.check_dispatch(&format!("the {} update", config.name()), workgroups)?;

        // Each state buffer goes to its fixed slot s1/s2/s3 of the shader.
        let slots = config
            .state_slots()
            .map(|name| {
                name.map(|_| {
                    let t = GpuTensor::<f32>::zeros(gpu, &[n])?;
                    if config.initial_state() != 0.0 {
                        t.fill(gpu, config.initial_state())?;
                    }
                    Ok(t)
                })
                .transpose()
            })
            .into_iter()
            .collect::<Result<Vec<_>>>()?;
        let steps = match planned {
            None => Steps::Advance(GpuTensor::<u32>::from_slice(
                gpu,
                &[STEP_WORDS],
                bytemuck::cast_slice(&[StepScalars::initial()]),
            )?),
            Some(capacity) => {
                let align = u64::from(gpu.limits().min_storage_buffer_offset_alignment).max(1);
                let stride = STEP_BYTES.div_ceil(align) * align;
                let size = stride
                    .checked_mul(capacity as u64)
                    .filter(|&b| b <= gpu.limits().max_buffer_size && b / stride <= u32::MAX as u64)
                    .ok_or_else(|| Error::TooLarge {
                        what: format!("step slots for {capacity} planned updates"),
                        needed: format!("{capacity} × {stride} bytes"),
                        limit: crate::error::bytes(gpu.limits().max_buffer_size),
                        limit_name: "max_buffer_size",
                    })?;
                let slots = gpu.scoped("creating the optimizer's step slots", || {
                    gpu.device().create_buffer(&wgpu::BufferDescriptor {
                        label: Some("optim step slots"),
                        size,
                        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                        mapped_at_creation: false,
                    })
                })?;
                Steps::Planned {
                    slots,
                    stride,
                    capacity,
                    planned: 0,
                    last: StepScalars::initial(),
                }
            }
        };
        // At most n + 256·65,535 threads, which fits u32 for any n we accept.
        let threads = row.saturating_mul(workgroups[1]);
        let hyper = Hyper::new(
            &config,
            config.lr,
            n,
            (row, threads),
            params.offset(),
            grads.offset(),
        );
        let uniform = gpu.buffer_init(
            "optimizer uniforms",
            bytemuck::bytes_of(&hyper),
            wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        )?;
        let advance = gpu.pipeline(&advance_key(&config.schedule))?;
        let update = gpu.pipeline(&update_key(&config.rule))?;
        let slot = |k: usize| {
            slots[k]
                .as_ref()
                .map_or(gpu.placeholder(), |t| t.buffer())
                .as_entire_binding()
        };
        let step_buffer = match &steps {
            Steps::Advance(t) => t.buffer(),
            Steps::Planned { slots, .. } => slots,
        };
        let bind_group = gpu.bind_group_with(
            &update,
            vec![
                uniform.as_entire_binding(),
                wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: step_buffer,
                    offset: 0,
                    size: wgpu::BufferSize::new(STEP_BYTES),
                }),
                params.buffer().as_entire_binding(),
                grads.buffer().as_entire_binding(),
                slot(0),
                slot(1),
                slot(2),
            ],
        )?;
        let state = slots.into_iter().flatten().collect();
        Ok(GpuOptimizer {
            config,
            n,
            advance,
            update,
            bind_group,
            uniform,
            hyper,
            steps,
            state,
            workgroups,
            plateau: Plateau::new(&config.schedule),
        })
    }

    /// Records one optimizer step into an open compute pass: v1's two
    /// dispatches (`advance`, then the update). Call it after the dispatches
    /// that write the gradients. A v2 optimizer (planned steps) records
    /// nothing here: use [`GpuOptimizer::record_planned`].
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        if !matches!(self.steps, Steps::Advance(_)) {
            return;
        }
        pass.set_bind_group(0, &*self.bind_group, &[0]);
        pass.set_pipeline(&self.advance.pipeline);
        pass.dispatch_workgroups(1, 1, 1);
        pass.set_pipeline(&self.update.pipeline);
        let [x, y, z] = self.workgroups;
        pass.dispatch_workgroups(x, y, z);
    }

    /// v2: computes the step scalars of the next `steps` updates on the host
    /// (as the CPU twin does, with the plateau schedule's current rate) and
    /// writes them into slots `0..steps`, taking effect at the next submit.
    /// Slot `i` then holds update `t + i + 1`, `t` being the updates planned
    /// before. Plan only after the previous plan's steps were submitted.
    pub fn plan(&mut self, gpu: &Gpu, steps: usize) -> Result<()> {
        let lr = self.config.lr * self.plateau.scale();
        let config = self.config;
        let Steps::Planned {
            slots,
            stride,
            capacity,
            planned,
            last,
        } = &mut self.steps
        else {
            return Err(Error::InvalidArgument {
                name: "plan",
                msg: "this optimizer advances its own step on the GPU (v1)".into(),
            });
        };
        if steps > *capacity {
            return Err(Error::InvalidArgument {
                name: "steps",
                msg: format!("{steps} updates do not fit the {capacity} planned slots"),
            });
        }
        let mut bytes = vec![0u8; *stride as usize * steps];
        let mut s = *last;
        for slot in bytes.chunks_exact_mut(*stride as usize) {
            s.advance(&config, lr);
            slot[..STEP_BYTES as usize].copy_from_slice(bytemuck::bytes_of(&s));
        }
        if steps > 0 {
            gpu.scoped("writing the planned step scalars", || {
                gpu.queue().write_buffer(slots, 0, &bytes)
            })?;
        }
        *last = s;
        *planned = steps;
        Ok(())
    }

    /// v2: records the update of planned slot `slot` (one dispatch).
    pub fn record_planned(&self, pass: &mut wgpu::ComputePass<'_>, slot: usize) -> Result<()> {
        let Steps::Planned {
            stride, planned, ..
        } = self.steps
        else {
            return Err(Error::InvalidArgument {
                name: "record_planned",
                msg: "this optimizer advances its own step on the GPU (v1): use record".into(),
            });
        };
        if slot >= planned {
            return Err(Error::InvalidArgument {
                name: "slot",
                msg: format!("slot {slot} was not planned ({planned} were)"),
            });
        }
        // plan() keeps capacity · stride within u32.
        pass.set_bind_group(0, &*self.bind_group, &[(slot as u64 * stride) as u32]);
        pass.set_pipeline(&self.update.pipeline);
        let [x, y, z] = self.workgroups;
        pass.dispatch_workgroups(x, y, z);
        Ok(())
    }

    /// What a kernel that applies this update itself binds (the weight
    /// tiles of the three-dispatch step, [`super::WeightStep`]): `None`
    /// unless the step scalars are planned (v2), since the update must then
    /// read step `s`'s slot.
    pub(crate) fn fused_update(&self) -> Option<FusedUpdate<'_>> {
        let Steps::Planned {
            slots,
            stride,
            capacity,
            ..
        } = &self.steps
        else {
            return None;
        };
        let constants = fused_constants(update_key(&self.config.rule))?;
        let mut state = self.state.iter();
        let slot_buffers = self
            .config
            .state_slots()
            .map(|name| name.and_then(|_| state.next()).map(|t| t.buffer()));
        Some(FusedUpdate {
            constants,
            uniform: &self.uniform,
            slots,
            stride: *stride,
            capacity: *capacity,
            state: slot_buffers,
            n: self.n,
            param_offset: self.hyper.param_offset as usize,
            grad_offset: self.hyper.grad_offset as usize,
        })
    }

    /// Whether this is a v2 optimizer (host-planned step scalars).
    pub fn is_planned(&self) -> bool {
        matches!(self.steps, Steps::Planned { .. })
    }

    /// Records `steps` steps in one pass of a new encoder and submits it
    /// (no wait, no readback). The gradients stay what they are. A v2
    /// optimizer runs planned slots `0..steps` ([`GpuOptimizer::plan`] first).
    pub fn run(&self, gpu: &Gpu, steps: usize) -> Result<()> {
        let mut encoder = gpu.encoder("optimizer");
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("optimizer"),
                timestamp_writes: None,
            });
            for i in 0..steps {
                if self.is_planned() {
                    self.record_planned(&mut pass, i)?;
                } else {
                    self.record(&mut pass);
                }
            }
        }
        gpu.submit(encoder)?;
        Ok(())
    }

    /// `t` and the scalars of the last update: read back from the step
    /// buffer (v1), or the host's copy of the last planned slot (v2).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn step_scalars(&self, gpu: &Gpu) -> Result<StepScalars> {
        pollster::block_on(self.step_scalars_async(gpu))
    }

    /// [`GpuOptimizer::step_scalars`], awaiting the readback.
    pub async fn step_scalars_async(&self, gpu: &Gpu) -> Result<StepScalars> {
        match &self.steps {
            Steps::Advance(step) => {
                let words = step.read_async(gpu).await?;
                Ok(bytemuck::pod_read_unaligned(bytemuck::cast_slice(&words)))
            }
            Steps::Planned { last, .. } => Ok(*last),
        }
    }

    /// Ends an epoch for [`Schedule::ReduceOnPlateau`]: records `metric`
    /// (lower is better) and, when it did not improve, lowers the learning
    /// rate of the steps submitted from now on. Returns whether it did; a
    /// no-op returning false for the other schedules. Call it after the
    /// epoch's steps were submitted (the new rate is written with
    /// `queue.write_buffer`, which takes effect at the next submit).
    pub fn end_epoch(&mut self, gpu: &Gpu, metric: f32) -> Result<bool> {
        let reduced = self.plateau.observe(metric)?;
        if reduced {
            self.hyper.lr = self.config.lr * self.plateau.scale();
            gpu.scoped("updating the learning rate", || {
                gpu.queue()
                    .write_buffer(&self.uniform, 0, bytemuck::bytes_of(&self.hyper))
            })?;
        }
        Ok(reduced)
    }

    /// Replaces the state buffers and the step scalars (resuming from a
    /// checkpoint). The plateau schedule's memory is not part of it.
    pub fn restore(&mut self, gpu: &Gpu, state: &[Vec<f32>], step: StepScalars) -> Result<()> {
        crate::optim::check_restore(self.config.state_names().len(), self.n, state)?;
        for (t, v) in self.state.iter().zip(state) {
            t.write(gpu, v)?;
        }
        self.set_step(gpu, step)
    }

    fn set_step(&mut self, gpu: &Gpu, step: StepScalars) -> Result<()> {
        match &mut self.steps {
            Steps::Advance(t) => t.write(gpu, bytemuck::cast_slice(&[step])),
            Steps::Planned { last, planned, .. } => {
                *last = step;
                *planned = 0;
                Ok(())
            }
        }
    }

    /// Dispatches one recorded step makes: v1 `advance`, then the update;
    /// v2 the update alone.
    pub fn dispatches(&self) -> usize {
        match self.steps {
            Steps::Advance(_) => 2,
            Steps::Planned { .. } => 1,
        }
    }

    /// Restarts from step 0 with fresh state (parameters are left alone).
    pub fn reset(&mut self, gpu: &Gpu) -> Result<()> {
        for t in &self.state {
            t.fill(gpu, self.config.initial_state())?;
        }
        self.set_step(gpu, StepScalars::initial())?;
        self.plateau = Plateau::new(&self.config.schedule);
        self.hyper.lr = self.config.lr;
        gpu.scoped("resetting the learning rate", || {
            gpu.queue()
                .write_buffer(&self.uniform, 0, bytemuck::bytes_of(&self.hyper))
        })
    }

    /// The state buffers, in the order of [`OptimizerConfig::state_names`].
    pub fn state(&self) -> &[GpuTensor<f32>] {
        &self.state
    }

    /// The multiplier the plateau schedule has applied to the base rate.
    pub fn lr_scale(&self) -> f32 {
        self.plateau.scale()
    }

    pub fn config(&self) -> &OptimizerConfig {
        &self.config
    }

    /// Parameters updated per step.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Always false: tensors hold at least one element.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Workgroups of the update dispatch (2-D beyond the per-dimension limit).
    pub fn workgroups(&self) -> [u32; 3] {
        self.workgroups
    }

    /// Dispatches one [`GpuOptimizer::record`] makes (v1).
    pub const DISPATCHES_PER_STEP: usize = 2;
}

impl std::fmt::Debug for GpuOptimizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuOptimizer")
            .field("rule", &self.config.name())
            .field("params", &self.n)
            .field("workgroups", &self.workgroups)
            .finish()
    }
}

/// 32-bit words of [`StepScalars`].
const STEP_WORDS: usize = std::mem::size_of::<StepScalars>() / 4;

/// Bytes of [`StepScalars`]: one step slot's binding size.
pub const STEP_BYTES: u64 = std::mem::size_of::<StepScalars>() as u64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_is_one_dimensional_when_it_fits() {
        assert_eq!(grid(1, 256, 65535), ([1, 1, 1], 256));
        assert_eq!(grid(257, 256, 65535), ([2, 1, 1], 512));
        // 10 M parameters: 39,063 workgroups, still 1-D.
        assert_eq!(grid(10_000_000, 256, 65535), ([39063, 1, 1], 39063 * 256));
    }

    #[test]
    fn grid_folds_into_rows_past_the_limit() {
        for (n, max) in [
            (10_000_000, 1000),
            (65536 * 256, 65535),
            (1001, 2),
            (3 * 256 + 1, 2),
        ] {
            let ([x, y, z], row) = grid(n, 256, max);
            assert!(x <= max && y <= max && z == 1, "{n} {max}: {x}×{y}");
            assert_eq!(row as usize, x as usize * 256);
            // Every element has a thread, and no row is wholly past the end.
            assert!(row as usize * y as usize >= n);
            assert!(row as usize * (y as usize - 1) < n);
        }
        // Past max² workgroups y exceeds the limit too: check_dispatch refuses it.
        let ([_, y, _], _) = grid(5 * 256, 256, 2);
        assert_eq!(y, 3);
    }

    #[test]
    fn hyper_and_step_scalars_mirror_the_wgsl_structs() {
        use crate::kernels::mirror::check_mirror;
        check_mirror!(Hyper, &OPTIM, "Hyper"; n, row, param_offset, grad_offset, lr, weight_decay, momentum, dampening, beta1, beta2, eps, lr_decay, step_size, gamma, t_max, eta_min, alpha, threads, _pad);
        check_mirror!(StepScalars, &OPTIM, "StepScalars"; t, lr, decay_factor, beta1_pow, beta2_pow, adagrad_lr, step_size, bias_correction2_sqrt, keras_alpha, decay, _pad);
    }

    #[test]
    fn step_scalars_is_twelve_words() {
        assert_eq!(STEP_WORDS, 12);
        assert_eq!(std::mem::size_of::<Hyper>(), 80);
    }
}
