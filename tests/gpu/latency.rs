//! The latency floor of `gpu_vs_cpu --latency` (issue 23): the benchmark's
//! code runs and returns finite, positive figures (no figure is asserted:
//! speed lives in the benchmarks), and each training step's launches add up
//! to the dispatches the engine counts.

use crate::common::gpu;
use wgpu_train::lab::latency::{self, Floor};
use wgpu_train::model::Model;
use wgpu_train::timing::Plan;
use wgpu_train::train::FusedStep;
use wgpu_train::{Activation, OptimizerConfig};

/// A few short runs: the code paths, not the figures.
fn plan() -> Plan {
    Plan {
        warmup: 1,
        runs: 2,
        target_run_s: 0.001,
        max_reps: 2,
    }
}

fn positive(what: &str, s: f64) {
    assert!(s.is_finite() && s > 0.0, "{what}: {s}");
}

fn small_floor() -> Floor {
    latency::floor(gpu(), &plan(), 8).expect("the floor")
}

#[test]
fn floor_reports_every_case_with_finite_positive_times() {
    let f = small_floor();
    assert_eq!(f.chain, 8);
    assert_eq!(f.runs, 2);
    let cases: Vec<&str> = f.rows.iter().map(|r| r.case).collect();
    assert_eq!(
        cases,
        ["idle", "independent", "chained", "one submit", "submits"]
    );
    for r in &f.rows {
        positive(&format!("{} at 1", r.case), r.one_s);
        positive(&format!("{} at N", r.case), r.n_s);
        // A difference of two noisy medians: finite, its sign not asserted.
        assert!(
            r.per_dispatch_s.is_finite(),
            "{}: {}",
            r.case,
            r.per_dispatch_s
        );
    }
    positive("empty submit", f.empty_submit_s);
    for (what, v) in [("barrier", f.per_barrier()), ("submit", f.per_submit())] {
        assert!(v.is_some_and(f64::is_finite), "{what}: {v:?}");
    }
}

#[test]
fn floor_rejects_a_chain_too_short_for_a_slope() {
    let e = latency::floor(gpu(), &plan(), 1).unwrap_err();
    assert!(e.to_string().contains("at least 2"), "{e}");
}

#[test]
fn step_launches_are_timed_and_add_up_to_the_counted_dispatches() {
    // A small MLP and the linear model, fused (the first product gathers,
    // planned update) and unfused (a gather dispatch, the update's advance).
    let mlp = wgpu_train::model::Mlp::new(&[48, 16, 10], Activation::Relu).unwrap();
    let linear = wgpu_train::model::LinearSoftmax::new(48, 10).unwrap();
    let floor_s = 1e-5;
    for (model, optimizer) in [
        (
            &mlp as &dyn wgpu_train::model::Model,
            OptimizerConfig::adam(),
        ),
        (&linear, OptimizerConfig::sgd(0.1)),
    ] {
        for step in [
            Some(FusedStep::Layers),
            Some(FusedStep::Rows),
            Some(FusedStep::RowsUpdateApart),
            None,
        ] {
            let id = format!("{} {}", model.name(), wgpu_train::train::step_name(step));
            let r = latency::step_vs_floor(
                gpu(),
                &plan(),
                model,
                optimizer,
                7,
                [3, 4, 4],
                step,
                floor_s,
            )
            .unwrap_or_else(|e| panic!("{id}: {e}"));
            assert!(r.parts.len() >= 3, "{id}: {:?}", r.parts);
            assert_eq!(
                r.parts.iter().map(|p| p.dispatches).sum::<usize>(),
                r.dispatches,
                "{id}"
            );
            // The row block's update is part of its weight tiles, where
            // the device binds their buffers: then no update launch.
            let fused_update = step == Some(FusedStep::Rows)
                && model.name() == mlp.name()
                && wgpu_train::kernels::WeightStep::fuses_update(gpu());
            let last = &r.parts.last().unwrap().name;
            if fused_update {
                assert!(last.contains("weight tiles"), "{id}: {last}");
                assert_eq!(r.dispatches, 3, "{id}");
            } else {
                assert!(last.starts_with("update"), "{id}: {last}");
            }
            for p in &r.parts {
                positive(&format!("{id} {}", p.name), p.time.seconds);
                positive(&format!("{id} {} vs floor", p.name), p.vs_floor);
            }
            positive(&format!("{id} step"), r.step.seconds);
            positive(&format!("{id} step vs floor"), r.step_vs_floor());
        }
    }
}
