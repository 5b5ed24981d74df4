//! The notebook's four optimisation strategies (`wgpu_train::lab::strategies`,
//! printed by `examples/strategies.rs`), run in the example's `--quick`
//! configuration on the GPU and the CPU twins, checked against what the
//! notebook says they give and against each other.

use crate::common;
use std::sync::Arc;
use wgpu_train::lab::strategies::{
    Backend, CIFAR_CLASSES, CIFAR_DIM, CpuBackend, GpuBackend, Options, Problem, ScoreLayout,
    Split, Strategies, randn, step_ranges,
};

const LN_10: f32 = std::f32::consts::LN_10;

/// The example's `--quick` problem: 1,000 training and 500 test examples of
/// CIFAR's 3,072 Gaussian values (plus the 1), random labels.
fn quick() -> Strategies<'static> {
    let problem = Problem::synthetic(1000, 500, CIFAR_DIM, CIFAR_CLASSES, 0).expect("synthetic");
    Strategies::new(common::gpu(), problem, Options::quick()).expect("strategies")
}

#[test]
fn random_search_losses_sit_near_ln_10_and_match_the_cpu() {
    let r = quick().random_search().expect("random search");
    assert_eq!(r.gpu.losses.len(), 100);
    for (i, (&g, &c)) in r.gpu.losses.iter().zip(&r.cpu.losses).enumerate() {
        // W = 1e-4·randn gives logits of ~5e-3: every class near 1/10.
        assert!((g - LN_10).abs() < 5e-3, "candidate {i}: GPU loss {g}");
        assert!((g - c).abs() < 1e-5, "candidate {i}: GPU {g} vs CPU {c}");
    }
    // The GPU's best is the CPU's best up to rounding.
    assert!(r.cpu.losses[r.gpu.best] <= r.cpu.losses[r.cpu.best] + 1e-5);
    assert!(r.gpu.dispatches.is_some_and(|d| d > 0));
    // Random labels: the best W is still at chance on the test set.
    for acc in [r.gpu.best_test.accuracy, r.cpu.best_test.accuracy] {
        assert!((0.0..=0.25).contains(&acc), "test accuracy {acc}");
    }
    assert!((r.gpu.best_test.accuracy - r.cpu.best_test.accuracy).abs() <= 2.0 / 500.0);
}

#[test]
fn local_search_never_gets_worse_and_matches_the_cpu() {
    let r = quick().local_search().expect("local search");
    for l in [&r.gpu, &r.cpu] {
        assert_eq!(l.tried.len(), 100);
        assert!(l.accepted >= 1);
        assert!(l.best.windows(2).all(|w| w[1] <= w[0]), "best went up");
        assert_eq!(l.best[0], l.tried[0], "the first try is always kept");
        assert!(l.best[99] < l.tried[0]);
    }
    assert!((r.gpu.tried[0] - r.cpu.tried[0]).abs() < 1e-5);
    // Both walks keep the same tries unless two losses tie within rounding.
    assert!((r.gpu.best[99] - r.cpu.best[99]).abs() < 1e-4);
}

#[test]
fn analytic_gradients_agree_with_centred_differences() {
    let (num, r) = quick().gradient_check().expect("gradient check");
    assert_eq!(num.numeric.len(), 10);
    // The f64 differences themselves are right (rounding ~ 2e-16·L/h).
    assert!(
        num.f64_max_rel_error < 1e-5,
        "f64: {}",
        num.f64_max_rel_error
    );
    for (side, g) in [("GPU", &r.gpu), ("CPU", &r.cpu)] {
        assert_eq!(g.checks.len(), 10);
        // f32 gradients: a few ulps of the larger terms they sum.
        assert!(
            g.max_rel_error < 1e-4,
            "{side}: max relative error {:.2e}: {:?}",
            g.max_rel_error,
            g.checks
        );
        assert!((g.loss - LN_10).abs() < 0.05, "{side} loss {}", g.loss);
    }
    assert!((r.gpu.loss - r.cpu.loss).abs() < 1e-5);
}

#[test]
fn one_step_along_the_gradient_lowers_the_minibatch_loss() {
    let (_, r) = quick().gradient_check().expect("gradient check");
    for (side, g) in [("GPU", &r.gpu), ("CPU", &r.cpu)] {
        let steps: Vec<f32> = g.sweep.iter().map(|&(s, _)| s).collect();
        assert_eq!(steps.len(), 10);
        assert!((steps[0] - 1e-10).abs() < 1e-16 && (steps[9] - 0.1).abs() < 1e-7);
        let (_, tiny) = g.sweep[0];
        let (_, big) = g.sweep[9];
        assert!(
            (tiny - g.loss).abs() < 1e-5,
            "{side}: 1e-10 step moved {tiny} from {}",
            g.loss
        );
        assert!(
            big < g.loss - 0.1,
            "{side}: step 0.1 gave {big}, from {}",
            g.loss
        );
    }
    for ((s, a), (_, b)) in r.gpu.sweep.iter().zip(&r.cpu.sweep) {
        assert!((a - b).abs() < 1e-5, "step {s}: GPU {a} vs CPU {b}");
    }
}

#[test]
fn minibatch_descent_lowers_the_training_loss_on_gpu_and_cpu() {
    let mut s = quick();
    for batch in [256, 1000] {
        let r = s.descent(batch).expect("descent");
        assert_eq!(r.gpu.steps_per_epoch, 1000usize.div_ceil(batch));
        assert_eq!(r.gpu.dispatches_per_step, Some(6));
        assert_eq!(r.gpu.epochs.len(), 3);
        for (g, c) in r.gpu.epochs.iter().zip(&r.cpu.epochs) {
            assert!(
                (g.loss - c.loss).abs() < 1e-4,
                "batch {batch}: {g:?} vs {c:?}"
            );
            assert!((g.accuracy - c.accuracy).abs() <= 2.0 / 1000.0);
        }
        assert!(
            r.gpu.epochs[2].loss < r.gpu.epochs[0].loss,
            "{:?}",
            r.gpu.epochs
        );
        // Random labels: nothing carries over to the test set.
        assert!((r.gpu.test.loss - LN_10).abs() < 0.05, "{:?}", r.gpu.test);
        assert!((r.gpu.test.accuracy - r.cpu.test.accuracy).abs() <= 2.0 / 500.0);
    }
}

/// A small problem whose splits do not divide into chunks, scored in passes
/// that do not divide the candidates.
fn uneven() -> Arc<Problem> {
    Arc::new(Problem::synthetic(1000, 130, 37, 10, 3).expect("synthetic"))
}

#[test]
fn score_layouts_agree_with_the_cpu_across_uneven_chunks_and_passes() {
    let p = uneven();
    let k = 23;
    let w = randn(k * p.weights(), 0.05, 11);
    let mut cpu = CpuBackend::new(Arc::clone(&p), 300, 64).expect("cpu backend");
    let want = cpu.score(Split::Train, &w).expect("cpu score");
    for (layout, dispatches) in [
        // 4 chunks (300, 300, 300, 100); passes of 7, 7, 7, 2 candidates.
        (ScoreLayout::Batched, 4 * (2 + 7) * 3 + 4 * (2 + 2)),
        (ScoreLayout::Wide, (4 * 3 + 1) * 4),
    ] {
        let mut gpu = GpuBackend::new(common::gpu(), Arc::clone(&p), 300, 64, 7, layout)
            .expect("gpu backend");
        assert_eq!(gpu.candidates_per_pass(), 7);
        let got = gpu.score(Split::Train, &w).expect("gpu score");
        assert_eq!(got.len(), k);
        for (i, (g, c)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - c).abs() <= 1e-5 * c.abs(),
                "{layout:?} candidate {i}: {g} vs {c}"
            );
        }
        assert_eq!(gpu.score_dispatches(), Some(dispatches), "{layout:?}");
        // Accuracy (the batched layout with one candidate) on the test split.
        let one = &w[..p.weights()];
        let (g, c) = (
            gpu.evaluate(Split::Test, one).expect("gpu evaluate"),
            cpu.evaluate(Split::Test, one).expect("cpu evaluate"),
        );
        assert!(
            (g.loss - c.loss).abs() < 1e-5 && g.accuracy == c.accuracy,
            "{g:?} vs {c:?}"
        );
    }
}

#[test]
fn descent_batches_never_cross_chunks() {
    let r = step_ranges(1000, 300, 256);
    let want = [
        0..256,
        256..300,
        300..556,
        556..600,
        600..856,
        856..900,
        900..1000,
    ];
    assert_eq!(r, want);
    let p = uneven();
    let w0 = randn(p.weights(), 1e-3, 5);
    let mut cpu = CpuBackend::new(Arc::clone(&p), 300, 64).expect("cpu backend");
    let mut gpu = GpuBackend::new(
        common::gpu(),
        Arc::clone(&p),
        300,
        64,
        100,
        ScoreLayout::Auto,
    )
    .expect("gpu backend");
    let (gs, gw) = gpu.descend(&w0, 256, 2, 0.05).expect("gpu descend");
    let (cs, cw) = cpu.descend(&w0, 256, 2, 0.05).expect("cpu descend");
    for (g, c) in gs.iter().zip(&cs) {
        assert!((g.loss - c.loss).abs() < 1e-5, "{g:?} vs {c:?}");
    }
    let worst = gw
        .iter()
        .zip(&cw)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-5, "W differs by {worst}");
}

#[test]
fn bad_options_and_weights_are_errors() {
    let bad = [
        Options {
            candidates: 0,
            ..Options::quick()
        },
        Options {
            batches: vec![256, 0],
            ..Options::quick()
        },
        Options {
            grad_h: 0.0,
            ..Options::quick()
        },
        Options {
            lr: f32::NAN,
            ..Options::quick()
        },
        Options {
            step_sizes: vec![],
            ..Options::quick()
        },
    ];
    for o in bad {
        let p = Problem::synthetic(10, 5, 3, 10, 0).expect("synthetic");
        let e = Strategies::new(common::gpu(), p, o.clone()).err();
        assert!(e.is_some(), "accepted {o:?}");
    }
    let p = uneven();
    let mut gpu = GpuBackend::new(common::gpu(), Arc::clone(&p), 300, 64, 7, ScoreLayout::Auto)
        .expect("gpu backend");
    let short = vec![0.0f32; p.weights() - 1];
    assert!(gpu.score(Split::Train, &short).is_err());
    assert!(gpu.gradient(&short).is_err());
    let mut cpu = CpuBackend::new(Arc::clone(&p), 300, 64).expect("cpu backend");
    assert!(cpu.evaluate(Split::Test, &short).is_err());
    // A problem whose rows and labels disagree is refused, not sliced.
    let mut broken = (*p).clone();
    broken.y_train.pop();
    assert!(CpuBackend::new(Arc::new(broken.clone()), 300, 64).is_err());
    let gpu = GpuBackend::new(
        common::gpu(),
        Arc::new(broken),
        300,
        64,
        7,
        ScoreLayout::Auto,
    );
    assert!(gpu.is_err());
}
