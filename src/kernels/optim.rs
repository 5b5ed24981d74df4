//! Launcher for `shaders/optim.wgsl`: one fused update of every parameter of
//! a model per step, for any rule of [`crate::optim`].
//!
//! A [`GpuOptimizer`] owns the rule's state buffers (momentum, accumulators,
//! Adam's moments) and a 48-byte step buffer ([`StepScalars`]) that the GPU
//! itself advances, so a step records two dispatches — `advance` (one
//! thread: t ← t + 1, scheduled lr, bias corrections) and the rule's update
//! (one thread per parameter) — and nothing is written from the host between
//! steps. Record as many steps as you like into one encoder.
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
use crate::shaders::OPTIM;
use std::sync::Arc;

/// Threads per workgroup of the update kernels (`@workgroup_size(256)`).
const WORKGROUP: usize = 256;

/// Elements each thread of the update's grid-stride loop handles, by
/// default. On lavapipe 4 ran about twice as fast as 1 (fewer workgroups);
/// see BENCHMARKS.md.
pub const DEFAULT_ELEMS_PER_THREAD: u32 = 4;

/// The uniform block of `optim.wgsl` (80 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct Hyper {
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
    fn new(
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

fn update_key(rule: &Rule) -> PipelineKey {
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

/// Every pipeline this launcher can build (validated by `tests/shaders.rs`).
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

/// A fused optimizer over one flat parameter tensor and its gradient.
pub struct GpuOptimizer {
    config: OptimizerConfig,
    n: usize,
    advance: Arc<KernelPipeline>,
    update: Arc<KernelPipeline>,
    bind_group: Deferred<wgpu::BindGroup>,
    uniform: Deferred<wgpu::Buffer>,
    hyper: Hyper,
    step: GpuTensor<u32>,
    state: Vec<GpuTensor<f32>>,
    workgroups: [u32; 3],
    plateau: Plateau,
}

impl GpuOptimizer {
    /// Validates `config`, allocates the rule's state (zeros, or Adagrad's
    /// initial accumulator value) and builds pipelines and the bind group.
    /// `params` and `grads` may be views (e.g. one flat buffer per model)
    /// and must hold the same number of elements in different buffers.
    pub fn new(
        gpu: &Gpu,
        config: OptimizerConfig,
        params: &GpuTensor<f32>,
        grads: &GpuTensor<f32>,
    ) -> Result<Self> {
        Self::with_elems_per_thread(gpu, config, params, grads, DEFAULT_ELEMS_PER_THREAD)
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
        let step = GpuTensor::<u32>::from_slice(
            gpu,
            &[STEP_WORDS],
            bytemuck::cast_slice(&[StepScalars::initial()]),
        )?;
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
        let slot = |k: usize| slots[k].as_ref().map_or(gpu.placeholder(), |t| t.buffer());
        let bind_group = gpu.bind_group(
            &update,
            &[
                &uniform,
                step.buffer(),
                params.buffer(),
                grads.buffer(),
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
            step,
            state,
            workgroups,
            plateau: Plateau::new(&config.schedule),
        })
    }

    /// Records one optimizer step (two dispatches) into an open compute
    /// pass. Call it after the dispatches that write the gradients.
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        pass.set_bind_group(0, &*self.bind_group, &[]);
        pass.set_pipeline(&self.advance.pipeline);
        pass.dispatch_workgroups(1, 1, 1);
        pass.set_pipeline(&self.update.pipeline);
        let [x, y, z] = self.workgroups;
        pass.dispatch_workgroups(x, y, z);
    }

    /// Records `steps` steps in one pass of a new encoder and submits it
    /// (no wait, no readback). The gradients stay what they are.
    pub fn run(&self, gpu: &Gpu, steps: usize) -> Result<()> {
        let mut encoder = gpu.encoder("optimizer");
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("optimizer"),
                timestamp_writes: None,
            });
            for _ in 0..steps {
                self.record(&mut pass);
            }
        }
        gpu.submit(encoder)?;
        Ok(())
    }

    /// Reads back the step buffer: `t` and the scalars of the last update.
    pub fn step_scalars(&self, gpu: &Gpu) -> Result<StepScalars> {
        let words = self.step.read(gpu)?;
        Ok(bytemuck::pod_read_unaligned(bytemuck::cast_slice(&words)))
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
        self.step.write(gpu, bytemuck::cast_slice(&[step]))
    }

    /// Dispatches one recorded step makes: `advance`, then the update.
    pub fn dispatches(&self) -> usize {
        2
    }

    /// Restarts from step 0 with fresh state (parameters are left alone).
    pub fn reset(&mut self, gpu: &Gpu) -> Result<()> {
        for t in &self.state {
            t.fill(gpu, self.config.initial_state())?;
        }
        self.step
            .write(gpu, bytemuck::cast_slice(&[StepScalars::initial()]))?;
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

    /// Dispatches one [`GpuOptimizer::record`] makes.
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
    fn step_scalars_is_twelve_words() {
        assert_eq!(STEP_WORDS, 12);
        assert_eq!(std::mem::size_of::<Hyper>(), 80);
    }
}
