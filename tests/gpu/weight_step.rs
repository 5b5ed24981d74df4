//! `shaders/weight_step.wgsl`: every layer's weight and bias gradients and
//! the batch's loss totals in one dispatch, against its CPU twin, with the
//! gradients poisoned with NaN (and gaps between them that must stay NaN),
//! and bit for bit against the per-layer ones-column products it replaces.

use crate::common::{bits, gpu, product_tolerance as tolerance, random, random_labels};
use ndarray::{Array1, Array2, Ix2};
use wgpu_train::cpu::weight_step::{WeightGradRows, weight_step_into};
use wgpu_train::cpu::{self};
use wgpu_train::kernels::weight_step::{Update, WeightGradLayer};
use wgpu_train::kernels::{Matmul, MatmulEpilogue, WeightStep};
use wgpu_train::{GpuTensor, MatmulKernel, MatmulOptions};

fn two(a: ndarray::ArrayD<f32>) -> Array2<f32> {
    a.into_dimensionality::<Ix2>().unwrap()
}

/// `widths` = [input, w1, …, classes]: layer l reads width l, writes l + 1.
fn check_weight_step(rows: usize, widths: &[usize]) {
    let g = gpu();
    let n = widths.len() - 1;
    let seed = (rows * 131 + widths.iter().sum::<usize>() * 17 + n) as u64;
    let hs: Vec<Array2<f32>> = (0..n)
        .map(|l| two(random(&[rows, widths[l]], seed + l as u64)))
        .collect();
    let dzs: Vec<Array2<f32>> = (0..n)
        .map(|l| two(random(&[rows, widths[l + 1]], seed + 20 + l as u64)))
        .collect();
    let loss: Vec<f32> = random(&[rows], seed + 40).iter().map(|v| v.abs()).collect();
    let correct: Vec<u32> = random_labels(rows, 2, seed + 41);

    let mut want_dw: Vec<Array2<f32>> = (0..n)
        .map(|l| Array2::zeros((widths[l + 1], widths[l])))
        .collect();
    let mut want_db: Vec<Array1<f32>> = (0..n).map(|l| Array1::zeros(widths[l + 1])).collect();
    let (mut total, mut count) = (1.5f32, 3u32);
    weight_step_into(
        want_dw
            .iter_mut()
            .zip(want_db.iter_mut())
            .enumerate()
            .map(|(l, (dw, db))| WeightGradRows {
                dz: dzs[l].view(),
                h: hs[l].view(),
                dw: dw.view_mut(),
                db: db.view_mut(),
            })
            .collect(),
        &loss,
        &correct,
        &mut total,
        &mut count,
    )
    .unwrap();

    // x alone; every other h and every dz in one arena, after gaps.
    let x = GpuTensor::from_array(g, &hs[0]).unwrap();
    let sizes: Vec<usize> = hs[1..]
        .iter()
        .map(|h| h.len())
        .chain(dzs.iter().map(|d| d.len()))
        .collect();
    let arena =
        GpuTensor::<f32>::zeros(g, &[sizes.iter().map(|s| s + 1).sum::<usize>() + 1]).unwrap();
    arena.fill(g, f32::NAN).unwrap();
    let mut views = Vec::new();
    let mut off = 1;
    for (a, shape) in hs[1..]
        .iter()
        .chain(&dzs)
        .map(|a| (a, [a.nrows(), a.ncols()]))
    {
        let v = arena.view(off, &shape).unwrap();
        v.write(g, a.as_slice().unwrap()).unwrap();
        views.push(v);
        off += a.len() + 1;
    }
    let (gh, gdz) = views.split_at(n - 1);
    let mut grad_len = 1;
    let mut at = Vec::new();
    for l in 0..n {
        at.push((grad_len, grad_len + widths[l] * widths[l + 1] + 1));
        grad_len += widths[l] * widths[l + 1] + widths[l + 1] + 2;
    }
    let grads = GpuTensor::<f32>::zeros(g, &[grad_len]).unwrap();
    grads.fill(g, f32::NAN).unwrap();
    let dw: Vec<_> = (0..n)
        .map(|l| grads.view(at[l].0, &[widths[l + 1], widths[l]]).unwrap())
        .collect();
    let db: Vec<_> = (0..n)
        .map(|l| grads.view(at[l].1, &[widths[l + 1]]).unwrap())
        .collect();
    let gloss = GpuTensor::from_slice(g, &[rows], &loss).unwrap();
    let gcorrect = GpuTensor::from_slice(g, &[rows], &correct).unwrap();
    let lt = GpuTensor::from_slice(g, &[1], &[1.5f32]).unwrap();
    let ct = GpuTensor::from_slice(g, &[1], &[3u32]).unwrap();
    let layers: Vec<WeightGradLayer> = (0..n)
        .map(|l| WeightGradLayer {
            dz: &gdz[l],
            h: if l == 0 { &x } else { &gh[l - 1] },
            dw: &dw[l],
            db: &db[l],
        })
        .collect();
    WeightStep::new(g, &layers, &gloss, &gcorrect, &lt, &ct, None)
        .unwrap()
        .run(g, 1)
        .unwrap();

    let what = format!("rows {rows} widths {widths:?}");
    for l in 0..n {
        cpu::assert_close(
            &format!("{what}: dw{}", l + 1),
            &dw[l].to_array(g).unwrap(),
            &want_dw[l].clone().into_dyn(),
            tolerance(rows),
        );
        cpu::assert_close(
            &format!("{what}: db{}", l + 1),
            &db[l].to_array(g).unwrap(),
            &want_db[l].clone().into_dyn(),
            tolerance(rows),
        );
    }
    let raw = grads.read(g).unwrap();
    let written: usize = (0..n).map(|l| widths[l + 1] * (widths[l] + 1)).sum();
    assert_eq!(
        raw.iter().filter(|v| v.is_nan()).count(),
        raw.len() - written,
        "{what}: wrote outside dw and db"
    );
    let tol = tolerance(rows);
    let got = lt.read(g).unwrap()[0];
    assert!(
        tol.accepts(got, total),
        "{what}: loss total {got} vs {total}"
    );
    assert_eq!(ct.read(g).unwrap()[0], count, "{what}: correct total");

    // The per-layer ones-column products it replaces, bit for bit.
    let before: Vec<_> = (0..n)
        .map(|l| (bits(&dw[l].read(g).unwrap()), bits(&db[l].read(g).unwrap())))
        .collect();
    for l in 0..n {
        Matmul::fused(
            g,
            &gdz[l],
            layers[l].h,
            &dw[l],
            MatmulOptions::tn(),
            MatmulEpilogue::OnesColumn { sums: &db[l] },
            MatmulKernel::V2Blocked,
        )
        .unwrap()
        .run(g, 1)
        .unwrap();
        assert_eq!(
            bits(&dw[l].read(g).unwrap()),
            before[l].0,
            "{what}: dw{} bits",
            l + 1
        );
        assert_eq!(
            bits(&db[l].read(g).unwrap()),
            before[l].1,
            "{what}: db{} bits",
            l + 1
        );
    }
}

mod shapes {
    use super::*;

    macro_rules! cases {
        ($($name:ident: $rows:expr, $widths:expr;)*) => {
            $(#[test] fn $name() { check_weight_step($rows, &$widths) })*
        };
    }

    cases! {
        batch_1_mnist: 1, [784, 128, 128, 10];
        batch_7_mnist: 7, [784, 128, 128, 10];
        batch_128_mnist: 128, [784, 128, 128, 10];
        batch_129_widths_7_three_classes: 129, [29, 7, 7, 3];
        widths_1: 7, [1, 1, 1, 3];
        one_layer: 9, [33, 10];
        five_layers_odd: 44, [65, 64, 33, 17, 10, 3];
        batch_300_totals_wrap_256_lanes: 300, [5, 4, 3];
    }
}

#[test]
fn weight_step_shape_errors() {
    let g = gpu();
    let x = GpuTensor::<f32>::zeros(g, &[2, 4]).unwrap();
    let arena = GpuTensor::<f32>::zeros(g, &[2 * 3]).unwrap();
    let dz = arena.view(0, &[2, 3]).unwrap();
    let grads = GpuTensor::<f32>::zeros(g, &[3 * 4 + 3]).unwrap();
    let (dw, db) = (
        grads.view(0, &[3, 4]).unwrap(),
        grads.view(12, &[3]).unwrap(),
    );
    let loss = GpuTensor::<f32>::zeros(g, &[2]).unwrap();
    let correct = GpuTensor::<u32>::zeros(g, &[2]).unwrap();
    let (lt, ct) = (
        GpuTensor::<f32>::zeros(g, &[1]).unwrap(),
        GpuTensor::<u32>::zeros(g, &[1]).unwrap(),
    );
    let layer = |h, dz, dw, db| WeightGradLayer { dz, h, dw, db };
    let build = |layers: &[WeightGradLayer<'_>], update| {
        WeightStep::new(g, layers, &loss, &correct, &lt, &ct, update)
    };
    let error = |layers: &[WeightGradLayer<'_>], update| {
        build(layers, update).err().expect("an error").to_string()
    };
    let ok = build(&[layer(&x, &dz, &dw, &db)], None);
    assert!(ok.is_ok(), "{:?}", ok.err());
    let wrong = grads.view(0, &[4, 3]).unwrap();
    let e = error(&[layer(&x, &dz, &wrong, &db)], None);
    assert!(e.contains("dw must have shape [3, 4]"), "{e}");
    let overlap = grads.view(10, &[3]).unwrap();
    let e = error(&[layer(&x, &dz, &dw, &overlap)], None);
    assert!(e.contains("overlap"), "{e}");
    let e = error(&[], None);
    assert!(e.contains("no layers"), "{e}");
    // With the update: gradients that leave an element of the optimizer
    // out, a v1 optimizer, or a `params` that is not the optimizer's are
    // refused before anything is built.
    use wgpu_train::kernels::GpuOptimizer;
    use wgpu_train::optim::OptimizerConfig;
    let params = GpuTensor::<f32>::zeros(g, &[16]).unwrap();
    let grads16 = GpuTensor::<f32>::zeros(g, &[16]).unwrap();
    let adam = OptimizerConfig::adam();
    let opt = GpuOptimizer::with_planned_steps(g, adam, &params, &grads16, 1).unwrap();
    let one = [layer(&x, &dz, &dw, &db)];
    let update = |params, optimizer| error(&one, Some(Update { params, optimizer }));
    let e = update(&params, &opt);
    assert!(e.contains("cover 15 of the optimizer's 16"), "{e}");
    let unplanned = GpuOptimizer::new(g, adam, &params, &grads16).unwrap();
    let e = update(&params, &unplanned);
    assert!(e.contains("planned steps"), "{e}");
    let e = update(&params.view(1, &[15]).unwrap(), &opt);
    assert!(e.contains("not the optimizer's"), "{e}");
}

/// The weight tiles with the optimizer's update (issue 23's D3) against the
/// weight tiles followed by the optimizer's own dispatch: the same
/// parameters, state and gradients, bit for bit, for every rule and variant,
/// over three steps (three planned slots) at awkward shapes.
mod with_update {
    use super::*;
    use wgpu_train::kernels::GpuOptimizer;
    use wgpu_train::optim::{Adagrad, Adam, AdamVariant, OptimizerConfig, RmsProp, RmsPropVariant};

    fn configs() -> Vec<OptimizerConfig> {
        let mut c = vec![
            OptimizerConfig::sgd(0.1),
            OptimizerConfig::momentum(0.1, 0.9),
            OptimizerConfig::nesterov(0.1, 0.9),
            OptimizerConfig::new(0.05, Adagrad::default()),
            OptimizerConfig::adam(),
            OptimizerConfig::adamw(),
        ];
        for (momentum, centered, variant) in [
            (0.0, false, RmsPropVariant::Torch),
            (0.9, true, RmsPropVariant::Torch),
            (0.9, true, RmsPropVariant::Keras),
        ] {
            c.push(OptimizerConfig::new(
                0.01,
                RmsProp {
                    momentum,
                    centered,
                    variant,
                    ..RmsProp::default()
                },
            ));
        }
        c.push(OptimizerConfig::new(
            1e-3,
            Adam {
                amsgrad: true,
                weight_decay: 1e-2,
                variant: AdamVariant::Keras,
                ..Adam::default()
            },
        ));
        c
    }

    /// Runs `steps` steps of the layers `widths` on `rows` rows, fused or
    /// not; returns the parameters, gradients and state read back.
    fn run(
        rows: usize,
        widths: &[usize],
        config: OptimizerConfig,
        fused: bool,
    ) -> (Vec<f32>, Vec<f32>, Vec<Vec<f32>>) {
        let g = gpu();
        let n = widths.len() - 1;
        let seed = (rows * 7 + widths.iter().sum::<usize>()) as u64;
        let x = GpuTensor::from_array(g, &two(random(&[rows, widths[0]], seed))).unwrap();
        let arena_len: usize = (1..n).map(|l| rows * widths[l]).sum::<usize>()
            + (1..=n).map(|l| rows * widths[l]).sum::<usize>();
        let arena = GpuTensor::from_array(g, &random(&[arena_len], seed + 1)).unwrap();
        let mut off = 0;
        let mut view = |cols: usize| {
            let v = arena.view(off, &[rows, cols]).unwrap();
            off += rows * cols;
            v
        };
        let hs: Vec<_> = (1..n).map(|l| view(widths[l])).collect();
        let dzs: Vec<_> = (1..=n).map(|l| view(widths[l])).collect();
        let total: usize = (0..n).map(|l| (widths[l] + 1) * widths[l + 1]).sum();
        let params = GpuTensor::from_array(g, &random(&[total], seed + 2)).unwrap();
        let grads = GpuTensor::<f32>::zeros(g, &[total]).unwrap();
        grads.fill(g, f32::NAN).unwrap();
        let (mut dw, mut db, mut at) = (vec![], vec![], 0);
        for l in 0..n {
            dw.push(grads.view(at, &[widths[l + 1], widths[l]]).unwrap());
            at += widths[l] * widths[l + 1];
            db.push(grads.view(at, &[widths[l + 1]]).unwrap());
            at += widths[l + 1];
        }
        let layers: Vec<WeightGradLayer> = (0..n)
            .map(|l| WeightGradLayer {
                dz: &dzs[l],
                h: if l == 0 { &x } else { &hs[l - 1] },
                dw: &dw[l],
                db: &db[l],
            })
            .collect();
        let loss = GpuTensor::from_slice(g, &[rows], &vec![0.5f32; rows]).unwrap();
        let correct = GpuTensor::from_slice(g, &[rows], &vec![1u32; rows]).unwrap();
        let lt = GpuTensor::<f32>::zeros(g, &[1]).unwrap();
        let ct = GpuTensor::<u32>::zeros(g, &[1]).unwrap();
        let steps = 3;
        let mut opt = GpuOptimizer::with_planned_steps(g, config, &params, &grads, steps).unwrap();
        opt.plan(g, steps).unwrap();
        let update = fused.then_some(Update {
            params: &params,
            optimizer: &opt,
        });
        let step = WeightStep::new(g, &layers, &loss, &correct, &lt, &ct, update).unwrap();
        assert_eq!(step.updates(), fused);
        let mut encoder = g.encoder("weight step with update");
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            for s in 0..steps {
                step.record_step(&mut pass, s).unwrap();
                if !fused {
                    opt.record_planned(&mut pass, s).unwrap();
                }
            }
        }
        g.submit(encoder).unwrap();
        let state = opt.state().iter().map(|t| t.read(g).unwrap()).collect();
        (params.read(g).unwrap(), grads.read(g).unwrap(), state)
    }

    /// Bit equality, naming the first element that differs.
    fn same(got: &[f32], want: &[f32], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}");
        if let Some(i) = (0..got.len()).find(|&i| got[i].to_bits() != want[i].to_bits()) {
            panic!(
                "{what}: element {i} is {} where the separate update gives {}",
                got[i], want[i]
            );
        }
    }

    fn check(rows: usize, widths: &[usize]) {
        if !WeightStep::fuses_update(gpu()) {
            // Not a skip: the engine's fallback is what runs there, and
            // it is the `fused == false` side of this very comparison.
            let e = std::panic::catch_unwind(|| run(rows, widths, OptimizerConfig::adam(), true));
            assert!(
                e.is_err(),
                "an Update must be refused on a device that cannot bind it"
            );
            return;
        }
        for config in configs() {
            let what = format!("{} rows {rows} widths {widths:?}", config.name());
            let (p0, g0, s0) = run(rows, widths, config, false);
            let (p1, g1, s1) = run(rows, widths, config, true);
            assert!(p0.iter().all(|v| v.is_finite()), "{what}: parameters");
            same(&g1, &g0, &format!("{what}: gradients"));
            same(&p1, &p0, &format!("{what}: parameters"));
            assert_eq!(s0.len(), s1.len(), "{what}");
            for (a, b) in s1.iter().zip(&s0) {
                same(a, b, &format!("{what}: state"));
            }
        }
    }

    #[test]
    fn mnist_batch_7() {
        check(7, &[784, 128, 128, 10]);
    }

    #[test]
    fn odd_widths_batch_1() {
        check(1, &[29, 7, 3]);
    }

    #[test]
    fn one_layer_batch_33() {
        check(33, &[37, 10]);
    }
}
