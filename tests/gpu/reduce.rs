//! The deterministic reductions against the CPU twin: column sums (bias
//! gradients) and the batch's loss and correct-count totals. Same inputs,
//! same bits, on every run.

use crate::common::{gpu, random, random_labels};
use wgpu_train::cpu::{self, Tolerance};
use wgpu_train::kernels::{ColumnSum, LossCorrectSum, loss_correct_sum};
use wgpu_train::{ColumnSumKernel, Error, GpuTensor};

mod batched;
mod subgroup;

/// Sums of N values in [-1, 1) in different orders differ by rounding that
/// grows with N; a missed or doubled row is off by O(1).
fn sum_tolerance(n: usize) -> Tolerance {
    Tolerance::new(1e-6 * n as f32, 1e-5)
}

fn check_column_sum(n: usize, c: usize, kernel: ColumnSumKernel) {
    let g = gpu();
    let x = random(&[n, c], (n * 7 + c) as u64);
    let expected = cpu::column_sum(&x).unwrap();
    let gx = GpuTensor::from_array(g, &x).unwrap();
    let sums = GpuTensor::<f32>::zeros(g, &[c]).unwrap();
    sums.fill(g, f32::NAN).unwrap();
    let k = ColumnSum::new(g, &gx, &sums, kernel).unwrap();
    k.run(g, 1).unwrap();
    cpu::assert_close(
        &format!("column_sum {n}×{c} with {:?}", k.kernel()),
        &sums.to_array(g).unwrap(),
        &expected,
        sum_tolerance(n),
    );
}

macro_rules! column_cases {
    ($($name:ident: $n:expr, $c:expr;)*) => {
        mod v1_serial { use super::*; $(#[test] fn $name() { check_column_sum($n, $c, ColumnSumKernel::V1Serial) })* }
        mod v2_tree { use super::*; $(#[test] fn $name() { check_column_sum($n, $c, ColumnSumKernel::V2Tree) })* }
        mod auto { use super::*; $(#[test] fn $name() { check_column_sum($n, $c, ColumnSumKernel::Auto) })* }
    };
}

column_cases! {
    n1_c1: 1, 1;
    n1_c10_single_row: 1, 10;
    n7_c10: 7, 10;
    n128_c128_mlp_hidden_bias: 128, 128;
    n129_c10_rows_not_dividing_lanes: 129, 10;
    n256_c1000: 256, 1000;
    n7_c17_columns_not_dividing_tiles: 7, 17;
    n10000_c3_tall: 10000, 3;
}

#[test]
fn column_sum_of_views_at_odd_offsets() {
    let g = gpu();
    let (n, c) = (9, 21);
    let x = random(&[n, c], 3);
    let mut flat = vec![7.0f32; 5 + n * c];
    flat[5..].copy_from_slice(x.as_slice().unwrap());
    let gx = GpuTensor::from_slice(g, &[flat.len()], &flat)
        .unwrap()
        .view(5, &[n, c])
        .unwrap();
    let out = GpuTensor::<f32>::zeros(g, &[c + 4]).unwrap();
    let sums = out.view(3, &[c]).unwrap();
    for kernel in ColumnSumKernel::ALL {
        out.fill(g, f32::NAN).unwrap();
        ColumnSum::new(g, &gx, &sums, kernel)
            .unwrap()
            .run(g, 1)
            .unwrap();
        cpu::assert_close(
            kernel.name(),
            &sums.to_array(g).unwrap(),
            &cpu::column_sum(&x).unwrap(),
            sum_tolerance(n),
        );
        let all = out.read(g).unwrap();
        assert!(
            all[..3].iter().chain(&all[3 + c..]).all(|v| v.is_nan()),
            "{kernel:?} wrote outside its view"
        );
    }
}

#[test]
fn column_sum_repeated_runs_give_identical_bits() {
    let g = gpu();
    let x = GpuTensor::from_array(g, &random(&[1000, 130], 4)).unwrap();
    let sums = GpuTensor::<f32>::zeros(g, &[130]).unwrap();
    for kernel in ColumnSumKernel::ALL {
        let k = ColumnSum::new(g, &x, &sums, kernel).unwrap();
        k.run(g, 1).unwrap();
        let first = sums.read(g).unwrap();
        for _ in 0..3 {
            sums.fill(g, f32::NAN).unwrap();
            k.run(g, 1).unwrap();
            let again = sums.read(g).unwrap();
            assert!(
                first
                    .iter()
                    .zip(&again)
                    .all(|(p, q)| p.to_bits() == q.to_bits()),
                "{kernel:?} is not deterministic"
            );
        }
    }
}

fn check_totals(n: usize) {
    let g = gpu();
    let loss = random(&[n], n as u64).mapv(|v| 2.0 + v);
    let correct: Vec<u32> = random_labels(n, 2, n as u64 + 1);
    let (expected_total, expected_count) =
        cpu::loss_correct_sum(loss.as_slice().unwrap(), &correct).unwrap();
    let gloss = GpuTensor::from_array(g, &loss).unwrap();
    let gcorrect = GpuTensor::from_slice(g, &[n], &correct).unwrap();
    let total = GpuTensor::<f32>::zeros(g, &[1]).unwrap();
    let count = GpuTensor::<u32>::zeros(g, &[1]).unwrap();
    total.fill(g, f32::NAN).unwrap();
    count.fill(g, u32::MAX).unwrap();
    LossCorrectSum::new(g, &gloss, &gcorrect, &total, &count, false)
        .unwrap()
        .run(g, 1)
        .unwrap();
    cpu::assert_close(
        &format!("total loss of {n} rows"),
        &total.to_array(g).unwrap(),
        &ndarray::arr1(&[expected_total]),
        sum_tolerance(n),
    );
    assert_eq!(
        count.read(g).unwrap(),
        vec![expected_count],
        "correct count of {n} rows"
    );
}

#[test]
fn loss_correct_sum_matches_cpu() {
    for n in [1, 7, 128, 129, 256, 257, 10000] {
        check_totals(n);
    }
}

/// With `accumulate`, three dispatches in one pass add three batch totals
/// into the epoch's, exactly as three f32 additions on the CPU would.
#[test]
fn accumulated_totals_add_batch_by_batch() {
    let g = gpu();
    let n = 300;
    let loss = GpuTensor::from_array(g, &random(&[n], 5).mapv(|v| 1.0 + v)).unwrap();
    let correct = GpuTensor::from_slice(g, &[n], &random_labels(n, 2, 6)).unwrap();
    let (batch_total, batch_count) = loss_correct_sum(g, &loss, &correct).unwrap();
    let batch_total = batch_total.read(g).unwrap()[0];
    let batch_count = batch_count.read(g).unwrap()[0];

    // Epoch totals as views into one stats buffer, zeroed at the start.
    let stats = GpuTensor::<f32>::zeros(g, &[4]).unwrap();
    stats.fill(g, f32::NAN).unwrap();
    let total = stats.view(2, &[1]).unwrap();
    total.fill(g, 0.0).unwrap();
    let counts = GpuTensor::<u32>::zeros(g, &[3]).unwrap();
    let count = counts.view(1, &[1]).unwrap();
    let acc = LossCorrectSum::new(g, &loss, &correct, &total, &count, true).unwrap();
    acc.run(g, 3).unwrap();
    let expected = ((0.0 + batch_total) + batch_total) + batch_total;
    let stats = stats.read(g).unwrap();
    assert_eq!(
        stats[2].to_bits(),
        expected.to_bits(),
        "{stats:?} vs {expected}"
    );
    assert!(
        stats[0].is_nan() && stats[1].is_nan() && stats[3].is_nan(),
        "{stats:?}"
    );
    assert_eq!(counts.read(g).unwrap(), vec![0, 3 * batch_count, 0]);
}

#[test]
fn loss_correct_sum_repeated_runs_give_identical_bits() {
    let g = gpu();
    let n = 5000;
    let loss = GpuTensor::from_array(g, &random(&[n], 7)).unwrap();
    let correct = GpuTensor::from_slice(g, &[n], &random_labels(n, 2, 8)).unwrap();
    let first = loss_correct_sum(g, &loss, &correct)
        .unwrap()
        .0
        .read(g)
        .unwrap()[0];
    for _ in 0..3 {
        let again = loss_correct_sum(g, &loss, &correct)
            .unwrap()
            .0
            .read(g)
            .unwrap()[0];
        assert_eq!(first.to_bits(), again.to_bits());
    }
}

#[test]
fn shape_errors() {
    let g = gpu();
    let x = GpuTensor::<f32>::zeros(g, &[4, 5]).unwrap();
    let flat = GpuTensor::<f32>::zeros(g, &[20]).unwrap();
    let sums4 = GpuTensor::<f32>::zeros(g, &[4]).unwrap();
    assert!(matches!(
        ColumnSum::new(g, &flat, &sums4, ColumnSumKernel::Auto),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        ColumnSum::new(g, &x, &sums4, ColumnSumKernel::Auto),
        Err(Error::Shape { .. })
    ));
    let loss = GpuTensor::<f32>::zeros(g, &[4]).unwrap();
    let correct3 = GpuTensor::<u32>::zeros(g, &[3]).unwrap();
    let total = GpuTensor::<f32>::zeros(g, &[1]).unwrap();
    let count = GpuTensor::<u32>::zeros(g, &[1]).unwrap();
    assert!(matches!(
        LossCorrectSum::new(g, &loss, &correct3, &total, &count, false),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        cpu::loss_correct_sum(&[1.0f32, 2.0], &[1]),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        cpu::column_sum(&ndarray::Array1::<f32>::zeros(3)),
        Err(Error::Shape { .. })
    ));
}
