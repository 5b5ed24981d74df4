//! The optimizer v2 (host-planned step scalars, no `advance` dispatch)
//! against the CPU twin and against v1.

use crate::common::{gpu, random};
use wgpu_train::GpuTensor;
use wgpu_train::cpu::{self, CpuOptimizer, Tolerance};
use wgpu_train::kernels::GpuOptimizer;
use wgpu_train::optim::{Adam, OptimizerConfig, RmsProp, Schedule, Sgd};

// ------------------------------------------------------ planned optimizer

/// `steps` updates of `cfg` on random parameters and gradients, in chunks
/// of `chunk` (one plan and one submit each), on the GPU (v1 or v2) and on
/// the CPU twin; returns both sides' parameters and states.
fn planned_vs_cpu(cfg: OptimizerConfig, steps: usize, chunk: usize, planned: bool) {
    let g = gpu();
    let n = 1031;
    let p0 = random(&[n], 21).into_raw_vec_and_offset().0;
    let grads: Vec<Vec<f32>> = (0..steps)
        .map(|k| random(&[n], 200 + k as u64).into_raw_vec_and_offset().0)
        .collect();
    let params_buf = GpuTensor::<f32>::zeros(g, &[n + 9]).unwrap();
    params_buf.fill(g, f32::NAN).unwrap();
    let params = params_buf.view(4, &[n]).unwrap();
    params.write(g, &p0).unwrap();
    let grad = GpuTensor::<f32>::zeros(g, &[n]).unwrap();
    let bank: Vec<f32> = grads.iter().flatten().copied().collect();
    let bank = GpuTensor::from_slice(g, &[bank.len()], &bank).unwrap();
    let mut opt = if planned {
        GpuOptimizer::with_planned_steps(g, cfg, &params, &grad, chunk).unwrap()
    } else {
        GpuOptimizer::new(g, cfg, &params, &grad).unwrap()
    };
    assert_eq!(opt.dispatches(), if planned { 1 } else { 2 });
    let mut cpu_opt = CpuOptimizer::new(cfg, n).unwrap();
    let mut p = p0.clone();
    let mut done = 0;
    while done < steps {
        let len = chunk.min(steps - done);
        if planned {
            opt.plan(g, len).unwrap();
        }
        let mut enc = g.encoder("planned steps");
        for i in 0..len {
            enc.copy_buffer_to_buffer(
                bank.buffer(),
                ((done + i) * n * 4) as u64,
                grad.buffer(),
                0,
                (n * 4) as u64,
            );
            let mut pass = enc.begin_compute_pass(&Default::default());
            if planned {
                opt.record_planned(&mut pass, i).unwrap();
            } else {
                opt.record(&mut pass);
            }
        }
        g.submit(enc).unwrap();
        for gk in &grads[done..done + len] {
            cpu_opt.step(&mut p, gk).unwrap();
        }
        done += len;
        let what = format!("{} planned={planned} after {done} steps", cfg.name());
        let gp = params.read(g).unwrap();
        cpu::assert_close(
            &what,
            &ndarray::ArrayView1::from(&gp[..]),
            &ndarray::ArrayView1::from(&p[..]),
            Tolerance::new(2e-6, 2e-5),
        );
        for (s, e) in opt.state().iter().zip(cpu_opt.state()) {
            cpu::assert_close(
                &format!("{what}: state"),
                &ndarray::ArrayView1::from(&s.read(g).unwrap()[..]),
                &ndarray::ArrayView1::from(&e[..]),
                Tolerance::new(2e-6, 2e-5),
            );
        }
        assert_eq!(opt.step_scalars(g).unwrap().t as usize, done, "{what}");
        let moved = gp.iter().zip(&p0).filter(|(x, y)| x != y).count();
        assert!(moved > n / 2, "{what}: only {moved} parameters moved");
    }
    let all = params_buf.read(g).unwrap();
    assert!(all[..4].iter().chain(&all[4 + n..]).all(|x| x.is_nan()));
}

#[test]
fn planned_optimizer_matches_cpu_for_every_rule() {
    for cfg in [
        OptimizerConfig::sgd(0.1),
        OptimizerConfig::nesterov(0.05, 0.9),
        OptimizerConfig::new(
            0.05,
            Sgd {
                momentum: 0.9,
                dampening: 0.3,
                weight_decay: 0.01,
                nesterov: false,
            },
        ),
        OptimizerConfig::adagrad(),
        OptimizerConfig::new(
            0.01,
            RmsProp {
                centered: true,
                momentum: 0.5,
                ..RmsProp::default()
            },
        ),
        OptimizerConfig::new(
            0.01,
            Adam {
                amsgrad: true,
                ..Adam::default()
            },
        ),
        OptimizerConfig::adamw(),
        OptimizerConfig::momentum(0.1, 0.9).with_schedule(Schedule::StepDecay {
            step_size: 7,
            gamma: 0.5,
        }),
        OptimizerConfig::new(0.01, Adam::default()).with_schedule(Schedule::Cosine {
            t_max: 40,
            eta_min: 1e-3,
        }),
    ] {
        // 50 steps planned 16 at a time: plans continue one another.
        planned_vs_cpu(cfg, 50, 16, true);
    }
}

#[test]
fn unplanned_optimizer_still_matches_cpu() {
    planned_vs_cpu(OptimizerConfig::adam(), 20, 7, false);
}

/// v2 reads the scalars v1's `advance` would compute on the GPU; with the
/// same updates the parameters agree to the update's rounding (exactly,
/// where the adapter's division and square root are IEEE's, as lavapipe's).
#[test]
fn planned_optimizer_equals_advance_on_the_gpu() {
    let g = gpu();
    let n = 777;
    let p0 = random(&[n], 31).into_raw_vec_and_offset().0;
    let grads = GpuTensor::from_array(g, &random(&[n], 32)).unwrap();
    let cfg = OptimizerConfig::adam();
    let run = |planned: bool| {
        let params = GpuTensor::from_slice(g, &[n], &p0).unwrap();
        let mut opt = if planned {
            GpuOptimizer::with_planned_steps(g, cfg, &params, &grads, 30).unwrap()
        } else {
            GpuOptimizer::new(g, cfg, &params, &grads).unwrap()
        };
        if planned {
            opt.plan(g, 30).unwrap();
        }
        opt.run(g, 30).unwrap();
        (params.read(g).unwrap(), opt.step_scalars(g).unwrap())
    };
    let (pv, sv) = run(true);
    let (pa, sa) = run(false);
    assert_eq!(sv.t, sa.t);
    cpu::assert_close(
        "v2 vs v1 parameters",
        &ndarray::ArrayView1::from(&pv[..]),
        &ndarray::ArrayView1::from(&pa[..]),
        Tolerance::new(1e-6, 1e-5),
    );
}

#[test]
fn planned_optimizer_errors() {
    let g = gpu();
    let p = GpuTensor::<f32>::zeros(g, &[8]).unwrap();
    let gr = GpuTensor::<f32>::zeros(g, &[8]).unwrap();
    let cfg = OptimizerConfig::sgd(0.1);
    assert!(GpuOptimizer::with_planned_steps(g, cfg, &p, &gr, 0).is_err());
    let mut opt = GpuOptimizer::with_planned_steps(g, cfg, &p, &gr, 4).unwrap();
    let e = opt.plan(g, 5).unwrap_err().to_string();
    assert!(e.contains("do not fit"), "{e}");
    opt.plan(g, 2).unwrap();
    let mut enc = g.encoder("t");
    {
        let mut pass = enc.begin_compute_pass(&Default::default());
        let e = opt.record_planned(&mut pass, 2).unwrap_err().to_string();
        assert!(e.contains("not planned"), "{e}");
    }
    let mut v1 = GpuOptimizer::new(g, cfg, &p, &gr).unwrap();
    assert!(v1.plan(g, 1).is_err());
}
