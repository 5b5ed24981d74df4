//! The latency floor: what a dispatch, a barrier and a submit cost on this
//! adapter, and each launch of a training step set against it.
//!
//! At the models' shapes a step does little arithmetic per dispatch, so on a
//! big GPU its time is set by how many dependent dispatches it makes and by
//! what each costs beyond its arithmetic. [`floor`] measures that cost with
//! dispatches that do next to nothing (`shaders/latency.wgsl`, one workgroup
//! each), chained N deep in one compute pass:
//!
//! - `idle`: a dispatch that binds no storage at all;
//! - `independent`: each dispatch writes a buffer of its own, so no
//!   dispatch depends on another;
//! - `chained`: every dispatch reads and writes one buffer (a read-write
//!   hazard: each reads what the one before wrote).
//!
//! What wgpu 30 does between them (wgpu-core's `flush_bindings`, read for
//! this): each dispatch is its own usage scope, and a buffer used before in
//! the same command buffer gets a barrier unless its use is unchanged and
//! "ordered" (`BufferUses::INCLUSIVE`: uniform, read-only storage; never
//! `STORAGE_READ_WRITE`). So `chained` records a whole-buffer pipeline
//! barrier before every dispatch but the first; `idle` records none; and
//! `independent` none either, since each of its buffers is first used in
//! that pass (its state at the start is settled at submit, outside the
//! pass). `chained − independent` is then the cost of a barrier.
//!
//! Each chain is timed at 1 and at N dispatches, back to back in each run;
//! the per-dispatch figure is the median over runs of `(t(N) − t(1)) /
//! (N − 1)`, so a pass's fixed cost (and the timer's) drops out. The
//! chains are timed with GPU timestamps around the pass where the device
//! has `TIMESTAMP_QUERY`, else with the wall clock (submit to idle). The
//! submits are always timed by the wall clock: one submit of N chained
//! dispatches against N submits of one, and a submit of an empty command
//! buffer. Pipelines, bind groups and command buffers are all built before
//! any clock starts.
//!
//! [`step_vs_floor`] times each launch of a training step the same way the
//! benchmarks time a kernel (repeated in one pass, the median of runs), so
//! each one's figure includes the barrier before it, as in the step; and
//! the whole step, against `dispatches × chained` per dispatch.

use crate::data::synthetic;
use crate::error::{Error, Result};
use crate::gpu::{Binding, Gpu, GpuTensor, GpuTimer, PipelineKey, Shader};
use crate::model::Model;
use crate::optim::OptimizerConfig;
use crate::timing::{Measurement, Plan};
use crate::train::{Engine, FusedStep, GpuEngine, TrainConfig, TrainData};
use serde::Serialize;
use std::time::Instant;

/// `bump`'s layout: the parameters and the buffer it adds one to.
pub static LATENCY: Shader = Shader {
    name: "latency",
    source: include_str!("../../shaders/latency.wgsl"),
    bindings: &[Binding::Uniform, Binding::StorageReadWrite],
    workgroup_memory: &[],
    trusted: true,
};

/// `idle`'s layout: the parameters alone. A module of its own (the same
/// source) because a layout with a read-write buffer would put `idle` under
/// the barrier rule it is there to avoid.
pub static LATENCY_IDLE: Shader = Shader {
    name: "latency_idle",
    source: include_str!("../../shaders/latency.wgsl"),
    bindings: &[Binding::Uniform],
    workgroup_memory: &[],
    trusted: true,
};

/// Words each dispatch touches: one workgroup's worth.
const WORDS: usize = 64;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

/// Every pipeline this module builds (for validation with the others).
pub fn specialisations() -> Vec<PipelineKey> {
    vec![
        PipelineKey {
            shader: &LATENCY,
            entry: "bump",
            constants: vec![],
        },
        PipelineKey {
            shader: &LATENCY_IDLE,
            entry: "idle",
            constants: vec![],
        },
    ]
}

/// One row of the floor table: the medians of one case at 1 and at N.
#[derive(Clone, Debug, Serialize)]
pub struct FloorRow {
    pub case: &'static str,
    pub what: &'static str,
    /// "timestamp" or "wall".
    pub timer: &'static str,
    /// Median seconds of the case at 1 and at `Floor::chain`.
    pub one_s: f64,
    pub n_s: f64,
    /// Median over runs of `(t(N) − t(1)) / (N − 1)`: the cost each further
    /// dispatch (or submit) adds.
    pub per_dispatch_s: f64,
}

/// The latency floor of one adapter.
#[derive(Clone, Debug, Serialize)]
pub struct Floor {
    pub adapter: String,
    /// Dispatches (or submits) in the long chain.
    pub chain: usize,
    /// Timed runs each median is over.
    pub runs: usize,
    pub rows: Vec<FloorRow>,
    /// Median wall seconds of submitting an empty command buffer and
    /// waiting for the device to be idle.
    pub empty_submit_s: f64,
}

impl Floor {
    /// The per-dispatch figure of `case` ("idle", "independent", "chained",
    /// "one submit", "submits").
    pub fn per_dispatch(&self, case: &str) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.case == case)
            .map(|r| r.per_dispatch_s)
    }

    /// A barrier's cost: chained less independent, per dispatch.
    pub fn per_barrier(&self) -> Option<f64> {
        Some(self.per_dispatch("chained")? - self.per_dispatch("independent")?)
    }

    /// A submit's cost beyond its dispatch: N submits of one dispatch less
    /// one submit of N, per dispatch (wall clock).
    pub fn per_submit(&self) -> Option<f64> {
        Some(self.per_dispatch("submits")? - self.per_dispatch("one submit")?)
    }

    /// What a step's dependent dispatch costs at least: a dispatch and the
    /// barrier before it.
    pub fn dependent_dispatch(&self) -> Option<f64> {
        self.per_dispatch("chained")
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// `warmup` untimed then `runs` timed calls of `run`, which returns the
/// seconds of (1, N); the medians of both and of their per-dispatch slope.
fn pairs(
    chain: usize,
    warmup: usize,
    runs: usize,
    mut run: impl FnMut(usize) -> Result<f64>,
) -> Result<(f64, f64, f64)> {
    let (mut ones, mut ns, mut slopes) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..warmup + runs {
        let one = run(1)?;
        let n = run(chain)?;
        if r >= warmup {
            ones.push(one);
            ns.push(n);
            slopes.push((n - one) / (chain - 1) as f64);
        }
    }
    Ok((median(ones), median(ns), median(slopes)))
}

/// Measures the floor with chains of `chain` dispatches (at least 2),
/// `plan.warmup` untimed and `plan.runs` timed runs of each. Checks
/// afterwards that every `bump` ran (the words of the chained buffer count
/// them), so a figure cannot come from dispatches that did nothing.
pub fn floor(gpu: &Gpu, plan: &Plan, chain: usize) -> Result<Floor> {
    if chain < 2 {
        return Err(Error::InvalidArgument {
            name: "chain",
            msg: format!("the floor needs chains of at least 2 dispatches, got {chain}"),
        });
    }
    let runs = plan.runs.max(1);
    let warmup = plan.warmup.max(1);
    let timer = GpuTimer::new(gpu)?;
    let wall = GpuTimer::wall_clock();
    let bump = gpu.pipeline(&specialisations()[0])?;
    let idle = gpu.pipeline(&specialisations()[1])?;
    let params = crate::kernels::uniform(
        gpu,
        "latency params",
        &Params {
            n: WORDS as u32,
            _pad0: 0,
            _pad1: 0,
            _pad2: 0,
        },
    )?;
    let idle_group = gpu.bind_group(&idle, &[&params])?;
    let shared = GpuTensor::<u32>::zeros(gpu, &[WORDS])?;
    let shared_group = gpu.bind_group(&bump, &[&params, shared.buffer()])?;
    let own: Vec<GpuTensor<u32>> = (0..chain)
        .map(|_| GpuTensor::<u32>::zeros(gpu, &[WORDS]))
        .collect::<Result<_>>()?;
    let own_groups = own
        .iter()
        .map(|t| gpu.bind_group(&bump, &[&params, t.buffer()]))
        .collect::<Result<Vec<_>>>()?;
    // Bumps of the shared buffer, checked at the end.
    let mut bumps: u64 = 0;

    let mut rows = Vec::new();
    let mut row = |case, what, timer: &'static str, (one_s, n_s, per_dispatch_s)| {
        rows.push(FloorRow {
            case,
            what,
            timer,
            one_s,
            n_s,
            per_dispatch_s,
        })
    };
    let kind = timer.kind().name();
    row(
        "idle",
        "binds no storage: no barrier",
        kind,
        pairs(chain, warmup, runs, |n| {
            timer.time(gpu, |pass| {
                pass.set_pipeline(&idle.pipeline);
                pass.set_bind_group(0, &*idle_group, &[]);
                for _ in 0..n {
                    pass.dispatch_workgroups(1, 1, 1);
                }
            })
        })?,
    );
    row(
        "independent",
        "each writes its own buffer: no barrier",
        kind,
        pairs(chain, warmup, runs, |n| {
            timer.time(gpu, |pass| {
                pass.set_pipeline(&bump.pipeline);
                for g in &own_groups[..n] {
                    pass.set_bind_group(0, &**g, &[]);
                    pass.dispatch_workgroups(1, 1, 1);
                }
            })
        })?,
    );
    row(
        "chained",
        "each reads what the last wrote: a barrier each",
        kind,
        pairs(chain, warmup, runs, |n| {
            bumps += n as u64;
            timer.time(gpu, |pass| {
                pass.set_pipeline(&bump.pipeline);
                pass.set_bind_group(0, &*shared_group, &[]);
                for _ in 0..n {
                    pass.dispatch_workgroups(1, 1, 1);
                }
            })
        })?,
    );

    // The submits: command buffers finished before the clock starts.
    let chained = |n: usize| {
        let mut encoder = gpu.encoder("latency");
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("latency"),
                timestamp_writes: None,
            });
            pass.set_pipeline(&bump.pipeline);
            pass.set_bind_group(0, &*shared_group, &[]);
            for _ in 0..n {
                pass.dispatch_workgroups(1, 1, 1);
            }
        }
        encoder.finish()
    };
    let submit_all = |buffers: Vec<wgpu::CommandBuffer>| -> Result<f64> {
        gpu.wait()?;
        let start = Instant::now();
        gpu.scoped("submitting the latency chain", || {
            for b in buffers {
                gpu.queue().submit([b]);
            }
        })?;
        gpu.wait()?;
        Ok(start.elapsed().as_secs_f64())
    };
    row(
        "one submit",
        "N chained in one submit (wall clock)",
        wall.kind().name(),
        pairs(chain, warmup, runs, |n| {
            bumps += n as u64;
            submit_all(vec![chained(n)])
        })?,
    );
    row(
        "submits",
        "N submits of one dispatch (wall clock)",
        wall.kind().name(),
        pairs(chain, warmup, runs, |n| {
            bumps += n as u64;
            submit_all((0..n).map(|_| chained(1)).collect())
        })?,
    );
    let mut empties = Vec::new();
    for r in 0..warmup + runs {
        let t = submit_all(vec![gpu.encoder("empty").finish()])?;
        if r >= warmup {
            empties.push(t);
        }
    }

    let words = shared.read(gpu)?;
    let want = bumps as u32; // wraps as the shader's adds do
    if let Some(w) = words.iter().find(|&&w| w != want) {
        return Err(Error::Device(format!(
            "the latency chain's buffer holds {w} where its {bumps} dispatches should have left {want}"
        )));
    }
    for (i, t) in own.iter().enumerate() {
        // Each ran 2·(warmup + runs) times if it is within the short chain
        // (index 0) and within the long one.
        let want = ((warmup + runs) * (1 + usize::from(i == 0))) as u32;
        if let Some(w) = t.read(gpu)?.iter().find(|&&w| w != want) {
            return Err(Error::Device(format!(
                "independent buffer {i} holds {w} where its dispatches should have left {want}"
            )));
        }
    }
    Ok(Floor {
        adapter: gpu.summary().to_string(),
        chain,
        runs,
        rows,
        empty_submit_s: median(empties),
    })
}

/// One launch of a step against the floor.
#[derive(Clone, Debug, Serialize)]
pub struct PartTime {
    pub name: String,
    pub dispatches: usize,
    pub time: Measurement,
    /// `time / (dispatches × the floor's chained dispatch)`.
    pub vs_floor: f64,
}

/// A training step, launch by launch and whole, against the floor.
#[derive(Clone, Debug, Serialize)]
pub struct StepVsFloor {
    pub model: String,
    pub batch: usize,
    pub fused: bool,
    /// Which step ([`crate::train::step_name`]).
    pub program: String,
    pub parts: Vec<PartTime>,
    /// Dispatches one step makes.
    pub dispatches: usize,
    /// The whole step, recorded as in training (steps repeated in one pass).
    pub step: Measurement,
    /// The floor's chained dispatch, in seconds.
    pub floor_s: f64,
}

impl StepVsFloor {
    /// The step's time over `dispatches × floor`.
    pub fn step_vs_floor(&self) -> f64 {
        self.step.seconds / (self.dispatches as f64 * self.floor_s)
    }

    /// The sum of the launches' medians.
    pub fn parts_s(&self) -> f64 {
        self.parts.iter().map(|p| p.time.seconds).sum()
    }
}

/// Times one training step of `model` (batch `batch`, synthetic images of
/// `image_shape`, the fused step `step` or, for `None`, the reference
/// program) launch by launch and
/// whole, with the timer the benchmarks use, and sets each against
/// `floor_s`, the cost of one dependent dispatch ([`Floor::dependent_dispatch`]).
#[allow(clippy::too_many_arguments)]
pub fn step_vs_floor(
    gpu: &Gpu,
    plan: &Plan,
    model: &dyn Model,
    optimizer: OptimizerConfig,
    batch: usize,
    image_shape: [usize; 3],
    fused_step: Option<FusedStep>,
    floor_s: f64,
) -> Result<StepVsFloor> {
    let fused = fused_step.is_some();
    let steps = 2;
    let train = synthetic::images(steps * batch, image_shape, model.classes(), 41)?;
    let test = synthetic::images(batch, image_shape, model.classes(), 42)?;
    let data = TrainData::new(train, test, 0, 0)?;
    let config = TrainConfig {
        epochs: 1,
        batch,
        optimizer,
        eval_batch: batch,
        mean: 0.5,
        std: 0.25,
        fused,
        fused_step: fused_step.unwrap_or_default(),
        ..TrainConfig::default()
    };
    let mut engine = GpuEngine::new(gpu, model, &data, &config)?;
    // One epoch first: the pipelines warm, the optimizer's steps planned.
    engine.train_epoch(&data.epoch_order(0, 0), &mut |_, _| {})?;
    let timer = GpuTimer::new(gpu)?;
    let parts = engine.step_parts(0)?;
    let measure = |record: &dyn Fn(&mut wgpu::ComputePass<'_>) -> Result<()>| {
        crate::timing::measure(plan, timer.kind().name(), |reps| {
            let mut failed = Ok(());
            let t = timer.time(gpu, |pass| {
                for _ in 0..reps {
                    if let Err(e) = record(pass) {
                        failed = Err(e);
                        return;
                    }
                }
            })?;
            failed.map(|_| t)
        })
    };
    let mut times = Vec::with_capacity(parts.len());
    for p in &parts {
        let time = measure(&*p.record)?;
        times.push(PartTime {
            name: p.name.clone(),
            dispatches: p.dispatches,
            vs_floor: time.seconds / (p.dispatches as f64 * floor_s),
            time,
        });
    }
    let step = measure(&|pass| {
        for p in &parts {
            (p.record)(pass)?;
        }
        Ok(())
    })?;
    let dispatches = parts.iter().map(|p| p.dispatches).sum();
    let counted = engine.dispatches_per_step().unwrap_or(0.0);
    if dispatches as f64 != counted {
        return Err(Error::Device(format!(
            "the step's parts record {dispatches} dispatches, the engine counts {counted}"
        )));
    }
    Ok(StepVsFloor {
        model: model.name(),
        batch,
        fused,
        program: crate::train::step_name(fused_step).into(),
        parts: times,
        dispatches,
        step,
        floor_s,
    })
}

#[cfg(test)]
mod layout {
    use crate::kernels::mirror::check_mirror;

    #[test]
    fn params_mirrors_the_wgsl_struct() {
        check_mirror!(super::Params, &super::LATENCY, "Params"; n, _pad0, _pad1, _pad2);
    }
}
