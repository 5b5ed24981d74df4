//! The fused optimizer kernels (`shaders/optim.wgsl`) against their CPU twin
//! and against torch.optim itself.
//!
//! - `gpu_matches_cpu_over_50_steps::*`: every rule and option, 50 steps on
//!   random parameters and gradients, all recorded into one encoder per half
//!   (the gradients of each step are copied in on the GPU), compared at
//!   step 25 and 50: parameters, every state buffer and the step scalars.
//! - `matches_torch::*`: 20 steps against values that torch.optim produced
//!   (`tests/data/torch_optim_reference.py`), GPU and CPU.
//! - `minimises_w_minus_3_squared::*`: the course's f(w) = (w − 3)², with the
//!   gradient 2w − 6 computed on the GPU by the matmul kernel, every step in
//!   one encoder, no readback until the end.
//! - Keras variants, schedules, validation, views, the 2-D grid.

mod planned;

#[allow(dead_code)]
mod torch {
    include!("../data/torch_optim.rs");
}

use crate::common::{gpu, random};
use ndarray::{ArrayView1, ArrayView2};
use wgpu_train::cpu::{self, CpuOptimizer, Tolerance};
use wgpu_train::kernels::{GpuOptimizer, Matmul};
use wgpu_train::optim::{
    Adagrad, Adam, AdamVariant, OptimizerConfig, RmsProp, RmsPropVariant, Schedule, Sgd,
    StepScalars,
};
use wgpu_train::{Error, GpuTensor, MatmulKernel, MatmulOptions};

/// f32 rounding over 50 steps (FMA contraction and sqrt/cos ulps on the
/// GPU); a formula bug is off by far more.
const TOL: Tolerance = Tolerance::new(2e-6, 2e-5);

fn v(x: &[f32]) -> ArrayView1<'_, f32> {
    ArrayView1::from(x)
}

/// What one side holds after some steps.
#[derive(Debug)]
struct Snapshot {
    step: usize,
    params: Vec<f32>,
    state: Vec<Vec<f32>>,
    scalars: StepScalars,
}

/// Runs `cfg` on the GPU over `grads.len()` steps. Parameters and gradients
/// are views at odd offsets into NaN-poisoned buffers; all gradients sit in
/// one bank buffer and each step copies its row into the gradient view, so
/// the steps between two `checkpoints` are one encoder and one submit.
fn run_gpu(
    cfg: OptimizerConfig,
    p0: &[f32],
    grads: &[Vec<f32>],
    checkpoints: &[usize],
) -> Vec<Snapshot> {
    let g = gpu();
    let n = p0.len();
    let (p_off, g_off) = (3, 5);
    let params_buf = GpuTensor::<f32>::zeros(g, &[p_off + n + 7]).unwrap();
    params_buf.fill(g, f32::NAN).unwrap();
    let params = params_buf.view(p_off, &[n]).unwrap();
    params.write(g, p0).unwrap();
    let grads_buf = GpuTensor::<f32>::zeros(g, &[g_off + n + 2]).unwrap();
    grads_buf.fill(g, f32::NAN).unwrap();
    let grad = grads_buf.view(g_off, &[n]).unwrap();
    let bank: Vec<f32> = grads.iter().flatten().copied().collect();
    let bank = GpuTensor::from_slice(g, &[bank.len()], &bank).unwrap();

    let opt = GpuOptimizer::new(g, cfg, &params, &grad).unwrap();
    let mut out = Vec::new();
    let mut done = 0;
    for &stop in checkpoints {
        let mut enc = g.encoder("test steps");
        for k in done..stop {
            enc.copy_buffer_to_buffer(
                bank.buffer(),
                (k * n * 4) as u64,
                grad.buffer(),
                (grad.offset() * 4) as u64,
                (n * 4) as u64,
            );
            let mut pass = enc.begin_compute_pass(&Default::default());
            opt.record(&mut pass);
        }
        g.submit(enc).unwrap();
        done = stop;
        out.push(Snapshot {
            step: stop,
            params: params.read(g).unwrap(),
            state: opt.state().iter().map(|t| t.read(g).unwrap()).collect(),
            scalars: opt.step_scalars(g).unwrap(),
        });
    }
    // Nothing outside the parameter view was written.
    let all = params_buf.read(g).unwrap();
    assert!(
        all[..p_off]
            .iter()
            .chain(&all[p_off + n..])
            .all(|x| x.is_nan()),
        "the optimizer wrote outside its parameter view"
    );
    out
}

fn run_cpu(
    cfg: OptimizerConfig,
    p0: &[f32],
    grads: &[Vec<f32>],
    checkpoints: &[usize],
) -> Vec<Snapshot> {
    let mut opt = CpuOptimizer::new(cfg, p0.len()).unwrap();
    let mut p = p0.to_vec();
    let mut out = Vec::new();
    for (k, gk) in grads.iter().enumerate() {
        opt.step(&mut p, gk).unwrap();
        if checkpoints.contains(&(k + 1)) {
            out.push(Snapshot {
                step: k + 1,
                params: p.clone(),
                state: opt.state().to_vec(),
                scalars: *opt.step_scalars(),
            });
        }
    }
    out
}

fn assert_scalars_close(what: &str, a: &StepScalars, e: &StepScalars) {
    assert_eq!(a.t, e.t, "{what}: step count");
    let f = |s: &StepScalars| {
        vec![
            s.lr,
            s.decay_factor,
            s.beta1_pow,
            s.beta2_pow,
            s.adagrad_lr,
            s.step_size,
            s.bias_correction2_sqrt,
            s.keras_alpha,
            s.decay,
        ]
    };
    cpu::assert_close(
        &format!(
            "{what}: step scalars [lr, decay_factor, β₁ᵗ, β₂ᵗ, adagrad_lr, step_size, √bc2, keras_alpha, decay]"
        ),
        &v(&f(a)),
        &v(&f(e)),
        Tolerance::new(1e-7, 1e-6),
    );
}

/// 50 steps of `cfg` on random parameters and gradients, GPU against CPU.
fn check_against_cpu(cfg: OptimizerConfig) {
    let n = 1031; // not a multiple of the workgroup size
    let p0 = random(&[n], 11).into_raw_vec_and_offset().0;
    let grads: Vec<Vec<f32>> = (0..50)
        .map(|k| random(&[n], 100 + k).into_raw_vec_and_offset().0)
        .collect();
    let checkpoints = [25, 50];
    let gpu_snaps = run_gpu(cfg, &p0, &grads, &checkpoints);
    let cpu_snaps = run_cpu(cfg, &p0, &grads, &checkpoints);
    for (a, e) in gpu_snaps.iter().zip(&cpu_snaps) {
        let what = format!("{} after {} steps", cfg.name(), e.step);
        assert_scalars_close(&what, &a.scalars, &e.scalars);
        assert_eq!(a.state.len(), cfg.state_names().len());
        for ((sa, se), name) in a.state.iter().zip(&e.state).zip(cfg.state_names()) {
            cpu::assert_close(&format!("{what}: {name}"), &v(sa), &v(se), TOL);
        }
        cpu::assert_close(
            &format!("{what}: params"),
            &v(&a.params),
            &v(&e.params),
            TOL,
        );
        // The parameters did move: the test is not comparing two no-ops.
        let moved = a.params.iter().zip(&p0).filter(|(x, y)| x != y).count();
        assert!(moved > n / 2, "{what}: only {moved} parameters moved");
    }
}

mod gpu_matches_cpu_over_50_steps {
    use super::*;

    macro_rules! cases {
        ($($name:ident: $cfg:expr;)*) => { $( #[test] fn $name() { check_against_cpu($cfg) } )* };
    }

    cases! {
        sgd: OptimizerConfig::sgd(0.1);
        sgd_weight_decay: OptimizerConfig::new(0.1, Sgd { weight_decay: 0.1, ..Sgd::default() });
        sgd_momentum: OptimizerConfig::momentum(0.05, 0.9);
        sgd_momentum_dampening_weight_decay: OptimizerConfig::new(0.05, Sgd { momentum: 0.9, dampening: 0.3, weight_decay: 0.01, nesterov: false });
        sgd_nesterov: OptimizerConfig::nesterov(0.05, 0.9);
        sgd_nesterov_weight_decay: OptimizerConfig::new(0.05, Sgd { weight_decay: 0.05, ..Sgd::nesterov(0.8) });
        adagrad: OptimizerConfig::adagrad();
        adagrad_lr_decay_initial_value_weight_decay: OptimizerConfig::new(0.1, Adagrad { lr_decay: 0.05, initial_accumulator_value: 0.2, weight_decay: 0.01, eps: 1e-6 });
        rmsprop: OptimizerConfig::rmsprop();
        rmsprop_centered: OptimizerConfig::new(0.01, RmsProp { centered: true, ..RmsProp::default() });
        rmsprop_momentum_weight_decay: OptimizerConfig::new(0.01, RmsProp { momentum: 0.9, weight_decay: 0.01, alpha: 0.9, ..RmsProp::default() });
        rmsprop_centered_momentum: OptimizerConfig::new(0.01, RmsProp { centered: true, momentum: 0.5, ..RmsProp::default() });
        rmsprop_keras: OptimizerConfig::new(1e-3, RmsProp { alpha: 0.9, eps: 1e-7, variant: RmsPropVariant::Keras, ..RmsProp::default() });
        rmsprop_keras_centered_momentum: OptimizerConfig::new(1e-3, RmsProp { alpha: 0.9, eps: 1e-7, centered: true, momentum: 0.9, variant: RmsPropVariant::Keras, ..RmsProp::default() });
        adam: OptimizerConfig::new(0.01, Adam::default());
        adam_weight_decay_l2: OptimizerConfig::new(0.01, Adam { weight_decay: 0.1, ..Adam::default() });
        adam_amsgrad: OptimizerConfig::new(0.01, Adam { amsgrad: true, ..Adam::default() });
        adam_keras: OptimizerConfig::new(0.01, Adam { eps: 1e-7, variant: AdamVariant::Keras, ..Adam::default() });
        adam_keras_amsgrad: OptimizerConfig::new(0.01, Adam { amsgrad: true, variant: AdamVariant::Keras, ..Adam::default() });
        adamw: OptimizerConfig::new(0.01, Adam::adamw());
        adamw_amsgrad_betas: OptimizerConfig::new(0.01, Adam { amsgrad: true, beta1: 0.5, beta2: 0.9, ..Adam::adamw() });
        adamw_keras: OptimizerConfig::new(0.01, Adam { variant: AdamVariant::Keras, ..Adam::adamw() });
        sgd_step_decay: OptimizerConfig::momentum(0.1, 0.9).with_schedule(Schedule::StepDecay { step_size: 7, gamma: 0.5 });
        adam_cosine: OptimizerConfig::new(0.01, Adam::default()).with_schedule(Schedule::Cosine { t_max: 40, eta_min: 1e-3 });
        adagrad_cosine: OptimizerConfig::new(0.1, Adagrad { lr_decay: 0.01, ..Adagrad::default() }).with_schedule(Schedule::Cosine { t_max: 50, eta_min: 0.0 });
        rmsprop_keras_momentum_step_decay: OptimizerConfig::new(1e-2, RmsProp { momentum: 0.9, variant: RmsPropVariant::Keras, ..RmsProp::default() }).with_schedule(Schedule::StepDecay { step_size: 10, gamma: 0.3 });
    }
}

/// The torch case names of `tests/data/torch_optim.rs`, as our configs.
fn torch_case(name: &str) -> OptimizerConfig {
    match name {
        "sgd_wd" => OptimizerConfig::new(
            0.1,
            Sgd {
                weight_decay: 0.01,
                ..Sgd::default()
            },
        ),
        "sgd_momentum_dampening_wd" => OptimizerConfig::new(
            0.05,
            Sgd {
                momentum: 0.9,
                dampening: 0.1,
                weight_decay: 0.01,
                nesterov: false,
            },
        ),
        "sgd_nesterov" => OptimizerConfig::nesterov(0.05, 0.9),
        "adagrad_lr_decay_init_wd" => OptimizerConfig::new(
            0.1,
            Adagrad {
                lr_decay: 0.01,
                initial_accumulator_value: 0.1,
                weight_decay: 0.01,
                ..Adagrad::default()
            },
        ),
        "adagrad_defaults" => OptimizerConfig::adagrad(),
        "rmsprop_defaults" => OptimizerConfig::rmsprop(),
        "rmsprop_centered_momentum_wd" => OptimizerConfig::new(
            0.01,
            RmsProp {
                alpha: 0.9,
                momentum: 0.9,
                centered: true,
                weight_decay: 0.01,
                ..RmsProp::default()
            },
        ),
        "adam_lr_1e-2" => OptimizerConfig::new(0.01, Adam::default()),
        "adam_amsgrad_wd" => OptimizerConfig::new(
            0.01,
            Adam {
                amsgrad: true,
                weight_decay: 0.01,
                ..Adam::default()
            },
        ),
        "adamw_wd_0.1" => OptimizerConfig::new(
            0.01,
            Adam {
                weight_decay: 0.1,
                ..Adam::adamw()
            },
        ),
        "adamw_amsgrad_betas" => OptimizerConfig::new(
            0.01,
            Adam {
                beta1: 0.8,
                beta2: 0.99,
                amsgrad: true,
                ..Adam::adamw()
            },
        ),
        "sgd_step_lr_3_half" => OptimizerConfig::sgd(0.1).with_schedule(Schedule::StepDecay {
            step_size: 3,
            gamma: 0.5,
        }),
        "adam_cosine_19" => {
            OptimizerConfig::new(0.01, Adam::default()).with_schedule(Schedule::Cosine {
                t_max: 19,
                eta_min: 0.001,
            })
        }
        other => panic!("no config for torch case {other}"),
    }
}

fn check_torch_case(name: &str) {
    let (_, expected) = torch::EXPECTED
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no torch values for {name}"));
    let cfg = torch_case(name);
    let grads: Vec<Vec<f32>> = torch::GRADS.iter().map(|g| g.to_vec()).collect();
    let snaps = [
        ("gpu", run_gpu(cfg, &torch::P0, &grads, &torch::CHECK_STEPS)),
        ("cpu", run_cpu(cfg, &torch::P0, &grads, &torch::CHECK_STEPS)),
    ];
    // torch computes the per-step scalars in f64, we in f32.
    let tol = Tolerance::new(2e-6, 1e-5);
    for (side, snaps) in &snaps {
        for (s, e) in snaps.iter().zip(expected) {
            cpu::assert_close(
                &format!(
                    "{name} on the {side} vs torch {} after {} steps",
                    torch::TORCH_VERSION,
                    s.step
                ),
                &v(&s.params),
                &v(e),
                tol,
            );
        }
    }
}

mod matches_torch {
    use super::*;

    macro_rules! cases {
        ($($name:ident: $case:expr;)*) => { $( #[test] fn $name() { check_torch_case($case) } )* };
    }

    cases! {
        sgd_weight_decay: "sgd_wd";
        sgd_momentum_dampening_weight_decay: "sgd_momentum_dampening_wd";
        sgd_nesterov: "sgd_nesterov";
        adagrad_lr_decay_initial_value_weight_decay: "adagrad_lr_decay_init_wd";
        adagrad_defaults: "adagrad_defaults";
        rmsprop_defaults: "rmsprop_defaults";
        rmsprop_centered_momentum_weight_decay: "rmsprop_centered_momentum_wd";
        adam: "adam_lr_1e-2";
        adam_amsgrad_weight_decay: "adam_amsgrad_wd";
        adamw: "adamw_wd_0.1";
        adamw_amsgrad_betas: "adamw_amsgrad_betas";
        sgd_step_decay_as_step_lr: "sgd_step_lr_3_half";
        adam_cosine_as_cosine_annealing_lr: "adam_cosine_19";
    }

    #[test]
    fn every_torch_case_has_a_test() {
        assert_eq!(torch::EXPECTED.len(), 13);
    }
}

/// Minimises Σ (w − 3)² from spread-out starting points, on the GPU with the
/// gradient `2w − 6` computed by the matmul kernel (`[n,1]·[[2]] + [−6]`),
/// all `steps` steps recorded into one encoder; then the same on the CPU.
fn check_minimises(cfg: OptimizerConfig, steps: usize, within: f32) {
    let g = gpu();
    let w0 = [-2.0f32, 0.0, 1.0, 2.9, 3.1, 5.0, 8.0];
    let n = w0.len();
    let w = GpuTensor::from_slice(g, &[n, 1], &w0).unwrap();
    let grad = GpuTensor::<f32>::zeros(g, &[n, 1]).unwrap();
    let two = GpuTensor::from_slice(g, &[1, 1], &[2.0]).unwrap();
    let minus6 = GpuTensor::from_slice(g, &[1], &[-6.0]).unwrap();
    let gradient = Matmul::new(
        g,
        &w,
        &two,
        Some(&minus6),
        &grad,
        MatmulOptions::nn(),
        MatmulKernel::Auto,
    )
    .unwrap();
    let opt = GpuOptimizer::new(g, cfg, &w, &grad).unwrap();
    let mut enc = g.encoder("minimise");
    {
        let mut pass = enc.begin_compute_pass(&Default::default());
        for _ in 0..steps {
            gradient.record(&mut pass);
            opt.record(&mut pass);
        }
    }
    g.submit(enc).unwrap();
    let on_gpu = w.read(g).unwrap();
    assert_eq!(opt.step_scalars(g).unwrap().t as usize, steps);

    let mut on_cpu = w0.to_vec();
    let mut copt = CpuOptimizer::new(cfg, n).unwrap();
    for _ in 0..steps {
        let grads: Vec<f32> = on_cpu.iter().map(|&x| 2.0 * x - 6.0).collect();
        copt.step(&mut on_cpu, &grads).unwrap();
    }
    for (side, w) in [("gpu", &on_gpu), ("cpu", &on_cpu)] {
        let worst = w.iter().map(|x| (x - 3.0).abs()).fold(0.0f32, f32::max);
        assert!(
            worst < within,
            "{} on the {side} after {steps} steps: {w:?} (worst |w − 3| = {worst})",
            cfg.name()
        );
    }
}

mod minimises_w_minus_3_squared {
    use super::*;

    #[test]
    fn sgd() {
        check_minimises(OptimizerConfig::sgd(0.1), 200, 1e-3);
    }
    #[test]
    fn sgd_momentum_dampening() {
        check_minimises(
            OptimizerConfig::new(
                0.05,
                Sgd {
                    dampening: 0.1,
                    ..Sgd::momentum(0.9)
                },
            ),
            300,
            1e-3,
        );
    }
    #[test]
    fn sgd_nesterov() {
        check_minimises(OptimizerConfig::nesterov(0.05, 0.9), 300, 1e-3);
    }
    #[test]
    fn adagrad() {
        check_minimises(OptimizerConfig::new(1.0, Adagrad::default()), 300, 1e-3);
    }
    #[test]
    fn adagrad_lr_decay_initial_value() {
        let a = Adagrad {
            lr_decay: 1e-3,
            initial_accumulator_value: 0.1,
            ..Adagrad::default()
        };
        check_minimises(OptimizerConfig::new(1.0, a), 300, 1e-3);
    }
    #[test]
    fn rmsprop() {
        check_minimises(OptimizerConfig::new(0.05, RmsProp::default()), 300, 1e-3);
    }
    #[test]
    fn rmsprop_centered_momentum() {
        let r = RmsProp {
            centered: true,
            momentum: 0.5,
            ..RmsProp::default()
        };
        check_minimises(OptimizerConfig::new(0.01, r), 500, 1e-3);
    }
    #[test]
    fn rmsprop_keras() {
        let r = RmsProp {
            variant: RmsPropVariant::Keras,
            ..RmsProp::default()
        };
        check_minimises(OptimizerConfig::new(0.05, r), 300, 1e-3);
    }
    #[test]
    fn adam() {
        check_minimises(OptimizerConfig::new(0.1, Adam::default()), 500, 1e-3);
    }
    #[test]
    fn adam_amsgrad() {
        let a = Adam {
            amsgrad: true,
            ..Adam::default()
        };
        check_minimises(OptimizerConfig::new(0.1, a), 500, 1e-3);
    }
    #[test]
    fn adam_keras() {
        let a = Adam {
            variant: AdamVariant::Keras,
            ..Adam::default()
        };
        check_minimises(OptimizerConfig::new(0.1, a), 500, 1e-3);
    }
    #[test]
    fn adamw() {
        let a = Adam {
            weight_decay: 1e-4,
            ..Adam::adamw()
        };
        check_minimises(OptimizerConfig::new(0.1, a), 500, 1e-3);
    }
    #[test]
    fn sgd_cosine_schedule() {
        let cfg = OptimizerConfig::sgd(0.2).with_schedule(Schedule::Cosine {
            t_max: 200,
            eta_min: 0.01,
        });
        check_minimises(cfg, 200, 1e-3);
    }
}

// ------------------------------------------------------------ Keras variants

/// One step from p = 0 with gradient `grad` on the GPU and the CPU; both
/// must agree. Returns the update −Δp.
fn one_step(cfg: OptimizerConfig, grad: f32) -> f32 {
    let grads = vec![vec![grad]];
    let a = run_gpu(cfg, &[0.0], &grads, &[1]);
    let e = run_cpu(cfg, &[0.0], &grads, &[1]);
    cpu::assert_close(cfg.name().as_str(), &v(&a[0].params), &v(&e[0].params), TOL);
    -a[0].params[0]
}

fn rel(a: f32, b: f64) -> f64 {
    (a as f64 - b).abs() / b.abs()
}

#[test]
fn keras_adam_adds_eps_to_the_uncorrected_sqrt_v() {
    let (lr, b1, b2, eps) = (1.0f64, 0.9f64, 0.999f64, 1e-8f64);
    let torch = OptimizerConfig::new(1.0, Adam::default());
    let keras = OptimizerConfig::new(
        1.0,
        Adam {
            variant: AdamVariant::Keras,
            ..Adam::default()
        },
    );
    // Step 1 in f64: m = (1−β₁)g, v = (1−β₂)g².
    let expect = |g: f64| {
        let (m, v) = ((1.0 - b1) * g, (1.0 - b2) * g * g);
        let t = lr / (1.0 - b1) * m / (v.sqrt() / (1.0 - b2).sqrt() + eps);
        let k = lr * (1.0 - b2).sqrt() / (1.0 - b1) * m / (v.sqrt() + eps);
        (t, k)
    };
    // A gradient the size of eps: Keras' eps weighs 1/√(1−β₂) ≈ 32× more.
    let g = 1e-8f32;
    let (t, k) = expect(g as f64);
    let (dt, dk) = (one_step(torch, g), one_step(keras, g));
    assert!(rel(dt, t) < 1e-5, "torch step {dt} vs {t}");
    assert!(rel(dk, k) < 1e-5, "keras step {dk} vs {k}");
    assert!(
        dt > 10.0 * dk,
        "tiny gradient: torch {dt} should be ≫ keras {dk}"
    );
    // A gradient far above eps: the two agree.
    let (dt, dk) = (one_step(torch, 0.5), one_step(keras, 0.5));
    assert!(
        (dt - dk).abs() < 2e-6,
        "large gradient: torch {dt} vs keras {dk}"
    );
}

#[test]
fn keras_rmsprop_puts_eps_inside_the_sqrt() {
    let (lr, alpha, eps) = (1.0f64, 0.99f64, 1e-8f64);
    let torch = OptimizerConfig::new(1.0, RmsProp::default());
    let keras = OptimizerConfig::new(
        1.0,
        RmsProp {
            variant: RmsPropVariant::Keras,
            ..RmsProp::default()
        },
    );
    let g = 1e-4f32;
    let v = (1.0 - alpha) * (g as f64).powi(2); // 1e-10, beside eps = 1e-8
    let (t, k) = (
        lr * g as f64 / (v.sqrt() + eps),
        lr * g as f64 / (v + eps).sqrt(),
    );
    let (dt, dk) = (one_step(torch, g), one_step(keras, g));
    assert!(rel(dt, t) < 1e-5, "torch step {dt} vs {t}");
    assert!(rel(dk, k) < 1e-5, "keras step {dk} vs {k}");
    assert!(
        dt > 5.0 * dk,
        "tiny gradient: torch {dt} should be ≫ keras {dk}"
    );
    let (dt, dk) = (one_step(torch, 0.5), one_step(keras, 0.5));
    assert!(
        (dt - dk).abs() < 1e-5 * dt,
        "large gradient: torch {dt} vs keras {dk}"
    );
}

/// Keras' RMSprop momentum buffer holds lr-scaled increments: the same as
/// torch's at a constant learning rate, different once the rate changes.
#[test]
fn keras_rmsprop_momentum_differs_from_torch_only_when_lr_changes() {
    let n = 64;
    let p0 = random(&[n], 1).into_raw_vec_and_offset().0;
    let grads: Vec<Vec<f32>> = (0..20)
        .map(|k| random(&[n], 50 + k).into_raw_vec_and_offset().0)
        .collect();
    let rule = |variant| RmsProp {
        momentum: 0.9,
        eps: 1e-12, // negligible: isolate the momentum difference
        variant,
        ..RmsProp::default()
    };
    let final_params = |schedule| {
        [RmsPropVariant::Torch, RmsPropVariant::Keras].map(|variant| {
            let cfg = OptimizerConfig::new(0.01, rule(variant)).with_schedule(schedule);
            run_gpu(cfg, &p0, &grads, &[20]).remove(0).params
        })
    };
    let [t, k] = final_params(Schedule::Constant);
    cpu::assert_close("constant lr", &v(&k), &v(&t), Tolerance::new(1e-6, 1e-5));
    let [t, k] = final_params(Schedule::StepDecay {
        step_size: 5,
        gamma: 0.1,
    });
    let differ = cpu::compare(&v(&k), &v(&t), Tolerance::new(1e-4, 1e-3));
    assert!(
        differ.is_err(),
        "step decay: Keras and torch momentum should differ"
    );
}

// ----------------------------------------------------------------- schedules

/// Runs `steps` single steps, reading the scheduled lr after each, on both sides.
fn lrs(cfg: OptimizerConfig, steps: usize) -> (Vec<f32>, Vec<f32>) {
    let g = gpu();
    let p = GpuTensor::from_slice(g, &[1], &[0.0]).unwrap();
    let gr = GpuTensor::from_slice(g, &[1], &[1.0]).unwrap();
    let opt = GpuOptimizer::new(g, cfg, &p, &gr).unwrap();
    let mut copt = CpuOptimizer::new(cfg, 1).unwrap();
    let mut cp = [0.0];
    let (mut on_gpu, mut on_cpu) = (vec![], vec![]);
    for _ in 0..steps {
        opt.run(g, 1).unwrap();
        on_gpu.push(opt.step_scalars(g).unwrap().lr);
        copt.step(&mut cp, &[1.0]).unwrap();
        on_cpu.push(copt.step_scalars().lr);
    }
    (on_gpu, on_cpu)
}

#[test]
fn step_decay_halves_every_3_updates() {
    let cfg = OptimizerConfig::sgd(1.0).with_schedule(Schedule::StepDecay {
        step_size: 3,
        gamma: 0.5,
    });
    let (on_gpu, on_cpu) = lrs(cfg, 8);
    let expected = [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25];
    assert_eq!(on_gpu, expected);
    assert_eq!(on_cpu, expected);
}

#[test]
fn cosine_follows_the_closed_form_then_holds_eta_min() {
    let (lr, eta_min, t_max) = (0.5f64, 0.1f64, 10u32);
    let cfg = OptimizerConfig::sgd(lr as f32).with_schedule(Schedule::Cosine {
        t_max,
        eta_min: eta_min as f32,
    });
    let (on_gpu, on_cpu) = lrs(cfg, 14);
    let expected: Vec<f32> = (1..=14u32)
        .map(|t| {
            let k = (t - 1).min(t_max) as f64;
            (eta_min
                + (lr - eta_min) * 0.5 * (1.0 + (std::f64::consts::PI * k / t_max as f64).cos()))
                as f32
        })
        .collect();
    let tol = Tolerance::new(1e-6, 1e-6);
    cpu::assert_close("cosine on the gpu", &v(&on_gpu), &v(&expected), tol);
    cpu::assert_close("cosine on the cpu", &v(&on_cpu), &v(&expected), tol);
    assert_eq!(on_gpu[0], 0.5);
    assert!(on_gpu[10..].iter().all(|&x| (x - 0.1).abs() < 1e-7));
}

#[test]
fn plateau_reduces_lr_by_5_percent_after_an_epoch_without_improvement() {
    let g = gpu();
    let cfg = OptimizerConfig::adam().with_schedule(Schedule::reduce_on_plateau());
    let p = GpuTensor::from_slice(g, &[2], &[0.0, 1.0]).unwrap();
    let gr = GpuTensor::from_slice(g, &[2], &[0.5, -0.5]).unwrap();
    let mut opt = GpuOptimizer::new(g, cfg, &p, &gr).unwrap();
    let mut copt = CpuOptimizer::new(cfg, 2).unwrap();
    let mut cp = [0.0, 1.0];
    // Epoch metrics (e.g. validation loss): better, better, worse, equal, better.
    let metrics = [1.0, 0.9, 0.95, 0.9, 0.8];
    let reduced = [false, false, true, true, false];
    for (&m, &r) in metrics.iter().zip(&reduced) {
        opt.run(g, 3).unwrap(); // an "epoch" of 3 steps
        for _ in 0..3 {
            copt.step(&mut cp, &[0.5, -0.5]).unwrap();
        }
        assert_eq!(opt.end_epoch(g, m).unwrap(), r, "metric {m}");
        assert_eq!(copt.end_epoch(m).unwrap(), r, "metric {m}");
    }
    assert!((opt.lr_scale() - 0.95 * 0.95).abs() < 1e-7);
    opt.run(g, 1).unwrap();
    copt.step(&mut cp, &[0.5, -0.5]).unwrap();
    let s = opt.step_scalars(g).unwrap();
    assert_eq!(s.t, 16);
    assert_eq!(s.lr, 1e-3f32 * (0.95f32 * 0.95));
    assert_eq!(copt.step_scalars().lr, s.lr);
    cpu::assert_close("params", &v(&p.read(g).unwrap()), &v(&cp), TOL);
    // NaN metrics are refused, not silently treated as "no improvement".
    assert!(matches!(
        opt.end_epoch(g, f32::NAN),
        Err(Error::InvalidArgument { name: "metric", .. })
    ));
}

// ------------------------------------------------------- fused vs per-tensor

/// The MLP 784-128-128-10's six tensors in one flat buffer: one fused Adam
/// update equals six per-tensor updates over views, bit for bit.
#[test]
fn fused_update_equals_per_tensor_updates_over_views() {
    let g = gpu();
    let sizes = [128 * 784, 128, 128 * 128, 128, 10 * 128, 10];
    let n: usize = sizes.iter().sum();
    let p0 = random(&[n], 7).into_raw_vec_and_offset().0;
    let g0 = random(&[n], 8).into_raw_vec_and_offset().0;
    let cfg = OptimizerConfig::new(0.01, Adam::adamw());
    let grads = GpuTensor::from_slice(g, &[n], &g0).unwrap();

    let fused = GpuTensor::from_slice(g, &[n], &p0).unwrap();
    GpuOptimizer::new(g, cfg, &fused, &grads)
        .unwrap()
        .run(g, 5)
        .unwrap();

    let split = GpuTensor::from_slice(g, &[n], &p0).unwrap();
    let mut opts = Vec::new();
    let mut off = 0;
    for &len in &sizes {
        let pv = split.view(off, &[len]).unwrap();
        let gv = grads.view(off, &[len]).unwrap();
        opts.push(GpuOptimizer::new(g, cfg, &pv, &gv).unwrap());
        off += len;
    }
    let mut enc = g.encoder("per tensor");
    {
        let mut pass = enc.begin_compute_pass(&Default::default());
        for _ in 0..5 {
            for o in &opts {
                o.record(&mut pass);
            }
        }
    }
    g.submit(enc).unwrap();
    let (a, b) = (fused.read(g).unwrap(), split.read(g).unwrap());
    let differ = a
        .iter()
        .zip(&b)
        .filter(|(x, y)| x.to_bits() != y.to_bits())
        .count();
    assert_eq!(differ, 0, "{differ} of {n} parameters differ");
    assert!(a.iter().zip(&p0).all(|(x, y)| x != y));
}

/// With one element per thread, past 65,535 × 256 parameters the update
/// folds into a 2-D grid (at the default 4 per thread that takes 67 M
/// parameters, more than lavapipe's 128 MiB bindings hold).
#[test]
fn sgd_over_16_8m_params_one_per_thread_folds_the_grid_into_2d() {
    let g = gpu();
    let n = 65_535 * 256 + 1000;
    let p0: Vec<f32> = (0..n).map(|i| (i % 1000) as f32).collect();
    let g0: Vec<f32> = (0..n).map(|i| (i % 7) as f32 - 3.0).collect();
    let params = GpuTensor::from_slice(g, &[n], &p0).unwrap();
    let grads = GpuTensor::from_slice(g, &[n], &g0).unwrap();
    let opt = GpuOptimizer::with_elems_per_thread(g, OptimizerConfig::sgd(0.5), &params, &grads, 1)
        .unwrap();
    let [x, y, _] = opt.workgroups();
    let limit = g.limits().max_compute_workgroups_per_dimension;
    assert!(x <= limit && y <= limit);
    if limit == 65_535 {
        assert_eq!(y, 2, "expected two grid rows, got {x}×{y}");
    }
    opt.run(g, 1).unwrap();
    let out = params.read(g).unwrap();
    // p − 0.5·g is exact here (small integers and halves).
    let bad = (0..n)
        .filter(|&i| out[i] != p0[i] - 0.5 * g0[i])
        .take(5)
        .collect::<Vec<_>>();
    assert!(bad.is_empty(), "wrong at {bad:?}");
}

/// The grid-stride loop gives the same bits whatever the grid's size.
#[test]
fn elements_per_thread_do_not_change_the_result() {
    let g = gpu();
    let n = 1031;
    let p0 = random(&[n], 21).into_raw_vec_and_offset().0;
    let grads = GpuTensor::from_array(g, &random(&[n], 22)).unwrap();
    let cfg = OptimizerConfig::new(
        0.01,
        Adam {
            amsgrad: true,
            ..Adam::default()
        },
    );
    let run = |per_thread| {
        let p = GpuTensor::from_slice(g, &[n], &p0).unwrap();
        let opt = GpuOptimizer::with_elems_per_thread(g, cfg, &p, &grads, per_thread).unwrap();
        opt.run(g, 10).unwrap();
        (opt.workgroups(), p.read(g).unwrap())
    };
    let (groups1, one) = run(1);
    assert_eq!(groups1, [5, 1, 1]);
    for per_thread in [4, 7, 2000] {
        let (_, other) = run(per_thread);
        assert!(
            one.iter()
                .zip(&other)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{per_thread} per thread differs from 1 per thread"
        );
    }
    let p = GpuTensor::<f32>::zeros(g, &[n]).unwrap();
    assert!(matches!(
        GpuOptimizer::with_elems_per_thread(g, cfg, &p, &grads, 0),
        Err(Error::InvalidArgument {
            name: "elems_per_thread",
            ..
        })
    ));
}

#[test]
fn reset_restarts_from_step_zero() {
    let g = gpu();
    let cfg = OptimizerConfig::new(0.1, Adam::default());
    let p = GpuTensor::from_slice(g, &[3], &[1.0, 2.0, 3.0]).unwrap();
    let gr = GpuTensor::from_slice(g, &[3], &[0.1, 0.2, 0.3]).unwrap();
    let mut opt = GpuOptimizer::new(g, cfg, &p, &gr).unwrap();
    opt.run(g, 4).unwrap();
    let first = p.read(g).unwrap();
    p.write(g, &[1.0, 2.0, 3.0]).unwrap();
    opt.reset(g).unwrap();
    assert_eq!(opt.step_scalars(g).unwrap(), StepScalars::initial());
    opt.run(g, 4).unwrap();
    assert_eq!(p.read(g).unwrap(), first);
}

// ---------------------------------------------------------------- validation

/// `cfg` is refused by validation and by both optimizers, naming `name`.
#[track_caller]
fn assert_rejected(cfg: OptimizerConfig, name: &str) {
    let check = |side: &str, r: Result<(), Error>| match r {
        Err(Error::InvalidArgument { name: got, msg }) => {
            assert_eq!(got, name, "{side}: wrong parameter named ({msg})");
            let text = Error::InvalidArgument { name: got, msg }.to_string();
            assert!(text.contains(name), "{side}: message {text:?}");
        }
        other => panic!("{side}: expected InvalidArgument for {name}, got {other:?}"),
    };
    check("validate", cfg.validate());
    check("cpu", CpuOptimizer::new(cfg, 4).map(|_| ()));
    let g = gpu();
    let p = GpuTensor::<f32>::zeros(g, &[4]).unwrap();
    let gr = GpuTensor::<f32>::zeros(g, &[4]).unwrap();
    check("gpu", GpuOptimizer::new(g, cfg, &p, &gr).map(|_| ()));
}

fn adam_with(f: impl FnOnce(&mut Adam)) -> OptimizerConfig {
    let mut a = Adam::default();
    f(&mut a);
    OptimizerConfig::new(1e-3, a)
}

fn rmsprop_with(f: impl FnOnce(&mut RmsProp)) -> OptimizerConfig {
    let mut r = RmsProp::default();
    f(&mut r);
    OptimizerConfig::new(1e-2, r)
}

fn sgd_with(f: impl FnOnce(&mut Sgd)) -> OptimizerConfig {
    let mut s = Sgd::default();
    f(&mut s);
    OptimizerConfig::new(0.1, s)
}

fn adagrad_with(f: impl FnOnce(&mut Adagrad)) -> OptimizerConfig {
    let mut a = Adagrad::default();
    f(&mut a);
    OptimizerConfig::new(0.1, a)
}

#[test]
fn nan_hyperparameters_are_rejected() {
    assert_rejected(OptimizerConfig::sgd(f32::NAN), "lr");
    assert_rejected(adam_with(|a| a.beta1 = f32::NAN), "beta1");
    assert_rejected(adam_with(|a| a.eps = f32::NAN), "eps");
    assert_rejected(sgd_with(|s| s.momentum = f32::NAN), "momentum");
    assert_rejected(rmsprop_with(|r| r.alpha = f32::NAN), "alpha");
    assert_rejected(adam_with(|a| a.weight_decay = f32::NAN), "weight_decay");
}

#[test]
fn infinite_hyperparameters_are_rejected() {
    assert_rejected(OptimizerConfig::sgd(f32::INFINITY), "lr");
    assert_rejected(adam_with(|a| a.eps = f32::INFINITY), "eps");
    assert_rejected(sgd_with(|s| s.momentum = f32::INFINITY), "momentum");
    assert_rejected(
        rmsprop_with(|r| r.weight_decay = f32::NEG_INFINITY),
        "weight_decay",
    );
}

#[test]
fn lr_of_zero_or_below_is_rejected() {
    assert_rejected(OptimizerConfig::sgd(0.0), "lr");
    assert_rejected(OptimizerConfig::new(-1e-3, Adam::default()), "lr");
    assert_rejected(OptimizerConfig::new(-0.0, Adagrad::default()), "lr");
}

#[test]
fn betas_outside_0_1_are_rejected() {
    assert_rejected(adam_with(|a| a.beta1 = 1.0), "beta1");
    assert_rejected(adam_with(|a| a.beta1 = -0.1), "beta1");
    assert_rejected(adam_with(|a| a.beta2 = 1.0), "beta2");
    assert_rejected(adam_with(|a| a.beta2 = 1.5), "beta2");
    // 0 is allowed (no averaging).
    adam_with(|a| a.beta1 = 0.0).validate().unwrap();
}

#[test]
fn rmsprop_alpha_outside_0_1_is_rejected() {
    assert_rejected(rmsprop_with(|r| r.alpha = 1.0), "alpha");
    assert_rejected(rmsprop_with(|r| r.alpha = -0.5), "alpha");
}

#[test]
fn eps_of_zero_or_below_is_rejected() {
    assert_rejected(adam_with(|a| a.eps = 0.0), "eps");
    assert_rejected(rmsprop_with(|r| r.eps = -1e-8), "eps");
    assert_rejected(adagrad_with(|a| a.eps = 0.0), "eps");
}

#[test]
fn negative_momentum_is_rejected() {
    assert_rejected(sgd_with(|s| s.momentum = -0.9), "momentum");
    assert_rejected(rmsprop_with(|r| r.momentum = -0.1), "momentum");
}

#[test]
fn negative_weight_decay_is_rejected() {
    assert_rejected(sgd_with(|s| s.weight_decay = -1e-4), "weight_decay");
    assert_rejected(adagrad_with(|a| a.weight_decay = -1e-4), "weight_decay");
    assert_rejected(rmsprop_with(|r| r.weight_decay = -1e-4), "weight_decay");
    assert_rejected(
        OptimizerConfig::new(
            1e-3,
            Adam {
                weight_decay: -0.01,
                ..Adam::adamw()
            },
        ),
        "weight_decay",
    );
}

#[test]
fn dampening_outside_0_1_is_rejected() {
    assert_rejected(
        sgd_with(|s| {
            s.momentum = 0.9;
            s.dampening = 1.5
        }),
        "dampening",
    );
    assert_rejected(sgd_with(|s| s.dampening = -0.1), "dampening");
}

#[test]
fn nesterov_needs_momentum_and_zero_dampening() {
    assert_rejected(sgd_with(|s| s.nesterov = true), "nesterov");
    assert_rejected(
        OptimizerConfig::new(
            0.1,
            Sgd {
                dampening: 0.1,
                ..Sgd::nesterov(0.9)
            },
        ),
        "nesterov",
    );
}

#[test]
fn adagrad_negative_lr_decay_or_initial_value_is_rejected() {
    assert_rejected(adagrad_with(|a| a.lr_decay = -0.1), "lr_decay");
    assert_rejected(
        adagrad_with(|a| a.initial_accumulator_value = -1.0),
        "initial_accumulator_value",
    );
}

#[test]
fn schedule_parameters_are_rejected_when_invalid() {
    let sgd = OptimizerConfig::sgd(0.1);
    let step = |step_size, gamma| sgd.with_schedule(Schedule::StepDecay { step_size, gamma });
    let cosine = |t_max, eta_min| sgd.with_schedule(Schedule::Cosine { t_max, eta_min });
    assert_rejected(step(0, 0.5), "step_size");
    assert_rejected(step(10, 0.0), "gamma");
    assert_rejected(step(10, f32::NAN), "gamma");
    assert_rejected(cosine(0, 0.0), "t_max");
    assert_rejected(cosine(10, -0.01), "eta_min");
    assert_rejected(cosine(10, 0.2), "eta_min");
    assert_rejected(
        sgd.with_schedule(Schedule::ReduceOnPlateau { factor: 1.0 }),
        "factor",
    );
    assert_rejected(
        sgd.with_schedule(Schedule::ReduceOnPlateau { factor: 0.0 }),
        "factor",
    );
}

#[test]
fn torch_defaults_validate() {
    for cfg in [
        OptimizerConfig::sgd(0.1),
        OptimizerConfig::momentum(0.1, 0.9),
        OptimizerConfig::nesterov(0.1, 0.9),
        OptimizerConfig::adagrad(),
        OptimizerConfig::rmsprop(),
        OptimizerConfig::adam(),
        OptimizerConfig::adamw(),
        OptimizerConfig::adam().with_schedule(Schedule::reduce_on_plateau()),
    ] {
        cfg.validate()
            .unwrap_or_else(|e| panic!("{}: {e}", cfg.name()));
    }
}

#[test]
fn gradients_of_another_length_are_rejected() {
    let g = gpu();
    let p = GpuTensor::<f32>::zeros(g, &[4]).unwrap();
    let gr = GpuTensor::<f32>::zeros(g, &[5]).unwrap();
    let err = GpuOptimizer::new(g, OptimizerConfig::adam(), &p, &gr).unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
    let mut c = CpuOptimizer::new(OptimizerConfig::adam(), 4).unwrap();
    assert!(c.step(&mut [0.0; 4], &[0.0; 5]).is_err());
}

#[test]
fn params_and_grads_in_one_buffer_are_rejected() {
    let g = gpu();
    let flat = GpuTensor::<f32>::zeros(g, &[8]).unwrap();
    let p = flat.view(0, &[4]).unwrap();
    let gr = flat.view(4, &[4]).unwrap();
    let err = GpuOptimizer::new(g, OptimizerConfig::adam(), &p, &gr).unwrap_err();
    assert!(err.to_string().contains("share a buffer"), "{err}");
}

/// ndarray users: a 2-D weight's storage is one slice.
#[test]
fn cpu_twin_updates_an_ndarray_weight_in_place() {
    let mut w = ndarray::Array2::<f32>::ones((2, 3));
    let grad = ArrayView2::from_shape((2, 3), &[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
    let mut opt = CpuOptimizer::new(OptimizerConfig::sgd(0.5), w.len()).unwrap();
    opt.step(w.as_slice_mut().unwrap(), grad.as_slice().unwrap())
        .unwrap();
    assert_eq!(w.as_slice().unwrap(), &[0.5, 0.0, -0.5, -1.0, -1.5, -2.0]);
}
