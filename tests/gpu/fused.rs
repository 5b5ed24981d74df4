//! The fused training programs (issue 13) against the reference ones, and
//! the dispatch counts of both. The fused kernels themselves are tested
//! beside their families: `matmul::epilogue`, `layer_backward`,
//! `gather_matmul`, `softmax_xent::totals`, `optim::planned`.

use crate::common::{bits, gpu};
use wgpu_train::Activation;
use wgpu_train::cpu::{self, Tolerance};
use wgpu_train::data::synthetic::learnable;
use wgpu_train::model::{LinearSoftmax, Mlp, Model};
use wgpu_train::optim::OptimizerConfig;
use wgpu_train::train::{self, CpuEngine, Engine, FusedStep, GpuEngine, TrainConfig, TrainData};

// --------------------------------------------------------------- programs

fn data(n: usize) -> TrainData {
    TrainData::new(
        learnable(n, [1, 28, 28], 41).unwrap(),
        learnable(60, [1, 28, 28], 42).unwrap(),
        0,
        41,
    )
    .unwrap()
}

/// The per-layer fused step (issue 13) when `fused`, else the reference.
pub(crate) fn config(fused: bool, optimizer: OptimizerConfig) -> TrainConfig {
    TrainConfig {
        epochs: 3,
        batch: 64,
        optimizer,
        fused,
        fused_step: FusedStep::Layers,
        ..TrainConfig::default()
    }
}

/// The row-block step (issue 23).
pub(crate) fn rows_config(optimizer: OptimizerConfig) -> TrainConfig {
    TrainConfig {
        fused_step: FusedStep::Rows,
        ..config(true, optimizer)
    }
}

pub(crate) fn run(
    engine: &mut dyn Engine,
    data: &TrainData,
    config: &TrainConfig,
) -> (Vec<f64>, Vec<f32>) {
    let r = train::fit(engine, data, config, 0, &mut |_| {}).unwrap();
    let losses = r.history.epochs.iter().map(|e| e.train_loss).collect();
    (losses, engine.state().unwrap().params)
}

/// On the CPU the fused ops are the reference ops' twins composed, so the
/// two programs give the same bits; on the GPU the fused kernels keep the
/// reference order of operations, so they agree to rounding (and, on
/// lavapipe, whose column sums are serial, bit for bit).
fn check_programs(model: &dyn Model, optimizer: OptimizerConfig) {
    let d = data(300); // 4 full batches of 64 and one of 44
    let (fused, reference) = (config(true, optimizer), config(false, optimizer));
    let (cf, pf) = run(&mut CpuEngine::new(model, &d, &fused).unwrap(), &d, &fused);
    let (cr, pr) = run(
        &mut CpuEngine::new(model, &d, &reference).unwrap(),
        &d,
        &reference,
    );
    assert_eq!(cf, cr, "CPU losses, fused vs reference");
    assert_eq!(bits(&pf), bits(&pr), "CPU parameters, fused vs reference");

    let g = gpu();
    let (gf, gpf) = run(
        &mut GpuEngine::new(g, model, &d, &fused).unwrap(),
        &d,
        &fused,
    );
    let (gr, gpr) = run(
        &mut GpuEngine::new(g, model, &d, &reference).unwrap(),
        &d,
        &reference,
    );
    for (a, b) in gf.iter().zip(&gr) {
        assert!((a - b).abs() <= 1e-5 * b.abs(), "GPU loss {a} vs {b}");
    }
    if g.is_software() {
        // Serial column sums there (ColumnSumKernel::choose), as the ones
        // column adds: nothing left to differ.
        assert_eq!(gf, gr, "GPU losses on a software adapter");
        assert_eq!(
            bits(&gpf),
            bits(&gpr),
            "GPU parameters on a software adapter"
        );
    }
    let close = Tolerance::new(1e-5, 1e-4);
    let v = |p: &[f32]| ndarray::ArrayView1::from(p).to_owned();
    cpu::assert_close("GPU fused vs reference", &v(&gpf), &v(&gpr), close);
    cpu::assert_close(
        "fused GPU vs fused CPU",
        &v(&gpf),
        &v(&pf),
        Tolerance::new(1e-4, 1e-3),
    );
}

#[test]
fn programs_fused_and_reference_agree_mlp_sigmoid_adam() {
    check_programs(&Mlp::mnist(Activation::Sigmoid), OptimizerConfig::adam());
}

#[test]
fn programs_fused_and_reference_agree_mlp_relu_momentum_4_layers() {
    let model = Mlp::new(&[784, 64, 33, 17, 10], Activation::Relu).unwrap();
    check_programs(&model, OptimizerConfig::momentum(0.05, 0.9));
}

#[test]
fn programs_fused_and_reference_agree_linear_sgd() {
    check_programs(
        &LinearSoftmax::new(784, 10).unwrap(),
        OptimizerConfig::sgd(0.1),
    );
}

/// The row-block step (issue 23) against the reference program: its sums
/// are the reference's in another fixed order (split and tree-added), so
/// the two agree to rounding on either runner, and its GPU and CPU runs
/// agree as the per-layer step's do.
fn check_rows_program(model: &dyn Model, optimizer: OptimizerConfig) {
    let d = data(300);
    let (rows, reference) = (rows_config(optimizer), config(false, optimizer));
    let (cf, pf) = run(&mut CpuEngine::new(model, &d, &rows).unwrap(), &d, &rows);
    let (cr, pr) = run(
        &mut CpuEngine::new(model, &d, &reference).unwrap(),
        &d,
        &reference,
    );
    let g = gpu();
    let (gf, gpf) = run(&mut GpuEngine::new(g, model, &d, &rows).unwrap(), &d, &rows);
    for ((a, b), c) in gf.iter().zip(&cf).zip(&cr) {
        assert!((a - b).abs() <= 1e-5 * b.abs(), "GPU loss {a} vs CPU {b}");
        assert!(
            (b - c).abs() <= 1e-5 * c.abs(),
            "CPU loss {b} vs reference {c}"
        );
    }
    let v = |p: &[f32]| ndarray::ArrayView1::from(p).to_owned();
    let close = Tolerance::new(1e-4, 1e-3);
    cpu::assert_close("rows CPU vs reference CPU", &v(&pf), &v(&pr), close);
    cpu::assert_close("rows GPU vs rows CPU", &v(&gpf), &v(&pf), close);
    // GPU runs of the row block repeat bit for bit.
    let (gf2, gpf2) = run(&mut GpuEngine::new(g, model, &d, &rows).unwrap(), &d, &rows);
    assert_eq!(gf, gf2, "GPU losses, run twice");
    assert_eq!(bits(&gpf), bits(&gpf2), "GPU parameters, run twice");
    // The update inside the weight tiles (three dispatches) gives the bits
    // of the update as a dispatch of its own (four), last batch included.
    let apart = TrainConfig {
        fused_step: FusedStep::RowsUpdateApart,
        ..rows.clone()
    };
    let (ga, gpa) = run(
        &mut GpuEngine::new(g, model, &d, &apart).unwrap(),
        &d,
        &apart,
    );
    assert_eq!(gf, ga, "GPU losses, update fused vs apart");
    assert_eq!(
        bits(&gpf),
        bits(&gpa),
        "GPU parameters, update fused vs apart"
    );
}

#[test]
fn programs_rows_and_reference_agree_mlp_sigmoid_adam() {
    check_rows_program(&Mlp::mnist(Activation::Sigmoid), OptimizerConfig::adam());
}

#[test]
fn programs_rows_and_reference_agree_mlp_relu_momentum_4_layers() {
    let model = Mlp::new(&[784, 64, 33, 17, 10], Activation::Relu).unwrap();
    check_rows_program(&model, OptimizerConfig::momentum(0.05, 0.9));
}

/// The counts the engine reports (and `--json` prints): the reference
/// program's, and the fused one's.
#[test]
fn programs_dispatch_counts() {
    let g = gpu();
    let d = data(256);
    let mlp = Mlp::mnist(Activation::Sigmoid);
    let linear = LinearSoftmax::new(784, 10).unwrap();
    let count_with = |model: &dyn Model, cfg: &TrainConfig| {
        GpuEngine::new(g, model, &d, cfg)
            .unwrap()
            .dispatches_per_step()
            .unwrap()
    };
    let count =
        |model: &dyn Model, fused: bool| count_with(model, &config(fused, OptimizerConfig::adam()));
    assert_eq!(count(&mlp, false), 16.0);
    assert_eq!(count(&linear, false), 7.0);
    let (m, l) = (count(&mlp, true), count(&linear, true));
    eprintln!("fused: MLP {m} dispatches per step, linear {l}");
    // The targets: at most 9 and 4 (from 16 and 7).
    assert!(m <= 9.0, "MLP: {m}");
    assert!(l <= 4.0, "linear: {l}");
    // The row-block step: D1 (gather + layer 1), D2 (the row block), D3
    // (every weight gradient, the loss totals and, where the device binds
    // the twelve buffers it needs, the optimizer's update), else the
    // optimizer's own dispatch after them.
    let rows = count_with(&mlp, &rows_config(OptimizerConfig::adam()));
    let apart = TrainConfig {
        fused_step: FusedStep::RowsUpdateApart,
        ..rows_config(OptimizerConfig::adam())
    };
    let rows_apart = count_with(&mlp, &apart);
    eprintln!("rows: MLP {rows} dispatches per step ({rows_apart} with the update apart)");
    assert_eq!(rows_apart, 4.0, "MLP, row block, update apart");
    let fuses = wgpu_train::kernels::WeightStep::fuses_update(g);
    assert_eq!(rows, if fuses { 3.0 } else { 4.0 }, "MLP, row block");
}

/// Under WebGPU's default limits (8 storage buffers a stage, as in many
/// browsers) the weight tiles cannot bind the update's buffers: the engine
/// records the update as a dispatch of its own (four a step), with the
/// bits of the three-dispatch step on the full device.
#[test]
fn rows_step_under_webgpu_limits_records_the_update_apart_with_the_same_bits() {
    let limited = wgpu_train::Gpu::with_options(wgpu_train::GpuOptions {
        limits: Some(wgpu::Limits::default()),
        ..wgpu_train::GpuOptions::default()
    })
    .unwrap();
    assert!(!wgpu_train::kernels::WeightStep::fuses_update(&limited));
    let model = Mlp::new(&[784, 32, 17, 10], Activation::Sigmoid).unwrap();
    let d = data(150);
    let config = rows_config(OptimizerConfig::adam());
    let mut engine = GpuEngine::new(&limited, &model, &d, &config).unwrap();
    assert_eq!(engine.dispatches_per_step(), Some(4.0));
    let (losses, params) = run(&mut engine, &d, &config);
    let g = gpu();
    let mut full = GpuEngine::new(g, &model, &d, &config).unwrap();
    let fused = wgpu_train::kernels::WeightStep::fuses_update(g);
    assert_eq!(
        full.dispatches_per_step(),
        Some(if fused { 3.0 } else { 4.0 })
    );
    let (full_losses, full_params) = run(&mut full, &d, &config);
    assert_eq!(losses, full_losses, "losses, limited vs full device");
    assert_eq!(
        bits(&params),
        bits(&full_params),
        "parameters, limited vs full device"
    );
}
