//! The CPU twin is itself checked: against a plain f64 triple loop, and the
//! tolerance helper against hand-made cases (NaN must fail, the worst
//! element must be reported).

use crate::common::{random, random_scaled};
use ndarray::{Array1, ArrayD, Ix1, IxDyn, array};
use wgpu_train::cpu::{self, Tolerance, compare};
use wgpu_train::{Activation, MatmulOptions};

/// C[b,i,j] = act(Σ_k op(A)[b,i,k]·op(B)[b,k,j] + bias[j]) in f64, loops only.
fn reference(
    a: &ArrayD<f32>,
    b: &ArrayD<f32>,
    bias: Option<&Array1<f32>>,
    o: MatmulOptions,
) -> ArrayD<f32> {
    let a3 = if a.ndim() == 2 {
        a.clone().insert_axis(ndarray::Axis(0))
    } else {
        a.clone()
    };
    let b3 = if b.ndim() == 2 {
        b.clone().insert_axis(ndarray::Axis(0))
    } else {
        b.clone()
    };
    let batch = a3.shape()[0].max(b3.shape()[0]);
    let (m, k) = if o.trans_a {
        (a3.shape()[2], a3.shape()[1])
    } else {
        (a3.shape()[1], a3.shape()[2])
    };
    let n = if o.trans_b {
        b3.shape()[1]
    } else {
        b3.shape()[2]
    };
    let mut c = ArrayD::<f32>::zeros(IxDyn(&[batch, m, n]));
    for bz in 0..batch {
        let (ba, bb) = (bz.min(a3.shape()[0] - 1), bz.min(b3.shape()[0] - 1));
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0f64;
                for kk in 0..k {
                    let x = if o.trans_a {
                        a3[[ba, kk, i]]
                    } else {
                        a3[[ba, i, kk]]
                    };
                    let y = if o.trans_b {
                        b3[[bb, j, kk]]
                    } else {
                        b3[[bb, kk, j]]
                    };
                    acc += x as f64 * y as f64;
                }
                if let Some(bv) = bias {
                    acc += bv[j] as f64;
                }
                let v = match o.activation {
                    Activation::Identity => acc,
                    Activation::Sigmoid => 1.0 / (1.0 + (-acc).exp()),
                    Activation::Relu => acc.max(0.0),
                };
                c[[bz, i, j]] = v as f32;
            }
        }
    }
    if a.ndim() == 2 && b.ndim() == 2 {
        c.index_axis_move(ndarray::Axis(0), 0)
    } else {
        c
    }
}

#[test]
fn cpu_matmul_matches_f64_loops_for_every_transpose_bias_and_activation() {
    let mut seed = 100;
    for (m, n, k) in [(1, 1, 1), (7, 5, 3), (33, 17, 65)] {
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            for act in [Activation::Identity, Activation::Sigmoid, Activation::Relu] {
                for with_bias in [false, true] {
                    seed += 3;
                    let o = MatmulOptions {
                        trans_a: ta,
                        trans_b: tb,
                        activation: act,
                    };
                    let a = random(&if ta { [k, m] } else { [m, k] }, seed);
                    let b = random(&if tb { [n, k] } else { [k, n] }, seed + 1);
                    let bias = with_bias
                        .then(|| random(&[n], seed + 2).into_dimensionality::<Ix1>().unwrap());
                    let got = cpu::matmul(&a, &b, bias.as_ref().map(|v| v.view()), o).unwrap();
                    let want = reference(&a, &b, bias.as_ref(), o);
                    cpu::assert_close(
                        &format!("{m}x{n}x{k} {o:?} bias={with_bias}"),
                        &got,
                        &want,
                        Tolerance::new(1e-5, 1e-5),
                    );
                }
            }
        }
    }
}

#[test]
fn cpu_matmul_batches_and_broadcasts() {
    let o = MatmulOptions::nt();
    for (sa, sb) in [
        (vec![3, 4, 5], vec![3, 6, 5]),
        (vec![3, 4, 5], vec![6, 5]),
        (vec![4, 5], vec![3, 6, 5]),
    ] {
        let a = random(&sa, 1);
        let b = random(&sb, 2);
        let got = cpu::matmul(&a, &b, None, o).unwrap();
        assert_eq!(got.shape(), &[3, 4, 6]);
        cpu::assert_close(
            "batched",
            &got,
            &reference(&a, &b, None, o),
            Tolerance::new(1e-5, 1e-5),
        );
    }
}

#[test]
fn cpu_sigmoid_is_exact_at_large_inputs() {
    let a = random_scaled(&[9, 4], 3, 1e3);
    let b = random(&[4, 9], 4);
    let o = MatmulOptions::nn().with_activation(Activation::Sigmoid);
    let got = cpu::matmul(&a, &b, None, o).unwrap();
    assert!(got.iter().all(|x| x.is_finite() && (0.0..=1.0).contains(x)));
    cpu::assert_close(
        "sigmoid ±1e3",
        &got,
        &reference(&a, &b, None, o),
        Tolerance::new(1e-6, 1e-5),
    );
}

#[test]
fn tolerance_accepts_within_atol_plus_rtol() {
    let t = Tolerance::new(1e-3, 1e-2);
    assert!(t.accepts(1.0105, 1.0)); // 0.0105 ≤ 0.001 + 0.01
    assert!(!t.accepts(1.012, 1.0));
    assert!(t.accepts(0.0009, 0.0));
    assert!(t.accepts(f32::INFINITY, f32::INFINITY));
}

#[test]
fn tolerance_fails_on_nan_on_either_side() {
    let t = Tolerance::new(1e9, 1e9);
    assert!(!t.accepts(f32::NAN, 1.0));
    assert!(!t.accepts(1.0, f32::NAN));
    assert!(!t.accepts(f32::NAN, f32::NAN));
}

#[test]
fn mismatch_reports_count_worst_index_and_values() {
    let expected = array![[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]];
    let actual = array![[1.0f32, 2.5, 3.0], [4.0, f32::NAN, 6.1]];
    let m = compare(&actual, &expected, Tolerance::new(1e-3, 0.0)).unwrap_err();
    assert_eq!(m.bad, 3);
    assert_eq!(m.total, 6);
    assert_eq!(m.worst_index, vec![1, 1], "NaN is the worst");
    assert!(m.actual.is_nan());
    assert_eq!(m.expected, 5.0);
    let text = m.to_string();
    assert!(text.contains("3 of 6") && text.contains("[1, 1]"), "{text}");

    let m = compare(
        &array![1.0f32, 2.0],
        &array![1.0f32, 2.0, 3.0],
        Tolerance::new(1.0, 1.0),
    )
    .unwrap_err();
    assert!(m.to_string().contains("shape mismatch"));
    assert!(compare(&expected, &expected, Tolerance::new(0.0, 0.0)).is_ok());
}
