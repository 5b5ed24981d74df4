//! The sweep's optimizer (`shaders/sweep_optim.wgsl`): K models' updates,
//! one dispatch per rule variant, per-model hyperparameters, against the CPU
//! twin (`cpu::sweep_optim`) and against each model's one-model planned
//! update (`GpuOptimizer`), which it must match bit for bit.

use crate::common::{bits, gpu, random};
use wgpu_train::GpuTensor;
use wgpu_train::cpu::sweep_optim::CpuSweepOptimizer;
use wgpu_train::cpu::{self, Tolerance};
use wgpu_train::kernels::{GpuOptimizer, SweepOptimizer};
use wgpu_train::optim::{Adagrad, Adam, OptimizerConfig, RmsProp, Schedule};

/// Interleaved rules (so groups are split), differing hyperparameters
/// within a rule, a schedule, and Adagrad's initial accumulator.
fn configs() -> Vec<OptimizerConfig> {
    vec![
        OptimizerConfig::sgd(0.1),
        OptimizerConfig::sgd(0.02),
        OptimizerConfig::new(
            3e-3,
            Adam {
                beta1: 0.8,
                ..Adam::default()
            },
        ),
        OptimizerConfig::adam(),
        OptimizerConfig::momentum(0.05, 0.9),
        OptimizerConfig::sgd(0.3).with_schedule(Schedule::Cosine {
            t_max: 3,
            eta_min: 0.01,
        }),
        OptimizerConfig::new(
            0.01,
            Adagrad {
                initial_accumulator_value: 0.1,
                ..Adagrad::default()
            },
        ),
        OptimizerConfig::new(
            0.01,
            RmsProp {
                centered: true,
                momentum: 0.5,
                ..RmsProp::default()
            },
        ),
    ]
}

fn check(per_model: usize, steps: usize) {
    let g = gpu();
    let configs = configs();
    let k = configs.len();
    let n = k * per_model;
    let p0 = random(&[n], per_model as u64).into_raw_vec_and_offset().0;
    let grads: Vec<Vec<f32>> = (0..steps)
        .map(|s| random(&[n], 100 + s as u64).into_raw_vec_and_offset().0)
        .collect();
    // Views at odd offsets into NaN-poisoned buffers.
    let pbuf = GpuTensor::<f32>::zeros(g, &[n + 5]).unwrap();
    pbuf.fill(g, f32::NAN).unwrap();
    let params = pbuf.view(2, &[n]).unwrap();
    params.write(g, &p0).unwrap();
    let gbuf = GpuTensor::<f32>::zeros(g, &[n + 3]).unwrap();
    let grad = gbuf.view(3, &[n]).unwrap();
    let mut opt = SweepOptimizer::new(g, &configs, &params, &grad, steps).unwrap();
    // sgd ×2, adam ×2, momentum, sgd (a schedule is no new variant), adagrad, rmsprop.
    assert_eq!(opt.dispatches(), 6, "one dispatch per run of one variant");
    opt.plan(g, steps).unwrap();
    for (s, gs) in grads.iter().enumerate() {
        grad.write(g, gs).unwrap();
        let mut enc = g.encoder("sweep optim test");
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            opt.record_planned(&mut pass, s).unwrap();
        }
        g.submit(enc).unwrap();
    }
    let all = pbuf.read(g).unwrap();
    assert!(
        all[..2].iter().chain(&all[2 + n..]).all(|v| v.is_nan()),
        "wrote outside the parameters"
    );
    let got = &all[2..2 + n];

    let mut twin = CpuSweepOptimizer::new(&configs, per_model).unwrap();
    let mut want = p0.clone();
    for gs in &grads {
        twin.step(&mut want, gs).unwrap();
    }
    for (m, cfg) in configs.iter().enumerate() {
        let window = m * per_model..(m + 1) * per_model;
        let what = format!("model {m} ({}) of {per_model} parameters", cfg.name());
        cpu::assert_close(
            &what,
            &ndarray::Array1::from_vec(got[window.clone()].to_vec()),
            &ndarray::Array1::from_vec(want[window.clone()].to_vec()),
            Tolerance::new(1e-6, 1e-5),
        );
        let state = opt.state_of(g, m).unwrap();
        let twin_state = twin.model(m).unwrap().state().to_vec();
        assert_eq!(state.len(), twin_state.len(), "{what}: state buffers");
        for (s, t) in state.iter().zip(&twin_state) {
            cpu::assert_close(
                &what,
                &ndarray::Array1::from_vec(s.clone()),
                &ndarray::Array1::from_vec(t.clone()),
                Tolerance::new(1e-6, 1e-5),
            );
        }
        // The model alone, as the one-model planned optimizer: same bits.
        let p = GpuTensor::from_slice(g, &[per_model], &p0[window.clone()]).unwrap();
        let gr = GpuTensor::<f32>::zeros(g, &[per_model]).unwrap();
        let mut one = GpuOptimizer::with_planned_steps(g, *cfg, &p, &gr, steps).unwrap();
        one.plan(g, steps).unwrap();
        for (s, gs) in grads.iter().enumerate() {
            gr.write(g, &gs[window.clone()]).unwrap();
            let mut enc = g.encoder("one model");
            {
                let mut pass = enc.begin_compute_pass(&Default::default());
                one.record_planned(&mut pass, s).unwrap();
            }
            g.submit(enc).unwrap();
        }
        let alone = p.read(g).unwrap();
        // Bits, −0 counted as +0: two pipelines (see `common::bits`).
        assert!(
            bits(&alone) == bits(&got[window]),
            "{what}: differs from the model's one-model update"
        );
    }
}

#[test]
fn eight_models_of_seven_parameters_three_steps() {
    check(7, 3);
}

#[test]
fn eight_models_of_3073_parameters_two_steps() {
    check(3073, 2);
}

#[test]
fn one_parameter_per_model() {
    check(1, 4);
}

#[test]
fn planning_past_capacity_is_refused() {
    let g = gpu();
    let p = GpuTensor::<f32>::zeros(g, &[6]).unwrap();
    let gr = GpuTensor::<f32>::zeros(g, &[6]).unwrap();
    let cfgs = [OptimizerConfig::sgd(0.1), OptimizerConfig::adam()];
    let mut opt = SweepOptimizer::new(g, &cfgs, &p, &gr, 2).unwrap();
    assert!(opt.plan(g, 3).is_err());
    let uneven = [OptimizerConfig::sgd(0.1); 4];
    assert!(
        SweepOptimizer::new(g, &uneven, &p, &gr, 2).is_err(),
        "6 parameters for 4 models"
    );
}
